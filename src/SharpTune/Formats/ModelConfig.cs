using SharpTune.Tensors;

namespace SharpTune.Formats;

/// <summary>
/// The architecture of a Hugging Face causal LM, read from its <c>config.json</c>. Defaults for absent fields are
/// those of the matching transformers configuration class (LlamaConfig, Qwen2Config, Qwen3Config).
/// </summary>
public sealed record ModelConfig
{
    public const string FileName = "config.json";
    public static readonly IReadOnlyList<string> SupportedModelTypes = ["llama", "qwen2", "qwen3"];

    /// <summary>The config.json it was read from (for error messages downstream).</summary>
    public required string SourcePath { get; init; }
    public required string ModelType { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required double RmsNormEps { get; init; }
    public required int VocabSize { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on the q, k and v projections.</summary>
    public required bool QkvBias { get; init; }
    /// <summary>Bias on the attention output projection (o_proj).</summary>
    public required bool OutputBias { get; init; }
    /// <summary>Bias on gate/up/down projections.</summary>
    public required bool MlpBias { get; init; }
    /// <summary>Per-head RMSNorm on queries and keys before RoPE (Qwen3's q_norm/k_norm).</summary>
    public required bool QkNorm { get; init; }
    public required string HiddenAct { get; init; }
    /// <summary>The first id when config.json gives a list.</summary>
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    /// <summary>The weights' dtype from <c>torch_dtype</c> (or transformers 5's <c>dtype</c>); null when absent.</summary>
    public DType? TorchDType { get; init; }
    public required RopeParameters Rope { get; init; }

    /// <summary>Reads <c>config.json</c> from a model folder (or the file itself).</summary>
    public static ModelConfig Load(string dirOrFile)
    {
        var path = Directory.Exists(dirOrFile) ? Path.Combine(dirOrFile, FileName) : dirOrFile;
        path = Path.GetFullPath(path);
        using var doc = JsonFields.ParseFile(path);
        return Parse(path, new JsonFields(path, doc.RootElement));
    }

    static ModelConfig Parse(string path, JsonFields f)
    {
        var modelType = f.String("model_type");
        if (!SupportedModelTypes.Contains(modelType))
            throw f.Error("model_type", $"is '{modelType}', which is not supported (supported: {string.Join(", ", SupportedModelTypes)})");

        var hiddenAct = f.OptionalString("hidden_act") ?? "silu";
        if (hiddenAct != "silu") throw f.Error("hidden_act", $"is '{hiddenAct}'; only 'silu' is supported");
        if (f.OptionalBool("use_sliding_window") == true) throw f.Error("use_sliding_window", "is true; sliding-window attention is not supported");

        int hidden = f.PositiveInt("hidden_size");
        int heads = f.PositiveInt("num_attention_heads");
        int kvHeads = f.OptionalInt("num_key_value_heads") ?? heads;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw f.Error("num_key_value_heads", $"is {kvHeads}, which does not divide num_attention_heads {heads}");
        // Qwen3Config defaults head_dim to 128; the others derive it from the hidden size.
        int headDim = f.OptionalInt("head_dim") ?? (modelType == "qwen3" ? 128 : hidden / heads);
        if (headDim <= 0 || headDim % 2 != 0) throw f.Error("head_dim", $"is {headDim}; it must be positive and even for rotary embeddings");
        if (!f.Has("head_dim") && hidden % heads != 0)
            throw f.Error("hidden_size", $"{hidden} is not divisible by num_attention_heads {heads} and no head_dim is given");

        bool attentionBias = f.OptionalBool("attention_bias") ?? false;
        string? dtypeName = f.OptionalString("dtype") ?? f.OptionalString("torch_dtype");
        DType? dtype = dtypeName == null ? null
            : DTypeExtensions.FromTorchName(dtypeName) ?? throw f.Error(f.Has("dtype") ? "dtype" : "torch_dtype", $"is '{dtypeName}'; expected float32, bfloat16 or float16");

        var eos = f.IntOrIntList("eos_token_id");
        var bos = f.IntOrIntList("bos_token_id");
        return new ModelConfig
        {
            SourcePath = path,
            ModelType = modelType,
            HiddenSize = hidden,
            IntermediateSize = f.PositiveInt("intermediate_size"),
            NumHiddenLayers = f.PositiveInt("num_hidden_layers"),
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim,
            RmsNormEps = f.OptionalDouble("rms_norm_eps") ?? 1e-6,
            VocabSize = f.PositiveInt("vocab_size"),
            MaxPositionEmbeddings = f.OptionalInt("max_position_embeddings") ?? (modelType == "llama" ? 2048 : 32768),
            TieWordEmbeddings = f.OptionalBool("tie_word_embeddings") ?? false,
            // Qwen2 hard-codes bias on q/k/v and none on o_proj; Llama and Qwen3 apply attention_bias to all four.
            QkvBias = modelType == "qwen2" || attentionBias,
            OutputBias = modelType != "qwen2" && attentionBias,
            MlpBias = modelType == "llama" && (f.OptionalBool("mlp_bias") ?? false),
            QkNorm = modelType == "qwen3",
            HiddenAct = hiddenAct,
            BosTokenId = bos.Count > 0 ? bos[0] : null,
            EosTokenIds = eos,
            PadTokenId = f.OptionalInt("pad_token_id"),
            TorchDType = dtype,
            Rope = RopeParameters.Parse(f),
        };
    }
}
