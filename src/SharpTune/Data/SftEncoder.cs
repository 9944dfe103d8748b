using SharpTune.Templates;
using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>The encoding arguments of sft, named as ms-swift names them.</summary>
public sealed record EncoderOptions
{
    /// <summary>--system: used when a row has no system message of its own; null falls back to the template's default.</summary>
    public string? System { get; init; }
    /// <summary>--loss_scale: which assistant turns are trained.</summary>
    public LossScale LossScale { get; init; } = LossScale.Default;
    /// <summary>--max_length: the longest sample in tokens; null for no limit.</summary>
    public int? MaxLength { get; init; }
    /// <summary>--truncation_strategy for samples longer than <see cref="MaxLength"/>.</summary>
    public TruncationStrategy TruncationStrategy { get; init; } = TruncationStrategy.Delete;
}

/// <summary>
/// Turns rows into token ids and labels the way ms-swift's Template.encode does: the system prompt is chosen (the row's own,
/// else --system, else the template's default), the conversation is rendered into segments, each segment is tokenized on its own
/// without special tokens, and only the segments the template marks trainable (assistant replies and their end-of-turn token)
/// carry labels. Like ms-swift's auto_add_bos, the ids the tokenizer's post-processor puts before text (Llama 3's BOS) are
/// prepended when the rendered text does not already start with them. Pre-tokenized rows pass through untouched.
/// </summary>
public sealed class SftEncoder
{
    readonly Tokenizer _tokenizer;
    readonly ChatTemplate _template;
    readonly EncoderOptions _options;
    readonly int[] _bosPrefix;

    public EncoderOptions Options => _options;

    public SftEncoder(Tokenizer tokenizer, ChatTemplate template, EncoderOptions? options = null)
    {
        _tokenizer = tokenizer;
        _template = template;
        _options = options ?? new EncoderOptions();
        if (_options.MaxLength is <= 0) throw new SharpTuneException($"--max_length: {_options.MaxLength} is not positive");
        _bosPrefix = tokenizer.SpecialPrefix;
    }

    /// <summary>One row, before --max_length is applied.</summary>
    public EncodedSample Encode(SftSample row)
    {
        if (row.IsPretokenized) return SampleAssembly.FromPretokenized(row);
        var messages = ChatTemplates.WithSystem(row.Messages, _options.System, _template);
        var segments = _template.RenderForTraining(messages, _options.LossScale).Select(s => (s.Text, s.Trainable));
        return SampleAssembly.FromSegments(segments, text => _tokenizer.Encode(text, addSpecialTokens: false), _bosPrefix);
    }

    /// <summary>
    /// All rows, truncated or deleted by --truncation_strategy; rows left with no trained token are dropped and counted with those
    /// that have no assistant reply to train on (a conversation ending with a user turn).
    /// </summary>
    public (List<EncodedSample> Samples, EncodeStats Stats) EncodeAll(IEnumerable<SftSample> rows) =>
        SampleAssembly.Filter(rows.Select(row => HasReply(row) ? Encode(row) : NothingToTrain), _options.MaxLength, _options.TruncationStrategy);

    static readonly EncodedSample NothingToTrain = new([], []);

    static bool HasReply(SftSample row) => row.IsPretokenized || (row.Messages.Count > 0 && row.Messages[^1].Role == "assistant");
}
