using System.Text.Json.Nodes;

namespace SharpTune.Serving;

/// <summary>A request the server refuses, with its HTTP status and OpenAI's error object.</summary>
public sealed class ApiError(int status, string message, string? param = null, string type = "invalid_request_error", string? code = null)
    : Exception(message)
{
    public int Status { get; } = status;
    public string? Param { get; } = param;
    public string Type { get; } = type;
    public string? Code { get; } = code;

    /// <summary>OpenAI's <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    public JsonObject ToJson() => Body(Message, Type, Param, Code);

    public static JsonObject Body(string message, string type, string? param, string? code) => new()
    {
        ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code },
    };

    public static ApiError BadField(string param, string message) => new(400, $"'{param}': {message}", param);
}
