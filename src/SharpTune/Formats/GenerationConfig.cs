namespace SharpTune.Formats;

/// <summary>
/// Decoding defaults from a model's optional <c>generation_config.json</c>. Absent fields stay null so callers can tell
/// "not set" from a value and fall back to their own defaults (transformers' GenerationConfig defaults apply there).
/// </summary>
public sealed record GenerationConfig
{
    public const string FileName = "generation_config.json";

    public bool? DoSample { get; init; }
    public double? Temperature { get; init; }
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public double? MinP { get; init; }
    public double? RepetitionPenalty { get; init; }
    public int? MaxNewTokens { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? BosTokenId { get; init; }
    public int? PadTokenId { get; init; }

    /// <summary>Reads <c>generation_config.json</c> from a model folder; an empty config when the file is absent.</summary>
    public static GenerationConfig Load(string dir)
    {
        var path = Path.GetFullPath(Path.Combine(dir, FileName));
        if (!File.Exists(path)) return new GenerationConfig();
        using var doc = JsonFields.ParseFile(path);
        var f = new JsonFields(path, doc.RootElement);
        var result = new GenerationConfig
        {
            DoSample = f.OptionalBool("do_sample"),
            Temperature = f.OptionalDouble("temperature"),
            TopK = f.OptionalInt("top_k"),
            TopP = f.OptionalDouble("top_p"),
            MinP = f.OptionalDouble("min_p"),
            RepetitionPenalty = f.OptionalDouble("repetition_penalty"),
            MaxNewTokens = f.OptionalInt("max_new_tokens"),
            EosTokenIds = f.IntOrIntList("eos_token_id"),
            BosTokenId = f.OptionalInt("bos_token_id"),
            PadTokenId = f.OptionalInt("pad_token_id"),
        };
        if (result.Temperature < 0) throw f.Error("temperature", $"is {result.Temperature}; it must not be negative");
        if (result.TopK < 0) throw f.Error("top_k", $"is {result.TopK}; it must not be negative");
        if (result.TopP is < 0 or > 1) throw f.Error("top_p", $"is {result.TopP}; it must be within [0, 1]");
        if (result.MinP is < 0 or > 1) throw f.Error("min_p", $"is {result.MinP}; it must be within [0, 1]");
        if (result.RepetitionPenalty <= 0) throw f.Error("repetition_penalty", $"is {result.RepetitionPenalty}; it must be positive");
        if (result.MaxNewTokens < 0) throw f.Error("max_new_tokens", $"is {result.MaxNewTokens}; it must not be negative");
        return result;
    }
}
