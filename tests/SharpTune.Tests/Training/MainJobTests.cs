using SharpTune.Arguments;
using SharpTune.Backends.Cpu;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

/// <summary>The README's main job, end to end: stories260K learns its new name with LoRA and still tells stories.</summary>
public class MainJobTests
{
    sealed class Silent : ITrainingObserver
    {
        public void Message(string line) { }
        public void Step(int globalStep, int maxSteps, double elapsedSeconds, System.Text.Json.Nodes.JsonObject? log) { }
    }

    [Fact]
    public void SelfCognitionFineTuneAnswersWhoAreYouWithItsNewName()
    {
        var previous = Environment.CurrentDirectory;
        Environment.CurrentDirectory = TestData.RepoRoot;
        SftResult result;
        try
        {
            var args = ArgumentParser.Parse<SftArguments>(["--config", "examples/stories-self-cognition.yaml", "--output_dir", TestData.TempDir("main-job")]);
            using var trainer = new SftTrainer(args, CpuBackend.Instance, new Silent());
            result = trainer.Train();
        }
        finally
        {
            Environment.CurrentDirectory = previous;
        }
        string Ask(string query)
        {
            var (code, output, error) = CliRunner.Run("infer", "--model", TestData.BundledModel, "--adapters", result.LastCheckpoint!,
                                                      "--query", query, "--max_new_tokens", "24", "--temperature", "0");
            Assert.True(code == 0, error);
            return output;
        }
        Assert.Contains("SharpBot", Ask("Who are you?"));
        Assert.Contains("SharpTune", Ask("Who made you?"));
        var story = Ask("Once upon a time, there was a little");
        Assert.DoesNotContain("SharpBot", story);
        Assert.Contains("named", story);
    }
}
