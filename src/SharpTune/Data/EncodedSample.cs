namespace SharpTune.Data;

/// <summary>One tokenized training sample: the ids and, position by position, the id to predict there or -100 for no loss.</summary>
public sealed record EncodedSample(int[] InputIds, int[] Labels)
{
    public const int IgnoreIndex = -100;

    public int Length => InputIds.Length;
    public bool HasTrainableLabel => Labels.Any(l => l != IgnoreIndex);
}

/// <summary>ms-swift's --truncation_strategy for samples longer than --max_length.</summary>
public enum TruncationStrategy
{
    /// <summary>Drop the sample (ms-swift's default).</summary>
    Delete,
    /// <summary>Keep the last max_length tokens.</summary>
    Left,
    /// <summary>Keep the first max_length tokens.</summary>
    Right,
}

/// <summary>How many samples encoding kept and why it dropped the others.</summary>
public sealed record EncodeStats(int Kept, int DroppedTooLong, int DroppedNoLabels);

/// <summary>The template-independent steps of encoding: joining tokenized segments with their labels, and truncation.</summary>
public static class SampleAssembly
{
    /// <summary>
    /// Tokenizes each rendered segment on its own (no special tokens added, as ms-swift encodes context pieces), concatenates
    /// them, and labels the tokens of trainable segments with themselves and all others -100. <paramref name="bosPrefix"/>
    /// (the ids the tokenizer's post-processor puts before text, e.g. Llama 3's BOS) is prepended unless the text already starts with it.
    /// </summary>
    public static EncodedSample FromSegments(IEnumerable<(string Text, bool Trainable)> segments, Func<string, int[]> encodePiece, int[] bosPrefix)
    {
        var ids = new List<int>();
        var labels = new List<int>();
        foreach (var (text, trainable) in segments)
        {
            if (text.Length == 0) continue;
            var pieceIds = encodePiece(text);
            ids.AddRange(pieceIds);
            foreach (var id in pieceIds) labels.Add(trainable ? id : EncodedSample.IgnoreIndex);
        }
        if (bosPrefix.Length > 0 && !ids.Take(bosPrefix.Length).SequenceEqual(bosPrefix))
        {
            ids.InsertRange(0, bosPrefix);
            labels.InsertRange(0, Enumerable.Repeat(EncodedSample.IgnoreIndex, bosPrefix.Length));
        }
        return new EncodedSample([.. ids], [.. labels]);
    }

    /// <summary>The sample cut to <paramref name="maxLength"/> tokens, or null when the strategy is to delete it.</summary>
    public static EncodedSample? Truncate(EncodedSample sample, int? maxLength, TruncationStrategy strategy)
    {
        if (maxLength is not { } max || sample.Length <= max) return sample;
        return strategy switch
        {
            TruncationStrategy.Delete => null,
            TruncationStrategy.Left => new EncodedSample(sample.InputIds[^max..], sample.Labels[^max..]),
            TruncationStrategy.Right => new EncodedSample(sample.InputIds[..max], sample.Labels[..max]),
            _ => throw new ArgumentOutOfRangeException(nameof(strategy)),
        };
    }

    /// <summary>A pre-tokenized row as a sample: its labels, or every token trained when it has none.</summary>
    public static EncodedSample FromPretokenized(SftSample row) =>
        new(row.InputIds ?? throw new ArgumentException("not a pre-tokenized row", nameof(row)), row.Labels ?? (int[])row.InputIds.Clone());

    /// <summary>Truncates, then keeps only samples with at least one trained token, counting what it drops.</summary>
    public static (List<EncodedSample> Kept, EncodeStats Stats) Filter(IEnumerable<EncodedSample> samples, int? maxLength, TruncationStrategy strategy)
    {
        var kept = new List<EncodedSample>();
        int tooLong = 0, noLabels = 0;
        foreach (var sample in samples)
        {
            var truncated = Truncate(sample, maxLength, strategy);
            if (truncated == null) tooLong++;
            else if (!truncated.HasTrainableLabel) noLabels++;
            else kept.Add(truncated);
        }
        return (kept, new EncodeStats(kept.Count, tooLong, noLabels));
    }
}
