using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Arguments;
using SharpTune.Backends.Cpu;
using SharpTune.Serving;

namespace SharpTune.Bench;

/// <summary>
/// <c>serve [--clients 16] [--model DIR] [--requests R] [--prompt_tokens P] [--max_tokens T]</c>: starts the deploy server in
/// process and drives it with streaming clients over HTTP, first one client alone, then N at once, reporting requests/s,
/// output tokens/s, time to first token and inter-token latency (p50/p99), and failed requests.
/// </summary>
public static class ServeBench
{
    sealed record Load(double Seconds, int Requests, int Failures, long OutputTokens, List<double> TtftMs, List<double> ItlMs);

    public static int Run(string[] args)
    {
        int clients = Option(args, "--clients", 16), requests = Option(args, "--requests", 1);
        int promptTokens = Option(args, "--prompt_tokens", 32), maxTokens = Option(args, "--max_tokens", 32);
        // The random checkpoint borrows the real Qwen tokenizer of the shared qwen2-tiny fixture.
        string tokenizerDir = OptionText(args, "--tokenizer_dir")
            ?? Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "../../../../../../shared/testdata/models/qwen2-tiny"));
        string model = OptionText(args, "--model") ?? RandomCheckpoint.Cached(tokenizerDir);
        var deploy = ArgumentParser.Parse<DeployArguments>(["--model", model, "--port", "0", "--max_num_seqs", clients.ToString(),
                                                            "--max_model_len", "2048", "--device", "cpu"]);
        var server = DeployServer.StartAsync(deploy, CpuBackend.Instance).GetAwaiter().GetResult();
        try
        {
            using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(30) };
            Console.WriteLine($"model {model}: {server.Engine.Model.Shape.Layers} layers, hidden {server.Engine.Model.Shape.Hidden}; " +
                              $"prompt {promptTokens} tokens, {maxTokens} output tokens per request; threads {ParallelRunner.Default.ThreadCount}");
            Drive(http, 1, 1, promptTokens, 4);   // warm-up
            var single = Drive(http, 1, Math.Max(2, requests), promptTokens, maxTokens);
            Report("1 stream", single);
            var many = Drive(http, clients, requests, promptTokens, maxTokens);
            Report($"{clients} streams", many);
            double ratio = (many.OutputTokens / many.Seconds) / (single.OutputTokens / single.Seconds);
            Console.WriteLine($"aggregate output rate at {clients} streams = {ratio:F2}x the single-stream rate; failures {single.Failures + many.Failures}");
            return many.Failures + single.Failures == 0 ? 0 : 1;
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    static Load Drive(HttpClient http, int clients, int requestsPerClient, int promptTokens, int maxTokens)
    {
        var ttft = new List<double>();
        var itl = new List<double>();
        long tokens = 0;
        int failures = 0;
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var random = new Random(c);
            for (int r = 0; r < requestsPerClient; r++)
            {
                var prompt = Enumerable.Range(0, promptTokens).Select(_ => random.Next(1000, 100000)).ToArray();
                var body = new JsonObject
                {
                    ["prompt"] = new JsonArray(prompt.Select(id => (JsonNode)id).ToArray()),
                    ["max_tokens"] = maxTokens, ["temperature"] = 0, ["stream"] = true,
                    ["stream_options"] = new JsonObject { ["include_usage"] = true },
                }.ToJsonString();
                try
                {
                    var (first, gaps, count) = await Stream(http, body);
                    lock (ttft)
                    {
                        ttft.Add(first);
                        itl.AddRange(gaps);
                        tokens += count;
                    }
                }
                catch (Exception e)
                {
                    Console.Error.WriteLine($"request failed: {e.Message}");
                    Interlocked.Increment(ref failures);
                }
            }
        })).ToArray();
        Task.WaitAll(tasks);
        return new Load(clock.Elapsed.TotalSeconds, clients * requestsPerClient, failures, tokens, ttft, itl);
    }

    /// <summary>One streaming request: ms to the first text chunk, ms between later chunks, and the usage's output token count.</summary>
    static async Task<(double Ttft, List<double> Gaps, int Tokens)> Stream(HttpClient http, string body)
    {
        var start = Stopwatch.GetTimestamp();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        double first = -1;
        long last = 0;
        var gaps = new List<double>();
        int tokens = -1;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ") || line == "data: [DONE]") continue;
            var chunk = JsonDocument.Parse(line[6..]).RootElement;
            if (chunk.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                tokens = usage.GetProperty("completion_tokens").GetInt32();
            if (chunk.GetProperty("choices").GetArrayLength() == 0 || chunk.GetProperty("choices")[0].GetProperty("text").GetString() is not { Length: > 0 }) continue;
            long now = Stopwatch.GetTimestamp();
            if (first < 0) first = Stopwatch.GetElapsedTime(start, now).TotalMilliseconds;
            else gaps.Add(Stopwatch.GetElapsedTime(last, now).TotalMilliseconds);
            last = now;
        }
        if (tokens < 0) throw new InvalidOperationException("the stream ended without usage");
        return (first, gaps, tokens);
    }

    static void Report(string label, Load r) =>
        Console.WriteLine($"{label,-11}: {r.Requests} requests in {r.Seconds:F1} s = {r.Requests / r.Seconds:F2} req/s, {r.OutputTokens / r.Seconds:F1} output tok/s; " +
                          $"TTFT p50 {Percentile(r.TtftMs, 50):F0} ms p99 {Percentile(r.TtftMs, 99):F0} ms; ITL p50 {Percentile(r.ItlMs, 50):F0} ms p99 {Percentile(r.ItlMs, 99):F0} ms; failed {r.Failures}");

    static double Percentile(List<double> values, double p)
    {
        if (values.Count == 0) return double.NaN;
        var sorted = values.Order().ToArray();
        return sorted[(int)Math.Min(sorted.Length - 1, Math.Ceiling(p / 100 * sorted.Length) - 1)];
    }

    static int Option(string[] args, string name, int fallback) => OptionText(args, name) is { } v ? int.Parse(v) : fallback;

    static string? OptionText(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}
