using SharpTune.Templates.Jinja;

namespace SharpTune.Templates;

/// <summary>
/// A model's own chat template (Jinja source from tokenizer_config.json or chat_template.jinja), rendered with the variables
/// transformers' <c>apply_chat_template</c> passes: messages, add_generation_prompt, tools=none, documents=none, the special tokens,
/// and enable_thinking only when given.
/// </summary>
public sealed class JinjaChatTemplate : ChatTemplate
{
    // Turn terminators of common chat formats; those that appear in the template source are stop words and may end a trainable response.
    static readonly string[] KnownEndOfTurnMarkers = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "</s>"];

    const string ThinkStart = "<think>", ThinkEnd = "</think>";

    readonly JinjaTemplate template;
    readonly IReadOnlyDictionary<string, string> specialTokens;
    readonly string[] endOfTurnMarkers;

    /// <param name="specialTokens">bos_token, eos_token, ... as tokenizer_config.json names them.</param>
    public JinjaChatTemplate(string source, string sourceName, IReadOnlyDictionary<string, string> specialTokens)
    {
        template = JinjaTemplate.Parse(source, sourceName);
        this.specialTokens = specialTokens;
        var eos = specialTokens.TryGetValue("eos_token", out var e) && e.Length > 0 ? [e] : Array.Empty<string>();
        endOfTurnMarkers = eos.Concat(KnownEndOfTurnMarkers.Where(m => source.Contains(m, StringComparison.Ordinal))).Distinct().ToArray();
    }

    public override string Name => template.SourceName;
    public override string? DefaultSystem => null; // a model's template inserts its own default system prompt
    public override IReadOnlyList<string> StopWords => endOfTurnMarkers;

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool? enableThinking = null)
    {
        var variables = new Dictionary<string, object?>
        {
            ["messages"] = messages.Select(m => (object?)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(),
            ["add_generation_prompt"] = addGenerationPrompt,
            ["tools"] = null,
            ["documents"] = null,
        };
        foreach (var (name, token) in specialTokens) variables[name] = token;
        if (enableThinking != null) variables["enable_thinking"] = enableThinking.Value;
        return template.Render(variables);
    }

    /// <summary>
    /// Renders with every assistant content replaced by a unique placeholder; the text between placeholders is the template's own,
    /// which locates each response (as the template transformed it, e.g. trimmed) in the real rendering.
    /// A &lt;think&gt; block is kept in front of the placeholder so that templates that reformat or drop reasoning see it; the
    /// block as the template renders it (also an empty one a template adds, as Qwen3's does) is trained with its response.
    /// </summary>
    public override IReadOnlyList<TemplateSegment> RenderForTraining(IReadOnlyList<ChatMessage> messages, LossScale lossScale)
    {
        RequireEndsWithAssistant(messages);
        var text = Render(messages, addGenerationPrompt: false);
        var marker = "\u0002SHARPTUNE_RESPONSE_" + Guid.NewGuid().ToString("N") + "_";
        int turns = 0;
        var masked = messages.Select(m => m.Role == "assistant" ? m with { Content = KeepThinking(m.Content) + marker + turns++ + "\u0003" } : m).ToList();
        var skeleton = Render(masked, addGenerationPrompt: false);

        // Template text between placeholders: fixed[0] before the first response, fixed[i] after response i-1.
        var fixedParts = new List<string>();
        int from = 0;
        for (int turn = 0; turn < turns; turn++)
        {
            var placeholder = marker + turn + "\u0003";
            int at = skeleton.IndexOf(placeholder, from, StringComparison.Ordinal);
            if (at < 0 || skeleton.IndexOf(placeholder, at + 1, StringComparison.Ordinal) >= 0)
                throw new SharpTuneException($"{Name}: cannot locate assistant message {turn} in the rendered template exactly once; "
                                             + "the template rewrites or drops assistant content (choose a built-in template with --template)");
            fixedParts.Add(skeleton[from..at]);
            from = at + placeholder.Length;
        }
        fixedParts.Add(skeleton[from..]);

        var pieces = new List<Piece>();
        int pos = 0;
        for (int turn = 0; turn <= turns; turn++)
        {
            var part = fixedParts[turn];
            int end = turn == turns ? text.Length - part.Length
                : turn == 0 ? (text.StartsWith(part, StringComparison.Ordinal) ? 0 : -1)
                : text.IndexOf(part, pos, StringComparison.Ordinal);
            if (end < pos || string.CompareOrdinal(text, end, part, 0, part.Length) != 0)
                throw new SharpTuneException($"{Name}: the template renders assistant message {turn - 1} in a way that changes the text around it; "
                                             + "cannot split it into trainable parts (choose a built-in template with --template)");
            if (turn > 0) pieces.Add(new(text[pos..end], turn - 1));
            int endOfTurn = turn > 0 ? EndOfTurnLength(part) : 0;
            int thinking = turn < turns ? ThinkingStart(part, endOfTurn) : part.Length;
            pieces.Add(new(part[..endOfTurn], turn - 1));
            pieces.Add(new(part[endOfTurn..thinking], -1));
            pieces.Add(new(part[thinking..], turn));
            pos = end + part.Length;
        }
        return ToSegments(pieces, turns, lossScale);
    }

    static string KeepThinking(string content)
    {
        int end = content.LastIndexOf(ThinkEnd, StringComparison.Ordinal);
        return end < 0 ? "" : content[..(end + ThinkEnd.Length)];
    }

    /// <summary>Where a &lt;think&gt; block opens in the template text right before a response (after the last end-of-turn marker), else the end.</summary>
    int ThinkingStart(string before, int from)
    {
        int lastTurnEnd = endOfTurnMarkers.Select(m => before.LastIndexOf(m, StringComparison.Ordinal) is var i and >= 0 ? i + m.Length : -1).Append(from).Max();
        int think = before.LastIndexOf(ThinkStart, StringComparison.Ordinal);
        return think >= lastTurnEnd ? think : before.Length;
    }

    int EndOfTurnLength(string following)
    {
        foreach (var m in endOfTurnMarkers)
            if (following.StartsWith(m, StringComparison.Ordinal)) return m.Length;
        return 0;
    }
}
