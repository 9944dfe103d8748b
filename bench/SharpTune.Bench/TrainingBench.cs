using System.Diagnostics;
using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Training;

namespace SharpTune.Bench;

/// <summary>
/// CPU training throughput on a Qwen2.5-0.5B-shaped model with random weights (<see cref="RandomCheckpoint"/>): LoRA r=8
/// alpha=32 dropout 0.05 on all linear layers (base weights stay BF16), or full training (all weights float32). Runs optimizer
/// steps of <see cref="CausalLmStep.ForwardBackward"/> + AdamW on random token rows and reports tokens/s, the matrix FLOPs
/// (<see cref="TrainingFlops"/>), GFLOP/s against the microkernel peak measured in the same run, time per op and peak memory.
/// The first step is warm-up (page faults, JIT) and is left out of the rates.
/// </summary>
internal static class TrainingBench
{
    public static int Run(string[] args)
    {
        string mode = "lora";
        int seq = 512, steps = 3;
        bool checkpointing = false;
        for (int i = 0; i < args.Length; i++)
        {
            string value = i + 1 < args.Length ? args[i + 1] : throw new SharpTuneException($"train: {args[i]} needs a value");
            switch (args[i++])
            {
                case "--mode": mode = value is "lora" or "full" ? value : throw new SharpTuneException($"train: --mode is lora or full, not '{value}'"); break;
                case "--seq": seq = int.Parse(value); break;
                case "--steps": steps = int.Parse(value); break;
                case "--checkpointing": checkpointing = bool.Parse(value); break;
                default: throw new SharpTuneException($"train: unknown option {args[i - 1]} (--mode lora|full, --seq N, --steps N, --checkpointing true|false)");
            }
        }
        if (steps < 2) throw new SharpTuneException("train: --steps must be at least 2 (the first is warm-up)");
        bool full = mode == "full";

        var runner = ParallelRunner.Default;
        double peak = MatMulPeak.MeasureGflops(runner: runner);
        var dir = RandomCheckpoint.Cached();
        var backend = new TimedBackend(CpuBackend.Instance);
        using var model = TransformerModel.Load(dir, backend);
        using var grads = new GradientSet(backend);
        int loraRank = 0;
        if (full)
        {
            model.MakeWeightsWritable();
            foreach (var (name, tensor) in ModelWriter.Weights(model)) grads.Add(name, tensor);
        }
        else
        {
            var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 8, Alpha = 32, Dropout = 0.05 }, seed: 42);
            foreach (var (module, branch) in adapter.Branches)
            {
                grads.Add(module.Name + ".lora_A.weight", branch.A);
                grads.Add(module.Name + ".lora_B.weight", branch.B);
            }
            loraRank = 8;
        }
        using var optimizer = new AdamWOptimizer(backend, grads, 0.9, 0.999, 1e-8, 0.1);
        var step = new CausalLmStep(model, checkpointing);
        var s = model.Shape;
        var random = new Xoshiro256(1);
        Console.WriteLine($"threads {runner.ThreadCount}, microkernel peak {peak:F1} GFLOP/s; {mode}, seq {seq}, gradient checkpointing {checkpointing}, " +
                          $"{grads.ParameterCount:N0} trainable parameters");

        double seconds = 0;
        for (int i = 0; i < steps; i++)
        {
            var ids = new int[seq];
            for (int j = 0; j < seq; j++) ids[j] = random.NextBelow(s.Vocab);
            var batch = TrainingBatch.FromRows([ids], [ids]);
            if (i == 1) backend.Reset();
            var watch = Stopwatch.StartNew();
            grads.Zero();
            var stats = step.ForwardBackward(batch, 1f / batch.LabelCount, grads, dropoutSeed: (ulong)i);
            optimizer.Update(1e-5);
            double elapsed = watch.Elapsed.TotalSeconds;
            if (i > 0) seconds += elapsed;
            Console.WriteLine($"step {i}: loss {stats.MeanLoss:F4}, {elapsed:F2} s{(i == 0 ? " (warm-up)" : "")}");
        }

        int timedSteps = steps - 1;
        var flops = TrainingFlops.Count(s, seq, full, loraRank, checkpointing);
        double matMulSeconds = backend.Ops.Where(o => o.Key.StartsWith("MatMul")).Sum(o => o.Value.Seconds);
        double countedMatMul = backend.MatMulFlops / timedSteps;
        Console.WriteLine($"tokens/s {seq * timedSteps / seconds:F1}  ({seconds / timedSteps:F2} s per step of {seq} tokens)");
        Console.WriteLine($"matrix FLOPs per token {flops.Total / seq / 1e9:F3} G (linear {flops.Linear / seq / 1e9:F3}, head {flops.Head / seq / 1e9:F3}, " +
                          $"attention {flops.Attention / seq / 1e9:F3}, LoRA {flops.Lora / seq / 1e9:F4}); " +
                          $"MatMul calls counted {countedMatMul / seq / 1e9:F3} G vs shapes {flops.ThroughMatMul / seq / 1e9:F3} G");
        double overall = flops.Total * timedSteps / seconds / 1e9;
        double inMatMul = backend.MatMulFlops / matMulSeconds / 1e9;
        Console.WriteLine($"matrix GFLOP/s over the whole step {overall:F1} ({overall / peak:P0} of peak); inside MatMul {inMatMul:F1} ({inMatMul / peak:P0} of peak)");
        Console.WriteLine($"time per step by op (timed steps):");
        double opTotal = backend.Ops.Values.Sum(o => o.Seconds);
        foreach (var (op, (opSeconds, calls)) in backend.Ops.OrderByDescending(o => o.Value.Seconds))
            Console.WriteLine($"  {op,-18} {opSeconds / timedSteps,8:F3} s {opSeconds / seconds,6:P1}  ({calls / timedSteps} calls)");
        Console.WriteLine($"  {"(outside ops)",-18} {(seconds - opTotal) / timedSteps,8:F3} s {(seconds - opTotal) / seconds,6:P1}");
        using var process = Process.GetCurrentProcess();
        Console.WriteLine($"peak working set {process.PeakWorkingSet64 / 1e9:F2} GB (includes the checkpoint's mapped pages); " +
                          $"peak anonymous resident memory (tensors + heap, sampled after every op) {backend.PeakAnonymousBytes / 1e9:F2} GB");
        return 0;
    }
}
