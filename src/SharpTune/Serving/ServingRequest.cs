using System.Text.Json;
using SharpTune.Inference;
using SharpTune.Templates;

namespace SharpTune.Serving;

/// <summary>A validated chat or text completion request: the prompt's ids, the adapter, and each choice's sampling.</summary>
public sealed record ServingRequest(bool Chat, int[] PromptIds, string Model, string? Adapter, IReadOnlyList<SamplingOptions> Choices,
                                    bool Stream, bool IncludeUsage, bool Logprobs);

/// <summary>
/// Reads OpenAI's request bodies (<c>/v1/chat/completions</c>, <c>/v1/completions</c>) into <see cref="ServingRequest"/>s,
/// rejecting bad input with the field's name. Unknown fields are ignored, as OpenAI-compatible servers do.
/// </summary>
public sealed class ServingRequestParser(InferenceEngine engine, DeployArguments args, string servedModelName, int maxModelLen)
{
    /// <summary>Most choices one request may ask for.</summary>
    public const int MaxChoices = 16;
    static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant"];

    public ServingRequest Parse(JsonElement root, bool chat)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ApiError(400, "the request body must be a JSON object");
        var f = new RequestFields(root);
        var (model, adapter) = ResolveModel(f.String("model"));
        int[] prompt = chat ? ChatPrompt(f) : TextPrompt(f);
        string promptParam = chat ? "messages" : "prompt";
        if (prompt.Length == 0) throw ApiError.BadField(promptParam, "the prompt is empty");
        if (prompt.Length >= maxModelLen)
            throw ApiError.BadField(promptParam, $"the prompt has {prompt.Length} tokens; this model's context is {maxModelLen}");
        string maxTokensParam = f.Has("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
        var maxTokens = f.Integer(maxTokensParam, 1, int.MaxValue);
        if (prompt.Length + maxTokens > maxModelLen)
            throw ApiError.BadField(maxTokensParam, $"{maxTokens} tokens after a prompt of {prompt.Length} exceed this model's context of {maxModelLen}");
        int n = (int)(f.Integer("n", 1, MaxChoices) ?? 1);
        f.String("user");   // accepted (type-checked) and not used: there is no per-user accounting
        bool logprobs;
        int? topLogprobs;
        if (chat)
        {
            logprobs = f.Bool("logprobs") ?? false;
            topLogprobs = (int?)f.Integer("top_logprobs", 0, 20);
            if (topLogprobs != null && !logprobs) throw ApiError.BadField("top_logprobs", "needs logprobs: true");
        }
        else
        {
            topLogprobs = (int?)f.Integer("logprobs", 0, 5);
            logprobs = topLogprobs != null;
        }
        bool stream = f.Bool("stream") ?? false;
        bool includeUsage = false;
        if (f.Get("stream_options") is { } so)
        {
            if (so.ValueKind != JsonValueKind.Object) throw ApiError.BadField("stream_options", "expected an object");
            includeUsage = new RequestFields(so).Bool("include_usage") ?? false;
        }
        long? seed = f.Integer("seed", long.MinValue, long.MaxValue);
        var overrides = new SamplingOverrides
        {
            Temperature = f.Number("temperature", 0, 2),
            TopP = f.Number("top_p", 0, 1, minExclusive: true),
            TopK = (int?)f.Integer("top_k", -1, int.MaxValue) is int k ? Math.Max(k, 0) : null,
            MinP = f.Number("min_p", 0, 1),
            RepetitionPenalty = f.Number("repetition_penalty", 0, 100, minExclusive: true),
            PresencePenalty = f.Number("presence_penalty", -2, 2),
            FrequencyPenalty = f.Number("frequency_penalty", -2, 2),
            MaxNewTokens = (int?)maxTokens,
            StopWords = f.StopWords("stop"),
            Logprobs = logprobs,
            TopLogprobs = topLogprobs,
        };
        // Choice i draws from seed + i, so n > 1 gives different samples and choice 0 matches `infer --seed`.
        var choices = Enumerable.Range(0, n)
            .Select(i => engine.Sampling(args, prompt.Length, overrides with { Seed = (seed ?? args.Seed) + i }))
            .ToList();
        return new ServingRequest(chat, prompt, model, adapter, choices, stream, includeUsage, logprobs);
    }

    (string Model, string? Adapter) ResolveModel(string? requested)
    {
        if (requested == null || requested == servedModelName) return (servedModelName, null);
        if (engine.Adapters.Any(a => a.Name == requested)) return (requested, requested);
        throw new ApiError(404, $"The model '{requested}' does not exist", "model", code: "model_not_found");
    }

    int[] ChatPrompt(RequestFields f)
    {
        if (f.Get("messages") is not { } list) throw ApiError.BadField("messages", "is required");
        if (list.ValueKind != JsonValueKind.Array) throw ApiError.BadField("messages", "expected an array");
        var messages = new List<ChatMessage>();
        int i = 0;
        foreach (var m in list.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw ApiError.BadField(at, "expected an object");
            var mf = new RequestFields(m);
            var role = mf.Get("role") is { ValueKind: JsonValueKind.String } r ? r.GetString()! : throw ApiError.BadField(at + ".role", "is required (a string)");
            if (!Roles.Contains(role)) throw ApiError.BadField(at + ".role", $"unknown role '{role}' (expected system, developer, user or assistant)");
            messages.Add(new ChatMessage(role == "developer" ? "system" : role, Content(m, at + ".content")));
        }
        if (messages.Count == 0) throw ApiError.BadField("messages", "must not be empty");
        try
        {
            return engine.EncodeChat(messages, args.System).Ids;
        }
        catch (SharpTuneException e)
        {
            throw ApiError.BadField("messages", e.Message);
        }
    }

    /// <summary>A message's content: a string, or text parts <c>[{"type": "text", "text": ...}]</c> joined.</summary>
    static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out var c)) throw ApiError.BadField(at, "is required");
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw ApiError.BadField(at, "expected a string or an array of text parts");
        var text = new System.Text.StringBuilder();
        foreach (var part in c.EnumerateArray())
        {
            var pf = part.ValueKind == JsonValueKind.Object ? new RequestFields(part) : throw ApiError.BadField(at, "expected text parts");
            if (pf.String("type") != "text") throw ApiError.BadField(at, "only parts of type 'text' are supported");
            text.Append(pf.String("text") ?? throw ApiError.BadField(at, "a text part needs 'text'"));
        }
        return text.ToString();
    }

    /// <summary>Completions' <c>prompt</c>: text (the tokenizer's special tokens added, as <c>infer --use_chat_template false</c>) or token ids.</summary>
    int[] TextPrompt(RequestFields f)
    {
        if (f.Get("prompt") is not { } p) throw ApiError.BadField("prompt", "is required");
        if (p.ValueKind == JsonValueKind.String) return engine.EncodeRaw(p.GetString()!);
        if (p.ValueKind == JsonValueKind.Array)
        {
            var items = p.EnumerateArray().ToList();
            if (items.Count == 1 && items[0].ValueKind == JsonValueKind.String) return engine.EncodeRaw(items[0].GetString()!);
            if (items.Count > 0 && items.All(x => x.ValueKind == JsonValueKind.Number))
            {
                int vocab = engine.Model.Shape.Vocab;
                return items.Select(x => x.TryGetInt32(out int id) && id >= 0 && id < vocab ? id
                    : throw ApiError.BadField("prompt", $"token ids must be integers in [0, {vocab})")).ToArray();
            }
        }
        throw ApiError.BadField("prompt", "expected a string, one string in an array, or an array of token ids");
    }
}
