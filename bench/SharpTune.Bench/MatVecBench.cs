using System.Diagnostics;
using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// Decode-time matrix-vector products at Qwen2.5-0.5B shapes, float32 and bfloat16 weights, as weight-read GB/s and as
/// a fraction of the streaming read bandwidth measured in the same run. Small matrices are replicated until the set
/// is larger than the caches and cycled through, as a model's layers are during decoding.
/// </summary>
internal static unsafe class MatVecBench
{
    static readonly (int N, int K, string Name)[] Shapes = [(4864, 896, "mlp up/gate"), (896, 4864, "mlp down"), (151936, 896, "lm head")];
    const long WorkingSetBytes = 256L << 20;

    public static void Run()
    {
        var runner = ParallelRunner.Default;
        double bandwidth = MemoryBandwidth.MeasureReadGBps(runner: runner);
        Console.WriteLine($"threads {runner.ThreadCount}, streaming read bandwidth {bandwidth:F1} GB/s");
        Console.WriteLine($"{"rows x cols",-16} {"layer",-12} {"weights",-8} {"GB/s",7} {"of bandwidth",13}");
        foreach (var (n, k, name) in Shapes)
        foreach (bool bf16 in new[] { false, true })
        {
            double gbps = Measure(n, k, bf16);
            Console.WriteLine($"{$"{n}x{k}",-16} {name,-12} {(bf16 ? "bf16" : "f32"),-8} {gbps,7:F1} {gbps / bandwidth,13:P0}");
        }
    }

    static double Measure(int n, int k, bool bf16)
    {
        long matrixBytes = (long)n * k * (bf16 ? 2 : 4);
        int copies = (int)Math.Max(1, (WorkingSetBytes + matrixBytes - 1) / matrixBytes);
        long elements = (long)copies * n * k;
        using var w = new NativeBuffer<float>(bf16 ? 1 : elements, 1, x => x);
        using var wHalf = new NativeBuffer<ushort>(bf16 ? elements : 1, 1, FloatConversions.F32ToBF16);
        using var x = new NativeBuffer<float>(k, 2, v => v);
        using var y = new NativeBuffer<float>(n, 3, v => v);
        double best = double.MaxValue;
        for (int pass = 0; pass < 4; pass++)
        {
            var watch = Stopwatch.StartNew();
            for (int copy = 0; copy < copies; copy++)
            {
                long offset = (long)copy * n * k;
                if (bf16) CpuMatMul.MatVec(n, k, wHalf.Pointer + offset, k, x.Pointer, y.Pointer);
                else CpuMatMul.MatVec(n, k, w.Pointer + offset, k, x.Pointer, y.Pointer);
            }
            if (pass > 0) best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return copies * matrixBytes / best / 1e9;
    }
}
