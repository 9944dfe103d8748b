using SharpTune.Data;

namespace SharpTune.Tests.Data;

public class PackingAndBatchingTests
{
    /// <summary>A character-level stand-in tokenizer: one id per character (its code), enough to check how segments become labels.</summary>
    static int[] Chars(string text) => text.Select(c => (int)c).ToArray();

    static EncodedSample Sample(int id, int length) =>
        new(Enumerable.Repeat(id, length).ToArray(), Enumerable.Range(0, length).Select(i => i == 0 ? -100 : id).ToArray());

    [Fact]
    public void SegmentsAreLabelledOnlyWhereTrainable()
    {
        var sample = SampleAssembly.FromSegments([("<u>hi", false), ("ok!", true), ("<u>x", false), ("yz", true)], Chars, []);
        Assert.Equal(Chars("<u>hiok!<u>xyz"), sample.InputIds);
        Assert.Equal([-100, -100, -100, -100, -100, 'o', 'k', '!', -100, -100, -100, -100, 'y', 'z'], sample.Labels);
    }

    [Fact]
    public void BosPrefixIsAddedOnlyWhenTheTextDoesNotStartWithIt()
    {
        var withBos = SampleAssembly.FromSegments([("ab", false), ("c", true)], Chars, [1]);
        Assert.Equal([1, 'a', 'b', 'c'], withBos.InputIds);
        Assert.Equal([-100, -100, -100, 'c'], withBos.Labels);
        int[] Bos(string text) => text.StartsWith("^") ? [1, .. Chars(text[1..])] : Chars(text);
        var already = SampleAssembly.FromSegments([("^ab", false), ("c", true)], Bos, [1]);
        Assert.Equal([1, 'a', 'b', 'c'], already.InputIds);
    }

    [Fact]
    public void TruncationStrategies()
    {
        var sample = new EncodedSample([1, 2, 3, 4, 5], [-100, -100, 3, 4, 5]);
        Assert.Null(SampleAssembly.Truncate(sample, 4, TruncationStrategy.Delete));
        var left = SampleAssembly.Truncate(sample, 4, TruncationStrategy.Left)!;
        Assert.Equal([2, 3, 4, 5], left.InputIds);
        Assert.Equal([-100, 3, 4, 5], left.Labels);
        var right = SampleAssembly.Truncate(sample, 3, TruncationStrategy.Right)!;
        Assert.Equal([1, 2, 3], right.InputIds);
        Assert.Equal([-100, -100, 3], right.Labels);
        Assert.Same(sample, SampleAssembly.Truncate(sample, 5, TruncationStrategy.Delete));
        Assert.Same(sample, SampleAssembly.Truncate(sample, null, TruncationStrategy.Delete));
    }

    [Fact]
    public void FilterCountsDeletedAndUnlabelledSamples()
    {
        EncodedSample[] samples =
        [
            new([1, 2, 3], [-100, 2, 3]),
            new([1, 2, 3, 4, 5, 6], [-100, 2, 3, 4, 5, 6]),
            new([1, 2], [-100, -100]),
            new([1, 2, 3, 4, 5], [-100, -100, -100, -100, 5]),
        ];
        var (kept, stats) = SampleAssembly.Filter(samples, 4, TruncationStrategy.Delete);
        Assert.Equal(new EncodeStats(1, 2, 1), stats);
        Assert.Single(kept);
        // Keeping the first 4 tokens of the last sample cuts away its only label, so it is dropped as unlabelled.
        var (rightKept, rightStats) = SampleAssembly.Filter(samples, 4, TruncationStrategy.Right);
        Assert.Equal(new EncodeStats(2, 0, 2), rightStats);
        Assert.Equal(2, rightKept.Count);
        Assert.Equal(new EncodeStats(3, 0, 1), SampleAssembly.Filter(samples, 4, TruncationStrategy.Left).Stats);
    }

    [Fact]
    public void PretokenizedRowsDefaultToTrainingEveryToken()
    {
        var sample = SampleAssembly.FromPretokenized(new SftSample([], [4, 5, 6]));
        Assert.Equal([4, 5, 6], sample.Labels);
        Assert.Equal([-100, 5, 6], SampleAssembly.FromPretokenized(new SftSample([], [4, 5, 6], [-100, 5, 6])).Labels);
    }

