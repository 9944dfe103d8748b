using System.Diagnostics;
using SharpTune.Backends.Cpu;
using SharpTune.Models;

namespace SharpTune.Bench;

/// <summary>
/// <c>batch-step [rows...]</c>: one batched decode step (BatchedForward, each sequence at position 64, paged KV cache) of the
/// Qwen2.5-0.5B-shaped BF16 checkpoint for 1..N sequences, in ms per step and per token, then time per op for the largest.
/// </summary>
public static class BatchStepBench
{
    public static int Run(string[] args)
    {
        int[] counts = args.Length > 0 ? args.Select(int.Parse).ToArray() : [1, 16];
        using var plain = TransformerModel.Load(RandomCheckpoint.Cached(), CpuBackend.Instance);
        foreach (bool packed in new[] { false, true })
        {
            if (packed) plain.PackForFewRows();
            foreach (int n in counts)
                Console.WriteLine($"{n,2} sequences, {(packed ? "packed weights" : "weights as stored")}: {Step(plain, n, 5) * 1000,7:F1} ms/step");
        }
        var timed = new TimedBackend(CpuBackend.Instance);
        using var profiled = TransformerModel.Load(RandomCheckpoint.Cached(), timed);
        Step(profiled, counts[^1], 1);
        timed.Reset();
        double seconds = Step(profiled, counts[^1], 2) * 2;
        Console.WriteLine($"per op, {counts[^1]} sequences ({seconds / 2 * 1000:F1} ms/step; weights copied, not memory-mapped):");
        foreach (var (name, (s, calls)) in timed.Ops.OrderByDescending(p => p.Value.Seconds).Take(12))
            Console.WriteLine($"  {name,-20} {s / 2 * 1000,8:F1} ms/step {calls / 2,6} calls");
        return 0;
    }

    /// <summary>Best seconds of one step over <paramref name="runs"/> runs.</summary>
    static double Step(TransformerModel model, int sequences, int runs)
    {
        const int position = 64, blockSize = 16;
        using var cache = new PagedKvCache(model.Backend, model.Shape, sequences * 8, blockSize);
        using var forward = new BatchedForward(model, cache);
        var segments = Enumerable.Range(0, sequences)
            .Select(i => new BatchSegment([1 + i], position, Enumerable.Range(i * 8, 8).ToArray(), null, true)).ToList();
        double best = double.MaxValue;
        for (int r = 0; r < runs; r++)
        {
            var watch = Stopwatch.StartNew();
            using var logits = forward.Run(segments);
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return best;
    }
}
