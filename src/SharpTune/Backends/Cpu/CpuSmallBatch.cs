using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// y = x·Wᵀ for a handful of rows (batched decoding: 5 to <see cref="MaxRows"/> sequences). Packing W, as the blocked GEMM
/// does, would copy every weight on every step; instead each task keeps a pair of W rows in L1 while all rows of x pass over
/// them (x stays in L2), so W is read from memory once per step and the 2x4 register block keeps both FMA ports busy.
/// Every output is one task's sum in a fixed order, so results do not depend on the thread count.
/// </summary>
internal static unsafe class CpuSmallBatch
{
    public const int MaxRows = 32;
    /// <summary>Weight bytes per task: enough work to amortise scheduling, small enough to balance the threads.</summary>
    const int BytesPerTask = 64 * 1024;

    public static void RowsDotW<T, TLoader>(int m, int n, int k, float alpha, float* a, int lda, T* w, int ldw,
        float beta, float* c, int ldc, ParallelRunner runner)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        int rowsPerTask = Math.Max(2, BytesPerTask / (k * sizeof(T))) & ~1;
        var job = new Job<T, TLoader> { M = m, N = n, K = k, Alpha = alpha, Beta = beta, A = a, Lda = lda, W = w, Ldw = ldw, C = c, Ldc = ldc, RowsPerTask = rowsPerTask };
        runner.For((n + rowsPerTask - 1) / rowsPerTask, job, static (j, task) => j.Run(task));
    }

    struct Job<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        public int M, N, K, Lda, Ldw, Ldc, RowsPerTask;
        public float Alpha, Beta;
        public float* A, C;
        public T* W;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(int task)
        {
            int j1 = Math.Min(N, (task + 1) * RowsPerTask);
            float* sums = stackalloc float[8];
            for (int j = task * RowsPerTask; j < j1; j += 2)
            {
                int wRows = Math.Min(2, j1 - j);
                T* w0 = W + (long)j * Ldw, w1 = wRows > 1 ? w0 + Ldw : w0;
                for (int i = 0; i < M; i += 4)
                {
                    int xRows = Math.Min(4, M - i);
                    // Rows beyond the edge alias the first one: the kernel always does 2x4 products, the extra ones are dropped.
                    float* x0 = A + (long)i * Lda;
                    float* x1 = xRows > 1 ? x0 + Lda : x0, x2 = xRows > 2 ? x0 + 2 * Lda : x0, x3 = xRows > 3 ? x0 + 3 * Lda : x0;
                    Dot2x4(w0, w1, x0, x1, x2, x3, K, sums);
                    for (int r = 0; r < wRows; r++)
                    for (int s = 0; s < xRows; s++)
                    {
                        float* target = C + (long)(i + s) * Ldc + j + r;
                        *target = Update(sums[r * 4 + s], target, Alpha, Beta);
                    }
                }
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        static void Dot2x4(T* w0, T* w1, float* x0, float* x1, float* x2, float* x3, int k, float* sums)
        {
            int p = 0;
            float r00 = 0, r01 = 0, r02 = 0, r03 = 0, r10 = 0, r11 = 0, r12 = 0, r13 = 0;
            if (Vectorized)
            {
                Vector256<float> a00 = default, a01 = default, a02 = default, a03 = default;
                Vector256<float> a10 = default, a11 = default, a12 = default, a13 = default;
                for (; p + 8 <= k; p += 8)
                {
                    var wa = TLoader.Load8(w0 + p);
                    var wb = TLoader.Load8(w1 + p);
                    var x = Avx.LoadVector256(x0 + p);
                    a00 = Fma.MultiplyAdd(wa, x, a00); a10 = Fma.MultiplyAdd(wb, x, a10);
                    x = Avx.LoadVector256(x1 + p);
                    a01 = Fma.MultiplyAdd(wa, x, a01); a11 = Fma.MultiplyAdd(wb, x, a11);
                    x = Avx.LoadVector256(x2 + p);
                    a02 = Fma.MultiplyAdd(wa, x, a02); a12 = Fma.MultiplyAdd(wb, x, a12);
                    x = Avx.LoadVector256(x3 + p);
                    a03 = Fma.MultiplyAdd(wa, x, a03); a13 = Fma.MultiplyAdd(wb, x, a13);
                }
                r00 = Vector256.Sum(a00); r01 = Vector256.Sum(a01); r02 = Vector256.Sum(a02); r03 = Vector256.Sum(a03);
                r10 = Vector256.Sum(a10); r11 = Vector256.Sum(a11); r12 = Vector256.Sum(a12); r13 = Vector256.Sum(a13);
            }
            for (; p < k; p++)
            {
                float wa = TLoader.Scalar(w0 + p), wb = TLoader.Scalar(w1 + p);
                r00 += wa * x0[p]; r01 += wa * x1[p]; r02 += wa * x2[p]; r03 += wa * x3[p];
                r10 += wb * x0[p]; r11 += wb * x1[p]; r12 += wb * x2[p]; r13 += wb * x3[p];
            }
            sums[0] = r00; sums[1] = r01; sums[2] = r02; sums[3] = r03;
            sums[4] = r10; sums[5] = r11; sums[6] = r12; sums[7] = r13;
        }
    }
}
