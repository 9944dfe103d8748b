using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SharpTune.Adapters;

/// <summary>
/// A LoRA/DoRA adapter's settings in PEFT's adapter_config.json terms. <see cref="TargetModules"/> is a list of module-name
/// suffixes, or one string: <c>all-linear</c> (every linear layer but the output head) or a regular expression matched
/// against the whole module path, as PEFT does.
/// </summary>
public sealed record LoraConfig
{
    public int Rank { get; init; } = 8;
    public double Alpha { get; init; } = 32;
    public double Dropout { get; init; } = 0.05;
    public bool UseRslora { get; init; }
    public bool UseDora { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = ["all-linear"];
    /// <summary>True when <see cref="TargetModules"/> came as one string (a regex or all-linear) rather than a list.</summary>
    public bool TargetIsRegex { get; init; }
    public IReadOnlyList<string>? ModulesToSave { get; init; }
    public Dictionary<string, int> RankPattern { get; init; } = [];
    public Dictionary<string, double> AlphaPattern { get; init; } = [];
    public string? BaseModelNameOrPath { get; init; }
    /// <summary>PEFT's init_lora_weights: "true" (Kaiming-uniform A, zero B), "gaussian", or "false" (random B too, for tests).</summary>
    public string InitWeights { get; init; } = "true";

    /// <summary>alpha / r, or alpha / √r with rsLoRA, for a module (rank_pattern / alpha_pattern respected).</summary>
    public float ScaleFor(string module) => (float)(AlphaFor(module) / (UseRslora ? Math.Sqrt(RankFor(module)) : RankFor(module)));

    public int RankFor(string module) => Pattern(RankPattern, module) ?? Rank;
    public double AlphaFor(string module) => Pattern(AlphaPattern, module) ?? Alpha;

    static T? Pattern<T>(Dictionary<string, T> patterns, string module) where T : struct
    {
        // PEFT matches a pattern key as a regex against the end of the module path ("(.*\.)?key$").
        foreach (var (key, value) in patterns)
            if (Regex.IsMatch(module, $"(^|\\.){key}$")) return value;
        return null;
    }

    /// <summary>Whether a linear module (e.g. <c>model.layers.0.self_attn.q_proj</c>) gets a LoRA branch.</summary>
    public bool Targets(string module)
    {
        if (module == "lm_head") return TargetModules.Contains("lm_head") && !TargetIsRegex;
        if (TargetIsRegex)
        {
            var only = TargetModules[0];
            return only == "all-linear" || Regex.IsMatch(module, $"^(?:{only})$");
        }
        foreach (var t in TargetModules)
            if (t == "all-linear" || module == t || module.EndsWith("." + t, StringComparison.Ordinal)) return true;
        return false;
    }

    public static LoraConfig Load(string path)
    {
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new SharpTuneException($"{path}: not valid JSON ({e.Message})"); }
        if (root is not JsonObject o) throw new SharpTuneException($"{path}: expected a JSON object");
        var peftType = o["peft_type"]?.GetValue<string>();
        if (peftType != null && peftType != "LORA") throw new SharpTuneException($"{path}: peft_type '{peftType}' is not supported (only LORA)");
        T Get<T>(string key, T fallback)
        {
            var node = o[key];
            if (node == null) return fallback;
            try { return node.GetValue<T>(); }
            catch (Exception) { throw new SharpTuneException($"{path}: field '{key}' has the wrong type"); }
        }
        var targets = o["target_modules"];
        IReadOnlyList<string> targetList;
        bool isRegex = false;
        if (targets is JsonArray arr) targetList = arr.Select(x => x!.GetValue<string>()).ToList();
        else if (targets is JsonValue v && v.TryGetValue<string>(out var str)) { targetList = [str]; isRegex = true; }
        else throw new SharpTuneException($"{path}: field 'target_modules' must be a list or a string");
        var init = o["init_lora_weights"];
        return new LoraConfig
        {
            Rank = Get("r", 8),
            Alpha = Get("lora_alpha", 8.0),
            Dropout = Get("lora_dropout", 0.0),
            UseRslora = Get("use_rslora", false),
            UseDora = Get("use_dora", false),
            TargetModules = targetList,
            TargetIsRegex = isRegex,
            ModulesToSave = o["modules_to_save"] is JsonArray m ? m.Select(x => x!.GetValue<string>()).ToList() : null,
            RankPattern = o["rank_pattern"] is JsonObject rp ? rp.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>()) : [],
            AlphaPattern = o["alpha_pattern"] is JsonObject ap ? ap.ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>()) : [],
            BaseModelNameOrPath = o["base_model_name_or_path"]?.GetValue<string>(),
            InitWeights = init == null ? "true" : init.ToJsonString().Trim('"').ToLowerInvariant(),
        };
    }

    /// <summary>adapter_config.json as PEFT writes it (every field PEFT's LoraConfig has, so PEFT loads it unchanged).</summary>
    public string ToPeftJson(IEnumerable<string> targetedModules)
    {
        JsonNode targetNode = TargetIsRegex && TargetModules[0] != "all-linear"
            ? JsonValue.Create(TargetModules[0])
            : new JsonArray(targetedModules.Select(m => m[(m.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal)
                .Select(x => (JsonNode)JsonValue.Create(x)!).ToArray());
        var o = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(AlphaPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["bias"] = "none",
            ["corda_config"] = null,
            ["eva_config"] = null,
            ["exclude_modules"] = null,
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = InitWeights switch { "true" => true, "false" => false, _ => JsonValue.Create(InitWeights) },
            ["layer_replication"] = null,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["loftq_config"] = new JsonObject(),
            ["lora_alpha"] = Alpha == Math.Floor(Alpha) ? JsonValue.Create((int)Alpha) : JsonValue.Create(Alpha),
            ["lora_bias"] = false,
            ["lora_dropout"] = Dropout,
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = ModulesToSave == null ? null : new JsonArray(ModulesToSave.Select(x => (JsonNode)JsonValue.Create(x)!).ToArray()),
            ["peft_type"] = "LORA",
            ["r"] = Rank,
            ["rank_pattern"] = new JsonObject(RankPattern.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
            ["revision"] = null,
            ["target_modules"] = targetNode,
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = UseDora,
            ["use_rslora"] = UseRslora,
        };
        return o.ToJsonString(JsonText.Indented);
    }
}
