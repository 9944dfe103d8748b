using System.Text.Json.Nodes;
using SharpTune.Inference;

namespace SharpTune.Serving;

/// <summary>OpenAI's response objects and streaming chunks for chat (<c>chat.completion</c>) and text (<c>text_completion</c>) completions.</summary>
internal sealed class ResponseJson(ServingRequest request)
{
    readonly string _id = (request.Chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
    readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    JsonObject Envelope(string objectName, JsonArray choices) => new()
    {
        ["id"] = _id,
        ["object"] = objectName,
        ["created"] = _created,
        ["model"] = request.Model,
        ["system_fingerprint"] = null,
        ["choices"] = choices,
    };

    public JsonObject Complete(IReadOnlyList<GenerationResult> results)
    {
        var choices = new JsonArray();
        for (int i = 0; i < results.Count; i++)
        {
            var r = results[i];
            JsonNode? logprobs = request.Logprobs ? Logprobs(r.Tokens) : null;
            choices.Add((JsonNode)(request.Chat
                ? new JsonObject
                {
                    ["index"] = i,
                    ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = r.Text, ["refusal"] = null },
                    ["logprobs"] = logprobs,
                    ["finish_reason"] = r.FinishReasonName,
                }
                : new JsonObject { ["index"] = i, ["text"] = r.Text, ["logprobs"] = logprobs, ["finish_reason"] = r.FinishReasonName }));
        }
        var body = Envelope(request.Chat ? "chat.completion" : "text_completion", choices);
        body["usage"] = Usage(results.Sum(r => r.TokenIds.Count));
        return body;
    }

    /// <summary>A streamed piece of choice <paramref name="index"/>: text (and its token's logprobs), the opening role, or the finish reason.</summary>
    public JsonObject Chunk(int index, string? text, GeneratedToken? token, FinishReason? finish, bool first = false)
    {
        JsonNode? logprobs = request.Logprobs && token != null ? Logprobs([token]) : null;
        string? reason = finish switch { FinishReason.Stop => "stop", FinishReason.Length => "length", _ => null };
        JsonObject choice;
        if (request.Chat)
        {
            var delta = new JsonObject();
            if (first) delta["role"] = "assistant";
            if (text != null) delta["content"] = text;
            choice = new JsonObject { ["index"] = index, ["delta"] = delta, ["logprobs"] = logprobs, ["finish_reason"] = reason };
        }
        else choice = new JsonObject { ["index"] = index, ["text"] = text ?? "", ["logprobs"] = logprobs, ["finish_reason"] = reason };
        var chunk = Envelope(request.Chat ? "chat.completion.chunk" : "text_completion", [choice]);
        if (request.IncludeUsage) chunk["usage"] = null;
        return chunk;
    }

    /// <summary>The last chunk with <c>stream_options.include_usage</c>: no choices, the usage of the whole request.</summary>
    public JsonObject UsageChunk(int completionTokens)
    {
        var chunk = Envelope(request.Chat ? "chat.completion.chunk" : "text_completion", []);
        chunk["usage"] = Usage(completionTokens);
        return chunk;
    }

    JsonObject Usage(int completionTokens) => new()
    {
        ["prompt_tokens"] = request.PromptIds.Length,
        ["completion_tokens"] = completionTokens,
        ["total_tokens"] = request.PromptIds.Length + completionTokens,
    };

    /// <summary>Chat: <c>{"content": [...]}</c>; text completions: the legacy <c>tokens / token_logprobs / top_logprobs / text_offset</c> lists.</summary>
    JsonNode Logprobs(IReadOnlyList<GeneratedToken> tokens)
    {
        if (request.Chat) return LogprobsJson.Content(tokens);
        var offsets = new JsonArray();
        int offset = 0;
        foreach (var t in tokens)
        {
            offsets.Add((JsonNode)offset);
            offset += t.Text.Length;
        }
        return new JsonObject
        {
            ["tokens"] = new JsonArray(tokens.Select(t => (JsonNode)JsonValue.Create(t.Text)).ToArray()),
            ["token_logprobs"] = new JsonArray(tokens.Select(t => (JsonNode?)JsonValue.Create(t.Logprob)).ToArray()),
            ["top_logprobs"] = new JsonArray(tokens.Select(t =>
            {
                var top = new JsonObject();
                foreach (var a in t.TopLogprobs ?? []) top.TryAdd(a.Text, a.Logprob);
                return (JsonNode)top;
            }).ToArray()),
            ["text_offset"] = offsets,
        };
    }
}
