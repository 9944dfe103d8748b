using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using SharpTune.Inference;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Serving;

/// <summary>
/// <c>sharptune deploy</c>: one model and its named LoRA adapters behind OpenAI's API on Kestrel, every request's choices
/// scheduled as sequences of one continuous batch (<see cref="Scheduler"/>).
/// </summary>
public sealed class DeployServer : IAsyncDisposable
{
    readonly WebApplication _app;
    readonly InferenceEngine _engine;
    readonly BatchedForward _forward;
    readonly Scheduler _scheduler;
    readonly ServingRequestParser _parser;
    readonly byte[]? _apiKey;

    DeployServer(WebApplication app, InferenceEngine engine, BatchedForward forward, Scheduler scheduler, DeployArguments args, string servedName, int maxModelLen)
    {
        _app = app;
        _engine = engine;
        _forward = forward;
        _scheduler = scheduler;
        ServedModelName = servedName;
        _parser = new ServingRequestParser(engine, args, servedName, maxModelLen);
        _apiKey = args.ApiKey == null ? null : Encoding.UTF8.GetBytes("Bearer " + args.ApiKey);
    }

    public string ServedModelName { get; }
    public InferenceEngine Engine => _engine;
    /// <summary>The address it listens on, e.g. <c>http://127.0.0.1:8000</c> (the real port when started with port 0).</summary>
    public Uri Address { get; private set; } = null!;

    public static async Task<DeployServer> StartAsync(DeployArguments args, IBackend backend)
    {
        if (args.MaxNumSeqs <= 0) throw new SharpTuneException("--max_num_seqs must be positive");
        if (args.MaxNumBatchedTokens < args.MaxNumSeqs) throw new SharpTuneException("--max_num_batched_tokens must be at least --max_num_seqs");
        if (args.Port is < 0 or > 65535) throw new SharpTuneException($"--port {args.Port} is not a TCP port");
        long bodyLimit = Export.ModelExport.ParseSize(args.MaxRequestSize);
        long budget = Export.ModelExport.ParseSize(args.KvCacheBudget);
        var address = ParseHost(args.Host);
        if (args.MaxModelLen != null) args.MaxLength = args.MaxModelLen;
        var engine = InferenceEngine.Load(args, backend);
        try
        {
            if (args.PackWeights) engine.Model.PackForFewRows();
            var shape = engine.Model.Shape;
            int maxModelLen = engine.MaxLength;
            long positions = Math.Min(budget / PagedKvCache.BytesPerPosition(shape, backend.ActivationType), (long)args.MaxNumSeqs * maxModelLen);
            int blocks = (int)Math.Min(positions / args.BlockSize, int.MaxValue / args.BlockSize);
            if (blocks == 0) throw new SharpTuneException($"--kv_cache_budget {args.KvCacheBudget} holds less than one block of {args.BlockSize} positions");
            var cache = new PagedKvCache(backend, shape, blocks, args.BlockSize);
            var forward = new BatchedForward(engine.Model, cache);
            var scheduler = new Scheduler(forward, new SchedulerLimits(args.MaxNumSeqs, args.MaxNumBatchedTokens, args.MaxQueueSize));
            string served = args.ServedModelName ?? Path.GetFileName(Path.GetFullPath(args.Model!).TrimEnd('/'));

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.Limits.MaxRequestBodySize = bodyLimit;
                if (address == null) k.ListenLocalhost(args.Port);
                else k.Listen(address, args.Port);
            });
            var app = builder.Build();
            var server = new DeployServer(app, engine, forward, scheduler, args, served, maxModelLen);
            server.Map(app);
            await app.StartAsync();
            var bound = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            server.Address = new Uri(bound);
            return server;
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    static IPAddress? ParseHost(string host)
    {
        if (host == "localhost") return null;
        return IPAddress.TryParse(host, out var ip) ? ip : throw new SharpTuneException($"--host '{host}' is not an IP address (or localhost)");
    }

    void Map(WebApplication app)
    {
        app.Use(async (ctx, next) =>
        {
            try
            {
                if (_apiKey != null && ctx.Request.Path.StartsWithSegments("/v1") && !Authorized(ctx.Request))
                    throw new ApiError(401, "Incorrect API key provided; send Authorization: Bearer KEY", code: "invalid_api_key");
                await next(ctx);
            }
            catch (ApiError e) when (!ctx.Response.HasStarted)
            {
                await WriteError(ctx, e);
            }
            catch (BadHttpRequestException e) when (!ctx.Response.HasStarted)
            {
                await WriteError(ctx, new ApiError(e.StatusCode, e.StatusCode == 413 ? "the request body is too large" : e.Message,
                                                   code: e.StatusCode == 413 ? "request_too_large" : null));
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
            }
            catch (Exception e) when (!ctx.Response.HasStarted)
            {
                await WriteJson(ctx, 500, ApiError.Body($"internal error: {e.Message}", "server_error", null, null));
            }
        });
        app.MapGet("/health", (RequestDelegate)(ctx => WriteJson(ctx, 200, new JsonObject
        {
            ["status"] = "ok",
            ["pending"] = _scheduler.Pending,
            ["free_blocks"] = _scheduler.Cache.FreeBlocks,
            ["total_blocks"] = _scheduler.Cache.BlockCount,
        })));
        app.MapGet("/v1/models", (RequestDelegate)(ctx => WriteJson(ctx, 200, Models())));
        app.MapPost("/v1/chat/completions", (RequestDelegate)(ctx => Complete(ctx, chat: true)));
        app.MapPost("/v1/completions", (RequestDelegate)(ctx => Complete(ctx, chat: false)));
        app.MapFallback((RequestDelegate)(ctx => throw new ApiError(404, $"no route {ctx.Request.Method} {ctx.Request.Path}", code: "not_found")));
    }

