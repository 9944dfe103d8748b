namespace SharpTune.Data;

/// <summary>
/// One --dataset argument: a file path or built-in name, optionally "#N" to take N rows (ms-swift's dataset_sample).
/// As in ms-swift, a string that is an existing file is a path even if it contains '#'; otherwise the last '#' splits off N.
/// </summary>
public sealed record DatasetSpec(string Source, int? Sample)
{
    public static DatasetSpec Parse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new SharpTuneException("--dataset: empty dataset name");
        if (File.Exists(text)) return new DatasetSpec(text, null);
        var hash = text.LastIndexOf('#');
        if (hash < 0) return new DatasetSpec(text.Trim(), null);
        var count = text[(hash + 1)..];
        if (!int.TryParse(count, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
            throw new SharpTuneException($"--dataset {text}: '#{count}' is not a positive number of rows");
        return new DatasetSpec(text[..hash].Trim(), n);
    }

    public override string ToString() => Sample is { } n ? $"{Source}#{n}" : Source;
}
