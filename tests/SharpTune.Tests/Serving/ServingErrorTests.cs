using System.Text;
using System.Text.Json;

namespace SharpTune.Tests.Serving;

/// <summary>Bad requests get OpenAI's error object with the right status (never a 500), and the server keeps serving.</summary>
public class ServingErrorTests
{
    static void AssertError(int expectedStatus, string? param, (int Status, JsonElement Body, HttpResponseMessage _) r)
    {
        Assert.Equal(expectedStatus, r.Status);
        var error = r.Body.GetProperty("error");
        Assert.False(string.IsNullOrEmpty(error.GetProperty("message").GetString()));
        Assert.Equal(JsonValueKind.String, error.GetProperty("type").ValueKind);
        Assert.True(error.TryGetProperty("code", out _));
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("{\"messages\": [", null)]
    [InlineData("[1, 2]", null)]
    [InlineData("{\"model\": \"stories260K\"}", "messages")]
    [InlineData("{\"messages\": \"hello\"}", "messages")]
    [InlineData("{\"messages\": []}", "messages")]
    [InlineData("{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "messages[0].role")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 0}", "max_tokens")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": -3}", "max_tokens")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 100000}", "max_tokens")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_completion_tokens\": \"ten\"}", "max_completion_tokens")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 1000}", "n")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"}", "temperature")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_p\": 0}", "top_p")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stream\": \"yes\"}", "stream")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": [1]}", "stop")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 30, \"logprobs\": true}", "top_logprobs")]
    public async Task BadChatRequestsAre400WithTheField(string body, string? param)
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        AssertError(400, param, await host.Post("v1/chat/completions", body));
        // Still serving afterwards.
        var (status, _, _) = await host.Post("v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}""");
        Assert.Equal(200, status);
    }

    [Theory]
    [InlineData("{}", "prompt")]
    [InlineData("{\"prompt\": {\"text\": 1}}", "prompt")]
    [InlineData("{\"prompt\": [1, 2, 99999]}", "prompt")]
    [InlineData("{\"prompt\": \"hi\", \"logprobs\": 9}", "logprobs")]
    public async Task BadCompletionRequestsAre400WithTheField(string body, string param)
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        AssertError(400, param, await host.Post("v1/completions", body));
    }

    [Fact]
    public async Task UnknownModelIs404AndAPromptLongerThanTheContextIs400()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel, "--max_model_len", "64");
        var notFound = await host.Post("v1/chat/completions", """{"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]}""");
        AssertError(404, "model", notFound);
        Assert.Equal("model_not_found", notFound.Body.GetProperty("error").GetProperty("code").GetString());
        var longPrompt = JsonSerializer.Serialize(new { prompt = string.Join(" ", Enumerable.Repeat("the cat sat", 40)) });
        AssertError(400, "prompt", await host.Post("v1/completions", longPrompt));
        AssertError(400, "max_tokens", await host.Post("v1/completions", """{"prompt": "hi", "max_tokens": 64}"""));
    }

    [Fact]
    public async Task MissingOrWrongApiKeyIs401OnV1ButHealthIsOpen()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        using var anonymous = new HttpClient { BaseAddress = host.Server.Address };
        foreach (var auth in new[] { null, "Bearer wrong", "test-key" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "v1/models");
            if (auth != null) request.Headers.TryAddWithoutValidation("Authorization", auth);
            using var response = await anonymous.SendAsync(request);
            Assert.Equal(401, (int)response.StatusCode);
            var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        }
        using var health = await anonymous.GetAsync("health");
        Assert.Equal(200, (int)health.StatusCode);
        using var models = await host.Http.GetAsync("v1/models");
        Assert.Equal(200, (int)models.StatusCode);
    }

    [Fact]
    public async Task BodyOverTheLimitIs413()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel, "--max_request_size", "10000");
        var big = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = new string('a', 20000) } } });
        // Expect: 100-continue, as large uploads send it: the server refuses from the headers without reading the body, so
        // the client never starts sending it (without it the refusal can race the upload and reset the connection).
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new StringContent(big, Encoding.UTF8, "application/json") };
        request.Headers.ExpectContinue = true;
        using var response = await host.Http.SendAsync(request);
        Assert.Equal(413, (int)response.StatusCode);
        var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
    }

    [Fact]
    public async Task AFullQueueAnswers429WithRetryAfter()
    {
        // One sequence at a time and no waiting room: while one request runs, the next is refused.
        await using var host = await ServerHost.Start("--model", TestData.BundledModel, "--max_num_seqs", "1", "--max_queue_size", "0");
        using var running = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
        {
            Content = new StringContent("""{"prompt": "Once", "max_tokens": 500, "stream": true, "temperature": 0, "repetition_penalty": 1.3}""", Encoding.UTF8, "application/json"),
        };
        using var stream = await host.Http.SendAsync(running, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)stream.StatusCode);
        var refused = await host.Post("v1/completions", """{"prompt": "Twice", "max_tokens": 5}""");
        AssertError(429, null, refused);
        Assert.Equal("1", refused.Response.Headers.GetValues("Retry-After").Single());
    }

    [Fact]
    public async Task AClientThatDisconnectsFreesItsBlocksAtOnce()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel);
        var health = await Health(host);
        int total = health.GetProperty("total_blocks").GetInt32();
        Assert.Equal(total, health.GetProperty("free_blocks").GetInt32());
        using (var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions"))
        {
            // Repetition penalty keeps the model from ending early; 400 tokens take far longer than the test waits.
            request.Content = new StringContent("""{"prompt": "Once", "max_tokens": 400, "stream": true, "temperature": 0, "repetition_penalty": 1.3}""", Encoding.UTF8, "application/json");
            using var response = await host.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            Assert.StartsWith("data: ", await reader.ReadLineAsync());
            Assert.True((await Health(host)).GetProperty("free_blocks").GetInt32() < total);
        }
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while ((await Health(host)).GetProperty("free_blocks").GetInt32() != total && DateTime.UtcNow < deadline) await Task.Delay(20);
        health = await Health(host);
        Assert.Equal(total, health.GetProperty("free_blocks").GetInt32());
        Assert.Equal(0, health.GetProperty("pending").GetInt32());
    }

    static async Task<JsonElement> Health(ServerHost host) =>
        JsonDocument.Parse(await host.Http.GetStringAsync("health")).RootElement.Clone();
}

public class DeployCommandTests
{
    [Theory]
    [InlineData("--host", "example.com", "--host")]
    [InlineData("--port", "70000", "--port")]
    [InlineData("--kv_cache_budget", "1", "--kv_cache_budget")]
    [InlineData("--max_num_seqs", "0", "--max_num_seqs")]
    public void BadFlagsExitWithOneLineNamingTheFlag(string flag, string value, string named)
    {
        var (code, _, error) = CliRunner.Run("deploy", "--model", TestData.BundledModel, flag, value);
        Assert.Equal(1, code);
        Assert.Contains(named, error);
        Assert.Single(error.Trim().Split('\n'));
    }

    [Fact]
    public void HelpListsTheServingFlags()
    {
        var (code, output, _) = CliRunner.Run("deploy", "--help");
        Assert.Equal(0, code);
        foreach (var flag in new[] { "--served_model_name", "--api_key", "--max_num_seqs", "--max_model_len", "--kv_cache_budget", "--temperature" })
            Assert.Contains(flag, output);
    }
}
