using System.Text.Json;

namespace SharpTune.Formats;

/// <summary>
/// Typed access to one JSON object of a file, where every missing or mistyped field becomes a one-line
/// <see cref="SharpTuneException"/> naming the file and the field. A JSON <c>null</c> counts as absent,
/// because Hugging Face writes optional fields as <c>null</c> (e.g. <c>"pad_token_id": null</c>).
/// </summary>
internal readonly struct JsonFields
{
    readonly string file;
    readonly string prefix;
    public JsonElement Element { get; }

    public JsonFields(string file, JsonElement element, string prefix = "")
    {
        this.file = file;
        this.prefix = prefix;
        Element = element;
        if (element.ValueKind != JsonValueKind.Object)
            throw new SharpTuneException($"{file}: {(prefix.Length == 0 ? "top level" : prefix.TrimEnd('.'))} must be a JSON object, found {element.ValueKind}");
    }

    /// <summary>Parses <paramref name="path"/> as JSON whose top level must be an object.</summary>
    public static JsonDocument ParseFile(string path)
    {
        if (!File.Exists(path)) throw new SharpTuneException($"{path}: file not found");
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new SharpTuneException($"{path}: invalid JSON ({e.Message})");
        }
    }

    public bool Has(string name) => Element.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public bool TryGet(string name, out JsonElement value) =>
        Element.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    public SharpTuneException Error(string name, string what) => new($"{file}: field '{prefix}{name}' {what}");

    public JsonFields Object(string name) =>
        TryGet(name, out var v) ? new JsonFields(file, v.ValueKind == JsonValueKind.Object ? v : throw Error(name, $"must be an object, found {v.ValueKind}"), prefix + name + ".")
                                : throw Error(name, "is missing");

    public JsonFields? OptionalObject(string name) => Has(name) ? Object(name) : null;

    public int Int(string name) => OptionalInt(name) ?? throw Error(name, "is missing");

    public int? OptionalInt(string name)
    {
        if (!TryGet(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        throw Error(name, $"must be an integer, found {Describe(v)}");
    }

    public int PositiveInt(string name)
    {
        int v = Int(name);
        return v > 0 ? v : throw Error(name, $"must be positive, found {v}");
    }

    public double Double(string name) => OptionalDouble(name) ?? throw Error(name, "is missing");

    public double? OptionalDouble(string name)
    {
        if (!TryGet(name, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
        throw Error(name, $"must be a number, found {Describe(v)}");
    }

    public bool? OptionalBool(string name)
    {
        if (!TryGet(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(name, $"must be true or false, found {Describe(v)}"),
        };
    }

    public string String(string name) => OptionalString(name) ?? throw Error(name, "is missing");

    public string? OptionalString(string name)
    {
        if (!TryGet(name, out var v)) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Error(name, $"must be a string, found {Describe(v)}");
    }

    /// <summary>A token id field that may be one integer or a list of them (<c>eos_token_id</c>); empty when absent.</summary>
    public IReadOnlyList<int> IntOrIntList(string name)
    {
        if (!TryGet(name, out var v)) return [];
        if (v.ValueKind == JsonValueKind.Number) return [OptionalInt(name)!.Value];
        if (v.ValueKind != JsonValueKind.Array) throw Error(name, $"must be an integer or a list of integers, found {Describe(v)}");
        var list = new List<int>();
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out int i))
                throw Error(name, $"must be a list of integers, found an element {Describe(item)}");
            list.Add(i);
        }
        return list;
    }

    internal static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"\"{Truncate(v.GetString()!)}\"",
        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => v.GetRawText(),
        _ => v.ValueKind.ToString().ToLowerInvariant(),
    };

    static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
