using System.Text.Json;

namespace SharpTune.Data;

/// <summary>
/// The built-in self-cognition dataset (our own wording, Data/Builtin/self-cognition.jsonl): questions such as
/// "Who are you?" with answers that contain {{NAME}} and {{AUTHOR}}, each row tagged "en" or "zh".
/// As in ms-swift, --model_name and --model_author take (Chinese, English) values: rows tagged zh get the first,
/// others the second; one value serves both. Without a value the placeholder stays, as ms-swift leaves it.
/// </summary>
public static class SelfCognition
{
    const string ResourceName = "SharpTune.Data.Builtin.self-cognition.jsonl";

    /// <summary>The dataset names that resolve to it: ours, and ms-swift's ModelScope and Hugging Face ids.</summary>
    public static readonly IReadOnlySet<string> Names = new HashSet<string>(StringComparer.Ordinal)
        { "self-cognition", "swift/self-cognition", "modelscope/self-cognition" };

    public static DatasetRows Load(IReadOnlyList<string>? modelName, IReadOnlyList<string>? modelAuthor)
    {
        var name = ZhEn(modelName, "--model_name");
        var author = ZhEn(modelAuthor, "--model_author");
        using var stream = typeof(SelfCognition).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new SharpTuneException($"{ResourceName}: built-in dataset missing from the assembly");
        using var reader = new StreamReader(stream);
        return DatasetFile.Read("self-cognition", reader, ".jsonl", strict: true, row => Fill(row, name, author));
    }

    static (string Zh, string En)? ZhEn(IReadOnlyList<string>? values, string argument) => values switch
    {
        null or { Count: 0 } => null,
        { Count: 1 } => (values[0], values[0]),
        { Count: 2 } => (values[0], values[1]),
        _ => throw new SharpTuneException($"{argument}: expected one value or two (Chinese, English), got {values.Count}"),
    };

    static Dictionary<string, JsonElement> Fill(Dictionary<string, JsonElement> row, (string Zh, string En)? name, (string Zh, string En)? author)
    {
        var zh = row.TryGetValue("tag", out var tag) && tag.ValueKind == JsonValueKind.String && tag.GetString() == "zh";
        foreach (var field in new[] { "query", "response" })
        {
            var text = row[field].GetString()!;
            if (name is { } n) text = text.Replace("{{NAME}}", zh ? n.Zh : n.En);
            if (author is { } a) text = text.Replace("{{AUTHOR}}", zh ? a.Zh : a.En);
            row[field] = DatasetFile.StringElement(text);
        }
        return row;
    }
}
