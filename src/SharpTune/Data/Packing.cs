namespace SharpTune.Data;

/// <summary>
/// --packing: bin-packs encoded samples into rows of at most max_length tokens, first-fit decreasing (longest sample first,
/// each into the first row with room), which is what ms-swift's binpacking.to_constant_volume does in effect.
/// A first-fit search over a max-tree of the rows' free space makes it O(n log n).
/// </summary>
public static class Packing
{
    public static List<SftRow> Pack(IReadOnlyList<EncodedSample> samples, int maxLength)
    {
        if (maxLength <= 0) throw new SharpTuneException("--max_length: packing needs a positive max_length");
        var order = Enumerable.Range(0, samples.Count).OrderByDescending(i => samples[i].Length).ThenBy(i => i).ToArray();
        var free = new FreeSpaceTree(samples.Count, maxLength);
        var bins = new List<List<int>>();
        foreach (var i in order)
        {
            var length = samples[i].Length;
            if (length > maxLength)
                throw new SharpTuneException($"--packing: a sample of {length} tokens is longer than --max_length {maxLength} (truncate first)");
            var bin = free.FirstWithRoom(length);
            if (bin == bins.Count) bins.Add([]);
            bins[bin].Add(i);
            free.Take(bin, length);
        }
        return bins.Select(bin => Concatenate(bin.Select(i => samples[i]))).ToList();
    }

    /// <summary>
    /// Joins samples into one row. Each sample's first label becomes -100 so that no token is predicted across a boundary from the
    /// previous sample; unpacked, that first label is never a target anyway (labels shift left by one), so the loss is the same.
    /// </summary>
    static SftRow Concatenate(IEnumerable<EncodedSample> samples)
    {
        List<int> ids = [], labels = [], positions = [];
        foreach (var sample in samples)
        {
            ids.AddRange(sample.InputIds);
            labels.Add(EncodedSample.IgnoreIndex);
            labels.AddRange(sample.Labels.Skip(1));
            positions.AddRange(Enumerable.Range(0, sample.Length));
        }
        return new SftRow([.. ids], [.. labels], [.. positions]);
    }

    /// <summary>A max segment tree over the free space of n potential rows (all start empty), for leftmost-fit queries.</summary>
    sealed class FreeSpaceTree
    {
        readonly int _leaves;
        readonly int[] _max;

        public FreeSpaceTree(int count, int capacity)
        {
            _leaves = 1;
            while (_leaves < Math.Max(count, 1)) _leaves *= 2;
            _max = new int[2 * _leaves];
            for (var i = 0; i < _leaves; i++) _max[_leaves + i] = i < count ? capacity : 0;
            for (var i = _leaves - 1; i > 0; i--) _max[i] = Math.Max(_max[2 * i], _max[2 * i + 1]);
        }

        public int FirstWithRoom(int length)
        {
            var node = 1;
            while (node < _leaves) node = _max[2 * node] >= length ? 2 * node : 2 * node + 1;
            return node - _leaves;
        }

        public void Take(int leaf, int length)
        {
            var node = _leaves + leaf;
            _max[node] -= length;
            for (node /= 2; node > 0; node /= 2) _max[node] = Math.Max(_max[2 * node], _max[2 * node + 1]);
        }
    }
}
