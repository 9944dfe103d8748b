namespace SharpTune.Formats;

/// <summary>
/// Rotary embedding settings: transformers 4.x spells them <c>rope_theta</c> + <c>rope_scaling</c> (with <c>rope_type</c>
/// or the older <c>type</c>), transformers 5 writes one <c>rope_parameters</c> object holding <c>rope_theta</c> too.
/// </summary>
public sealed record RopeParameters
{
    public static readonly IReadOnlyList<string> SupportedTypes = ["default", "linear", "dynamic", "llama3", "yarn"];

    public string RopeType { get; init; } = "default";
    public double Theta { get; init; } = 10000.0;
    /// <summary>Scaling factor (linear, dynamic, llama3, yarn).</summary>
    public double Factor { get; init; } = 1.0;
    public double LowFreqFactor { get; init; }
    public double HighFreqFactor { get; init; }
    public int? OriginalMaxPositionEmbeddings { get; init; }
    /// <summary>Yarn: explicit attention scaling; computed from the factor when absent.</summary>
    public double? AttentionFactor { get; init; }
    public double? BetaFast { get; init; }
    public double? BetaSlow { get; init; }
    public double? Mscale { get; init; }
    public double? MscaleAllDim { get; init; }
    /// <summary>Yarn: round the correction range outwards to whole dimensions.</summary>
    public bool Truncate { get; init; } = true;

    internal static RopeParameters Parse(JsonFields config)
    {
        var legacyTheta = config.OptionalDouble("rope_theta") ?? 10000.0;
        JsonFields? scaling = config.OptionalObject("rope_parameters") ?? config.OptionalObject("rope_scaling");
        if (scaling is not { } s) return new RopeParameters { Theta = legacyTheta };

        string typeField = s.Has("rope_type") ? "rope_type" : "type";
        string type = s.OptionalString(typeField) ?? "default";
        if (!SupportedTypes.Contains(type))
            throw s.Error(typeField, $"is '{type}', which is not supported (supported: {string.Join(", ", SupportedTypes)})");
        bool needsFactor = type != "default";
        var result = new RopeParameters
        {
            RopeType = type,
            Theta = s.OptionalDouble("rope_theta") ?? legacyTheta,
            Factor = needsFactor ? s.Double("factor") : s.OptionalDouble("factor") ?? 1.0,
            LowFreqFactor = type == "llama3" ? s.Double("low_freq_factor") : 0,
            HighFreqFactor = type == "llama3" ? s.Double("high_freq_factor") : 0,
            OriginalMaxPositionEmbeddings = type == "llama3" ? s.Int("original_max_position_embeddings") : s.OptionalInt("original_max_position_embeddings"),
            AttentionFactor = s.OptionalDouble("attention_factor"),
            BetaFast = s.OptionalDouble("beta_fast"),
            BetaSlow = s.OptionalDouble("beta_slow"),
            Mscale = s.OptionalDouble("mscale"),
            MscaleAllDim = s.OptionalDouble("mscale_all_dim"),
            Truncate = s.OptionalBool("truncate") ?? true,
        };
        if (result.Theta <= 0) throw s.Error("rope_theta", $"is {result.Theta}; it must be positive");
        if (needsFactor && result.Factor < 1) throw s.Error("factor", $"is {result.Factor}; it must be at least 1");
        if (type == "llama3" && result.HighFreqFactor <= result.LowFreqFactor)
            throw s.Error("high_freq_factor", $"({result.HighFreqFactor}) must exceed low_freq_factor ({result.LowFreqFactor})");
        return result;
    }
}
