namespace SharpTune.Data;

/// <summary>
/// --packing: bin-packs encoded samples into rows of at most max_length tokens the way ms-swift does (through the binpacking
/// package's to_constant_volume): best-fit decreasing, i.e. longest sample first, each into the fullest row it still fits in,
/// a new row when none has room. Rows are searched in a set ordered by free space, so packing is O(n log n).
/// Equal-length samples may be taken in a different order than numpy's sort takes them.
/// </summary>
public static class Packing
{
    public static List<SftRow> Pack(IReadOnlyList<EncodedSample> samples, int maxLength)
    {
        if (maxLength <= 0) throw new SharpTuneException("--max_length: packing needs a positive max_length");
        var order = Enumerable.Range(0, samples.Count).OrderByDescending(i => samples[i].Length).ThenBy(i => i).ToArray();
        // (free space, row index): the first entry with free space >= length is the fullest row that fits (lowest index on ties).
        var rowsByFreeSpace = new SortedSet<(int Free, int Row)>();
        var bins = new List<List<int>>();
        foreach (var i in order)
        {
            var length = samples[i].Length;
            if (length > maxLength)
                throw new SharpTuneException($"--packing: a sample of {length} tokens is longer than --max_length {maxLength} (truncate first)");
            var (free, row) = (maxLength, bins.Count);
            // The first entry of the view, read by enumeration: a view's Count and Min walk the whole view.
            foreach (var fullestThatFits in rowsByFreeSpace.GetViewBetween((length, int.MinValue), (int.MaxValue, int.MaxValue)))
            {
                (free, row) = fullestThatFits;
                break;
            }
            if (row == bins.Count) bins.Add([]);
            else rowsByFreeSpace.Remove((free, row));
            bins[row].Add(i);
            if (free - length > 0) rowsByFreeSpace.Add((free - length, row));
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
}
