using System.Diagnostics;
using SharpTune.Adapters;
using SharpTune.Backends.Cuda;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Bench;

/// <summary>
/// `cuda-train [7b|0.5b] [steps] [keep-attention]` and `cuda-decode [7b|0.5b] [tokens]`: LoRA training and greedy decoding on the GPU with
/// random bfloat16 weights made on the device at Qwen2.5 shapes, against the machine's own limits measured in the same run
/// (the bf16 matrix rate for MFU, the device-copy bandwidth for decoding).
/// </summary>
public static class CudaBench
{
    sealed record Shape(int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int Vocab, bool Tied);

    static Shape Of(string name) => name switch
    {
        "7b" => new(3584, 18944, 28, 28, 4, 152064, false),
        "0.5b" => new(896, 4864, 24, 14, 2, 151936, true),
        _ => throw new ArgumentException($"unknown shape '{name}' (7b or 0.5b)"),
    };

    public static int Train(string[] args)
    {
        var shape = Of(args.ElementAtOrDefault(0) ?? "7b");
        int steps = int.Parse(args.ElementAtOrDefault(1) ?? "5");
        bool keepAttention = args.ElementAtOrDefault(2) switch
        {
            null => false,
            "keep-attention" => true,
            var other => throw new ArgumentException($"unknown option '{other}' (keep-attention)"),
        };
        const int sequence = 2048;
        using var be = CudaBackend.Create();
        double peak = MatrixRate(be);
        using var model = RandomModel(be, shape);
        var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 8, Alpha = 32, Dropout = 0.05 }, seed: 1);
        using var grads = new GradientSet(be);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add(module.Name + ".lora_A", branch.A);
            grads.Add(module.Name + ".lora_B", branch.B);
        }
        using var optimizer = new AdamWOptimizer(be, grads, 0.9, 0.999, 1e-8, 0.0);
        var step = new CausalLmStep(model, gradientCheckpointing: true, keepAttention);
        var random = new Random(7);
        var ids = Enumerable.Range(0, sequence + 1).Select(_ => random.Next(shape.Vocab)).ToArray();
        var batch = TrainingBatch.FromRows([ids[..sequence]], [ids[..sequence]]);
        void One(int i)
        {
            grads.Zero();
            step.ForwardBackward(batch, 1f / batch.LabelCount, grads, (ulong)i);
            grads.Norm();
            optimizer.Update(1e-4);
        }
        One(0);
        be.Synchronize();
        be.ResetPeakMemory();
        be.TakeProfile();
        var watch = Stopwatch.StartNew();
        for (int i = 1; i <= steps; i++) One(i);
        be.Synchronize();
        double seconds = watch.Elapsed.TotalSeconds;
        double tokensPerSecond = steps * (double)sequence / seconds;
        double n = MatrixParameters(shape);
        Console.WriteLine($"cuda-train {args.ElementAtOrDefault(0) ?? "7b"} on {be.DeviceName}: seq {sequence}, batch 1, LoRA r8 all-linear, gradient checkpointing{(keepAttention ? " keeping attention activations" : "")}, {steps} steps");
        Console.WriteLine($"  {tokensPerSecond:F0} tokens/s ({seconds / steps * 1000:F0} ms/step)");
        Console.WriteLine($"  MFU {tokensPerSecond * 4 * n / peak:P1} at 4N FLOPs/token (forward + input gradients; frozen base has no weight gradients; N = {n / 1e9:F2}B matrix parameters) of the measured bf16 matrix rate {peak / 1e12:F0} TFLOP/s; at 6N: {tokensPerSecond * 6 * n / peak:P1}");
        Console.WriteLine($"  peak device memory in tensors {be.PeakMemoryInUse / (double)(1L << 30):F2} GiB (weights + training step), device total in use {UsedGiB(be):F2} GiB");
        PrintProfile(be, steps);
        return 0;
    }

    public static int Decode(string[] args)
    {
        var shape = Of(args.ElementAtOrDefault(0) ?? "7b");
        int tokens = int.Parse(args.ElementAtOrDefault(1) ?? "128");
        using var be = CudaBackend.Create();
        double bandwidth = CopyBandwidth(be);
        using var model = RandomModel(be, shape);
        long weightBytes = 2L * (long)MatrixParameters(shape);
        double limit = bandwidth / weightBytes;
        Console.WriteLine($"cuda-decode {args.ElementAtOrDefault(0) ?? "7b"} on {be.DeviceName}: greedy, batch 1, {tokens} tokens after 8 warm-up; " +
                          $"bandwidth limit {limit:F0} tokens/s ({bandwidth / 1e9:F0} GB/s device copy measured ÷ {weightBytes / 1e9:F2} GB of weights read per token)");
        // The Generator's greedy steps: the argmax found on the GPU, only the token id comes back. Directly (a launch per op)
        // and as a recorded step (one CUDA graph replay per token).
        foreach (bool graph in new[] { false, true })
        {
            using var cache = model.NewCache(tokens + 16);
            using var step = model.NewDecodeStep(cache, argMax: true);
            var picked = new int[1];
            int next = 1;
            long issuing = 0;
            int Step()
            {
                long started = Stopwatch.GetTimestamp();
                if (graph)
                {
                    int token = step.RunArgMax(next);
                    issuing += Stopwatch.GetTimestamp() - started;
                    return token;
                }
                using var output = model.Forward([next], cache);
                issuing += Stopwatch.GetTimestamp() - started;
                be.ArgMax(output, picked);
                return picked[0];
            }
            for (int i = 0; i < 8; i++) next = Step();
            be.TakeProfile();
            issuing = 0;
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++) next = Step();
            double rate = tokens / watch.Elapsed.TotalSeconds;
            Console.WriteLine($"  {(graph ? "graph  " : "launches")}: {rate:F1} tokens/s = {rate / limit:P1} of the limit" +
                              (graph ? $" (recorded: {step.IsRecorded}); host {issuing * 1000.0 / Stopwatch.Frequency / tokens:F2} ms/token in the step, download included"
                                     : $"; host {issuing * 1000.0 / Stopwatch.Frequency / tokens:F2} ms/token issuing the forward pass"));
            PrintProfile(be, tokens);
        }
        // Sampled steps (temperature 0.7, top-k 50, top-p 0.9): the filters and the draw on the GPU inside the recorded step.
        {
            using var cache = model.NewCache(tokens + 16);
            var filter = new TokenFilter(0.7f, 50, 0.9f, 0f);
            using var step = model.NewDecodeStep(cache, filter);
            var random = new Xoshiro256(1);
            int next = 1;
            for (int i = 0; i < 8; i++) next = step.RunDraw(next, random.NextUInt64() >> 11);
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < tokens; i++) next = step.RunDraw(next, random.NextUInt64() >> 11);
            double rate = tokens / watch.Elapsed.TotalSeconds;
            Console.WriteLine($"  sampled: {rate:F1} tokens/s = {rate / limit:P1} of the limit (graph, recorded: {step.IsRecorded}; temperature 0.7, top-k 50, top-p 0.9 drawn on the GPU)");
        }
        var (issue, backToBack) = LaunchCost(be);
        Console.WriteLine($"  launches: {issue * 1e6:F1} µs to issue a small kernel, {backToBack * 1e6:F1} µs each when issued back to back");
        Console.WriteLine($"  peak device memory in tensors {be.PeakMemoryInUse / (double)(1L << 30):F2} GiB");
        return 0;
    }

    /// <summary>With SHARPTUNE_CUDA_PROFILE=1: device time per kernel and product per step (warm-up included in the totals' run).</summary>
    static void PrintProfile(CudaBackend be, int steps)
    {
        foreach (var (name, seconds, calls) in be.TakeProfile().Take(60))
            Console.WriteLine($"    {name,-44} {seconds / steps * 1000,9:F2} ms/step {calls / steps,6} calls/step");
    }

    /// <summary>Seconds per launch of a one-block kernel: to issue it (host), and per kernel over a run of them until the GPU is done.</summary>
    static (double Issue, double BackToBack) LaunchCost(CudaBackend be)
    {
        const int launches = 2000;
        using var x = be.Allocate(DType.F32, 256);
        be.Fill(x, 1f);
        be.Synchronize();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < launches; i++) be.Scale(x, 1f);
        double issued = watch.Elapsed.TotalSeconds;
        be.Synchronize();
        return (issued / launches, watch.Elapsed.TotalSeconds / launches);
    }

    /// <summary>Matrix parameters read per token: every linear layer and the output head (the embedding lookup reads one row).</summary>
    static double MatrixParameters(Shape s)
    {
        int headDim = s.Hidden / s.Heads;
        double perLayer = (double)s.Hidden * (s.Heads * headDim) * 2 + (double)s.Hidden * (s.KvHeads * headDim) * 2 + 3.0 * s.Hidden * s.Intermediate;
        return perLayer * s.Layers + (double)s.Vocab * s.Hidden;
    }

    static double UsedGiB(CudaBackend be)
    {
        var (free, total) = be.DeviceMemory();
        return (total - free) / (double)(1L << 30);
    }

    /// <summary>The best of a few 8192³ bf16 products, in FLOP/s.</summary>
    internal static double MatrixRate(CudaBackend be)
    {
        const int n = 8192;
        using var a = be.Allocate(DType.BF16, n, n);
        using var b = be.Allocate(DType.BF16, n, n);
        using var c = be.Allocate(DType.BF16, n, n);
        be.FillNormal(a, 1f, 1);
        be.FillNormal(b, 1f, 2);
        double best = double.MaxValue;
        for (int r = 0; r < 6; r++)
        {
            be.Synchronize();
            var w = Stopwatch.StartNew();
            for (int i = 0; i < 5; i++) be.MatMul(a, false, b, true, c);
            be.Synchronize();
            best = Math.Min(best, w.Elapsed.TotalSeconds / 5);
        }
        return 2.0 * n * n * n / best;
    }

    /// <summary>
    /// `cuda-transfer [MiB]`: host-to-device and device-to-host copies of one buffer (1 GiB unless given) as a model load
    /// makes them (FromHostBytes, Download), best of 5, with the bytes checked on the way back. SHARPTUNE_CUDA_PINNED=0
    /// measures the driver's pageable path for comparison.
    /// </summary>
    public static int Transfer(string[] args)
    {
        int mib = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 1024;
        var host = new byte[(long)mib << 20];
        new Random(3).NextBytes(host);
        var back = new byte[host.Length];
        using var be = CudaBackend.Create();
        string path = Environment.GetEnvironmentVariable("SHARPTUNE_CUDA_PINNED") == "0" ? "pageable (driver)" : "page-locked staging, copy stream";
        double up = double.MaxValue, down = double.MaxValue;
        for (int r = 0; r < 5; r++)
        {
            be.Synchronize();
            var w = Stopwatch.StartNew();
            using var t = be.FromHostBytes(host, DType.BF16, host.Length / 2);
            be.Synchronize();
            up = Math.Min(up, w.Elapsed.TotalSeconds);
            w.Restart();
            be.Download(t, back);
            down = Math.Min(down, w.Elapsed.TotalSeconds);
        }
        if (!host.AsSpan().SequenceEqual(back)) throw new InvalidOperationException("cuda-transfer: the bytes came back changed");
        Console.WriteLine($"cuda-transfer {mib} MiB on {be.DeviceName}, {path}: host->device {host.Length / up / 1e9:F1} GB/s, " +
                          $"device->host {host.Length / down / 1e9:F1} GB/s (best of 5, bytes checked)");
        return 0;
    }

    /// <summary>Device-to-device copy of 2 GiB: bytes read + written per second.</summary>
    internal static double CopyBandwidth(CudaBackend be)
    {
        const int n = 1 << 30;
        using var a = be.Allocate(DType.BF16, n);
        using var b = be.Allocate(DType.BF16, n);
        be.Fill(a, 1f);
        double best = double.MaxValue;
        for (int r = 0; r < 5; r++)
        {
            be.Synchronize();
            var w = Stopwatch.StartNew();
            be.Copy(a, b);
            be.Synchronize();
            best = Math.Min(best, w.Elapsed.TotalSeconds);
        }
        return 2.0 * a.ByteLength / best;
    }

    static TransformerModel RandomModel(CudaBackend be, Shape s)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"sharptune-bench-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), $$"""
            {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": {{s.Hidden}}, "intermediate_size": {{s.Intermediate}},
             "num_hidden_layers": {{s.Layers}}, "num_attention_heads": {{s.Heads}}, "num_key_value_heads": {{s.KvHeads}}, "vocab_size": {{s.Vocab}},
             "tie_word_embeddings": {{(s.Tied ? "true" : "false")}}, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "max_position_embeddings": 32768,
             "hidden_act": "silu", "torch_dtype": "bfloat16"}
            """);
        var config = ModelConfig.Load(dir);
        Directory.Delete(dir, true);
        return TransformerModel.Create(config, be, new RandomWeights(be));
    }

    /// <summary>Normal(0, 0.02) matrices made on the GPU; norm weights 1, biases 0.</summary>
    sealed class RandomWeights(CudaBackend be) : IWeightSource
    {
        ulong _seed = 1;

        public Tensor Matrix(string name, int rows, int cols)
        {
            var t = be.Allocate(DType.BF16, rows, cols);
            be.FillNormal(t, 0.02f, _seed++);
            return t;
        }

        public Tensor Vector(string name, int length)
        {
            var t = be.Allocate(DType.F32, length);
            be.Fill(t, name.EndsWith(".bias", StringComparison.Ordinal) ? 0f : 1f);
            return t;
        }
    }
}
