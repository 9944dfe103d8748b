using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// Copies blocks of op(A) and op(B) into the k-major panels the microkernel reads (A: MR rows per panel, B: NR columns
/// per panel), zero-padding the last panel so edge tiles need no special kernel. Packing turns every transpose mode
/// into the same contiguous, aligned access pattern and widens bfloat16 weights once per block.
/// </summary>
internal static unsafe class GemmPacking
{
    /// <summary>Packs rows [i0, i0+rows) and depth [p0, p0+kc) of op(A); op(A)(i,p) = transA ? a[p*lda+i] : a[i*lda+p].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackA(bool transA, float* a, int lda, int i0, int rows, int p0, int kc, float* dst)
    {
        for (int ir = 0; ir < rows; ir += MR)
        {
            int mr = Math.Min(MR, rows - ir);
            float* panel = dst + ir * kc;
            if (transA)
            {
                for (int p = 0; p < kc; p++)
                {
                    float* src = a + (long)(p0 + p) * lda + i0 + ir;
                    float* d = panel + p * MR;
                    int r = 0;
                    for (; r < mr; r++) d[r] = src[r];
                    for (; r < MR; r++) d[r] = 0;
                }
            }
            else
            {
                for (int r = 0; r < MR; r++)
                {
                    if (r < mr)
                    {
                        float* src = a + (long)(i0 + ir + r) * lda + p0;
                        for (int p = 0; p < kc; p++) panel[p * MR + r] = src[p];
                    }
                    else
                        for (int p = 0; p < kc; p++) panel[p * MR + r] = 0;
                }
            }
        }
    }

    /// <summary>Packs columns [j0, j0+cols) and depth [p0, p0+kc) of op(B); op(B)(p,j) = transB ? b[j*ldb+p] : b[p*ldb+j].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void PackB<T, TLoader>(bool transB, T* b, int ldb, int j0, int cols, int p0, int kc, float* dst)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        for (int jr = 0; jr < cols; jr += NR)
        {
            int nr = Math.Min(NR, cols - jr);
            float* panel = dst + jr * kc;
            if (transB && nr == NR && Vectorized)
                PackTransposedPanel<T, TLoader>(b + (long)(j0 + jr) * ldb + p0, ldb, kc, panel);
            else if (transB)
            {
                for (int j = 0; j < NR; j++)
                {
                    if (j < nr)
                    {
                        T* src = b + (long)(j0 + jr + j) * ldb + p0;
                        for (int p = 0; p < kc; p++) panel[p * NR + j] = TLoader.Scalar(src + p);
                    }
                    else
                        for (int p = 0; p < kc; p++) panel[p * NR + j] = 0;
                }
            }
            else
            {
                for (int p = 0; p < kc; p++)
                {
                    T* src = b + (long)(p0 + p) * ldb + j0 + jr;
                    float* d = panel + p * NR;
                    if (nr == NR && Vectorized)
                    {
                        Avx.StoreAligned(d, TLoader.Load8(src));
                        Avx.StoreAligned(d + 8, TLoader.Load8(src + 8));
                        continue;
                    }
                    int j = 0;
                    for (; j < nr; j++) d[j] = TLoader.Scalar(src + j);
                    for (; j < NR; j++) d[j] = 0;
                }
            }
        }
    }

    /// <summary>A full 16-column panel of a transposed B: 16 source rows become the panel's columns, moved eight
    /// rows by eight depths at a time through an in-register transpose (strided scalar stores cost about 5x more).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void PackTransposedPanel<T, TLoader>(T* src, int ldb, int kc, float* panel)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        int p = 0;
        for (; p + 8 <= kc; p += 8)
        for (int half = 0; half < NR; half += 8)
        {
            T* s = src + (long)half * ldb + p;
            Transpose8x8(TLoader.Load8(s), TLoader.Load8(s + ldb), TLoader.Load8(s + 2L * ldb), TLoader.Load8(s + 3L * ldb),
                TLoader.Load8(s + 4L * ldb), TLoader.Load8(s + 5L * ldb), TLoader.Load8(s + 6L * ldb), TLoader.Load8(s + 7L * ldb),
                panel + p * NR + half);
        }
        for (; p < kc; p++)
        for (int j = 0; j < NR; j++)
            panel[p * NR + j] = TLoader.Scalar(src + (long)j * ldb + p);
    }

    /// <summary>Stores column q of the 8x8 block whose rows are r0..r7 at dst + q*NR.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.StoreAligned(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.StoreAligned(dst + NR, Avx.Permute2x128(s1, s5, 0x20));
        Avx.StoreAligned(dst + 2 * NR, Avx.Permute2x128(s2, s6, 0x20));
        Avx.StoreAligned(dst + 3 * NR, Avx.Permute2x128(s3, s7, 0x20));
        Avx.StoreAligned(dst + 4 * NR, Avx.Permute2x128(s0, s4, 0x31));
        Avx.StoreAligned(dst + 5 * NR, Avx.Permute2x128(s1, s5, 0x31));
        Avx.StoreAligned(dst + 6 * NR, Avx.Permute2x128(s2, s6, 0x31));
        Avx.StoreAligned(dst + 7 * NR, Avx.Permute2x128(s3, s7, 0x31));
    }
}
