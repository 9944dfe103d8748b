using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// Products with one to four rows of activations (decoding): bound by reading the weights, so each kernel streams
/// through W exactly once, spread over threads in fixed chunks, with enough independent accumulators to keep loads
/// in flight. Each output is summed by one task in a fixed order, so results do not depend on the thread count.
/// </summary>
internal static unsafe class CpuMatVec
{
    /// <summary>Weight bytes per task: big enough to amortise scheduling, small enough to balance two to many threads.</summary>
    const int BytesPerTask = 256 * 1024;
    /// <summary>Output columns per task for <see cref="RowsTimesW{T,TLoader}"/> (the accumulators live on the stack).</summary>
    const int ColumnsPerTask = 256;
    /// <summary>How far ahead of the loads the float32 single-row kernel prefetches in each row (decode at Qwen2.5-0.5B's
    /// shape, 2 threads: 1 KiB beat none and 2 KiB; prefetching the next group of rows, as for bfloat16, was no faster).</summary>
    const int PrefetchBytes = 1024;

    /// <summary>C[i,j] = alpha * sum_p A[i,p]·W[j,p] + beta*C[i,j] for m ≤ 4 rows (y = x·Wᵀ, the linear-layer forward).</summary>
    public static void RowsDotW<T, TLoader>(int m, int n, int k, float alpha, float* a, int lda, T* w, int ldw,
        float beta, float* c, int ldc, ParallelRunner runner)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        int rowsPerTask = Math.Max(8, BytesPerTask / (k * sizeof(T))) & ~3; // whole groups of four rows for Dot1x4
        var job = new DotJob<T, TLoader> { M = m, N = n, K = k, Alpha = alpha, Beta = beta, A = a, Lda = lda, W = w, Ldw = ldw, C = c, Ldc = ldc, RowsPerTask = rowsPerTask };
        int tasks = (n + rowsPerTask - 1) / rowsPerTask;
        if (m == 1 && Vectorized && typeof(T) == typeof(ushort))
        {
            float[] reordered = ArrayPool<float>.Shared.Rent(k);
            fixed (float* xr = reordered)
            {
                BF16DotKernel.Deinterleave(a, k, xr);
                job.XDeinterleaved = xr;
                runner.For(tasks, job, static (j, task) => j.Run(task));
            }
            ArrayPool<float>.Shared.Return(reordered);
        }
        else runner.For(tasks, job, static (j, task) => j.Run(task));
    }

    /// <summary>C[i,j] = alpha * sum_p A[i,p]·W[p,j] + beta*C[i,j] for m ≤ 4 rows (dX = dY·W).</summary>
    public static void RowsTimesW<T, TLoader>(int m, int n, int k, float alpha, float* a, int lda, T* w, int ldw,
        float beta, float* c, int ldc, ParallelRunner runner)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        var job = new AxpyJob<T, TLoader> { M = m, N = n, K = k, Alpha = alpha, Beta = beta, A = a, Lda = lda, W = w, Ldw = ldw, C = c, Ldc = ldc };
        runner.For((n + ColumnsPerTask - 1) / ColumnsPerTask, job, static (j, task) => j.Run(task));
    }

    struct DotJob<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        public int M, N, K, Lda, Ldw, Ldc, RowsPerTask;
        public float Alpha, Beta;
        public float* A, C;
        public T* W;
        /// <summary>bfloat16 weights and one row: x reordered for <see cref="BF16DotKernel"/>.</summary>
        public float* XDeinterleaved;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(int task)
        {
            int j1 = Math.Min(N, (task + 1) * RowsPerTask);
            // Rows of x beyond m alias row 0: the kernel always does four dot products, the extra ones are dropped.
            float* x0 = A, x1 = M > 1 ? A + Lda : A, x2 = M > 2 ? A + 2 * Lda : A, x3 = M > 3 ? A + 3 * Lda : A;
            float* sums = stackalloc float[4];
            int j = task * RowsPerTask;
            if (M == 1 && Vectorized)
                for (; j + 4 <= j1; j += 4)
                {
                    if (XDeinterleaved != null) BF16DotKernel.Dot4Rows((ushort*)(W + (long)j * Ldw), Ldw, XDeinterleaved, K, sums);
                    else Dot1x4(W + (long)j * Ldw, Ldw, x0, K, sums);
                    for (int r = 0; r < 4; r++)
                    {
                        float* target = C + j + r;
                        *target = Update(sums[r], target, Alpha, Beta);
                    }
                }
            for (; j < j1; j++)
            {
                T* row = W + (long)j * Ldw;
                if (M == 1) sums[0] = Dot1(row, x0, K);
                else Dot4(row, x0, x1, x2, x3, K, sums);
                for (int i = 0; i < M; i++)
                {
                    float* target = C + (long)i * Ldc + j;
                    *target = Update(sums[i], target, Alpha, Beta);
                }
            }
        }

        /// <summary>
        /// Four weight rows against one x: four streams in flight per thread, two accumulators per row, and a software
        /// prefetch <see cref="PrefetchBytes"/> ahead in each row (weights are often a memory-mapped file in 4 KiB pages,
        /// where the hardware prefetchers stop at every page boundary).
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Dot1x4(T* w0, int ldw, float* x, int k, float* sums)
        {
            T* w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
            int p = 0;
            int distance = PrefetchBytes / sizeof(T);
            for (; p + 16 <= k; p += 16)
            {
                Sse.Prefetch0(w0 + p + distance); Sse.Prefetch0(w1 + p + distance);
                Sse.Prefetch0(w2 + p + distance); Sse.Prefetch0(w3 + p + distance);
                var xl = Avx.LoadVector256(x + p);
                var xh = Avx.LoadVector256(x + p + 8);
                a0 = Fma.MultiplyAdd(TLoader.Load8(w0 + p), xl, a0); b0 = Fma.MultiplyAdd(TLoader.Load8(w0 + p + 8), xh, b0);
                a1 = Fma.MultiplyAdd(TLoader.Load8(w1 + p), xl, a1); b1 = Fma.MultiplyAdd(TLoader.Load8(w1 + p + 8), xh, b1);
                a2 = Fma.MultiplyAdd(TLoader.Load8(w2 + p), xl, a2); b2 = Fma.MultiplyAdd(TLoader.Load8(w2 + p + 8), xh, b2);
                a3 = Fma.MultiplyAdd(TLoader.Load8(w3 + p), xl, a3); b3 = Fma.MultiplyAdd(TLoader.Load8(w3 + p + 8), xh, b3);
            }
            for (; p + 8 <= k; p += 8)
            {
                var xl = Avx.LoadVector256(x + p);
                a0 = Fma.MultiplyAdd(TLoader.Load8(w0 + p), xl, a0);
                a1 = Fma.MultiplyAdd(TLoader.Load8(w1 + p), xl, a1);
                a2 = Fma.MultiplyAdd(TLoader.Load8(w2 + p), xl, a2);
                a3 = Fma.MultiplyAdd(TLoader.Load8(w3 + p), xl, a3);
            }
            float r0 = Vector256.Sum(a0 + b0), r1 = Vector256.Sum(a1 + b1), r2 = Vector256.Sum(a2 + b2), r3 = Vector256.Sum(a3 + b3);
            for (; p < k; p++)
            {
                r0 = MathF.FusedMultiplyAdd(TLoader.Scalar(w0 + p), x[p], r0); r1 = MathF.FusedMultiplyAdd(TLoader.Scalar(w1 + p), x[p], r1);
                r2 = MathF.FusedMultiplyAdd(TLoader.Scalar(w2 + p), x[p], r2); r3 = MathF.FusedMultiplyAdd(TLoader.Scalar(w3 + p), x[p], r3);
            }
            sums[0] = r0; sums[1] = r1; sums[2] = r2; sums[3] = r3;
        }

        /// <summary>Four accumulators of eight lanes: 32 weights per step keep FMA latency off the critical path.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static float Dot1(T* w, float* x, int k)
        {
            int p = 0;
            float sum;
            if (Vectorized)
            {
                Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
                for (; p + 32 <= k; p += 32)
                {
                    s0 = Fma.MultiplyAdd(TLoader.Load8(w + p), Avx.LoadVector256(x + p), s0);
                    s1 = Fma.MultiplyAdd(TLoader.Load8(w + p + 8), Avx.LoadVector256(x + p + 8), s1);
                    s2 = Fma.MultiplyAdd(TLoader.Load8(w + p + 16), Avx.LoadVector256(x + p + 16), s2);
                    s3 = Fma.MultiplyAdd(TLoader.Load8(w + p + 24), Avx.LoadVector256(x + p + 24), s3);
                }
                for (; p + 8 <= k; p += 8) s0 = Fma.MultiplyAdd(TLoader.Load8(w + p), Avx.LoadVector256(x + p), s0);
                sum = Vector256.Sum((s0 + s1) + (s2 + s3));
                for (; p < k; p++) sum = MathF.FusedMultiplyAdd(TLoader.Scalar(w + p), x[p], sum);
            }
            else
            {
                sum = 0;
                for (; p < k; p++) sum += TLoader.Scalar(w + p) * x[p];
            }
            return sum;
        }

        /// <summary>One pass over a weight row for four activation rows, two accumulators each.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Dot4(T* w, float* x0, float* x1, float* x2, float* x3, int k, float* sums)
        {
            int p = 0;
            float r0 = 0, r1 = 0, r2 = 0, r3 = 0;
            if (Vectorized)
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
                for (; p + 16 <= k; p += 16)
                {
                    var wl = TLoader.Load8(w + p);
                    var wh = TLoader.Load8(w + p + 8);
                    a0 = Fma.MultiplyAdd(wl, Avx.LoadVector256(x0 + p), a0); b0 = Fma.MultiplyAdd(wh, Avx.LoadVector256(x0 + p + 8), b0);
                    a1 = Fma.MultiplyAdd(wl, Avx.LoadVector256(x1 + p), a1); b1 = Fma.MultiplyAdd(wh, Avx.LoadVector256(x1 + p + 8), b1);
                    a2 = Fma.MultiplyAdd(wl, Avx.LoadVector256(x2 + p), a2); b2 = Fma.MultiplyAdd(wh, Avx.LoadVector256(x2 + p + 8), b2);
                    a3 = Fma.MultiplyAdd(wl, Avx.LoadVector256(x3 + p), a3); b3 = Fma.MultiplyAdd(wh, Avx.LoadVector256(x3 + p + 8), b3);
                }
                r0 = Vector256.Sum(a0 + b0); r1 = Vector256.Sum(a1 + b1); r2 = Vector256.Sum(a2 + b2); r3 = Vector256.Sum(a3 + b3);
                for (; p < k; p++)
                {
                    float wp = TLoader.Scalar(w + p);
                    r0 = MathF.FusedMultiplyAdd(wp, x0[p], r0); r1 = MathF.FusedMultiplyAdd(wp, x1[p], r1);
                    r2 = MathF.FusedMultiplyAdd(wp, x2[p], r2); r3 = MathF.FusedMultiplyAdd(wp, x3[p], r3);
                }
            }
            else
            {
                for (; p < k; p++)
                {
                    float wp = TLoader.Scalar(w + p);
                    r0 += wp * x0[p]; r1 += wp * x1[p]; r2 += wp * x2[p]; r3 += wp * x3[p];
                }
            }
            sums[0] = r0; sums[1] = r1; sums[2] = r2; sums[3] = r3;
        }
    }

    /// <summary>A block of output columns: stream the matching slice of every W row, adding x[i,p]·W[p,·] into
    /// stack accumulators (so each output is a sequential sum over p), then apply alpha and beta once.</summary>
    struct AxpyJob<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        public int M, N, K, Lda, Ldw, Ldc;
        public float Alpha, Beta;
        public float* A, C;
        public T* W;

        [SkipLocalsInit]
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(int task)
        {
            int j0 = task * ColumnsPerTask, cols = Math.Min(ColumnsPerTask, N - j0);
            float* acc = stackalloc float[CpuMatMul.SmallM * ColumnsPerTask];
            new Span<float>(acc, M * ColumnsPerTask).Clear();
            int vectorCols = Vectorized ? cols & ~7 : 0;
            for (int p = 0; p < K; p++)
            {
                T* row = W + (long)p * Ldw + j0;
                for (int i = 0; i < M; i++)
                {
                    float xi = A[(long)i * Lda + p];
                    float* ai = acc + i * ColumnsPerTask;
                    if (Vectorized)
                    {
                        var xv = Vector256.Create(xi);
                        for (int j = 0; j < vectorCols; j += 8)
                            Avx.Store(ai + j, Fma.MultiplyAdd(xv, TLoader.Load8(row + j), Avx.LoadVector256(ai + j)));
                        for (int j = vectorCols; j < cols; j++) ai[j] = MathF.FusedMultiplyAdd(xi, TLoader.Scalar(row + j), ai[j]);
                    }
                    else
                        for (int j = 0; j < cols; j++) ai[j] += xi * TLoader.Scalar(row + j);
                }
            }
            for (int i = 0; i < M; i++)
            for (int j = 0; j < cols; j++)
            {
                float* target = C + (long)i * Ldc + j0 + j;
                *target = Update(acc[i * ColumnsPerTask + j], target, Alpha, Beta);
            }
        }
    }
}
