namespace SharpTune.Training;

/// <summary>
/// One micro-batch laid out flat: the rows of the batch one after another. <see cref="Positions"/> restart at 0 where a
/// sample starts (a padded row, or each sample of a packed row), which also bounds attention. <see cref="Targets"/> are the
/// labels shifted left by one inside each sample (the token each position must predict), -100 where there is no loss.
/// </summary>
public sealed record TrainingBatch(int[] InputIds, int[] Positions, int[] Targets)
{
    public int Length => InputIds.Length;
    public int LabelCount => Targets.Count(t => t != -100);

    /// <summary>
    /// Builds the flat layout from rows of ids and labels (-100 = no loss) as transformers' causal-LM loss sees them:
    /// position p predicts labels[p+1] of the same sample. <paramref name="positionIds"/> null means 0..len-1 per row.
    /// </summary>
    public static TrainingBatch FromRows(IReadOnlyList<int[]> inputIds, IReadOnlyList<int[]> labels, IReadOnlyList<int[]>? positionIds = null)
    {
        var ids = new List<int>();
        var positions = new List<int>();
        var targets = new List<int>();
        for (int r = 0; r < inputIds.Count; r++)
        {
            var row = inputIds[r];
            var lab = labels[r];
            if (lab.Length != row.Length) throw new SharpTuneException($"batch row {r}: {row.Length} input ids but {lab.Length} labels");
            var pos = positionIds?[r] ?? Enumerable.Range(0, row.Length).ToArray();
            for (int i = 0; i < row.Length; i++)
            {
                ids.Add(row[i]);
                positions.Add(pos[i]);
                bool sampleContinues = i + 1 < row.Length && pos[i + 1] != 0;
                targets.Add(sampleContinues ? lab[i + 1] : -100);
            }
        }
        return new TrainingBatch([.. ids], [.. positions], [.. targets]);
    }
}
