namespace SharpTune.Data;

/// <summary>
/// One row of a training batch before padding: ids, labels (-100 = no loss) and position ids. An unpacked row is one sample
/// with positions 0..n-1; a packed row holds several samples whose positions restart at 0, which is how the model
/// (like transformers' flattening collator and flash-attention's varlen path) finds sample boundaries and keeps attention inside each sample.
/// </summary>
public sealed record SftRow(int[] InputIds, int[] Labels, int[] PositionIds)
{
    public int Length => InputIds.Length;

    public static SftRow Unpacked(EncodedSample sample) =>
        new(sample.InputIds, sample.Labels, Enumerable.Range(0, sample.Length).ToArray());

    /// <summary>The number of samples in the row: the count of positions that restart at 0.</summary>
    public int SampleCount => PositionIds.Count(p => p == 0);
}
