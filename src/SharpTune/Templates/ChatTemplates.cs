using System.Text.Json;

namespace SharpTune.Templates;

/// <summary>Chooses a model's chat template and applies the system-prompt precedence.</summary>
public static class ChatTemplates
{
    static readonly string[] SpecialTokenNames = ["bos_token", "eos_token", "unk_token", "pad_token"];

    /// <summary>The names <see cref="Resolve"/> accepts as <c>templateName</c> (ms-swift's --template).</summary>
    public static IReadOnlyList<string> BuiltinNames => BuiltinTemplates.Names;

    /// <summary>
    /// <paramref name="templateName"/> picks a built-in (qwen, qwen2_5, qwen3, llama3, llama, default, plain); null takes the model's own
    /// template (chat_template.jinja, else tokenizer_config.json's chat_template), else a built-in chosen by config.json's model_type,
    /// else <c>plain</c>.
    /// </summary>
    public static ChatTemplate Resolve(string modelDir, string? templateName = null)
    {
        var tokenizerConfigPath = Path.Combine(modelDir, "tokenizer_config.json");
        using var tokenizerConfig = ReadJson(tokenizerConfigPath);
        var specialTokens = SpecialTokens(tokenizerConfig?.RootElement, tokenizerConfigPath);
        var eos = specialTokens.GetValueOrDefault("eos_token", "");

        if (templateName != null)
            return BuiltinTemplates.Create(templateName, eos)
                   ?? throw new SharpTuneException($"--template {templateName}: unknown template; built-in templates are {string.Join(", ", BuiltinTemplates.Names)}");

        var jinjaPath = Path.Combine(modelDir, "chat_template.jinja");
        if (File.Exists(jinjaPath)) return new JinjaChatTemplate(File.ReadAllText(jinjaPath), jinjaPath, specialTokens);
        var embedded = EmbeddedTemplate(tokenizerConfig?.RootElement, tokenizerConfigPath);
        if (embedded != null) return new JinjaChatTemplate(embedded, tokenizerConfigPath + " (chat_template)", specialTokens);

        return BuiltinTemplates.Create(BuiltinForModel(modelDir, specialTokens), eos)!;
    }

    /// <summary>
    /// Adds a system message unless the conversation has one: <paramref name="system"/> (--system) first, else the template's default.
    /// An empty <paramref name="system"/> means "no system prompt", overriding the default.
    /// </summary>
    public static IReadOnlyList<ChatMessage> WithSystem(IReadOnlyList<ChatMessage> messages, string? system, ChatTemplate template)
    {
        if (messages.Count > 0 && messages[0].Role == "system") return messages;
        var chosen = system ?? template.DefaultSystem;
        if (string.IsNullOrEmpty(chosen)) return messages;
        return [new ChatMessage("system", chosen), .. messages];
    }

    static string BuiltinForModel(string modelDir, IReadOnlyDictionary<string, string> specialTokens)
    {
        var configPath = Path.Combine(modelDir, "config.json");
        using var config = ReadJson(configPath);
        var modelType = config != null && config.RootElement.TryGetProperty("model_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        return modelType switch
        {
            "qwen2" or "qwen2_moe" => "qwen2_5",
            "qwen3" or "qwen3_moe" => "qwen3",
            "qwen" => "qwen",
            // model_type "llama" covers Llama 2, Llama 3 and small story models; only Llama 3's tokenizer has this BOS.
            "llama" when specialTokens.GetValueOrDefault("bos_token") == "<|begin_of_text|>" => "llama3",
            _ => "plain",
        };
    }

    static JsonDocument? ReadJson(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            return JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new SharpTuneException($"{path}: not valid JSON ({e.Message})");
        }
    }

    /// <summary>Special tokens as strings; tokenizer_config.json writes each as a string or as an AddedToken object with "content".</summary>
    static Dictionary<string, string> SpecialTokens(JsonElement? root, string path)
    {
        var tokens = new Dictionary<string, string>();
        if (root is not { ValueKind: JsonValueKind.Object } config) return tokens;
        foreach (var name in SpecialTokenNames)
        {
            if (!config.TryGetProperty(name, out var value)) continue;
            var text = value.ValueKind switch
            {
                JsonValueKind.String => value.GetString(),
                JsonValueKind.Object when value.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString(),
                JsonValueKind.Null => null,
                _ => throw new SharpTuneException($"{path}: field '{name}' must be a string or an object with \"content\""),
            };
            if (text != null) tokens[name] = text;
        }
        return tokens;
    }

    /// <summary>tokenizer_config.json's chat_template: a string, or a list of {name, template} of which "default" is the chat template.</summary>
    static string? EmbeddedTemplate(JsonElement? root, string path)
    {
        if (root is not { ValueKind: JsonValueKind.Object } config || !config.TryGetProperty("chat_template", out var value)) return null;
        switch (value.ValueKind)
        {
            case JsonValueKind.Null: return null;
            case JsonValueKind.String: return value.GetString();
            case JsonValueKind.Array:
                string? first = null;
                foreach (var entry in value.EnumerateArray())
                {
                    if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("template", out var template) || template.ValueKind != JsonValueKind.String)
                        throw new SharpTuneException($"{path}: each entry of 'chat_template' must be an object with a string 'template'");
                    first ??= template.GetString();
                    if (entry.TryGetProperty("name", out var name) && name.GetString() == "default") return template.GetString();
                }
                return first;
            default:
                throw new SharpTuneException($"{path}: field 'chat_template' must be a string or a list of {{name, template}}");
        }
    }
}
