namespace SharpTune.Data;

/// <summary>Training and validation rows ready for <see cref="SftDataLoader"/>, and what was dropped on the way.</summary>
public sealed record PreparedSftData(IReadOnlyList<SftRow> Train, IReadOnlyList<SftRow> Validation, int SkippedRows,
    EncodeStats TrainStats, EncodeStats ValidationStats, IReadOnlyList<SftSample> ValidationSamples);

/// <summary>The whole data side of sft: load and mix the datasets, encode, then pack (--packing) or keep one sample per row.</summary>
public static class SftData
{
    public static PreparedSftData Prepare(DatasetOptions datasets, SftEncoder encoder, bool packing)
    {
        var maxLength = encoder.Options.MaxLength;
        if (packing && maxLength == null) throw new SharpTuneException("--packing: needs --max_length (the length of a packed row)");
        var loaded = DatasetLoader.Load(datasets);
        var (train, trainStats) = encoder.EncodeAll(loaded.Train);
        if (train.Count == 0)
            throw new SharpTuneException($"--dataset: no training samples left after encoding ({trainStats.DroppedTooLong} longer than --max_length " +
                $"with --truncation_strategy delete, {trainStats.DroppedNoLabels} with no assistant tokens to train on)");
        var (validation, validationStats) = encoder.EncodeAll(loaded.Validation);
        return new PreparedSftData(Rows(train, packing, maxLength), Rows(validation, packing, maxLength), loaded.SkippedRows, trainStats,
                                   validationStats, loaded.Validation);
    }

    static IReadOnlyList<SftRow> Rows(List<EncodedSample> samples, bool packing, int? maxLength) =>
        packing ? Packing.Pack(samples, maxLength!.Value) : samples.Select(SftRow.Unpacked).ToList();
}
