using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// y = x·Wᵀ for a handful of rows (batched decoding: 5 to <see cref="MaxRows"/> sequences). Packing W, as the blocked GEMM
/// does, would copy every weight on every step; here x is the small operand, so x is packed instead: transposed once per
/// call into panels of 16 rows ([k][16], zero-padded). A task takes 6 W rows at a time, widens a chunk of them into L1,
/// and runs the 6x16 register block of the GEMM with the roles swapped: each W element is broadcast against two vectors
/// of 16 x rows, so twelve FMAs need only eight loads, and no horizontal sums are needed. W is read from memory once per
/// call. Every output is a plain sequential sum over k in one accumulator lane, so results do not depend on the chunking
/// or the thread count.
/// </summary>
internal static unsafe class CpuSmallBatch
{
    public const int MaxRows = 32;
    const int Panel = 16, TileRows = 6;
    /// <summary>k per chunk: six widened W rows (6 KiB) and one x panel chunk (16 KiB) stay in L1 together.</summary>
    const int Chunk = 256;
    /// <summary>W rows per task: several tiles to amortise scheduling, few enough to balance the threads.</summary>
    const int TilesPerTask = 4;

    public static void RowsDotW<T, TLoader>(int m, int n, int k, float alpha, float* a, int lda, T* w, int ldw,
        float beta, float* c, int ldc, ParallelRunner runner)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        int panels = (m + Panel - 1) / Panel;
        float* packed = PackedX.Get((long)panels * Panel * k);
        PackTransposed(m, k, a, lda, packed);
        var job = new Job<T, TLoader> { M = m, N = n, K = k, Panels = panels, Alpha = alpha, Beta = beta, X = packed, W = w, Ldw = ldw, C = c, Ldc = ldc };
        int rowsPerTask = TileRows * TilesPerTask;
        runner.For((n + rowsPerTask - 1) / rowsPerTask, job, static (j, task) => j.Run(task));
    }

    /// <summary>x[m,k] → panels of 16 rows, each [k][16] (rows past m are zero), by 8x8 transposes of registers.</summary>
    [SkipLocalsInit]
    static void PackTransposed(int m, int k, float* x, int ldx, float* packed)
    {
        int panels = (m + Panel - 1) / Panel;
        float* zeros = stackalloc float[8];
        new Span<float>(zeros, 8).Clear();
        float** rows = stackalloc float*[8];
        for (int panel = 0; panel < panels; panel++)
        for (int half = 0; half < Panel; half += 8)
        {
            float* dst = packed + (long)panel * Panel * k + half;
            int first = panel * Panel + half;
            for (int l = 0; l < 8; l++) rows[l] = first + l < m ? x + (long)(first + l) * ldx : null;
            int p = 0;
            if (Vectorized)
                for (; p + 8 <= k; p += 8)
                {
                    Vector256<float> Row(int l) => rows[l] == null ? Vector256<float>.Zero : Avx.LoadVector256(rows[l] + p);
                    Transpose8x8(Row(0), Row(1), Row(2), Row(3), Row(4), Row(5), Row(6), Row(7), dst + (long)p * Panel, Panel);
                }
            for (; p < k; p++)
            for (int l = 0; l < 8; l++) dst[(long)p * Panel + l] = rows[l] == null ? 0f : rows[l][p];
        }
    }

    /// <summary>Stores the transpose of the 8x8 block whose rows are r0..r7: row p of the output goes to dst + p·stride.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Transpose8x8(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
                             Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7, float* dst, int stride)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + stride, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * stride, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * stride, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * stride, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * stride, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * stride, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * stride, Avx.Permute2x128(u3, u7, 0x31));
    }

    struct Job<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        public int M, N, K, Ldw, Ldc, Panels;
        public float Alpha, Beta;
        public float* X, C;
        public T* W;

        [SkipLocalsInit]
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(int task)
        {
            // acc[panel][r][16]: the tile's sums, kept across chunks; widened[r][Chunk]: the chunk of W row r as float32.
            float* acc = stackalloc float[MaxRows / Panel * TileRows * Panel];
            float* widened = stackalloc float[TileRows * Chunk];
            int end = Math.Min(N, (task + 1) * TileRows * TilesPerTask);
            for (int j0 = task * TileRows * TilesPerTask; j0 < end; j0 += TileRows)
            {
                int rows = Math.Min(TileRows, end - j0);
                new Span<float>(acc, Panels * TileRows * Panel).Clear();
                for (int p0 = 0; p0 < K; p0 += Chunk)
                {
                    int len = Math.Min(Chunk, K - p0);
                    // Rows past the edge reuse the last one; their sums are never written out.
                    for (int r = 0; r < TileRows; r++) Widen(W + (long)(j0 + Math.Min(r, rows - 1)) * Ldw + p0, widened + r * Chunk, len);
                    for (int panel = 0; panel < Panels; panel++)
                        Accumulate(len, widened, X + ((long)panel * K + p0) * Panel, acc + panel * TileRows * Panel);
                }
                for (int panel = 0; panel < Panels; panel++)
                for (int l = 0; l < Panel && panel * Panel + l < M; l++)
                {
                    float* row = C + (long)(panel * Panel + l) * Ldc + j0;
                    for (int r = 0; r < rows; r++) row[r] = Update(acc[(panel * TileRows + r) * Panel + l], row + r, Alpha, Beta);
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        static void Widen(T* source, float* buffer, int len)
        {
            int p = 0;
            if (Vectorized)
                for (; p + 8 <= len; p += 8) Avx.Store(buffer + p, TLoader.Load8(source + p));
            for (; p < len; p++) buffer[p] = TLoader.Scalar(source + p);
        }

        /// <summary>acc[r][0..15] += Σ_p w[r][p] · x[p][0..15] for the six W rows (w rows <see cref="Chunk"/> apart).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Accumulate(int len, float* w, float* x, float* acc)
        {
            if (!Vectorized)
            {
                for (int r = 0; r < TileRows; r++)
                for (int p = 0; p < len; p++)
                for (int l = 0; l < Panel; l++)
                    acc[r * Panel + l] += w[r * Chunk + p] * x[p * Panel + l];
                return;
            }
            var c00 = Avx.LoadVector256(acc); var c01 = Avx.LoadVector256(acc + 8);
            var c10 = Avx.LoadVector256(acc + 16); var c11 = Avx.LoadVector256(acc + 24);
            var c20 = Avx.LoadVector256(acc + 32); var c21 = Avx.LoadVector256(acc + 40);
            var c30 = Avx.LoadVector256(acc + 48); var c31 = Avx.LoadVector256(acc + 56);
            var c40 = Avx.LoadVector256(acc + 64); var c41 = Avx.LoadVector256(acc + 72);
            var c50 = Avx.LoadVector256(acc + 80); var c51 = Avx.LoadVector256(acc + 88);
            for (int p = 0; p < len; p++)
            {
                var x0 = Avx.LoadVector256(x);
                var x1 = Avx.LoadVector256(x + 8);
                var wv = Avx.BroadcastScalarToVector256(w + p);
                c00 = Fma.MultiplyAdd(wv, x0, c00); c01 = Fma.MultiplyAdd(wv, x1, c01);
                wv = Avx.BroadcastScalarToVector256(w + Chunk + p);
                c10 = Fma.MultiplyAdd(wv, x0, c10); c11 = Fma.MultiplyAdd(wv, x1, c11);
                wv = Avx.BroadcastScalarToVector256(w + 2 * Chunk + p);
                c20 = Fma.MultiplyAdd(wv, x0, c20); c21 = Fma.MultiplyAdd(wv, x1, c21);
                wv = Avx.BroadcastScalarToVector256(w + 3 * Chunk + p);
                c30 = Fma.MultiplyAdd(wv, x0, c30); c31 = Fma.MultiplyAdd(wv, x1, c31);
                wv = Avx.BroadcastScalarToVector256(w + 4 * Chunk + p);
                c40 = Fma.MultiplyAdd(wv, x0, c40); c41 = Fma.MultiplyAdd(wv, x1, c41);
                wv = Avx.BroadcastScalarToVector256(w + 5 * Chunk + p);
                c50 = Fma.MultiplyAdd(wv, x0, c50); c51 = Fma.MultiplyAdd(wv, x1, c51);
                x += Panel;
            }
            Avx.Store(acc, c00); Avx.Store(acc + 8, c01);
            Avx.Store(acc + 16, c10); Avx.Store(acc + 24, c11);
            Avx.Store(acc + 32, c20); Avx.Store(acc + 40, c21);
            Avx.Store(acc + 48, c30); Avx.Store(acc + 56, c31);
            Avx.Store(acc + 64, c40); Avx.Store(acc + 72, c41);
            Avx.Store(acc + 80, c50); Avx.Store(acc + 88, c51);
        }
    }

    /// <summary>The calling thread's buffer for packed x, grown as needed and kept for the thread's life.</summary>
    static class PackedX
    {
        [ThreadStatic] static float* _buffer;
        [ThreadStatic] static long _length;

        public static float* Get(long floats)
        {
            if (floats > _length)
            {
                if (_buffer != null) NativeMemory.AlignedFree(_buffer);
                _buffer = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
                _length = floats;
            }
            return _buffer;
        }
    }
}
