using System.Text.Json;
using SharpTune.Arguments;

namespace SharpTune.Tests.Arguments;

public class ArgumentOutputTests
{
    [Fact]
    public void ToJsonWritesEveryOptionWithSnakeCaseKeysInOrder()
    {
        var o = ArgumentParser.Parse<SampleOptions>(["--model", "Qwen/Qwen2.5-0.5B", "--temperature", "0.7", "--save_strategy", "last_round", "--stop_token_ids", "1", "2"]);
        var text = ArgumentParser.ToJson(o);
        using var doc = JsonDocument.Parse(text);
        var keys = doc.RootElement.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.Equal(["model", "train_type", "max_new_tokens", "lora_rank", "max_steps", "learning_rate", "temperature", "warmup_ratio",
            "stream", "gradient_checkpointing", "lr_scheduler_type", "save_strategy", "target_modules", "dataset", "stop_token_ids", "loss_scale"], keys);
        var root = doc.RootElement;
        Assert.Equal("Qwen/Qwen2.5-0.5B", root.GetProperty("model").GetString());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("max_new_tokens").ValueKind);
        Assert.Equal(0.0001, root.GetProperty("learning_rate").GetDouble());
        Assert.Equal(0.7, root.GetProperty("temperature").GetDouble());
        Assert.False(root.GetProperty("stream").GetBoolean());
        Assert.Equal("cosine", root.GetProperty("lr_scheduler_type").GetString());
        Assert.Equal("last_round", root.GetProperty("save_strategy").GetString());
        Assert.Equal([1, 2], root.GetProperty("stop_token_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Contains("\n  \"model\": \"Qwen/Qwen2.5-0.5B\",\n", text);
        Assert.Equal(text, ArgumentParser.ToJson(ArgumentParser.Parse<SampleOptions>(["--model", "Qwen/Qwen2.5-0.5B", "--temperature", "0.7", "--save_strategy", "last_round", "--stop_token_ids", "1", "2"])));
    }

    [Fact]
    public void ToJsonKeepsNonAsciiText()
    {
        var o = new SampleOptions { Model = "模型" };
        Assert.Contains("\"model\": \"模型\"", ArgumentParser.ToJson(o));
    }

    [Fact]
    public void HelpListsEveryFlagWithTypeDefaultAndHelp()
    {
        var help = ArgumentParser.Help<SampleOptions>("sft");
        Assert.StartsWith("usage: sharptune sft ", help);
        Assert.Contains("  --model str  (default: None)\n      model id or path\n", help);
        Assert.Contains("  --train_type, --sft_type str  (default: lora)\n      lora or full\n", help);
        Assert.Contains("  --learning_rate float  (default: 0.0001)\n", help);
        Assert.Contains("  --lr_scheduler_type {linear,cosine,cosine_with_restarts}  (default: cosine)\n", help);
        Assert.Contains("  --target_modules str [str ...]  (default: [all-linear])\n", help);
        Assert.Contains("  --stream bool  (default: false)\n", help);
        Assert.DoesNotContain("NotAnOption", help);
    }
}
