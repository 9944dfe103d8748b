using SharpTune.Adapters;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Templates;
using SharpTune.Tensors;
using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>
/// A model ready to answer: weights and adapters on a backend, its tokenizer, chat template and generation defaults.
/// Shared by <c>infer</c>, <c>deploy</c> and the tests.
/// </summary>
public sealed class InferenceEngine : IDisposable
{
    InferenceEngine(string modelDir, TransformerModel model, Tokenizer tokenizer, ChatTemplate template, GenerationConfig generation,
                    IReadOnlyList<LoraAdapter> adapters)
    {
        ModelDir = modelDir;
        Model = model;
        Tokenizer = tokenizer;
        Template = template;
        GenerationDefaults = generation;
        Adapters = adapters;
        Generator = new Generator(model, tokenizer);
    }

    public string ModelDir { get; }
    public TransformerModel Model { get; }
    public Tokenizer Tokenizer { get; }
    public ChatTemplate Template { get; }
    public GenerationConfig GenerationDefaults { get; }
    public IReadOnlyList<LoraAdapter> Adapters { get; }
    public Generator Generator { get; }
    /// <summary>Longest prompt + answer: --max_length, else the model's context.</summary>
    public int MaxLength { get; private set; }

    public static InferenceEngine Load(ModelArguments args, IBackend backend)
    {
        var dir = args.Model ?? throw new SharpTuneException("--model is required");
        if (!Directory.Exists(dir)) throw new SharpTuneException($"{dir}: model folder not found");
        var tokenizer = Tokenizer.FromModelDirectory(dir);
        var template = ChatTemplates.Resolve(dir, args.Template);
        var generation = GenerationConfig.Load(dir);
        var model = TransformerModel.Load(dir, backend);
        try
        {
            var adapters = new List<LoraAdapter>();
            foreach (var spec in args.Adapters)
            {
                var (name, path, weight) = ParseAdapterSpec(spec);
                var adapter = LoraAdapter.Load(path, model, weight, name);
                adapter.FreezeForInference(backend);
                adapters.Add(adapter);
            }
            return new InferenceEngine(dir, model, tokenizer, template, generation, adapters)
            {
                MaxLength = args.MaxLength ?? model.Config.MaxPositionEmbeddings,
            };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary><c>DIR</c>, <c>DIR:WEIGHT</c> (the weight multiplies the adapter's scaling) or <c>NAME=DIR</c> (deploy's adapter names).</summary>
    public static (string? Name, string Path, float Weight) ParseAdapterSpec(string spec)
    {
        int equals = spec.IndexOf('=');
        if (equals > 0 && !Directory.Exists(spec))
        {
            var (_, path, weight) = ParseAdapterSpec(spec[(equals + 1)..]);
            return (spec[..equals], path, weight);
        }
        int colon = spec.LastIndexOf(':');
        if (colon > 0 && !Directory.Exists(spec) &&
            float.TryParse(spec[(colon + 1)..], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var w))
            return (null, spec[..colon], w);
        return (null, spec, 1f);
    }

    /// <summary>
    /// Sampling options: a request's own values (<paramref name="request"/>, e.g. an API call's), then the arguments, then
    /// generation_config.json, then transformers' defaults.
    /// </summary>
    public SamplingOptions Sampling(GenerationArguments a, int promptLength, SamplingOverrides? request = null)
    {
        var g = GenerationDefaults;
        var r = request ?? new SamplingOverrides();
        bool sampleByDefault = g.DoSample ?? false;
        float temperature = r.Temperature ?? a.Temperature ?? (sampleByDefault ? (float)(g.Temperature ?? 1.0) : 0f);
        int room = Math.Max(0, MaxLength - promptLength);
        int maxNew = Math.Min(r.MaxNewTokens ?? a.MaxNewTokens ?? g.MaxNewTokens ?? 2048, room);
        if (a.MaxNewTokens is <= 0) throw new SharpTuneException("--max_new_tokens must be positive");
        if (a.Temperature is < 0) throw new SharpTuneException("--temperature must not be negative");
        if (a.TopP is <= 0 or > 1) throw new SharpTuneException("--top_p must be in (0, 1]");
        if (a.TopLogprobs is < 0 or > 20) throw new SharpTuneException("--top_logprobs must be between 0 and 20");
        return new SamplingOptions
        {
            Temperature = temperature,
            TopK = r.TopK ?? a.TopK ?? g.TopK ?? 50,
            TopP = r.TopP ?? a.TopP ?? (float)(g.TopP ?? 1.0),
            MinP = r.MinP ?? a.MinP ?? (float)(g.MinP ?? 0.0),
            RepetitionPenalty = r.RepetitionPenalty ?? a.RepetitionPenalty ?? (float)(g.RepetitionPenalty ?? 1.0),
            PresencePenalty = r.PresencePenalty ?? 0f,
            FrequencyPenalty = r.FrequencyPenalty ?? 0f,
            Seed = (ulong)(r.Seed ?? a.Seed),
            MaxNewTokens = maxNew,
            StopTokenIds = StopTokenIds(),
            StopWords = [.. Template.StopWords.Where(w => Tokenizer.TokenToId(w) == null), .. a.StopWords, .. r.StopWords ?? []],
            Logprobs = r.Logprobs ?? a.Logprobs,
            TopLogprobs = r.TopLogprobs ?? a.TopLogprobs ?? 0,
        };
    }

    /// <summary>End-of-sequence ids: generation_config's, the tokenizer's EOS, and the template's stop words that are single tokens.</summary>
    public IReadOnlyList<int> StopTokenIds()
    {
        var ids = new SortedSet<int>(GenerationDefaults.EosTokenIds);
        foreach (var id in Model.Config.EosTokenIds) ids.Add(id);
        if (Tokenizer.EosTokenId is int eos) ids.Add(eos);
        foreach (var w in Template.StopWords)
            if (Tokenizer.TokenToId(w) is int id) ids.Add(id);
        return [.. ids];
    }

    /// <summary>
    /// Renders a conversation with the chat template (system precedence as ms-swift) and tokenizes it as transformers'
    /// apply_chat_template does, with the tokenizer's BOS in front where the template text lacks it (ms-swift's auto_add_bos,
    /// the same prefix training adds).
    /// </summary>
    public (string Text, int[] Ids) EncodeChat(IReadOnlyList<ChatMessage> messages, string? system, bool? enableThinking = null)
    {
        var text = Template.Render(ChatTemplates.WithSystem(messages, system, Template), addGenerationPrompt: true, enableThinking);
        return (text, Tokenizer.WithSpecialPrefix(Tokenizer.Encode(text, addSpecialTokens: false)));
    }

    /// <summary>Raw text with the tokenizer's own special-token settings (BOS where it adds one), no template.</summary>
    public int[] EncodeRaw(string text) => Tokenizer.Encode(text, addSpecialTokens: true);

    public void Dispose() => Model.Dispose();
}
