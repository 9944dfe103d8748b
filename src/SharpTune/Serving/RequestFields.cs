using System.Text.Json;

namespace SharpTune.Serving;

/// <summary>Typed, range-checked reads of a JSON request body's fields; a wrong type or value is a 400 naming the field.</summary>
internal readonly struct RequestFields(JsonElement root)
{
    public bool Has(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) => root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public string? String(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw ApiError.BadField(name, "expected a string");
    }

    public bool? Bool(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw ApiError.BadField(name, "expected a boolean");
    }

    public long? Integer(string name, long min, long max)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long x)) throw ApiError.BadField(name, "expected an integer");
        if (x < min || x > max) throw ApiError.BadField(name, $"{x} is out of range [{min}, {max}]");
        return x;
    }

    public float? Number(string name, double min, double max, bool minExclusive = false)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Number) throw ApiError.BadField(name, "expected a number");
        double x = v.GetDouble();
        if (x < min || x > max || (minExclusive && x == min))
            throw ApiError.BadField(name, $"{x} is out of range {(minExclusive ? "(" : "[")}{min}, {max}]");
        return (float)x;
    }

    /// <summary>OpenAI's <c>stop</c>: one string or up to four.</summary>
    public IReadOnlyList<string>? StopWords(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.String) return [v.GetString()!];
        if (v.ValueKind != JsonValueKind.Array) throw ApiError.BadField(name, "expected a string or an array of strings");
        var words = new List<string>();
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw ApiError.BadField(name, "expected a string or an array of strings");
            words.Add(item.GetString()!);
        }
        if (words.Count > 4) throw ApiError.BadField(name, "at most 4 stop sequences");
        return words;
    }
}
