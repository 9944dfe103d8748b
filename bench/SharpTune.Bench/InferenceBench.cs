using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// CPU inference at Qwen2.5-0.5B's shape with random weights written to a temporary checkpoint: prefill of a 256-token
/// prompt and batch-1 decode in tokens/s, the streaming read bandwidth measured in the same run, the weight bytes decode
/// must read per token and the fraction of the bandwidth it reaches, and the ratio to llama.cpp's llama-bench figures
/// (2 threads, same machine kind and shape).
/// </summary>
internal static class InferenceBench
{
    const int Hidden = 896, Intermediate = 4864, Layers = 24, Heads = 14, KvHeads = 2, HeadDim = 64, Vocab = 151936;
    const int PromptTokens = 256, DecodeTokens = 64, Runs = 3;
    /// <summary>llama-bench, 2 threads: (decode, prefill) tokens/s.</summary>
    static readonly Dictionary<DType, (double Decode, double Prefill)> LlamaCpp = new()
    {
        [DType.F32] = (12.8, 98),
        [DType.BF16] = (19.5, 98),
    };

    public static int Run(string[] args)
    {
        var dtype = DType.F32;
        int threads = ParallelRunner.Default.ThreadCount;
        bool profile = false;
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new SharpTuneException($"infer: {args[i]} needs a value");
            switch (args[i])
            {
                case "--dtype":
                    dtype = Value() switch { "f32" => DType.F32, "bf16" => DType.BF16, var v => throw new SharpTuneException($"infer: --dtype {v}: use f32 or bf16") };
                    break;
                case "--threads": threads = int.Parse(Value()); break;
                case "--profile": profile = true; break;
                default: throw new SharpTuneException($"infer: unknown option {args[i]} (use --dtype f32|bf16, --threads N, --profile)");
            }
        }
        // The backend runs on the shared default runner, sized by the processor count that the runtime reports.
        if (threads != ParallelRunner.Default.ThreadCount)
            throw new SharpTuneException($"infer: --threads {threads}: run with DOTNET_PROCESSOR_COUNT={threads} (the default runner has {ParallelRunner.Default.ThreadCount} threads)");

