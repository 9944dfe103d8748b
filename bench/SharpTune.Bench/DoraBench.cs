using System.Diagnostics;
using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Bench;

/// <summary>
/// The cost of DoRA over LoRA on one linear layer in training (forward + backward) and inference: Qwen2.5-0.5B's mlp
/// up/gate shape (4864 x 896), rank 8, 512 token rows, float32 weights, the same base layer each time, LoRA dropout 0 and
/// 0.05 (ms-swift's default; with dropout DoRA computes x_d·Wᵀ afresh, as PEFT does). Best of 5 runs.
/// </summary>
internal static class DoraBench
{
    const int Out = 4864, In = 896, Rank = 8, Rows = 512;

    public static void Run()
    {
        var be = CpuBackend.Instance;
        var random = new Xoshiro256(1);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        using var weight = be.FromHost(Values(Out * In), DType.F32, Out, In);
        using var x = be.FromHost(Values(Rows * In), DType.F32, Rows, In);
        using var dy = be.FromHost(Values(Rows * Out), DType.F32, Rows, Out);
        using var y = be.Allocate(DType.F32, Rows, Out);
        using var dx = be.Allocate(DType.F32, Rows, In);
        Console.WriteLine($"linear {Out}x{In}, rank {Rank}, {Rows} rows, threads {ParallelRunner.Default.ThreadCount}");
        Console.WriteLine($"{"branch",-8} {"dropout",8} {"train ms",9} {"infer ms",9}");
        double loraTrain = 0, loraInfer = 0;
        foreach (float dropout in new[] { 0f, 0.05f })
        foreach (bool dora in new[] { false, true })
        {
            var linear = new Linear("bench", weight, null);
            var branch = new LoraBranch("bench", be.FromHost(Values(Rank * In), DType.F32, Rank, In), be.FromHost(Values(Out * Rank), DType.F32, Out, Rank),
                                        2f, dropout, dora ? be.FromHost(Values(Out).Select(v => v + 20f).ToArray(), DType.F32, Out) : null);
            linear.Adapters.Add(branch);
            using var grads = new GradientSet(be);
            grads.Add("A", branch.A);
            grads.Add("B", branch.B);
            if (dora) grads.Add("m", branch.Magnitude!);
            using var pass = new LoraPass(1);
            double train = Best(() =>
            {
                linear.ForwardTrain(be, x, y, pass);
                linear.Backward(be, x, dy, dx, false, pass, grads);
            });
            double infer = Best(() => linear.Forward(be, x, y));
            if (!dora) (loraTrain, loraInfer) = (train, infer);
            Console.WriteLine($"{(dora ? "dora" : "lora"),-8} {dropout,8} {train,9:F1} {infer,9:F1}" +
                              (dora ? $"   (x{train / loraTrain:F2} train, x{infer / loraInfer:F2} infer)" : ""));
            branch.Dispose();
        }
    }

    static double Best(Action run)
    {
        run();
        double best = double.MaxValue;
        for (int i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            run();
            best = Math.Min(best, clock.Elapsed.TotalMilliseconds);
        }
        return best;
    }
}
