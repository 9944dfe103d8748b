namespace SharpTune.Tests.Cli;

/// <summary>Bad input gets one line naming the file or flag and what is wrong, a non-zero exit, and no stack trace.</summary>
public class BadInputTests
{
    static void AssertOneLineError((int ExitCode, string Output, string Error) result, params string[] mentions)
    {
        Assert.NotEqual(0, result.ExitCode);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.DoesNotContain("   at ", result.Error);
        foreach (var m in mentions) Assert.True(lines[0].Contains(m), $"expected '{m}' in: {lines[0]}");
    }

    static string CopyOfStories()
    {
        var dir = TestData.TempDir("model");
        foreach (var f in Directory.GetFiles(TestData.BundledModel)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }

    [Fact]
    public void MissingModelFolder() =>
        AssertOneLineError(CliRunner.Run("infer", "--model", "/nonexistent/model", "--query", "hi"), "/nonexistent/model");

    [Fact]
    public void TruncatedSafetensors()
    {
        var dir = CopyOfStories();
        var path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        AssertOneLineError(CliRunner.Run("infer", "--model", dir, "--query", "hi"), "model.safetensors");
    }

    [Fact]
    public void LyingSafetensorsHeaderLength()
    {
        var dir = CopyOfStories();
        var path = Path.Combine(dir, "model.safetensors");
        var bytes = File.ReadAllBytes(path);
        BitConverter.GetBytes((ulong)bytes.Length * 4).CopyTo(bytes, 0);
        File.WriteAllBytes(path, bytes);
        AssertOneLineError(CliRunner.Run("infer", "--model", dir, "--query", "hi"), "model.safetensors");
    }

    [Fact]
    public void UnknownModelType()
    {
        var dir = CopyOfStories();
        var config = Path.Combine(dir, "config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"llama\"", "\"mamba\""));
        AssertOneLineError(CliRunner.Run("infer", "--model", dir, "--query", "hi"), "config.json", "mamba");
    }

    [Fact]
    public void UnsupportedTokenizerComponent()
    {
        var dir = CopyOfStories();
        var path = Path.Combine(dir, "tokenizer.json");
        var json = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!;
        json["pre_tokenizer"] = new System.Text.Json.Nodes.JsonObject { ["type"] = "BertPreTokenizer" };
        File.WriteAllText(path, json.ToJsonString());
        AssertOneLineError(CliRunner.Run("infer", "--model", dir, "--query", "hi"), "tokenizer.json", "BertPreTokenizer");
    }

    [Fact]
    public void BadArgumentValue() =>
        AssertOneLineError(CliRunner.Run("infer", "--model", TestData.BundledModel, "--temperature", "hot"), "--temperature", "hot");

    [Fact]
    public void UnknownArgument() =>
        AssertOneLineError(CliRunner.Run("infer", "--model", TestData.BundledModel, "--temprature", "0"), "--temprature", "temperature");

    [Fact]
    public void OutOfRangeArgument() =>
        AssertOneLineError(CliRunner.Run("infer", "--model", TestData.BundledModel, "--query", "x", "--top_p", "1.5"), "--top_p");

    [Fact]
    public void VerbosePrintsTheStackTrace()
    {
        var result = CliRunner.Run("infer", "--model", "/nonexistent/model", "--query", "hi", "--verbose");
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("   at ", result.Error);
    }
}
