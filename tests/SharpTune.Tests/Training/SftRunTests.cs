using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Arguments;
using SharpTune.Backends.Cpu;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

/// <summary>Whole sft runs on the bundled stories260K: determinism, exact resume, the output layout, checkpoint pruning.</summary>
public class SftRunTests
{
    sealed class QuietObserver(Action<int>? onStep = null) : ITrainingObserver
    {
        public List<string> Messages { get; } = [];
        public void Message(string line) => Messages.Add(line);
        public void Step(int globalStep, int maxSteps, double elapsedSeconds, JsonObject? log) => onStep?.Invoke(globalStep);
    }

    static SftArguments Args(string output, params string[] extra) => ArgumentParser.Parse<SftArguments>(
    [
        "--model", TestData.BundledModel, "--dataset", "self-cognition#24", "--model_name", "小锐", "SharpBot", "--model_author", "锐调", "SharpTune",
        "--output_dir", output, "--max_steps", "6", "--gradient_accumulation_steps", "2", "--learning_rate", "2e-3", "--logging_steps", "2",
        "--save_steps", "3", "--device", "cpu", .. extra,
    ]);

    static SftResult Train(SftArguments args, CancellationToken cancel = default, Action<int>? onStep = null)
    {
        using var trainer = new SftTrainer(args, CpuBackend.Instance, new QuietObserver(onStep));
        return trainer.Train(cancel);
    }

    static byte[] Adapter(string checkpoint) => File.ReadAllBytes(Path.Combine(checkpoint, "adapter_model.safetensors"));

    [Fact]
    public void SameSeedAndDataGiveBitIdenticalAdapters()
    {
        var first = Train(Args(TestData.TempDir()));
        var second = Train(Args(TestData.TempDir()));
        Assert.Equal(Adapter(first.LastCheckpoint!), Adapter(second.LastCheckpoint!));
        var third = Train(Args(TestData.TempDir(), "--seed", "7"));
        Assert.NotEqual(Adapter(first.LastCheckpoint!), Adapter(third.LastCheckpoint!));
    }

    [Fact]
    public void InterruptedAndResumedRunEndsBitIdenticalToAnUninterruptedOne()
    {
        var uninterrupted = Train(Args(TestData.TempDir()));

        using var cancel = new CancellationTokenSource();
        var interrupted = Train(Args(TestData.TempDir()), cancel.Token, step => { if (step == 4) cancel.Cancel(); });
        Assert.True(interrupted.Interrupted);
        Assert.EndsWith("checkpoint-4", interrupted.LastCheckpoint);

        var resumed = Train(Args(TestData.TempDir(), "--resume_from_checkpoint", interrupted.LastCheckpoint!));
        Assert.Equal(6, resumed.State.GlobalStep);
        Assert.Equal(Adapter(uninterrupted.LastCheckpoint!), Adapter(resumed.LastCheckpoint!));
        Assert.Equal(File.ReadAllBytes(Path.Combine(uninterrupted.LastCheckpoint!, "optimizer.safetensors")),
                     File.ReadAllBytes(Path.Combine(resumed.LastCheckpoint!, "optimizer.safetensors")));
    }

    [SkippableFact]
    public void WritesMsSwiftLayoutWithPeftAdapterLogsAndPlots()
    {
        var output = TestData.TempDir();
        var result = Train(Args(output, "--split_dataset_ratio", "0.25", "--eval_steps", "3"));
        var run = result.RunDirectory;
        Assert.Matches(@"^v0-\d{8}-\d{6}$", Path.GetFileName(run));
        Assert.Equal(TestData.BundledModel, JsonNode.Parse(File.ReadAllText(Path.Combine(run, "args.json")))!["model"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(run, "val_dataset.jsonl")));

        var lines = File.ReadAllLines(Path.Combine(run, "logging.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var train = lines.Where(l => l.ContainsKey("loss")).ToList();
        Assert.NotEmpty(train);
        foreach (var key in new[] { "loss", "token_acc", "grad_norm", "learning_rate", "epoch", "global_step/max_steps", "elapsed_time", "remaining_time", "memory(GiB)", "train_speed(s/it)" })
            Assert.True(train[0].ContainsKey(key), key);
        var eval = lines.Where(l => l.ContainsKey("eval_loss")).ToList();
        Assert.Equal(2, eval.Count);
        Assert.True(eval[0].ContainsKey("eval_token_acc"));
        var summary = lines[^1];
        Assert.Equal(result.LastCheckpoint, summary["last_model_checkpoint"]!.GetValue<string>());
        Assert.Equal(result.BestCheckpoint, summary["best_model_checkpoint"]!.GetValue<string>());
        Assert.True(Directory.Exists(result.BestCheckpoint));

        foreach (var plot in new[] { "train_loss.png", "train_learning_rate.png", "train_grad_norm.png", "eval_loss.png" })
            Assert.True(File.Exists(Path.Combine(run, "images", plot)), plot);

        var checkpoint = result.LastCheckpoint!;
        foreach (var file in new[] { "adapter_config.json", "adapter_model.safetensors", "args.json", "trainer_state.json", "optimizer.safetensors", "scheduler.json", "rng_state.json" })
            Assert.True(File.Exists(Path.Combine(checkpoint, file)), file);
        var state = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "trainer_state.json")))!;
        Assert.Equal(6, state["global_step"]!.GetValue<int>());

