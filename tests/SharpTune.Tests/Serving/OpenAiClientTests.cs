using System.Text;
using System.Text.Json;
using OpenAI.Chat;
using OpenAI.Models;
using SharpTune.Inference;

#pragma warning disable OPENAI001 // ChatCompletionOptions.Seed is marked experimental

namespace SharpTune.Tests.Serving;

/// <summary>The official OpenAI .NET client against an in-process <c>deploy</c>: answers equal <c>sharptune infer</c>'s.</summary>
public class OpenAiClientTests
{
    static string Infer(params string[] args)
    {
        var (code, output, error) = CliRunner.Run(["infer", "--stream", "false", .. args]);
        Assert.True(code == 0, error);
        Assert.EndsWith("\n", output);
        return output[..^1];
    }

    [Fact]
    public async Task GreedyChatEqualsInferAndReportsUsage()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var expected = Infer("--model", TestData.BundledModel, "--query", "Lily saw a dog", "--max_new_tokens", "40", "--temperature", "0");
        ChatCompletion answer = await host.Chat("stories260K").CompleteChatAsync([new UserChatMessage("Lily saw a dog")],
            new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 40 });
        Assert.Equal(expected, answer.Content[0].Text);
        Assert.Equal("stories260K", answer.Model);
        Assert.Equal(ChatMessageRole.Assistant, answer.Role);
        Assert.InRange(answer.Usage.OutputTokenCount, 1, 40);
        Assert.Equal(answer.FinishReason == ChatFinishReason.Length ? 40 : answer.Usage.OutputTokenCount, answer.Usage.OutputTokenCount);
        var prompt = host.Server.Engine.EncodeChat([new SharpTune.Templates.ChatMessage("user", "Lily saw a dog")], null).Ids;
        Assert.Equal(prompt.Length, answer.Usage.InputTokenCount);
        Assert.Equal(prompt.Length + answer.Usage.OutputTokenCount, answer.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task SampledChatWithASeedEqualsInferWithThatSeed()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var expected = Infer("--model", TestData.BundledModel, "--query", "Tom had a ball", "--max_new_tokens", "30",
                             "--temperature", "0.9", "--top_p", "0.95", "--seed", "1234");
        var options = new ChatCompletionOptions { Temperature = 0.9f, TopP = 0.95f, MaxOutputTokenCount = 30, Seed = 1234 };
        ChatCompletion answer = await host.Chat("stories260K").CompleteChatAsync([new UserChatMessage("Tom had a ball")], options);
        Assert.Equal(expected, answer.Content[0].Text);
        options.Seed = 99;
        ChatCompletion other = await host.Chat("stories260K").CompleteChatAsync([new UserChatMessage("Tom had a ball")], options);
        Assert.NotEqual(expected, other.Content[0].Text);
    }

    [Fact]
    public async Task StreamingChatDeltasJoinToTheNonStreamedAnswer()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var chat = host.Chat("stories260K");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 50 };
        ChatCompletion whole = await chat.CompleteChatAsync([new UserChatMessage("The sun was hot")], options);
        var text = new StringBuilder();
        ChatFinishReason? finish = null;
        ChatTokenUsage? usage = null;
        int updates = 0;
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("The sun was hot")], options))
        {
            updates++;
            foreach (var part in update.ContentUpdate) text.Append(part.Text);
            finish ??= update.FinishReason;
            usage ??= update.Usage;
        }
        Assert.Equal(whole.Content[0].Text, text.ToString());
        Assert.True(updates > 3, $"only {updates} updates: the answer was not streamed");
        Assert.Equal(whole.FinishReason, finish);
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.OutputTokenCount, usage!.OutputTokenCount);
    }

    [Fact]
    public async Task StopSequenceCutsTheAnswerBeforeIt()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var chat = host.Chat("stories260K");
        ChatCompletion free = await chat.CompleteChatAsync([new UserChatMessage("Once upon a time")], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 60 });
        var full = free.Content[0].Text;
        var words = full.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var stop = words[words.Length / 2];
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 60 };
        options.StopSequences.Add(stop);
        ChatCompletion cut = await chat.CompleteChatAsync([new UserChatMessage("Once upon a time")], options);
        Assert.Equal(full[..full.IndexOf(stop, StringComparison.Ordinal)], cut.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
    }

    [Fact]
    public async Task LogprobsEqualTheGeneratorsAndListTheTopAlternatives()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 20, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        ChatCompletion answer = await host.Chat("stories260K").CompleteChatAsync([new UserChatMessage("A big tree")], options);
        var engine = host.Server.Engine;
        var ids = engine.EncodeChat([new SharpTune.Templates.ChatMessage("user", "A big tree")], null).Ids;
        var reference = engine.Generator.Generate(ids, engine.Sampling(new InferArguments { Temperature = 0, MaxNewTokens = 20, Logprobs = true, TopLogprobs = 3 }, ids.Length));
        Assert.Equal(reference.Tokens.Count, answer.ContentTokenLogProbabilities.Count);
        foreach (var (got, want) in answer.ContentTokenLogProbabilities.Zip(reference.Tokens))
        {
            Assert.Equal(want.Text, got.Token);
            Assert.Equal(want.Logprob!.Value, got.LogProbability, 4);
            Assert.Equal(3, got.TopLogProbabilities.Count);
            Assert.Equal(got.Token, got.TopLogProbabilities[0].Token);
            Assert.Equal(want.TopLogprobs!.Select(t => t.Text), got.TopLogProbabilities.Select(t => t.Token));
        }
    }

    [SkippableFact]
    public async Task ModelsListTheBaseAndEveryAdapterAndTheModelFieldSelectsTheAdapter()
    {
        var dir = TestData.Model("qwen2-tiny");
        var adapter = Path.Combine(dir, "lora_adapter");
        await using var host = await ServerHost.Start("--model", dir, "--adapters", $"tuned={adapter}", "--served_model_name", "base");
        var models = await new OpenAIModelClient(new System.ClientModel.ApiKeyCredential(ServerHost.ApiKey), host.ClientOptions).GetModelsAsync();
        Assert.Equal(["base", "tuned"], models.Value.Select(m => m.Id));

        var withAdapter = Infer("--model", dir, "--adapters", adapter, "--query", "Who are you?", "--max_new_tokens", "12", "--temperature", "0");
        var withoutAdapter = Infer("--model", dir, "--query", "Who are you?", "--max_new_tokens", "12", "--temperature", "0");
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12, IncludeLogProbabilities = true };
        // Both requests at once, so the adapter's rows and the base rows share batched steps.
        var tuned = host.Chat("tuned").CompleteChatAsync([new UserChatMessage("Who are you?")], options);
        var plain = host.Chat("base").CompleteChatAsync([new UserChatMessage("Who are you?")], options);
        ChatCompletion tunedAnswer = await tuned, plainAnswer = await plain;
        Assert.Equal(withAdapter, tunedAnswer.Content[0].Text);
        Assert.Equal(withoutAdapter, plainAnswer.Content[0].Text);
        Assert.Equal("tuned", tunedAnswer.Model);
        Assert.NotEqual(plainAnswer.ContentTokenLogProbabilities[0].LogProbability, tunedAnswer.ContentTokenLogProbabilities[0].LogProbability);
    }

    [Fact]
    public async Task TextCompletionsFromTextOrTokenIdsEqualRawInfer()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var expected = Infer("--model", TestData.BundledModel, "--use_chat_template", "false", "--query", "One day, a little girl",
                             "--max_new_tokens", "30", "--temperature", "0");
        var (status, body, _) = await host.Post("v1/completions",
            """{"model": "stories260K", "prompt": "One day, a little girl", "max_tokens": 30, "temperature": 0}""");
        Assert.Equal(200, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal(expected, body.GetProperty("choices")[0].GetProperty("text").GetString());

        var ids = host.Server.Engine.EncodeRaw("One day, a little girl");
        var (_, fromIds, _) = await host.Post("v1/completions", JsonSerializer.Serialize(new { model = "stories260K", prompt = ids, max_tokens = 30, temperature = 0 }));
        Assert.Equal(expected, fromIds.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(ids.Length, fromIds.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());

        var chunks = await host.PostStream("v1/completions",
            """{"model": "stories260K", "prompt": "One day, a little girl", "max_tokens": 30, "temperature": 0, "stream": true, "logprobs": 2}""");
        Assert.Equal(expected, string.Concat(chunks.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.NotNull(chunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var withLogprobs = chunks.Where(c => c.GetProperty("choices")[0].GetProperty("logprobs").ValueKind == JsonValueKind.Object).ToList();
        Assert.NotEmpty(withLogprobs);
        Assert.All(withLogprobs, c => Assert.Equal(2, c.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("top_logprobs")[0].EnumerateObject().Count()));
    }

    [Fact]
    public async Task SeveralChoicesDrawFromConsecutiveSeeds()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var (status, body, _) = await host.Post("v1/chat/completions",
            """{"model": "stories260K", "messages": [{"role": "user", "content": [{"type": "text", "text": "The dog"}]}], "n": 3, "seed": 5, "temperature": 1, "max_tokens": 20}""");
        Assert.Equal(200, status);
        var choices = body.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal([0, 1, 2], choices.Select(c => c.GetProperty("index").GetInt32()));
        for (int i = 0; i < 3; i++)
        {
            var expected = Infer("--model", TestData.BundledModel, "--query", "The dog", "--max_new_tokens", "20", "--temperature", "1", "--seed", (5 + i).ToString());
            Assert.Equal(expected, choices[i].GetProperty("message").GetProperty("content").GetString());
        }
    }
}
