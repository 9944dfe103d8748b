using System.Runtime.CompilerServices;
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
            if (transB)
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
}
