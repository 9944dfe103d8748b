using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>
/// A tokenizer.json "post_processor" for a single sequence: which special ids go around the encoded text
/// (TemplateProcessing's "single" template; ByteLevel only adjusts offsets, so it adds nothing here).
/// </summary>
sealed class PostProcessor
{
    readonly List<int> prefix = [], suffix = [];

    public void Apply(List<int> ids)
    {
        ids.InsertRange(0, prefix);
        ids.AddRange(suffix);
    }

    public static PostProcessor? FromJson(JsonElement json, string path)
    {
        if (json.IsNull()) return null;
        var processor = new PostProcessor();
        processor.Add(json, path);
        return processor;
    }

    void Add(JsonElement json, string path)
    {
        var where = $"{path}: post_processor";
        var type = json.ComponentType(where);
        switch (type)
        {
            case "ByteLevel": break;
            case "Sequence":
                foreach (var step in json.Required("processors", where).EnumerateArray()) Add(step, path);
                break;
            case "TemplateProcessing":
                AddTemplate(json, $"{where} TemplateProcessing");
                break;
            default: throw new SharpTuneException($"{path}: unsupported post_processor '{type}'");
        }
    }

    void AddTemplate(JsonElement json, string where)
    {
        var specialTokens = json.Required("special_tokens", where);
        bool afterSequence = false;
        foreach (var item in json.Required("single", where).EnumerateArray())
        {
            if (item.TryGetProperty("Sequence", out _)) { afterSequence = true; continue; }
            if (!item.TryGetProperty("SpecialToken", out var special)) throw new SharpTuneException($"{where}: single template items must be Sequence or SpecialToken");
            var name = special.RequiredString("id", where);
            if (!specialTokens.TryGetProperty(name, out var entry)) throw new SharpTuneException($"{where}: special token '{name}' is not in special_tokens");
            foreach (var id in entry.Required("ids", where).EnumerateArray()) (afterSequence ? suffix : prefix).Add(id.GetInt32());
        }
    }
}
