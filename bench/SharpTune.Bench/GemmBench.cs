using System.Diagnostics;
using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// GEMM throughput in the three training layouts (NT: y = x·Wᵀ, NN: dX = dY·W, TN: dW += dYᵀ·X), float32 and bfloat16
/// weights, at Qwen2.5-0.5B shapes, as GFLOP/s and as a fraction of the microkernel peak measured in the same run.
/// </summary>
internal static unsafe class GemmBench
{
    static readonly (int M, int N, int K)[] Shapes = [(512, 4864, 896), (512, 896, 4864), (256, 896, 896)];

    public static void Run()
    {
        var runner = ParallelRunner.Default;
        double peak = MatMulPeak.MeasureGflops(runner: runner);
        Console.WriteLine($"threads {runner.ThreadCount}, microkernel peak {peak:F1} GFLOP/s");
        Console.WriteLine($"{"shape (m x n x k)",-20} {"mode",-8} {"GFLOP/s",9} {"of peak",8}");
        foreach (var (m, n, k) in Shapes)
        foreach (var (transA, transB, bf16) in new[] { (false, true, false), (false, false, false), (true, false, false), (false, true, true), (false, false, true) })
        {
            double gflops = Measure(transA, transB, bf16, m, n, k);
            string mode = (transA ? "T" : "N") + (transB ? "T" : "N") + (bf16 ? " bf16" : "");
            Console.WriteLine($"{$"{m}x{n}x{k}",-20} {mode,-8} {gflops,9:F1} {gflops / peak,8:P0}");
        }
    }

    static double Measure(bool transA, bool transB, bool bf16, int m, int n, int k)
    {
        // Stored shapes: A is [m,k] or [k,m]; B is [k,n] or [n,k]; both are dense, so the leading dimension is the row length.
        int lda = transA ? m : k, ldb = transB ? k : n;
        using var a = new NativeBuffer<float>((long)m * k, 1, x => x);
        using var b = new NativeBuffer<float>((long)k * n, 2, x => x);
        using var bHalf = new NativeBuffer<ushort>(bf16 ? (long)k * n : 1, 2, FloatConversions.F32ToBF16);
        using var c = new NativeBuffer<float>((long)m * n, 3, x => x);
        double best = double.MaxValue;
        for (int run = 0; run < 6; run++)
        {
            var watch = Stopwatch.StartNew();
            if (bf16) CpuMatMul.GemmBF16B(transA, transB, m, n, k, 1f, a.Pointer, lda, bHalf.Pointer, ldb, 0f, c.Pointer, n);
            else CpuMatMul.Gemm(transA, transB, m, n, k, 1f, a.Pointer, lda, b.Pointer, ldb, 0f, c.Pointer, n);
            if (run > 0) best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return 2.0 * m * n * k / best / 1e9;
    }
}
