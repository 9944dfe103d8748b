using SharpTune.Tensors;
using System.Diagnostics;
using SharpTune.Backends.Cpu;

namespace SharpTune.Bench;

/// <summary>
/// Batched-decoding products (x[m,k]·Wᵀ, bfloat16 W, 5 ≤ m ≤ 32) at Qwen2.5-0.5B shapes, in GFLOP/s against the
/// microkernel's peak measured in the same run. Matrices are replicated past the caches and cycled through, as a
/// model's layers are in a decode step.
/// </summary>
internal static unsafe class SmallBatchBench
{
    static readonly (int N, int K, string Name)[] Shapes = [(4864, 896, "mlp up/gate"), (96, 896, "small"), (896, 4864, "mlp down"), (896, 896, "q/o proj")];
    static long WorkingSetBytes = 256L << 20;

    public static void Run(string[] args)
    {
        // CPU time of one thread, not wall time: robust to other jobs on the machine.
        var runner = new ParallelRunner(1);
        var cpu = System.Diagnostics.Process.GetCurrentProcess();
        var t0 = cpu.TotalProcessorTime;
        var wall = Stopwatch.StartNew();
        double peakWall = MatMulPeak.MeasureGflops(runner: runner);
        cpu.Refresh();
        double peak = peakWall * wall.Elapsed.TotalSeconds / (cpu.TotalProcessorTime - t0).TotalSeconds;
        Console.WriteLine($"threads {runner.ThreadCount}, microkernel peak {peak:F1} GFLOP/s");
        if (args.Length > 0 && args[0] == "hot") { WorkingSetBytes = 0; args = args[1..]; }
        int[] rows = args.Length > 0 ? args.Select(int.Parse).ToArray() : [8, 16, 32];
        foreach (int m in rows)
        foreach (var (n, k, name) in Shapes)
        {
            var (newRate, oldRate) = Measure(m, n, k, runner);
            Console.WriteLine($"m {m,2} {n}x{k,-5} {name,-12} new {newRate,6:F1} GFLOP/s ({newRate / peak,4:P0})  old {oldRate,6:F1} ({oldRate / peak,4:P0})");
        }
    }

    static (double New, double Old) Measure(int m, int n, int k, ParallelRunner runner)
    {
        long matrixBytes = (long)n * k * 2;
        int copies = (int)Math.Max(1, (WorkingSetBytes + matrixBytes - 1) / matrixBytes);
        using var w = new NativeBuffer<ushort>((long)copies * n * k, 1, FloatConversions.F32ToBF16);
        using var x = new NativeBuffer<float>((long)m * k, 2, v => v);
        using var y = new NativeBuffer<float>((long)m * n, 3, v => v);
        using var y2 = new NativeBuffer<float>((long)m * n, 3, v => v);
        double bestNew = double.MaxValue, bestOld = double.MaxValue;
        var process = System.Diagnostics.Process.GetCurrentProcess();
        TimeSpan Cpu() { process.Refresh(); return process.TotalProcessorTime; }
        for (int pass = 0; pass < 6; pass++)
        {
            var start = Cpu();
            for (int copy = 0; copy < copies; copy++)
                CpuSmallBatch.RowsDotW<ushort, BF16Loader>(m, n, k, 1f, x.Pointer, k, w.Pointer + (long)copy * n * k, k, 0f, y.Pointer, n, runner);
            if (pass > 0) bestNew = Math.Min(bestNew, (Cpu() - start).TotalSeconds);
            start = Cpu();
            for (int copy = 0; copy < copies; copy++)
                OldSmallBatch.RowsDotW<ushort, BF16Loader>(m, n, k, 1f, x.Pointer, k, w.Pointer + (long)copy * n * k, k, 0f, y2.Pointer, n, runner);
            if (pass > 0) bestOld = Math.Min(bestOld, (Cpu() - start).TotalSeconds);
        }
        double worst = 0;
        for (long i = 0; i < (long)m * n; i++) worst = Math.Max(worst, Math.Abs(y.Pointer[i] - y2.Pointer[i]) / (Math.Abs(y2.Pointer[i]) + 1e-3));
        if (worst > 1e-3) Console.WriteLine($"  MISMATCH {worst}");
        double flops = 2.0 * m * n * k * copies;
        return (flops / bestNew / 1e9, flops / bestOld / 1e9);
    }
}