    [Fact]
    public void PackingKeepsEverySampleOnceWithinMaxLengthAndRestartsPositions()
    {
        var rng = new Xoshiro256(9);
        var samples = Enumerable.Range(1, 60).Select(id => Sample(id, 1 + rng.NextBelow(40))).ToList();
        const int maxLength = 64;
        var rows = Packing.Pack(samples, maxLength);
        Assert.All(rows, r => Assert.InRange(r.Length, 1, maxLength));
        Assert.Equal(samples.Sum(s => s.Length), rows.Sum(r => r.Length));
        // Lower bound on rows for any packing; first-fit decreasing is within 11/9 of optimal.
        Assert.True(rows.Count <= Math.Ceiling(samples.Sum(s => s.Length) / (double)maxLength) * 11 / 9 + 1);

        var seen = new List<int>();
        foreach (var row in rows)
        {
            Assert.Equal(row.Length, row.PositionIds.Length);
            Assert.Equal(row.Length, row.Labels.Length);
            for (var start = 0; start < row.Length;)
            {
                Assert.Equal(0, row.PositionIds[start]);
                var id = row.InputIds[start];
                var end = start;
                while (end < row.Length && (end == start || row.PositionIds[end] != 0))
                {
                    Assert.Equal(end - start, row.PositionIds[end]);
                    Assert.Equal(id, row.InputIds[end]);
                    end++;
                }
                Assert.Equal(samples[id - 1].Length, end - start);
                Assert.Equal(-100, row.Labels[start]);
                Assert.All(row.Labels[(start + 1)..end], l => Assert.Equal(id, l));
                seen.Add(id);
                start = end;
            }
        }
        Assert.Equal(Enumerable.Range(1, 60), seen.Order());
    }

    [Fact]
    public void PackingIsBestFitDecreasingLikeMsSwift()
    {
        // Sorted 8, 7, 7, 5, 4, 1: the 1 fits every row; best fit puts it in the fullest (5 + 4), first fit would put it with the 8.
        int[] lengths = [7, 7, 1, 8, 5, 4];
        var rows = Packing.Pack(lengths.Select((length, i) => Sample(i + 1, length)).ToList(), 10);
        var rowLengths = rows.Select(r => Enumerable.Range(0, r.Length).Where(p => r.PositionIds[p] == 0)
            .Select(start => lengths[r.InputIds[start] - 1]).ToArray()).ToList();
        Assert.Equal([[8], [7], [7], [5, 4, 1]], rowLengths);
    }

    [Fact]
    public void PackingMasksTheFirstLabelOfEachSampleAndRejectsOverlongSamples()
    {
        var rows = Packing.Pack([new EncodedSample([7, 8, 9], [7, 8, 9]), new EncodedSample([5, 6], [5, 6])], 10);
        var row = Assert.Single(rows);
        Assert.Equal([7, 8, 9, 5, 6], row.InputIds);
        Assert.Equal([-100, 8, 9, -100, 6], row.Labels);
        Assert.Equal([0, 1, 2, 0, 1], row.PositionIds);
        Assert.Equal(2, row.SampleCount);
        Assert.Contains("longer than --max_length 2", Assert.Throws<SharpTuneException>(() => Packing.Pack([Sample(1, 3)], 2)).Message);
    }

    [Fact]
    public void BatchesAreRightPadded()
    {
        var batch = SftDataLoader.Collate([SftRow.Unpacked(new([1, 2, 3], [-100, 2, 3])), SftRow.Unpacked(new([4], [4]))], padTokenId: 0);
        Assert.Equal([[1, 2, 3], [4, 0, 0]], batch.InputIds);
        Assert.Equal([[-100, 2, 3], [4, -100, -100]], batch.Labels);
        Assert.Equal([[1, 1, 1], [1, 0, 0]], batch.AttentionMask);
        Assert.Equal([[0, 1, 2], [0, 1, 2]], batch.PositionIds);
        Assert.Equal((2, 3), (batch.Rows, batch.Length));
    }

    [Fact]
    public void EpochOrderIsAReproduciblePermutationPerEpochAndResumes()
    {
        var rows = Enumerable.Range(0, 10).Select(i => SftRow.Unpacked(new([i, i], [i, i]))).ToList();
        var loader = new SftDataLoader(rows, batchSize: 3, seed: 42, padTokenId: 0);
        Assert.Equal(4, loader.StepsPerEpoch);
        var epoch0 = loader.Epoch(0).ToList();
        Assert.Equal([3, 3, 3, 1], epoch0.Select(b => b.Rows));
        var ids0 = epoch0.SelectMany(b => b.InputIds.Select(r => r[0])).ToList();
        Assert.Equal(Enumerable.Range(0, 10), ids0.Order());
        Assert.Equal(loader.Order(0), ids0);
        Assert.NotEqual(loader.Order(0), loader.Order(1));
        Assert.Equal(loader.Order(1), new SftDataLoader(rows, 3, 42, 0).Order(1));
        var resumed = loader.Epoch(0, startStep: 2).SelectMany(b => b.InputIds.Select(r => r[0]));
        Assert.Equal(ids0.Skip(6), resumed);
        Assert.Equal(Enumerable.Range(0, 10), new SftDataLoader(rows, 3, 42, 0, shuffle: false).Order(5));
    }
}