        string dir = Path.Combine(Path.GetTempPath(), $"sharptune-infer-bench-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            var writeWatch = Stopwatch.StartNew();
            RandomCheckpoint.Write(dir, dtype);
            Console.WriteLine($"wrote a random Qwen2.5-0.5B-shaped {dtype} checkpoint in {writeWatch.Elapsed.TotalSeconds:F1} s");
            double bandwidth = MemoryBandwidth.MeasureReadGBps();
            if (profile)
            {
                Profile(dir);
                return 0;
            }
            using var model = TransformerModel.Load(dir, CpuBackend.Instance);
            var (prefill, decode) = Measure(model);
            double bytesPerToken = WeightBytesPerToken(dtype);
            double decodeGBps = decode * bytesPerToken / 1e9;
            var reference = LlamaCpp[dtype];
            Console.WriteLine($"threads {threads}, streaming read bandwidth {bandwidth:F1} GB/s, decode reads {bytesPerToken / 1e9:F3} GB of weights per token");
            Console.WriteLine($"{"weights",-8} {"phase",-22} {"tokens/s",9} {"llama.cpp",10} {"ratio",6} {"GB/s",6} {"of bandwidth",13}");
            Console.WriteLine($"{dtype,-8} {$"prefill ({PromptTokens} tokens)",-22} {prefill,9:F1} {reference.Prefill,10:F1} {prefill / reference.Prefill,6:F2}");
            Console.WriteLine($"{dtype,-8} {"decode (batch 1)",-22} {decode,9:F1} {reference.Decode,10:F1} {decode / reference.Decode,6:F2} {decodeGBps,6:F1} {decodeGBps / bandwidth,13:P0}");
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Best-of-<see cref="Runs"/> prefill rate and the median decode rate over the runs (each decodes
    /// <see cref="DecodeTokens"/> tokens after the prompt, feeding back the greedy token).</summary>
    static (double Prefill, double Decode) Measure(TransformerModel model)
    {
        var random = new Xoshiro256(3);
        var prompt = Enumerable.Range(0, PromptTokens).Select(_ => random.NextBelow(Vocab)).ToArray();
        var prefillRates = new List<double>();
        var decodeRates = new List<double>();
        var logitsHost = new float[Vocab];
        for (int run = 0; run <= Runs; run++)
        {
            using var cache = model.NewCache(PromptTokens + DecodeTokens);
            var watch = Stopwatch.StartNew();
            using (var logits = model.Forward(prompt, cache)) model.Backend.ToHost(logits, logitsHost);
            double prefillSeconds = watch.Elapsed.TotalSeconds;
            int token = Argmax(logitsHost);
            watch.Restart();
            for (int i = 0; i < DecodeTokens; i++)
            {
                using var logits = model.Forward([token], cache);
                model.Backend.ToHost(logits, logitsHost);
                token = Argmax(logitsHost);
            }
            double decodeSeconds = watch.Elapsed.TotalSeconds;
            if (run == 0) continue; // warm-up: page faults on the memory-mapped weights, JIT
            prefillRates.Add(PromptTokens / prefillSeconds);
            decodeRates.Add(DecodeTokens / decodeSeconds);
        }
        decodeRates.Sort();
        return (prefillRates.Max(), decodeRates[decodeRates.Count / 2]);
    }

    /// <summary>Time per op for one prefill and the decode after it. The wrapped backend is not the CPU backend, so the
    /// weights are copied into owned memory instead of used from the memory map.</summary>
    static void Profile(string dir)
    {
        var backend = new TimedBackend(CpuBackend.Instance);
        using var model = TransformerModel.Load(dir, backend);
        var random = new Xoshiro256(3);
        var prompt = Enumerable.Range(0, PromptTokens).Select(_ => random.NextBelow(Vocab)).ToArray();
        var logitsHost = new float[Vocab];
        for (int run = 0; run < 2; run++)
        {
            using var cache = model.NewCache(PromptTokens + DecodeTokens);
            backend.Reset();
            var watch = Stopwatch.StartNew();
            using (var logits = model.Forward(prompt, cache)) model.Backend.ToHost(logits, logitsHost);
            if (run == 1)
            {
                Console.WriteLine($"prefill: {PromptTokens / watch.Elapsed.TotalSeconds:F1} tokens/s");
                PrintOps(backend, PromptTokens);
            }
            backend.Reset();
            watch.Restart();
            int token = Argmax(logitsHost);
            for (int i = 0; i < DecodeTokens; i++)
            {
                using var logits = model.Forward([token], cache);
                model.Backend.ToHost(logits, logitsHost);
                token = Argmax(logitsHost);
            }
            if (run == 1)
            {
                Console.WriteLine($"decode: {DecodeTokens / watch.Elapsed.TotalSeconds:F1} tokens/s");
                PrintOps(backend, DecodeTokens);
            }
        }
    }

    static void PrintOps(TimedBackend backend, int tokens)
    {
        double all = backend.Ops.Values.Sum(v => v.Seconds);
        Console.WriteLine($"{"op",-20} {"ms/token",9} {"share",6} {"calls",7}");
        foreach (var (name, (seconds, calls)) in backend.Ops.OrderByDescending(p => p.Value.Seconds))
            Console.WriteLine($"{name,-20} {seconds * 1000 / tokens,9:F3} {seconds / all,6:P0} {calls,7}");
    }

    static int Argmax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /// <summary>Every weight matrix once (the tied head is the embedding table, read in full by the head); norms and
    /// biases are float32 and negligible but counted.</summary>
    static double WeightBytesPerToken(DType dtype)
    {
        long perLayerMatrix = (long)Hidden * (Heads + 2 * KvHeads) * HeadDim + (long)Heads * HeadDim * Hidden + 3L * Hidden * Intermediate;
        long perLayerVector = 2L * Hidden + (Heads + 2 * KvHeads) * HeadDim;
        long matrices = Layers * perLayerMatrix + (long)Vocab * Hidden;
        long vectors = Layers * perLayerVector + Hidden;
        return matrices * dtype.SizeInBytes() + vectors * 4.0;
    }

}
