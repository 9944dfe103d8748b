using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;

namespace SharpTune.Tests.Serving;

public class BatchedForwardTests
{
    /// <summary>
    /// A step mixing prefill chunks and decode tokens of several sequences, with and without the adapter, through a paged
    /// cache whose blocks are deliberately out of order, gives each sequence the logits its own single-sequence forward gives.
    /// </summary>
    [SkippableFact]
    public void MixedBatchWithAndWithoutAdapterMatchesSingleSequenceForward()
    {
        var reference = new Reference("qwen2-tiny");
        var adapterDir = Path.Combine(reference.Dir, "lora_adapter");
        using var served = TransformerModel.Load(reference.Dir, CpuBackend.Instance);
        LoraAdapter.Load(adapterDir, served, 1f, "tuned");
        using var plain = TransformerModel.Load(reference.Dir, CpuBackend.Instance);
        using var adapted = TransformerModel.Load(reference.Dir, CpuBackend.Instance);
        LoraAdapter.Load(adapterDir, adapted, 1f, "tuned");

        var prompts = reference.Prompts.Select(p => Reference.Ints(p.GetProperty("input_ids"))).Take(3).ToArray();
        const int blockSize = 4;
        int perSequence = (prompts.Max(p => p.Length) + 1) / blockSize + 1;
        using var cache = new PagedKvCache(CpuBackend.Instance, served.Shape, blocks: 3 * perSequence, blockSize);
        using var batched = new BatchedForward(served, cache);
        string?[] adapters = ["tuned", null, "tuned"];
        // Blocks dealt out interleaved and backwards, so a sequence's positions cross non-adjacent blocks.
        var tables = Enumerable.Range(0, 3).Select(seq => Enumerable.Range(0, perSequence).Select(b => 3 * (perSequence - 1 - b) + seq).ToArray()).ToArray();
        var singles = adapters.Select(a => a == null ? plain : adapted).ToArray();
        var singleCaches = singles.Select(m => m.NewCache(perSequence * blockSize)).ToArray();
        int[] done = new int[3];

        // Step 1: sequence 0 prefills all of its prompt, sequence 1 a first chunk of 2; step 2: sequence 0 decodes one token,
        // sequence 1 finishes its prompt, sequence 2 prefills; step 3: all three decode.
        int[][][] plan =
        [
            [prompts[0], prompts[1][..2]],
            [[5], prompts[1][2..], prompts[2]],
            [[9], [13], [17]],
        ];
        int[][] members = [[0, 1], [0, 1, 2], [0, 1, 2]];
        for (int step = 0; step < plan.Length; step++)
        {
            var segments = members[step].Select((seq, j) => new BatchSegment(plan[step][j], done[seq], tables[seq], adapters[seq],
                WantLogits: step > 0 || seq == 0)).ToList();
            using var logits = batched.Run(segments)!;
            int row = 0;
            foreach (var (seq, j) in members[step].Select((seq, j) => (seq, j)))
            {
                using var expected = singles[seq].Forward(plan[step][j], singleCaches[seq]);
                done[seq] += plan[step][j].Length;
                if (!segments[j].WantLogits) continue;
                var actual = logits.SliceRows(row++, 1).AsSpan();
                Assert.True(Reference.RelativeError(actual, expected.AsSpan()) < 1e-5, $"step {step}, sequence {seq}");
            }
        }
        foreach (var c in singleCaches) c.Dispose();
    }

    [Fact]
    public void PagedCacheHandsOutAndTakesBackBlocksFromOneBudget()
    {
        var shape = TransformerShape.From(SharpTune.Formats.ModelConfig.Load(TestData.BundledModel));
        using var cache = new PagedKvCache(CpuBackend.Instance, shape, blocks: 5, blockSize: 16);
        var a = cache.TryAllocate(33);
        Assert.Equal(3, a!.Length);
        Assert.Null(cache.TryAllocate(33));
        Assert.Equal(2, cache.FreeBlocks);
        cache.Free(a);
        Assert.Equal(5, cache.FreeBlocks);
        Assert.Equal(5, cache.TryAllocate(80)!.Distinct().Count());
    }
}