        // Every field of PEFT's own LoraConfig is present with the same JSON type, and the LoRA settings are ours.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "adapter_config.json")))!.AsObject();
        var peft = JsonNode.Parse(File.ReadAllText(TestData.Require("peft", "adapter_config.json")))!.AsObject();
        foreach (var (key, value) in peft)
        {
            Assert.True(config.ContainsKey(key), $"adapter_config.json lacks '{key}'");
            if (value != null && config[key] != null && key != "target_modules") Assert.Equal(Kind(value), Kind(config[key]!));
        }
        Assert.Equal(8, config["r"]!.GetValue<int>());
        Assert.Equal(32, config["lora_alpha"]!.GetValue<int>());
        Assert.Equal(["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
                     config["target_modules"]!.AsArray().Select(x => x!.GetValue<string>()));
        Assert.Equal("LORA", config["peft_type"]!.GetValue<string>());
    }

    static string Kind(JsonNode node) => node.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? "bool" : node.GetValueKind().ToString();

    [Fact]
    public void SaveTotalLimitPrunesOldCheckpointsButNeverTheBest()
    {
        var result = Train(Args(TestData.TempDir(), "--max_steps", "8", "--save_steps", "2", "--eval_steps", "2", "--split_dataset_ratio", "0.25",
                                "--save_total_limit", "2"));
        var kept = Directory.GetDirectories(result.RunDirectory, "checkpoint-*").Select(Path.GetFileName).ToList();
        Assert.Contains(Path.GetFileName(result.LastCheckpoint!), kept);
        Assert.Contains(Path.GetFileName(result.BestCheckpoint!), kept);
        Assert.True(kept.Count <= 2 || (kept.Count == 3 && result.BestCheckpoint != result.LastCheckpoint), string.Join(",", kept));
    }

    [Fact]
    public void ConfigFileKeysAreFlagsAndTheCommandLineOverridesThem()
    {
        var dir = TestData.TempDir();
        var yaml = Path.Combine(dir, "sft.yaml");
        File.WriteAllText(yaml, $"""
            model: {TestData.BundledModel}
            train_type: lora
            dataset: self-cognition#8
            lora_rank: 4
            lora_alpha: 16
            target_modules: all-linear
            max_steps: 50
            learning_rate: 1e-4
            output_dir: {dir}
            gradient_accumulation_steps: 1
            """);
        var args = ArgumentParser.Parse<SftArguments>(["--config", yaml, "--max_steps", "2"]);
        Assert.Equal(2, args.MaxSteps);
        Assert.Equal(4, args.LoraRank);
        var result = Train(args);
        Assert.Equal(2, result.State.GlobalStep);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(result.LastCheckpoint!, "adapter_config.json")))!;
        Assert.Equal(4, config["r"]!.GetValue<int>());
    }

    [Fact]
    public void FullFineTuningWritesAStandaloneCheckpointThatLoads()
    {
        var result = Train(Args(TestData.TempDir(), "--tuner_type", "full", "--learning_rate", "1e-3"));
        var checkpoint = result.LastCheckpoint!;
        Assert.True(File.Exists(Path.Combine(checkpoint, "config.json")));
        Assert.True(File.Exists(Path.Combine(checkpoint, "tokenizer.json")));
        var losses = File.ReadAllLines(Path.Combine(result.RunDirectory, "logging.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(l => l["loss"] != null).Select(l => l["loss"]!.GetValue<double>()).ToList();
        Assert.True(losses[^1] < losses[0], string.Join(", ", losses));
        var (code, output, error) = CliRunner.Run("infer", "--model", checkpoint, "--query", "Who are you?", "--max_new_tokens", "4");
        Assert.True(code == 0, error);
        Assert.False(string.IsNullOrEmpty(output.Trim()));
    }

    [Fact]
    public void BadDatasetRowIsAOneLineErrorNamingFileLineAndField()
    {
        var dir = TestData.TempDir();
        var data = Path.Combine(dir, "bad.jsonl");
        File.WriteAllLines(data, ["""{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}""",
                                  """{"messages": "not a list"}"""]);
        var (code, _, error) = CliRunner.Run("sft", "--model", TestData.BundledModel, "--dataset", data, "--output_dir", dir, "--max_steps", "1");
        Assert.Equal(1, code);
        Assert.Contains("bad.jsonl:2", error);
        Assert.Contains("messages", error);
        Assert.Empty(Directory.GetDirectories(dir));
    }
}
