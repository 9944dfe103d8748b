using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>Small readers for tokenizer.json fields that name the file and field when something is wrong.</summary>
static class JsonHelpers
{
    public static string? OptString(this JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static bool OptBool(this JsonElement e, string name, bool fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static int OptInt(this JsonElement e, string name, int fallback) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;

    public static JsonElement Required(this JsonElement e, string name, string where) =>
        e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : throw new SharpTuneException($"{where}: missing field '{name}'");

    public static string RequiredString(this JsonElement e, string name, string where) =>
        e.OptString(name) ?? throw new SharpTuneException($"{where}: missing string field '{name}'");

    public static bool IsNull(this JsonElement e) => e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    /// <summary>The "type" of a component object; where it is used in error messages.</summary>
    public static string ComponentType(this JsonElement e, string where) =>
        e.ValueKind == JsonValueKind.Object ? e.RequiredString("type", where) : throw new SharpTuneException($"{where}: expected an object");

    /// <summary>A {"String": s} or {"Regex": r} pattern as a regex (literal strings escaped).</summary>
    public static System.Text.RegularExpressions.Regex Pattern(this JsonElement e, string where)
    {
        var p = e.Required("pattern", where);
        var options = System.Text.RegularExpressions.RegexOptions.Compiled | System.Text.RegularExpressions.RegexOptions.CultureInvariant;
        if (p.OptString("String") is { } literal) return new(System.Text.RegularExpressions.Regex.Escape(literal), options);
        if (p.OptString("Regex") is { } regex) return new(regex, options);
        throw new SharpTuneException($"{where}: pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}");
    }

    /// <summary>The literal of a {"String": s} pattern, or null when it is a regex.</summary>
    public static string? LiteralPattern(this JsonElement e) =>
        e.TryGetProperty("pattern", out var p) ? p.OptString("String") : null;
}
