namespace SharpTune.Data;

/// <summary>
/// A padded batch: every array is [rows][length of the longest row]. Rows are right-padded: pad id, label -100, attention mask 0,
/// and position ids that keep counting (what transformers uses by default for a right-padded batch).
/// </summary>
public sealed record SftBatch(int[][] InputIds, int[][] Labels, int[][] PositionIds, int[][] AttentionMask)
{
    public int Rows => InputIds.Length;
    public int Length => Rows == 0 ? 0 : InputIds[0].Length;
}

/// <summary>
/// Iterates rows in batches. The order of an epoch is a permutation drawn from <see cref="Xoshiro256"/> seeded with seed + epoch
/// (as accelerate's seedable sampler seeds seed + epoch), so a resumed run reproduces it from (seed, epoch, step) alone.
/// The last batch of an epoch may be smaller.
/// </summary>
public sealed class SftDataLoader
{
    readonly IReadOnlyList<SftRow> _rows;
    readonly int _batchSize;
    readonly ulong _seed;
    readonly bool _shuffle;
    readonly int _padTokenId;

    public SftDataLoader(IReadOnlyList<SftRow> rows, int batchSize, ulong seed, int padTokenId, bool shuffle = true)
    {
        if (batchSize <= 0) throw new SharpTuneException($"--per_device_train_batch_size: {batchSize} is not positive");
        if (rows.Count == 0) throw new SharpTuneException("no training rows to batch");
        (_rows, _batchSize, _seed, _padTokenId, _shuffle) = (rows, batchSize, seed, padTokenId, shuffle);
    }

    public int StepsPerEpoch => (_rows.Count + _batchSize - 1) / _batchSize;

    /// <summary>The row indices of <paramref name="epoch"/>, in the order they are batched.</summary>
    public int[] Order(int epoch) =>
        _shuffle ? new Xoshiro256(_seed + (ulong)epoch).Permutation(_rows.Count) : Enumerable.Range(0, _rows.Count).ToArray();

    /// <summary>The batches of <paramref name="epoch"/>, starting at <paramref name="startStep"/> (to resume mid-epoch).</summary>
    public IEnumerable<SftBatch> Epoch(int epoch, int startStep = 0)
    {
        var order = Order(epoch);
        for (var step = startStep; step < StepsPerEpoch; step++)
        {
            var start = step * _batchSize;
            yield return Collate(order[start..Math.Min(start + _batchSize, order.Length)].Select(i => _rows[i]).ToList(), _padTokenId);
        }
    }

    public static SftBatch Collate(IReadOnlyList<SftRow> rows, int padTokenId)
    {
        var length = rows.Max(r => r.Length);
        var ids = new int[rows.Count][];
        var labels = new int[rows.Count][];
        var positions = new int[rows.Count][];
        var mask = new int[rows.Count][];
        for (var r = 0; r < rows.Count; r++)
        {
            var row = rows[r];
            ids[r] = Pad(row.InputIds, length, padTokenId);
            labels[r] = Pad(row.Labels, length, EncodedSample.IgnoreIndex);
            positions[r] = new int[length];
            row.PositionIds.CopyTo(positions[r], 0);
            var next = row.Length == 0 ? 0 : row.PositionIds[^1] + 1;
            for (var i = row.Length; i < length; i++) positions[r][i] = next++;
            mask[r] = new int[length];
            Array.Fill(mask[r], 1, 0, row.Length);
        }
        return new SftBatch(ids, labels, positions, mask);
    }

    static int[] Pad(int[] values, int length, int fill)
    {
        var result = new int[length];
        values.CopyTo(result, 0);
        Array.Fill(result, fill, values.Length, length - values.Length);
        return result;
    }
}
