using System.Text;
using System.Text.Json.Nodes;

namespace SharpTune.Inference;

/// <summary>Log-probabilities in OpenAI's shape: <c>{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}</c>, plus our <c>token_id</c>.</summary>
public static class LogprobsJson
{
    public static JsonObject Content(IEnumerable<GeneratedToken> tokens) =>
        new() { ["content"] = new JsonArray(tokens.Select(t => (JsonNode)Entry(t)).ToArray()) };

    public static JsonObject Entry(GeneratedToken t) => new()
    {
        ["token"] = t.Text,
        ["token_id"] = t.Id,
        ["logprob"] = t.Logprob,
        ["bytes"] = Bytes(t.Text),
        ["top_logprobs"] = new JsonArray((t.TopLogprobs ?? []).Select(a => (JsonNode)new JsonObject
        {
            ["token"] = a.Text,
            ["token_id"] = a.Id,
            ["logprob"] = a.Logprob,
            ["bytes"] = Bytes(a.Text),
        }).ToArray()),
    };

    static JsonArray Bytes(string text) => new(Encoding.UTF8.GetBytes(text).Select(b => (JsonNode)JsonValue.Create((int)b)).ToArray());
}
