using System.Text;

namespace SharpTune.Templates;

/// <summary>
/// A template in ms-swift's TemplateMeta form: <c>prefix</c> (or <c>system_prefix</c> with {{SYSTEM}} when there is a system prompt),
/// then per round <c>prompt</c> with {{QUERY}}, the response, and <c>chat_sep</c> between rounds or <c>suffix</c> after the last.
/// The trainable end-of-turn token is <see cref="EndOfTurn"/> where chat_sep/suffix starts with it.
/// </summary>
sealed class BuiltinChatTemplate(
    string name, string prefix, string? systemPrefix, string prompt, string chatSep, string suffix,
    string? defaultSystem, string endOfTurn, IReadOnlyList<string> stopWords, bool qwen3Thinking = false) : ChatTemplate
{
    const string NoThinkPrefix = "<think>\n\n</think>\n\n";

    public override string Name => name;
    public override string? DefaultSystem => defaultSystem;
    public override IReadOnlyList<string> StopWords => stopWords;
    public string EndOfTurn => endOfTurn;

    public override string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool? enableThinking = null)
    {
        var text = new StringBuilder();
        foreach (var piece in Pieces(messages, enableThinking)) text.Append(piece.Text);
        return text.ToString();
    }

    public override IReadOnlyList<TemplateSegment> RenderForTraining(IReadOnlyList<ChatMessage> messages, LossScale lossScale)
    {
        RequireEndsWithAssistant(messages);
        var pieces = Pieces(messages, enableThinking: null);
        return ToSegments(pieces, messages.Count(m => m.Role == "assistant"), lossScale);
    }

    /// <remarks>A conversation that ends with a user message always ends with the assistant header: ms-swift's prompt contains it.</remarks>
    List<Piece> Pieces(IReadOnlyList<ChatMessage> messages, bool? enableThinking)
    {
        string? system = messages.Count > 0 && messages[0].Role == "system" ? messages[0].Content : null;
        var rounds = Rounds(messages, system == null ? 0 : 1);
        var pieces = new List<Piece>
        {
            new(system != null && systemPrefix != null ? systemPrefix.Replace("{{SYSTEM}}", system) : prefix.Replace("{{SYSTEM}}", system ?? ""), -1),
        };
        for (int r = 0; r < rounds.Count; r++)
        {
            var (query, response) = rounds[r];
            pieces.Add(new(prompt.Replace("{{QUERY}}", query), -1));
            if (response == null)
            {
                if (qwen3Thinking && enableThinking == false) pieces.Add(new(NoThinkPrefix, -1));
                continue;
            }
            bool last = r == rounds.Count - 1;
            pieces.Add(new(ResponseText(response, last), r));
            var separator = last ? suffix : chatSep;
            int trainableLength = endOfTurn.Length > 0 && separator.StartsWith(endOfTurn, StringComparison.Ordinal) ? endOfTurn.Length : 0;
            pieces.Add(new(separator[..trainableLength], r));
            pieces.Add(new(separator[trainableLength..], -1));
        }
        return pieces;
    }

    /// <summary>
    /// Qwen3's hybrid thinking, as its own chat template and ms-swift's qwen3 template do it: earlier responses lose their
    /// &lt;think&gt; block, the final response gets an empty one when it has none.
    /// </summary>
    string ResponseText(string response, bool isFinalResponse)
    {
        if (!qwen3Thinking) return response;
        if (!isFinalResponse)
        {
            int end = response.LastIndexOf("</think>", StringComparison.Ordinal);
            return end < 0 ? response : response[(end + "</think>".Length)..].TrimStart('\n');
        }
        return response.StartsWith("<think>", StringComparison.Ordinal) ? response : NoThinkPrefix + response;
    }

    List<(string Query, string? Response)> Rounds(IReadOnlyList<ChatMessage> messages, int start)
    {
        var rounds = new List<(string, string?)>();
        for (int i = start; i < messages.Count; i += 2)
        {
            if (messages[i].Role != "user")
                throw new SharpTuneException($"template '{name}': message {i} has role '{messages[i].Role}', expected 'user' (roles must alternate user/assistant after an optional system message)");
            string? response = null;
            if (i + 1 < messages.Count)
            {
                if (messages[i + 1].Role != "assistant")
                    throw new SharpTuneException($"template '{name}': message {i + 1} has role '{messages[i + 1].Role}', expected 'assistant' (roles must alternate user/assistant after an optional system message)");
                response = messages[i + 1].Content;
            }
            rounds.Add((messages[i].Content, response));
        }
        if (rounds.Count == 0) throw new SharpTuneException($"template '{name}': the conversation has no user message");
        return rounds;
    }
}
