using System.Text.Json;

namespace SharpTune.Tests.Cli;

public class InferCommandTests
{
    [SkippableFact]
    public void StoriesGreedyFromBosIsTheDocumentedTextByteForByte()
    {
        var expected = File.ReadAllText(TestData.Require("models", "stories260K", "expected_greedy.txt"));
        // llama2.c's 256 steps from BOS: the empty raw query is just BOS; the command ends the answer with a newline, as llama2.c does.
        var (code, output, error) = CliRunner.Run("infer", "--model", TestData.BundledModel, "--use_chat_template", "false",
                                                  "--query", "", "--max_new_tokens", "256");
        Assert.True(code == 0, error);
        Assert.Equal(expected, output);
    }

    [SkippableFact]
    public void BatchInferenceWritesPromptsIdsAndGreedyContinuationsLikeTransformers()
    {
        var reference = new Reference("qwen2-tiny");
        var dir = TestData.TempDir();
        var dataset = Path.Combine(dir, "val.jsonl");
        var prompts = reference.Prompts.ToArray();
        File.WriteAllLines(dataset, prompts.Select(p => JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = p.GetProperty("text").GetString() } } })));
        var result = Path.Combine(dir, "result.jsonl");
        var (code, _, error) = CliRunner.Run("infer", "--model", reference.Dir, "--use_chat_template", "false", "--val_dataset", dataset,
                                             "--result_path", result, "--max_new_tokens", "12", "--temperature", "0", "--logprobs", "true", "--top_logprobs", "3");
        Assert.True(code == 0, error);
        var rows = File.ReadAllLines(result).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
        Assert.Equal(prompts.Length, rows.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            Assert.Equal(Reference.Ints(prompts[i].GetProperty("input_ids")), Reference.Ints(rows[i].GetProperty("prompt_ids")));
            var generated = Reference.Ints(rows[i].GetProperty("generated_ids"));
            var greedy = Reference.Ints(prompts[i].GetProperty("greedy_ids"));
            var margins = Reference.Doubles(prompts[i].GetProperty("greedy_top2_margins"));
            for (int s = 0; s < greedy.Length && margins[s] >= 1e-3; s++) Assert.Equal(greedy[s], generated[s]);
            var logprobs = rows[i].GetProperty("logprobs").GetProperty("content").EnumerateArray().ToArray();
            Assert.Equal(generated.Length, logprobs.Length);
            foreach (var (entry, id) in logprobs.Zip(generated))
            {
                // Greedy: the chosen token is the most likely one, and it heads the alternatives.
                var top = entry.GetProperty("top_logprobs").EnumerateArray().ToArray();
                Assert.Equal(3, top.Length);
                Assert.Equal(id, entry.GetProperty("token_id").GetInt32());
                Assert.Equal(id, top[0].GetProperty("token_id").GetInt32());
                Assert.True(entry.GetProperty("logprob").GetDouble() <= 0);
                Assert.True(top[0].GetProperty("logprob").GetDouble() >= top[1].GetProperty("logprob").GetDouble());
            }
        }
    }

    [SkippableFact]
    public void OneShotQueryWithTheChatTemplateAnswersAndStops()
    {
        var dir = TestData.Model("qwen2-tiny");
        var (code, output, error) = CliRunner.Run("infer", "--model", dir, "--query", "Who are you?", "--max_new_tokens", "5", "--temperature", "0");
        Assert.True(code == 0, error);
        Assert.False(string.IsNullOrWhiteSpace(output));
    }

    [Fact]
    public void InteractiveChatFollowsMsSwiftCommands()
    {
        var input = "Once\nclear\nmulti-line\nthere was\na dog#\nsingle-line#\nexit\n";
        var (code, output, error) = CliRunner.RunWithInput(input, "infer", "--model", TestData.BundledModel, "--max_new_tokens", "8", "--temperature", "0");
        Assert.True(code == 0, error);
        Assert.Contains("<<< ", output);
        Assert.Contains("<<<[M] ", output);
        Assert.Equal(2, output.Split(">>> ").Length - 1);
    }
}