    bool Authorized(HttpRequest request)
    {
        var given = Encoding.UTF8.GetBytes(request.Headers.Authorization.ToString());
        return CryptographicOperations.FixedTimeEquals(given, _apiKey);
    }

    JsonObject Models()
    {
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        JsonNode Entry(string id) => new JsonObject { ["id"] = id, ["object"] = "model", ["created"] = created, ["owned_by"] = "sharptune" };
        var names = new[] { ServedModelName }.Concat(_engine.Adapters.Select(a => a.Name));
        return new JsonObject { ["object"] = "list", ["data"] = new JsonArray(names.Select(Entry).ToArray()) };
    }

    async Task Complete(HttpContext ctx, bool chat)
    {
        var request = _parser.Parse(await ReadJson(ctx), chat);
        var sequences = request.Choices
            .Select(o => new ServingSequence(request.PromptIds, request.Adapter, new TokenStream(request.PromptIds, o, _engine.Tokenizer)))
            .ToList();
        if (!_scheduler.Fits(sequences[0].MaxPositions))
            throw new ApiError(400, $"the prompt and max_tokens ({sequences[0].MaxPositions} positions) do not fit the KV cache; raise --kv_cache_budget", chat ? "messages" : "prompt");
        if (!_scheduler.TrySubmit(sequences))
        {
            ctx.Response.Headers.RetryAfter = "1";
            throw new ApiError(429, "the server is busy; retry later", type: "rate_limit_error", code: "rate_limit_exceeded");
        }
        using var cancel = ctx.RequestAborted.Register(() =>
        {
            foreach (var s in sequences) s.Cancel();
            _scheduler.Poke();
        });
        var json = new ResponseJson(request);
        if (request.Stream) await Stream(ctx, request, sequences, json);
        else
        {
            var results = new List<GenerationResult>();
            foreach (var s in sequences)
                await foreach (var e in s.Events.ReadAllAsync(ctx.RequestAborted))
                {
                    if (e.Error != null) throw e.Error;
                    if (e.Final != null) results.Add(e.Final);
                }
            await WriteJson(ctx, 200, json.Complete(results));
        }
    }

    static async Task Stream(HttpContext ctx, ServingRequest request, List<ServingSequence> sequences, ResponseJson json)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var abort = ctx.RequestAborted;
        // The choices' events merged in arrival order (one reader per choice feeding one writer).
        var merged = System.Threading.Channels.Channel.CreateUnbounded<(int Index, SequenceEvent Event)>();
        var readers = sequences.Select(async (s, i) =>
        {
            await foreach (var e in s.Events.ReadAllAsync(abort)) await merged.Writer.WriteAsync((i, e), abort);
        }).ToList();
        _ = Task.WhenAll(readers).ContinueWith(t => merged.Writer.TryComplete(t.Exception), TaskScheduler.Default);
        if (request.Chat)
            for (int i = 0; i < sequences.Count; i++) await Send(ctx, json.Chunk(i, "", null, null, first: true));
        int completionTokens = 0;
        await foreach (var (i, e) in merged.Reader.ReadAllAsync(abort))
        {
            if (e.Error != null)
            {
                await Send(ctx, ApiError.Body(e.Error.Message, "server_error", null, null));
                break;
            }
            if (e.Text.Length > 0 || (request.Logprobs && e.Token != null)) await Send(ctx, json.Chunk(i, e.Text, e.Token, null));
            if (e.Final != null)
            {
                completionTokens += e.Final.TokenIds.Count;
                await Send(ctx, json.Chunk(i, null, null, e.Final.FinishReason));
            }
        }
        if (request.IncludeUsage) await Send(ctx, json.UsageChunk(completionTokens));
        await ctx.Response.WriteAsync("data: [DONE]\n\n", abort);
        await ctx.Response.Body.FlushAsync(abort);
    }

    static async Task Send(HttpContext ctx, JsonObject chunk)
    {
        await ctx.Response.WriteAsync("data: " + chunk.ToJsonString() + "\n\n", ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }

    static async Task<JsonElement> ReadJson(HttpContext ctx)
    {
        var limit = ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        if (ctx.Request.ContentLength > limit) throw new ApiError(413, "the request body is too large", code: "request_too_large");
        using var body = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(body, ctx.RequestAborted);
        try
        {
            using var doc = JsonDocument.Parse(body.ToArray());
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ApiError(400, $"the request body is not valid JSON: {e.Message}");
        }
    }

    static Task WriteError(HttpContext ctx, ApiError e) => WriteJson(ctx, e.Status, e.ToJson());

    static async Task WriteJson(HttpContext ctx, int status, JsonObject body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    /// <summary>Runs until the process is asked to stop (Ctrl+C, SIGTERM).</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _scheduler.Dispose();
        _forward.Dispose();
        _forward.Cache.Dispose();
        _engine.Dispose();
    }
}
