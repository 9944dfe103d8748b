using System.ClientModel;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using SharpTune.Arguments;
using SharpTune.Backends.Cpu;
using SharpTune.Serving;

namespace SharpTune.Tests;

/// <summary>An in-process <c>deploy</c> server on 127.0.0.1 with a free port, plus clients for it.</summary>
public sealed class ServerHost : IAsyncDisposable
{
    public const string ApiKey = "test-key";

    ServerHost(DeployServer server)
    {
        Server = server;
        Http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
    }

    public DeployServer Server { get; }
    public HttpClient Http { get; }
    public OpenAIClientOptions ClientOptions => new() { Endpoint = new Uri(Server.Address, "v1") };

    /// <summary>Starts a server with deploy's flags (host 127.0.0.1, port 0 and the test API key are added).</summary>
    public static async Task<ServerHost> Start(params string[] args)
    {
        var parsed = ArgumentParser.Parse<DeployArguments>([.. args, "--host", "127.0.0.1", "--port", "0", "--api_key", ApiKey, "--device", "cpu"]);
        return new ServerHost(await DeployServer.StartAsync(parsed, CpuBackend.Instance));
    }

    public ChatClient Chat(string model) => new(model, new ApiKeyCredential(ApiKey), ClientOptions);

    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> Post(string path, string json)
    {
        var response = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    /// <summary>Posts a streaming request and returns the JSON of every <c>data:</c> event before <c>[DONE]</c> (which must end it).</summary>
    public async Task<List<JsonElement>> PostStream(string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        return events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.Clone()).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
    }
}
