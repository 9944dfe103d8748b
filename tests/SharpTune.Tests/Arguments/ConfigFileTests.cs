using SharpTune.Arguments;

namespace SharpTune.Tests.Arguments;

public sealed class ConfigFileTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("sharptune-config-").FullName;

    public void Dispose() => Directory.Delete(dir, true);

    string Write(string name, string text)
    {
        var path = Path.Combine(dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    static SampleOptions Parse(params string[] argv) => ArgumentParser.Parse<SampleOptions>(argv);

    static string Error(params string[] argv) => Assert.Throws<SharpTuneException>(() => Parse(argv)).Message;

    // The layout of ms-swift's examples/yaml/sft.yaml and examples/train/multi-node/ray/sft.yaml.
    const string MsSwiftStyleYaml = """
        model: Qwen/Qwen2.5-7B-Instruct
        train_type: lora
        lora_rank: 8
        learning_rate: 1e-4
        warmup_ratio: 0.05
        target_modules:
          - q_proj
          - k_proj
        dataset: swift/self-cognition#1000
        stream: true
        gradient_checkpointing: False
        lr_scheduler_type: linear
        stop_token_ids: [151645, 151643]
        max_new_tokens: null
        temperature: ~
        """;

    [Fact]
    public void ParsesMsSwiftStyleYaml()
    {
        var o = Parse("--config", Write("sft.yaml", MsSwiftStyleYaml));
        Assert.Equal("Qwen/Qwen2.5-7B-Instruct", o.Model);
        Assert.Equal(8, o.LoraRank);
        Assert.Equal(1e-4f, o.LearningRate);
        Assert.Equal(0.05, o.WarmupRatio);
        Assert.Equal(["q_proj", "k_proj"], o.TargetModules);
        Assert.Equal(["swift/self-cognition#1000"], o.Dataset);
        Assert.True(o.Stream);
        Assert.False(o.GradientCheckpointing);
        Assert.Equal(SchedulerKind.Linear, o.LrSchedulerType);
        Assert.Equal([151645, 151643], o.StopTokenIds);
        Assert.Null(o.MaxNewTokens);
        Assert.Null(o.Temperature);
    }

    [Fact]
    public void ScalarForAListKeyIsAOneItemList() =>
        Assert.Equal(["all-linear"], Parse("--config", Write("a.yml", "target_modules: all-linear\n")).TargetModules);

    [Fact]
    public void QuotedNullIsText() => Assert.Equal("null", Parse("--config", Write("a.yaml", "model: 'null'\n")).Model);

    [Fact]
    public void CommandLineOverridesTheFileWhereverItAppears()
    {
        var path = Write("sft.yaml", MsSwiftStyleYaml);
        var o = Parse("--lora_rank", "64", "--config", path, "--target_modules", "o_proj");
        Assert.Equal(64, o.LoraRank);
        Assert.Equal(["o_proj"], o.TargetModules);
        Assert.Equal("Qwen/Qwen2.5-7B-Instruct", o.Model);
        Assert.Equal("lora", o.TrainType);
    }

    [Fact]
    public void ParsesJson()
    {
        var path = Write("args.json", """{ "model": "m", "sft_type": "full", "lora_rank": 4, "learning_rate": 2e-5, "stream": true, "dataset": ["a", "b"], "temperature": null }""");
        var o = Parse("--config=" + path);
        Assert.Equal("m", o.Model);
        Assert.Equal("full", o.TrainType);
        Assert.Equal(4, o.LoraRank);
        Assert.Equal(2e-5f, o.LearningRate);
        Assert.True(o.Stream);
        Assert.Equal(["a", "b"], o.Dataset);
        Assert.Null(o.Temperature);
    }

    [Fact]
    public void ArgsJsonRoundTripsThroughConfig()
    {
        var original = Parse("--model", "x", "--temperature", "0.25", "--target_modules", "q_proj", "v_proj",
            "--lr_scheduler_type", "cosine_with_restarts", "--save_strategy", "last_round", "--loss_scale", "0.1", "2");
        var path = Write("args.json", ArgumentParser.ToJson(original));
        Assert.Equal(ArgumentParser.ToJson(original), ArgumentParser.ToJson(Parse("--config", path)));
    }

    [Fact]
    public void UnknownKeyNamesTheFileAndSuggests()
    {
        var path = Write("config.yaml", "model: m\nlearning_rat: 1e-4\n");
        Assert.Equal($"{path}: unknown key 'learning_rat' (did you mean 'learning_rate'?)", Error("--config", path));
    }

    [Fact]
    public void BadValuesNameTheFileAndKey()
    {
        var yaml = Write("bad.yaml", "temperature: abc\n");
        Assert.Equal($"{yaml}: key 'temperature': 'abc' is not a number", Error("--config", yaml));
        var json = Write("bad.json", """{"lora_rank": "eight"}""");
        Assert.Equal($"{json}: key 'lora_rank': 'eight' is not an integer", Error("--config", json));
        var list = Write("list.yaml", "model: [a, b]\n");
        Assert.Equal($"{list}: key 'model': expected a single value, got a list", Error("--config", list));
        var nullInt = Write("null.yaml", "lora_rank: null\n");
        Assert.Equal($"{nullInt}: key 'lora_rank': null is not allowed here", Error("--config", nullInt));
        var nested = Write("nested.yaml", "model:\n  id: x\n");
        Assert.Equal($"{nested}: key 'model': nested mappings are not supported", Error("--config", nested));
    }

    [Fact]
    public void BadFiles()
    {
        var missing = Path.Combine(dir, "missing.yaml");
        Assert.Equal($"--config: file '{missing}' not found", Error("--config", missing));
        var txt = Write("a.txt", "model: x");
        Assert.Equal($"--config: '{txt}' must end in .yaml, .yml or .json", Error("--config", txt));
        var broken = Write("broken.yaml", "lora_rank: 3\nmodel: a: b\n");
        Assert.StartsWith($"{broken}: line 2: ", Error("--config", broken));
        var truncated = Write("truncated.yaml", "model: [a\nlora_rank: 3\n");
        Assert.Equal($"{truncated}: not valid YAML", Error("--config", truncated));
        var brokenJson = Write("broken.json", "{\"model\": }");
        Assert.StartsWith($"{brokenJson}: line 1: ", Error("--config", brokenJson));
    }
}
