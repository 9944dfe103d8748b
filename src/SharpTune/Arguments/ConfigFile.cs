using System.Text.Json;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace SharpTune.Arguments;

/// <summary>A config-file value as text: a scalar (null for YAML/JSON null) or a list of scalars.</summary>
internal sealed record ConfigValue(string? Scalar, IReadOnlyList<string?>? Items);

/// <summary>
/// Reads <c>--config</c> files: a flat YAML or JSON mapping whose keys are flag names, as ms-swift's examples/yaml/*.yaml.
/// Values stay text so that file and command line go through the same conversion and error messages.
/// </summary>
internal static class ConfigFile
{
    public static List<(string Key, ConfigValue Value)> Load(string path)
    {
        if (!File.Exists(path)) throw new SharpTuneException($"--config: file '{path}' not found");
        var text = File.ReadAllText(path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".yaml" or ".yml" => LoadYaml(path, text),
            ".json" => LoadJson(path, text),
            _ => throw new SharpTuneException($"--config: '{path}' must end in .yaml, .yml or .json"),
        };
    }

    static List<(string, ConfigValue)> LoadYaml(string path, string text)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(text)); }
        catch (YamlException e) { throw new SharpTuneException($"{path}: line {e.Start.Line}: {e.Message}"); }
        // YamlDotNet's scanner fails this way on some truncated input, e.g. an unclosed [ at the end of the file.
        catch (InvalidOperationException) { throw new SharpTuneException($"{path}: not valid YAML"); }
        var result = new List<(string, ConfigValue)>();
        if (stream.Documents.Count == 0) return result;
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new SharpTuneException($"{path}: expected a mapping of option names to values");
        foreach (var (keyNode, valueNode) in root.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? throw new SharpTuneException($"{path}: line {keyNode.Start.Line}: keys must be plain names");
            result.Add((key, valueNode switch
            {
                YamlScalarNode s => new ConfigValue(YamlText(s), null),
                YamlSequenceNode seq => new ConfigValue(null, seq.Children.Select(item => item is YamlScalarNode s ? YamlText(s)
                    : throw new SharpTuneException($"{path}: key '{key}': list items must be single values")).ToList()),
                _ => throw new SharpTuneException($"{path}: key '{key}': nested mappings are not supported"),
            }));
        }
        return result;
    }

    /// <summary>Unquoted <c>null</c>, <c>~</c> or nothing is YAML's null; quoted it is the text.</summary>
    static string? YamlText(YamlScalarNode s) =>
        s.Style == ScalarStyle.Plain && s.Value is null or "" or "~" or "null" or "Null" or "NULL" ? null : s.Value;

    static List<(string, ConfigValue)> LoadJson(string path, string text)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new SharpTuneException($"{path}: line {e.LineNumber + 1}: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SharpTuneException($"{path}: expected an object of option names to values");
            var result = new List<(string, ConfigValue)>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                result.Add((p.Name, p.Value.ValueKind == JsonValueKind.Array
                    ? new ConfigValue(null, p.Value.EnumerateArray().Select(item => JsonText(path, p.Name, item)).ToList())
                    : new ConfigValue(JsonText(path, p.Name, p.Value), null)));
            }
            return result;
        }
    }

    static string? JsonText(string path, string key, JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => e.GetString(),
        JsonValueKind.Number => e.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        JsonValueKind.Null => null,
        _ => throw new SharpTuneException($"{path}: key '{key}': nested objects and lists are not supported"),
    };
}
