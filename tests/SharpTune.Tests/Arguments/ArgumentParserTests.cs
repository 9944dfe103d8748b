using SharpTune.Arguments;

namespace SharpTune.Tests.Arguments;

public class ArgumentParserTests
{
    static SampleOptions Parse(params string[] argv) => ArgumentParser.Parse<SampleOptions>(argv);

    static string Error(params string[] argv) => Assert.Throws<SharpTuneException>(() => Parse(argv)).Message;

    [Fact]
    public void NoArgumentsKeepsDefaults()
    {
        var o = Parse();
        Assert.Null(o.Model);
        Assert.Equal("lora", o.TrainType);
        Assert.Equal(8, o.LoraRank);
        Assert.Equal(SchedulerKind.Cosine, o.LrSchedulerType);
        Assert.Equal(["all-linear"], o.TargetModules);
    }

    [Fact]
    public void ParsesEveryScalarType()
    {
        var o = Parse("--model", "Qwen/Qwen2.5-0.5B", "--max_new_tokens", "64", "--lora_rank", "16", "--max_steps", "5000000000",
            "--learning_rate", "1e-4", "--temperature", "0.7", "--warmup_ratio", "0.05", "--stream", "true",
            "--gradient_checkpointing", "False", "--lr_scheduler_type", "cosine_with_restarts", "--save_strategy", "LAST_ROUND");
        Assert.Equal("Qwen/Qwen2.5-0.5B", o.Model);
        Assert.Equal(64, o.MaxNewTokens);
        Assert.Equal(16, o.LoraRank);
        Assert.Equal(5_000_000_000L, o.MaxSteps);
        Assert.Equal(1e-4f, o.LearningRate);
        Assert.Equal(0.7f, o.Temperature);
        Assert.Equal(0.05, o.WarmupRatio);
        Assert.True(o.Stream);
        Assert.False(o.GradientCheckpointing);
        Assert.Equal(SchedulerKind.CosineWithRestarts, o.LrSchedulerType);
        Assert.Equal(SaveStrategy.LastRound, o.SaveStrategy);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("True", true)]
    [InlineData("1", true)]
    [InlineData("false", false)]
    [InlineData("False", false)]
    [InlineData("0", false)]
    public void BoolSpellings(string text, bool expected) => Assert.Equal(expected, Parse("--stream", text).Stream);

    [Fact]
    public void BareBoolFlagMeansTrue()
    {
        var o = Parse("--stream", "--gradient_checkpointing");
        Assert.True(o.Stream);
        Assert.True(o.GradientCheckpointing);
    }

    [Fact]
    public void EqualsFormAndNegativeNumbers()
    {
        var o = Parse("--temperature=0.3", "--max_steps", "-1", "--model=a=b", "--target_modules=q_proj");
        Assert.Equal(0.3f, o.Temperature);
        Assert.Equal(-1, o.MaxSteps);
        Assert.Equal("a=b", o.Model);
        Assert.Equal(["q_proj"], o.TargetModules);
    }

    [Fact]
    public void AliasSetsTheSameProperty() => Assert.Equal("full", Parse("--sft_type", "full").TrainType);

    [Fact]
    public void NoneResetsANullableNumber() => Assert.Null(Parse("--max_new_tokens", "None").MaxNewTokens);

    [Fact]
    public void ListsTakeEveryTokenUpToTheNextFlag()
    {
        var o = Parse("--target_modules", "q_proj", "k_proj", "v_proj", "--dataset", "a.jsonl", "b#100",
            "--stop_token_ids", "151645", "151643", "--loss_scale", "0.5", "1e-1", "--lora_rank", "4");
        Assert.Equal(["q_proj", "k_proj", "v_proj"], o.TargetModules);
        Assert.Equal(["a.jsonl", "b#100"], o.Dataset);
        Assert.Equal([151645, 151643], o.StopTokenIds);
        Assert.Equal([0.5f, 0.1f], o.LossScale);
        Assert.Equal(4, o.LoraRank);
    }

    [Fact]
    public void LastOccurrenceWins() => Assert.Equal(32, Parse("--lora_rank", "8", "--lora_rank", "32").LoraRank);

    [Fact]
    public void UnknownFlagSuggestsTheClosestName()
    {
        Assert.Equal("unknown argument --lora_rnak (did you mean 'lora_rank'?)", Error("--lora_rnak", "8"));
        Assert.Equal("unknown argument --frobnicate", Error("--frobnicate"));
    }

    [Fact]
    public void BadValuesNameTheFlag()
    {
        Assert.Equal("--temperature: 'abc' is not a number", Error("--temperature", "abc"));
        Assert.Equal("--lora_rank: '8.5' is not an integer", Error("--lora_rank", "8.5"));
        Assert.Equal("--lora_rank: '9999999999' is out of range (-2147483648..2147483647)", Error("--lora_rank", "9999999999"));
        Assert.Equal("--stream: 'maybe' is not a boolean (true/false)", Error("--stream", "maybe"));
        Assert.Equal("--stop_token_ids: 'x' is not an integer", Error("--stop_token_ids", "1", "x"));
        Assert.Equal("--lr_scheduler_type: 'cosin' is not one of linear, cosine, cosine_with_restarts (did you mean 'cosine'?)",
            Error("--lr_scheduler_type", "cosin"));
    }

    [Fact]
    public void MissingAndExtraValues()
    {
        Assert.Equal("--lora_rank: expected a value", Error("--lora_rank"));
        Assert.Equal("--target_modules: expected one or more values", Error("--target_modules", "--lora_rank", "4"));
        Assert.Equal("--model: expected one value, got 2 ('a' 'b')", Error("--model", "a", "b"));
    }

    [Fact]
    public void PositionalTokenIsAnError() =>
        Assert.Equal("unexpected argument 'sft': options are given as --name value", Error("sft", "--model", "x"));

    [Fact]
    public void PropertiesWithoutArgAreNotFlags() => Assert.StartsWith("unknown argument --NotAnOption", Error("--NotAnOption", "x"));
}
