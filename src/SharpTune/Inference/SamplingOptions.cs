using SharpTune.Tensors;

namespace SharpTune.Inference;

/// <summary>How to pick each next token and when to stop (Hugging Face generate's and OpenAI's knobs).</summary>
public sealed record SamplingOptions
{
    /// <summary>0 (or less) means greedy decoding.</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>0 disables top-k.</summary>
    public int TopK { get; init; }
    public float TopP { get; init; } = 1f;
    public float MinP { get; init; }
    public float RepetitionPenalty { get; init; } = 1f;
    /// <summary>OpenAI's additive penalties: presence subtracts once per seen token, frequency once per occurrence.</summary>
    public float PresencePenalty { get; init; }
    public float FrequencyPenalty { get; init; }
    public ulong? Seed { get; init; }
    public int MaxNewTokens { get; init; } = 512;
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    public IReadOnlyList<string> StopWords { get; init; } = [];
    /// <summary>Return the log-probability of each generated token.</summary>
    public bool Logprobs { get; init; }
    /// <summary>With <see cref="Logprobs"/>, also the K most likely alternatives at each step.</summary>
    public int TopLogprobs { get; init; }

    public bool IsGreedy => Temperature <= 0f || TopK == 1;

    /// <summary>Greedy with no penalties and no logprobs: the next token is the logits' argmax and nothing else of them is needed.</summary>
    public bool IsArgMax => IsGreedy && !NeedsLogits;

    /// <summary>Sampled, with no penalties and no logprobs: the filters and the draw alone, which a GPU runs where the logits are.</summary>
    public bool IsPlainDraw => !IsGreedy && !NeedsLogits;

    /// <summary>The temperature and truncation filters of a sampled step.</summary>
    public TokenFilter Filter => new(Temperature, TopK, TopP, MinP);

    /// <summary>Penalties or logprobs: the next token needs the whole row of logits on the host (the sampler's path).</summary>
    public bool NeedsLogits => RepetitionPenalty != 1f || PresencePenalty != 0f || FrequencyPenalty != 0f || Logprobs;
}

/// <summary>One request's own sampling values (an API call's fields); null keeps the server's default.</summary>
public sealed record SamplingOverrides
{
    public float? Temperature { get; init; }
    public int? TopK { get; init; }
    public float? TopP { get; init; }
    public float? MinP { get; init; }
    public float? RepetitionPenalty { get; init; }
    public float? PresencePenalty { get; init; }
    public float? FrequencyPenalty { get; init; }
    public int? MaxNewTokens { get; init; }
    public long? Seed { get; init; }
    public IReadOnlyList<string>? StopWords { get; init; }
    public bool? Logprobs { get; init; }
    public int? TopLogprobs { get; init; }
}
