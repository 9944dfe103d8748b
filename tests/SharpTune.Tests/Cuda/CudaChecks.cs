using System.Text.Json;
using SharpTune.Adapters;
using SharpTune.Backends.Cuda;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Inference;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Tokenization;
using SharpTune.Training;

namespace SharpTune.Tests.Cuda;

/// <summary>One GPU check: the measured error against its limit.</summary>
public sealed record CudaCheckResult(string Name, double Error, double Limit, string Detail = "")
{
    public bool Passed => Error <= Limit;
    public override string ToString() => $"{(Passed ? "PASS" : "FAIL")} {Name}: error {Error:G4} (limit {Limit:G4}){(Detail.Length > 0 ? " " + Detail : "")}";
}

/// <summary>
/// The CUDA backend against the fixtures' Hugging Face references and against the CPU backend. The xunit tests assert
/// these; the benchmark program links this file to run them on the GPU machine, which has no .NET SDK.
/// Errors are ‖a − b‖ / ‖b‖ as in the CPU parity tests.
/// </summary>
public static class CudaChecks
{
    /// <summary>Last-position logits of every reference prompt (stories260K: BOS alone) against transformers.</summary>
    public static CudaCheckResult FixtureLogits(IBackend gpu, string modelDir, double limit)
    {
        var json = ReadReference(modelDir);
        bool stories = json.TryGetProperty("bos_only", out var bos);
        var prompts = stories ? [bos] : json.GetProperty("prompts").EnumerateArray().ToArray();
        using var model = TransformerModel.Load(modelDir, gpu);
        double worst = 0;
        foreach (var prompt in prompts)
        {
            var ids = Ints(prompt.GetProperty("input_ids"));
            var expected = ReadF32(Path.Combine(modelDir, prompt.GetProperty("last_logits_file").GetString()!));
            using var cache = model.NewCache(ids.Length);
            using var logits = model.Forward(ids, cache);
            var got = new float[expected.Length];
            gpu.ToHost(logits, got);
            worst = Math.Max(worst, RelativeError(got, expected));
        }
        return new($"{Path.GetFileName(modelDir)} logits {gpu.ActivationType}", worst, limit, $"{prompts.Length} prompt(s)");
    }

    /// <summary>The PEFT training step of reference.json (loss, gradient norm, every LoRA gradient) on the GPU.</summary>
    public static CudaCheckResult PeftGradients(IBackend gpu, string modelDir, bool checkpointing, double limit)
    {
        var step = ReadReference(modelDir).GetProperty("train_step");
        using var model = TransformerModel.Load(modelDir, gpu);
        var adapter = LoraAdapter.Load(Path.Combine(modelDir, "lora_adapter"), model);
        using var grads = new GradientSet(gpu);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add($"base_model.model.{module.Name}.lora_A.weight", branch.A);
            grads.Add($"base_model.model.{module.Name}.lora_B.weight", branch.B);
        }
        var batch = TrainingBatch.FromRows(IntRows(step.GetProperty("input_ids")), IntRows(step.GetProperty("labels")));
        var stats = new CausalLmStep(model, checkpointing).ForwardBackward(batch, 1f / batch.LabelCount, grads, dropoutSeed: 1);
        double expectedLoss = step.GetProperty("loss").GetDouble(), expectedNorm = step.GetProperty("grad_norm").GetDouble();
        double lossError = Math.Abs(stats.MeanLoss - expectedLoss) / expectedLoss;
        double normError = Math.Abs(grads.Norm() - expectedNorm) / expectedNorm;
        double worstGrad = 0;
        string worstName = "";
        using var expected = Checkpoint.Open(Path.Combine(modelDir, step.GetProperty("grads_file").GetString()!));
        if (expected.Names.Count() != grads.Parameters.Count) return new("PEFT gradients", double.PositiveInfinity, limit, "gradient count differs");
        foreach (var (name, parameter) in grads.Parameters)
        {
            var want = expected.ReadFloat32(name);
            var got = new float[want.Length];
            gpu.ToHost(grads.GradientOf(parameter), got);
            double e = RelativeError(got, want);
            if (e > worstGrad) (worstGrad, worstName) = (e, name);
        }
        return new($"{Path.GetFileName(modelDir)} PEFT step {gpu.ActivationType}{(checkpointing ? " checkpointing" : "")}",
                   Math.Max(Math.Max(lossError, normError), worstGrad), limit,
                   $"loss {lossError:G3}, grad norm {normError:G3}, worst gradient {worstGrad:G3} ({worstName})");
    }

    /// <summary>stories260K's greedy text from BOS (llama2.c's documented output), compared byte for byte; error = 1 on mismatch.</summary>
    public static CudaCheckResult StoriesGreedyText(IBackend gpu, string modelDir)
    {
        var expected = File.ReadAllText(Path.Combine(modelDir, "expected_greedy.txt"));
        using var model = TransformerModel.Load(modelDir, gpu);
        var generator = new Generator(model, Tokenizer.FromModelDirectory(modelDir));
        var result = generator.Generate([1], new SamplingOptions { Temperature = 0f, MaxNewTokens = 256, StopTokenIds = [1] });
        // The infer command ends the answer with a newline, as llama2.c does.
        var text = result.Text + "\n";
        int firstDifference = Enumerable.Range(0, Math.Min(text.Length, expected.Length)).FirstOrDefault(i => text[i] != expected[i], -1);
        bool same = text == expected;
        return new($"stories260K greedy text {gpu.ActivationType}", same ? 0 : 1, 0,
                   same ? $"{result.TokenIds.Count} tokens identical" : $"differs at char {firstDifference} (lengths {text.Length} vs {expected.Length})");
    }

    /// <summary>
    /// Transfers large enough to go through the page-locked staging buffers and the copy stream (lengths that end inside a
    /// chunk), their bytes back unchanged, and their order against the compute stream: an upload into a tensor that a
    /// copy queued before it still reads must wait for that copy, and work queued after an upload must see it. Error =
    /// the share of values that differ.
    /// </summary>
    public static CudaCheckResult PinnedTransfers(IBackend gpu)
    {
        var random = new Xoshiro256(11);
        long wrong = 0, total = 0;
        foreach (int n in new[] { 1 << 18, (2 << 20) + 1, (9 << 20) + 7 })
        {
            var a = new int[n];
            var b = new int[n];
            for (int i = 0; i < n; i++) (a[i], b[i]) = ((int)random.NextUInt64(), (int)random.NextUInt64());
            using var t = gpu.FromHost(a, n);
            using var u = gpu.Allocate(DType.I32, n);
            using var w = gpu.Allocate(DType.I32, n);
            gpu.Copy(t, u);           // reads t on the compute stream ...
            gpu.Upload(b, t);         // ... before the copy stream overwrites it
            gpu.Copy(t, w);           // and this sees b
            var back = new int[n];
            foreach (var (tensor, expected) in new[] { (u, a), (w, b), (t, b) })
            {
                gpu.ToHost(tensor, back);
                for (int i = 0; i < n; i++) if (back[i] != expected[i]) wrong++;
                total += n;
            }
        }
        return new("pinned transfers on the copy stream", (double)wrong / total, 0, $"{wrong} of {total} values differ");
    }

    /// <summary>
    /// The GPU's draw (IBackend.Sample) against the host's TokenFilter.Pick on two rows of 152k random logits, for temperature
    /// alone and with top-k, top-p and min-p: the same token for every one of 24 random numbers per filter and row (both keep
    /// ties whole; only their sums' order differs). Error = the share of draws that differ.
    /// </summary>
    public static CudaCheckResult SampleMatchesHost(IBackend gpu)
    {
        const int vocab = 151936, draws = 24;
        var random = new Xoshiro256(9);
        var flat = new float[vocab];
        for (int i = 0; i < vocab; i++) flat[i] = (float)(4 * (random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5));
        // A peaked row as a trained model's: 300 tokens well above the rest, so top-p alone keeps a few hundred (the GPU
        // gathers them first) where on the flat row it keeps most of the vocabulary.
        var peaked = (float[])flat.Clone();
        for (int i = 0; i < 300; i++) peaked[i * 499 + 7] += 10f;
        TokenFilter[] filters = [new(1f, 0, 1f, 0f), new(0.7f, 50, 1f, 0f), new(1f, 0, 0.9f, 0f), new(0.6f, 0, 0.5f, 0f),
                                 new(1.2f, 200, 0.8f, 0.05f), new(0.5f, 0, 1f, 0.1f), new(1f, 1000, 0.95f, 0f), new(0.8f, 0, 0.95f, 0.01f)];
        using var bits = gpu.Allocate(DType.I32, 2);
        using var picked = gpu.Allocate(DType.I32, 1);
        int differ = 0, total = 0;
        var got = new int[1];
        var host = new float[vocab];
        var firstDifference = "";
        foreach (var (rowName, values) in new[] { ("flat", flat), ("peaked", peaked) })
        {
            using var logits = gpu.FromHost(values, DType.F32, 1, vocab);
            foreach (var filter in filters)
                for (int d = 0; d < draws; d++, total++)
                {
                    ulong b = random.NextUInt64() >> 11;
                    var (low, high) = TokenFilter.BitWords(b);
                    gpu.Upload([low, high], bits);
                    gpu.Sample(logits, filter, bits, picked);
                    gpu.ToHost(picked, got);
                    values.CopyTo(host, 0);
                    int expected = filter.Pick(host, TokenFilter.Uniform(b));
                    if (got[0] == expected) continue;
                    if (differ++ == 0) firstDifference = $"; first: {rowName} row, {filter}: drew {got[0]}, the host {expected}";
                }
        }
        return new("sampling on the GPU vs the host", differ / (double)total, 0, $"{total - differ}/{total} draws equal{firstDifference}");
    }

    /// <summary>
    /// Sampled generation (temperature, top-k, top-p, one seed) on the GPU, drawn inside the recorded step, against the CPU's
    /// generator: the same tokens (float32 mode, where the logits agree to about 1e-6).
    /// </summary>
    public static CudaCheckResult SampledGenerationMatchesCpu(IBackend gpu, string modelDir)
    {
        var options = new SamplingOptions { Temperature = 0.9f, TopK = 40, TopP = 0.9f, Seed = 11, MaxNewTokens = 64 };
        var tokenizer = Tokenizer.FromModelDirectory(modelDir);
        IReadOnlyList<int> Run(IBackend be)
        {
            using var model = TransformerModel.Load(modelDir, be);
            return new Generator(model, tokenizer).Generate([1, 2, 3], options).TokenIds;
        }
        var cpu = Run(CpuBackend.Instance);
        var cuda = Run(gpu);
        int same = Enumerable.Range(0, Math.Min(cpu.Count, cuda.Count)).TakeWhile(i => cpu[i] == cuda[i]).Count();
        bool equal = same == cpu.Count && cpu.Count == cuda.Count;
        return new($"{Path.GetFileName(modelDir)} sampled generation GPU vs CPU {gpu.ActivationType}", equal ? 0 : 1, 0,
                   $"{same} of {cpu.Count} tokens equal before the first difference (GPU made {cuda.Count})");
    }

    /// <summary>
    /// <paramref name="steps"/> LoRA steps (r 8, alpha 32, dropout 0.05, all linear, AdamW at ms-swift's LoRA default lr 1e-4)
    /// on stories260K's own greedy text on the GPU and on the CPU from the same initialization; error = the largest relative
    /// difference of a step's loss. (At lr 1e-3 the two rows are memorized and the loss falls to 0.01, where relative
    /// differences measure rounding of a near-zero number rather than the training.)
    /// </summary>
    public static CudaCheckResult LoraLossCurve(IBackend gpu, string modelDir, int steps, double limit, bool dora = false)
    {
        var ids = Ints(ReadReference(modelDir).GetProperty("greedy_from_bos").GetProperty("generated_ids_first_255"));
        int[] rowA = [1, .. ids[..127]], rowB = [1, .. ids[127..254]];
        var batch = TrainingBatch.FromRows([rowA, rowB], [rowA, rowB]);
        var cpu = Train(CpuBackend.Instance, modelDir, batch, steps, dora);
        var cuda = Train(gpu, modelDir, batch, steps, dora);
        double worst = 0;
        int worstStep = 0;
        for (int i = 0; i < steps; i++)
        {
            double e = Math.Abs(cuda[i] - cpu[i]) / cpu[i];
            if (e > worst) (worst, worstStep) = (e, i + 1);
        }
        return new($"stories260K {steps}-step {(dora ? "DoRA" : "LoRA")} loss curve {gpu.ActivationType} vs CPU", worst, limit,
                   $"CPU loss {cpu[0]:F4} -> {cpu[^1]:F4}, GPU {cuda[0]:F4} -> {cuda[^1]:F4}, worst at step {worstStep}");
    }

    /// <summary>
    /// The decode step replayed as a recording (CUDA graph) against the direct forward pass, token by token on the same
    /// GPU: the same kernels on the same values, so logits must be identical and the greedy tokens too (64 steps, starting
    /// from a 3-token prefill). Fails as well when the backend did not record.
    /// </summary>
    public static CudaCheckResult DecodeStepMatchesForward(IBackend gpu, string modelDir)
    {
        using var model = TransformerModel.Load(modelDir, gpu);
        const int steps = 64;
        int[] prompt = [1, 2, 3];
        using var eagerCache = model.NewCache(prompt.Length + steps);
        using var stepCache = model.NewCache(prompt.Length + steps);
        var picked = new int[1];
        int eagerToken, stepToken;
        using (var logits = model.Forward(prompt, eagerCache)) { gpu.ArgMax(logits, picked); eagerToken = picked[0]; }
        using (var logits = model.Forward(prompt, stepCache)) { gpu.ArgMax(logits, picked); stepToken = picked[0]; }
        using var step = model.NewDecodeStep(stepCache, argMax: true);
        var expected = new float[model.Shape.Vocab];
        var got = new float[model.Shape.Vocab];
        double worst = 0;
        int sameTokens = 0;
        for (int i = 0; i < steps; i++)
        {
            using var logits = model.Forward([eagerToken], eagerCache);
            gpu.ToHost(logits, expected);
            gpu.ArgMax(logits, picked);
            int next = step.RunArgMax(stepToken);
            gpu.ToHost(step.Logits, got);
            worst = Math.Max(worst, RelativeError(got, expected));
            if (next == picked[0]) sameTokens++;
            (eagerToken, stepToken) = (picked[0], next);
        }
        bool recorded = step.IsRecorded;
        double error = sameTokens == steps && recorded ? worst : double.PositiveInfinity;
        return new($"{Path.GetFileName(modelDir)} decode step (graph) vs forward {gpu.ActivationType}", error, 0,
                   $"{sameTokens}/{steps} tokens equal, logits {worst:G3}, recorded: {recorded}");
    }

    /// <summary>
    /// The decoding ops (linear with bias and residual for 1 to 8 rows, MatMul's small-batch path, grouped q/k/v, SwiGLU-linear,
    /// the same with the RMSNorm folded in, products of 64 MiB weights, rope of queries and keys, attention of two rows
    /// against a long cache) against the CPU backend fed the same values, with bfloat16 and float32 weights; error = the
    /// worst relative error. Argmax must agree exactly (rows with ties and a NaN); a mismatch counts as error 1.
    /// </summary>
    public static CudaCheckResult DecodeOps(IBackend gpu, double limit)
    {
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(5);
        float[] Values(int count) => [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1))];
        float[] Host(IBackend be, Tensor t)
        {
            var v = new float[t.Count];
            be.ToHost(t, v);
            return v;
        }
        // A tensor on each backend holding the same values (as the GPU stores them); the CPU computes in float32 but reads
        // weights in their own dtype.
        (Tensor Gpu, Tensor Cpu) Pair(DType dtype, params int[] shape)
        {
            var g = gpu.FromHost(Values(shape.Aggregate(1, (a, b) => a * b)), dtype, shape);
            return (g, cpu.FromHost(Host(gpu, g), DType.F32, shape));
        }
        (Tensor Gpu, Tensor Cpu) Weight(DType dtype, int rows, int cols)
        {
            var g = gpu.FromHost(Values(rows * cols), dtype, rows, cols);
            return (g, cpu.FromHost(Host(gpu, g), dtype, rows, cols));
        }
        var worst = new TrainingKernelChecks.WorstError();
        var failing = new List<string>();
        void Compare(string name, Tensor g, Tensor c)
        {
            double e = worst.Add(name, Host(gpu, g), Host(cpu, c));
            if (!(e <= limit)) failing.Add($"{name} {e:G3}");
        }
        var act = gpu.ActivationType;
        const int n = 200, kvWidth = 40;
        // k = 2056: rows of two whole pieces and part of a third in gemv.cu's streamed products (Hopper).
        foreach (int k in new[] { 264, 2056 })
        foreach (var weightType in new[] { DType.BF16, DType.F32 })
        foreach (int m in new[] { 1, 3, 8 })
        {
            var x = Pair(act, m, k);
            var w = Weight(weightType, n, k);
            var bias = Pair(DType.F32, n);
            var y = Pair(act, m, n);
            gpu.Linear(x.Gpu, w.Gpu, bias.Gpu, y.Gpu, 1f);
            cpu.Linear(x.Cpu, w.Cpu, bias.Cpu, y.Cpu, 1f);
            Compare($"linear {weightType} m={m} k={k}", y.Gpu, y.Cpu);
            var z = Pair(act, m, n);
            gpu.MatMul(x.Gpu, false, w.Gpu, true, z.Gpu, 0.5f, 1f);
            cpu.MatMul(x.Cpu, false, w.Cpu, true, z.Cpu, 0.5f, 1f);
            Compare($"matmul {weightType} m={m} k={k}", z.Gpu, z.Cpu);
            var wk = Weight(weightType, kvWidth, k);
            var wv = Weight(weightType, kvWidth, k);
            var (q, kk, v) = (Pair(act, m, n), Pair(act, m, kvWidth), Pair(act, m, kvWidth));
            gpu.Linear(x.Gpu, [new(w.Gpu, bias.Gpu, q.Gpu), new(wk.Gpu, null, kk.Gpu), new(wv.Gpu, bias.Gpu.SliceRows(0, kvWidth), v.Gpu)]);
            cpu.Linear(x.Cpu, [new(w.Cpu, bias.Cpu, q.Cpu), new(wk.Cpu, null, kk.Cpu), new(wv.Cpu, bias.Cpu.SliceRows(0, kvWidth), v.Cpu)]);
            Compare($"grouped q {weightType} m={m} k={k}", q.Gpu, q.Cpu);
            Compare($"grouped k {weightType} m={m} k={k}", kk.Gpu, kk.Cpu);
            Compare($"grouped v {weightType} m={m} k={k}", v.Gpu, v.Cpu);
            var h = Pair(act, m, kvWidth);
            gpu.SwiGluLinear(x.Gpu, wk.Gpu, wv.Gpu, h.Gpu);
            cpu.SwiGluLinear(x.Cpu, wk.Cpu, wv.Cpu, h.Cpu);
            Compare($"swiglu-linear {weightType} m={m} k={k}", h.Gpu, h.Cpu);
            // The RMSNorm folded into the products: the CPU norms into float32 rows first.
            var norm = Pair(DType.F32, k);
            gpu.NormLinear(x.Gpu, norm.Gpu, 1e-6f, [new(w.Gpu, bias.Gpu, q.Gpu), new(wk.Gpu, null, kk.Gpu)]);
            cpu.NormLinear(x.Cpu, norm.Cpu, 1e-6f, [new(w.Cpu, bias.Cpu, q.Cpu), new(wk.Cpu, null, kk.Cpu)]);
            Compare($"norm-linear q {weightType} m={m} k={k}", q.Gpu, q.Cpu);
            Compare($"norm-linear k {weightType} m={m} k={k}", kk.Gpu, kk.Cpu);
            gpu.NormSwiGluLinear(x.Gpu, norm.Gpu, 1e-6f, wk.Gpu, wv.Gpu, h.Gpu);
            cpu.NormSwiGluLinear(x.Cpu, norm.Cpu, 1e-6f, wk.Cpu, wv.Cpu, h.Cpu);
            Compare($"norm-swiglu-linear {weightType} m={m} k={k}", h.Gpu, h.Cpu);
            foreach (var t in new[] { x, w, bias, y, z, wk, wv, q, kk, v, h, norm })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        // Products wide enough (10,000 + 2·40 features) that each warp takes two features: more warps than the SMs hold.
        foreach (var weightType in new[] { DType.BF16, DType.F32 })
        foreach (int m in new[] { 1, 3 })
        {
            const int k = 264;
            var x = Pair(act, m, k);
            var (wq, wk, wv) = (Weight(weightType, 10000, k), Weight(weightType, kvWidth, k), Weight(weightType, kvWidth, k));
            var (q, kk, v) = (Pair(act, m, 10000), Pair(act, m, kvWidth), Pair(act, m, kvWidth));
            var (bias, norm) = (Pair(DType.F32, 10000), Pair(DType.F32, k));
            gpu.Linear(x.Gpu, [new(wq.Gpu, bias.Gpu, q.Gpu), new(wk.Gpu, null, kk.Gpu), new(wv.Gpu, null, v.Gpu)]);
            cpu.Linear(x.Cpu, [new(wq.Cpu, bias.Cpu, q.Cpu), new(wk.Cpu, null, kk.Cpu), new(wv.Cpu, null, v.Cpu)]);
            Compare($"wide grouped q {weightType} m={m}", q.Gpu, q.Cpu);
            Compare($"wide grouped v {weightType} m={m}", v.Gpu, v.Cpu);
            gpu.NormLinear(x.Gpu, norm.Gpu, 1e-6f, [new(wq.Gpu, bias.Gpu, q.Gpu), new(wk.Gpu, null, kk.Gpu), new(wv.Gpu, null, v.Gpu)]);
            cpu.NormLinear(x.Cpu, norm.Cpu, 1e-6f, [new(wq.Cpu, bias.Cpu, q.Cpu), new(wk.Cpu, null, kk.Cpu), new(wv.Cpu, null, v.Cpu)]);
            Compare($"wide norm-linear q {weightType} m={m}", q.Gpu, q.Cpu);
            Compare($"wide norm-linear k {weightType} m={m}", kk.Gpu, kk.Cpu);
            foreach (var t in new[] { x, wq, wk, wv, q, kk, v, bias, norm })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        // Weights of 64 MiB and more: on Hopper, gemv.cu's streamed products (rows of two whole pieces and part of a third).
        foreach (int m in new[] { 1, 3, 8 })
        {
            const int k = 4104, wide = 8192;
            var x = Pair(act, m, k);
            var (w, gate, up) = (Weight(DType.BF16, 2 * wide, k), Weight(DType.BF16, wide, k), Weight(DType.BF16, wide, k));
            var (bias, norm) = (Pair(DType.F32, 2 * wide), Pair(DType.F32, k));
            var (y, h) = (Pair(act, m, 2 * wide), Pair(act, m, wide));
            gpu.Linear(x.Gpu, w.Gpu, bias.Gpu, y.Gpu, 1f);
            cpu.Linear(x.Cpu, w.Cpu, bias.Cpu, y.Cpu, 1f);
            Compare($"large linear m={m}", y.Gpu, y.Cpu);
            gpu.NormLinear(x.Gpu, norm.Gpu, 1e-6f, [new(w.Gpu, bias.Gpu, y.Gpu)]);
            cpu.NormLinear(x.Cpu, norm.Cpu, 1e-6f, [new(w.Cpu, bias.Cpu, y.Cpu)]);
            Compare($"large norm-linear m={m}", y.Gpu, y.Cpu);
            gpu.SwiGluLinear(x.Gpu, gate.Gpu, up.Gpu, h.Gpu);
            cpu.SwiGluLinear(x.Cpu, gate.Cpu, up.Cpu, h.Cpu);
            Compare($"large swiglu-linear m={m}", h.Gpu, h.Cpu);
            gpu.NormSwiGluLinear(x.Gpu, norm.Gpu, 1e-6f, gate.Gpu, up.Gpu, h.Gpu);
            cpu.NormSwiGluLinear(x.Cpu, norm.Cpu, 1e-6f, gate.Cpu, up.Cpu, h.Cpu);
            Compare($"large norm-swiglu-linear m={m}", h.Gpu, h.Cpu);
            foreach (var t in new[] { x, w, gate, up, bias, norm, y, h })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        // The 0.5B down projection's shape, added into y: 6 or 7 rows of 9.5 KiB a block (on Hopper, gemv.cu's resident products).
        foreach (int m in new[] { 1, 3, 8 })
        {
            const int features = 896, k = 4864;
            var (x, w, y) = (Pair(act, m, k), Weight(DType.BF16, features, k), Pair(act, m, features));
            gpu.Linear(x.Gpu, w.Gpu, null, y.Gpu, 1f);
            cpu.Linear(x.Cpu, w.Cpu, null, y.Cpu, 1f);
            Compare($"down-shaped linear m={m}", y.Gpu, y.Cpu);
            foreach (var t in new[] { x, w, y })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        // Two rows against a cache longer than the kernel's key chunk, grouped-query, both head sizes of the Qwen models.
        foreach (int headDim in new[] { 64, 128 })
        {
            const int heads = 4, kvHeads = 2, keys = 2500;
            var spans = new AttentionSpans([0, 100], [2499, 2500]);
            var (q, kc, vc) = (Pair(act, 2, heads * headDim), Pair(act, keys, kvHeads * headDim), Pair(act, keys, kvHeads * headDim));
            var o = Pair(act, 2, heads * headDim);
            float scale = 1f / MathF.Sqrt(headDim);
            gpu.AttentionDecode(q.Gpu, kc.Gpu, vc.Gpu, spans, headDim, scale, o.Gpu);
            cpu.Attention(q.Cpu, kc.Cpu, vc.Cpu, spans, headDim, scale, o.Cpu, null);
            Compare($"attention decode head dim {headDim}", o.Gpu, o.Cpu);
            foreach (var t in new[] { q, kc, vc, o })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        // Rope of one step's queries and keys (Qwen2.5-0.5B widths) at positions beyond the float32-exact range of the angle.
        {
            const int headDim = 64;
            var (q, kk) = (Pair(act, 2, 14 * headDim), Pair(act, 2, 2 * headDim));
            var inv = Pair(DType.F32, headDim / 2);
            using var positionsGpu = gpu.FromHost([1000, 31999], 2);
            using var positionsCpu = cpu.FromHost([1000, 31999], 2);
            gpu.RopeQueryKey(q.Gpu, kk.Gpu, positionsGpu, inv.Gpu, headDim, 1.25f);
            cpu.RopeQueryKey(q.Cpu, kk.Cpu, positionsCpu, inv.Cpu, headDim, 1.25f);
            Compare("rope queries", q.Gpu, q.Cpu);
            Compare("rope keys", kk.Gpu, kk.Cpu);
            gpu.RopeQueryKey(q.Gpu, kk.Gpu, positionsGpu, inv.Gpu, headDim, 0.75f, inverse: true);
            cpu.RopeQueryKey(q.Cpu, kk.Cpu, positionsCpu, inv.Cpu, headDim, 0.75f, inverse: true);
            Compare("inverse rope queries", q.Gpu, q.Cpu);
            Compare("inverse rope keys", kk.Gpu, kk.Cpu);
            // Rope with the cache append: rows land at their positions of a 32000-row cache (the rest compared too).
            var (q2, k2, v2) = (Pair(act, 2, 14 * headDim), Pair(act, 2, 2 * headDim), Pair(act, 2, 2 * headDim));
            var (keyCache, valueCache) = (Pair(act, 32000, 2 * headDim), Pair(act, 32000, 2 * headDim));
            gpu.RopeQueryKeyAppend(q2.Gpu, k2.Gpu, v2.Gpu, positionsGpu, inv.Gpu, headDim, 1.25f, keyCache.Gpu, valueCache.Gpu);
            cpu.RopeQueryKeyAppend(q2.Cpu, k2.Cpu, v2.Cpu, positionsCpu, inv.Cpu, headDim, 1.25f, keyCache.Cpu, valueCache.Cpu);
            Compare("rope-append queries", q2.Gpu, q2.Cpu);
            Compare("rope-append key cache", keyCache.Gpu, keyCache.Cpu);
            Compare("rope-append value cache", valueCache.Gpu, valueCache.Cpu);
            foreach (var t in new[] { q, kk, inv, q2, k2, v2, keyCache, valueCache })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        // The q/k/v products with rope and the cache append in one op (decode.cu's qkvRope) at the 7B's and the 0.5B's head
        // counts, head sizes and widths, with and without biases, the rows landing at their positions of a 2048-row cache.
        foreach (var (heads, kvHeads, headDim, hidden) in new[] { (28, 4, 128, 3584), (14, 2, 64, 896) })
        foreach (var weightType in new[] { DType.BF16, DType.F32 })
        {
            int qWidth = heads * headDim, kvWidthOfShape = kvHeads * headDim;
            var (wq, wk, wv) = (Weight(weightType, qWidth, hidden), Weight(weightType, kvWidthOfShape, hidden), Weight(weightType, kvWidthOfShape, hidden));
            var (bq, bk, norm, inv) = (Pair(DType.F32, qWidth), Pair(DType.F32, kvWidthOfShape), Pair(DType.F32, hidden), Pair(DType.F32, headDim / 2));
            var (keyCache, valueCache) = (Pair(act, 2048, kvWidthOfShape), Pair(act, 2048, kvWidthOfShape));
            foreach (int m in new[] { 1, 2, 3, 8 })
            {
                var x = Pair(act, m, hidden);
                var (q, kk, v) = (Pair(act, m, qWidth), Pair(act, m, kvWidthOfShape), Pair(act, m, kvWidthOfShape));
                int[] at = [.. new[] { 2047, 5, 1000, 31, 700, 1999, 64, 3 }.Take(m)];
                using var positionsGpu = gpu.FromHost(at, m);
                using var positionsCpu = cpu.FromHost(at, m);
                gpu.NormLinearRopeAppend(x.Gpu, norm.Gpu, 1e-6f, new(wq.Gpu, bq.Gpu, q.Gpu), new(wk.Gpu, bk.Gpu, kk.Gpu), new(wv.Gpu, null, v.Gpu),
                                         positionsGpu, inv.Gpu, headDim, 1.25f, keyCache.Gpu, valueCache.Gpu);
                cpu.NormLinearRopeAppend(x.Cpu, norm.Cpu, 1e-6f, new(wq.Cpu, bq.Cpu, q.Cpu), new(wk.Cpu, bk.Cpu, kk.Cpu), new(wv.Cpu, null, v.Cpu),
                                         positionsCpu, inv.Cpu, headDim, 1.25f, keyCache.Cpu, valueCache.Cpu);
                string name = $"{weightType} heads {heads}/{kvHeads}x{headDim} m={m}";
                Compare($"norm-linear-rope-append queries {name}", q.Gpu, q.Cpu);
                Compare($"norm-linear-rope-append key cache {name}", keyCache.Gpu, keyCache.Cpu);
                Compare($"norm-linear-rope-append value cache {name}", valueCache.Gpu, valueCache.Cpu);
                foreach (var t in new[] { x, q, kk, v })
                {
                    t.Gpu.Dispose();
                    t.Cpu.Dispose();
                }
            }
            foreach (var t in new[] { wq, wk, wv, bq, bk, norm, inv, keyCache, valueCache })
            {
                t.Gpu.Dispose();
                t.Cpu.Dispose();
            }
        }
        const int vocab = 151936;
        var logits = Values(3 * vocab);
        logits[1000] = logits[vocab - 1] = 5f;                     // a tie: the first index wins
        logits[vocab + 77] = 4f;
        logits[vocab + 90] = float.NaN;                            // a NaN counts as the largest
        logits[2 * vocab + vocab - 1] = 3f;
        var expected = new int[3];
        var got = new int[3];
        using (var c = cpu.FromHost(logits, DType.F32, 3, vocab)) cpu.ArgMax(c, expected);
        using (var g = gpu.FromHost(logits, DType.F32, 3, vocab)) gpu.ArgMax(g, got);
        if (!got.SequenceEqual(expected)) worst.Record($"argmax {string.Join(",", got)} vs {string.Join(",", expected)}", 1);
        return new($"decode ops {gpu.ActivationType} vs CPU", worst.Value, limit,
                   $"worst: {worst.Case}{(failing.Count > 0 ? "; over the limit: " + string.Join(", ", failing.Take(12)) : "")}");
    }

    static double[] Train(IBackend backend, string modelDir, TrainingBatch batch, int steps, bool dora)
    {
        using var model = TransformerModel.Load(modelDir, backend);
        var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 8, Alpha = 32, Dropout = 0.05, UseDora = dora }, seed: 42);
        using var grads = new GradientSet(backend);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add($"{module.Name}.lora_A", branch.A);
            grads.Add($"{module.Name}.lora_B", branch.B);
            if (branch.Magnitude != null) grads.Add($"{module.Name}.lora_magnitude_vector", branch.Magnitude);
        }
        using var optimizer = new AdamWOptimizer(backend, grads, 0.9, 0.999, 1e-8, 0.1);
        var step = new CausalLmStep(model, gradientCheckpointing: true);
        var losses = new double[steps];
        for (int i = 0; i < steps; i++)
        {
            grads.Zero();
            losses[i] = step.ForwardBackward(batch, 1f / batch.LabelCount, grads, dropoutSeed: (ulong)i + 1).MeanLoss;
            optimizer.Update(1e-4);
        }
        return losses;
    }

    /// <summary>
    /// An sft run on stories260K whose device memory is capped at what it holds after step 4, so step 5 runs out: the error
    /// must be the out-of-memory one that says what to change, checkpoint-3 must be whole (its adapter loads), and nothing
    /// else may be left in the run folder (no later checkpoint, no temporary folder). Error = the number of violations.
    /// </summary>
    public static CudaCheckResult OutOfMemoryDuringTraining(CudaBackend gpu, string storiesDir, string outputDir)
    {
        var args = SharpTune.Arguments.ArgumentParser.Parse<SftArguments>(
        [
            "--model", storiesDir, "--dataset", "self-cognition#24", "--model_name", "小锐", "SharpBot", "--model_author", "锐调", "SharpTune",
            "--output_dir", outputDir, "--max_steps", "8", "--save_steps", "3", "--logging_steps", "1", "--device", "cuda",
        ]);
        var problems = new List<string>();
        string runDir;
        try
        {
            using var trainer = new SftTrainer(args, gpu, new CapAfterStep(gpu, 4));
            runDir = trainer.RunDirectoryPath;
            try
            {
                trainer.Train();
                problems.Add("training finished without running out of memory");
            }
            catch (CudaOutOfMemoryException e) when (e.Message.Contains("--gradient_checkpointing true") && e.Message.Contains("--device cpu")) { }
        }
        finally
        {
            gpu.MemoryLimit = null;
        }
        var entries = Directory.EnumerateFileSystemEntries(runDir).Select(Path.GetFileName).ToList();
        var checkpoints = entries.Where(e => e!.StartsWith("checkpoint", StringComparison.Ordinal)).ToList();
        if (checkpoints.Count != 1 || checkpoints[0] != "checkpoint-3") problems.Add($"checkpoint folders: {string.Join(", ", checkpoints)}");
        if (entries.Any(e => e!.Contains(".tmp"))) problems.Add("a temporary file or folder was left behind");
        var adapterDir = Path.Combine(runDir, "checkpoint-3");
        if (Directory.Exists(adapterDir))
        {
            using var model = TransformerModel.Load(storiesDir, CpuBackend.Instance);
            if (LoraAdapter.Load(adapterDir, model).Branches.Count == 0) problems.Add("checkpoint-3 holds no adapter weights");
        }
        return new("out of memory during sft", problems.Count, 0, problems.Count == 0 ? "error says what to change; checkpoint-3 whole; nothing half-written" : string.Join("; ", problems));
    }

    /// <summary>
    /// `deploy` on the GPU: 16 simultaneous greedy completions of stories260K through the server's batched steps over the
    /// paged KV cache, each compared with what the single-sequence generator on the same GPU gives for its prompt alone.
    /// Error = the number of answers that differ. Meant for the fp32 mode: in bf16 the batched products and the decode
    /// kernels round differently, and on the H100 6 of 16 answers drifted apart within 48 tokens.
    /// </summary>
    public static CudaCheckResult ServingMatchesGenerator(IBackend gpu, string storiesDir)
    {
        var args = SharpTune.Arguments.ArgumentParser.Parse<SharpTune.Serving.DeployArguments>(
            ["--model", storiesDir, "--port", "0", "--max_num_seqs", "16", "--max_num_batched_tokens", "48"]);
        var server = SharpTune.Serving.DeployServer.StartAsync(args, gpu).GetAwaiter().GetResult();
        try
        {
            string[] names = ["Lily", "Tom", "The cat", "A bird"], actions = ["went to the park", "found a box", "was sad", "saw a big red ball"];
            var prompts = Enumerable.Range(0, 16).Select(i => $"{names[i % 4]} {actions[i / 4]}").ToArray();
            var engine = server.Engine;
            // Even requests greedy, odd ones drawn (temperature 0.8, top-p 0.9, a seed each): both picked on the GPU.
            float Temperature(int i) => i % 2 == 0 ? 0f : 0.8f;
            var expected = prompts.Select((p, i) =>
            {
                var ids = engine.EncodeRaw(p);
                var overrides = new SamplingOverrides { Temperature = Temperature(i), TopP = 0.9f, Seed = 100 + i, MaxNewTokens = 48 };
                return engine.Generator.Generate(ids, engine.Sampling(args, ids.Length, overrides)).Text;
            }).ToArray();
            using var http = new HttpClient { BaseAddress = server.Address };
            var answers = Task.WhenAll(prompts.Select(async (p, i) =>
            {
                var body = new System.Text.Json.Nodes.JsonObject
                {
                    ["prompt"] = p, ["max_tokens"] = 48, ["temperature"] = Temperature(i), ["top_p"] = 0.9, ["seed"] = 100 + i,
                }.ToJsonString();
                using var response = await http.PostAsync("v1/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
                using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                return json.RootElement.GetProperty("choices")[0].GetProperty("text").GetString();
            })).GetAwaiter().GetResult();
            int differing = Enumerable.Range(0, prompts.Length).Count(i => answers[i] != expected[i]);
            return new($"deploy {gpu.ActivationType}: 16 simultaneous completions (8 greedy, 8 sampled) vs the generator", differing, 0,
                       $"{prompts.Length - differing} of {prompts.Length} equal, {expected.Distinct().Count()} distinct answers");
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    sealed class CapAfterStep(CudaBackend gpu, int step) : ITrainingObserver
    {
        public void Message(string line) { }

        public void Step(int globalStep, int maxSteps, double elapsedSeconds, System.Text.Json.Nodes.JsonObject? log)
        {
            if (globalStep == step) gpu.MemoryLimit = gpu.MemoryInUse;
        }
    }

    /// <summary>
    /// Attention forward and backward (out, log-sum-exp, dq, dk, dv, and dk, dv after a second backward accumulated into
    /// them) at a head layout against the CPU backend on the same bf16-valued inputs in float32, over span sets of a
    /// training pass (one causal sample; packed samples 100/57/143) and of decoding (1 and 5 new rows against a 300-key
    /// cache, the latter from key 20). Error: the worst ‖a − b‖/‖b‖ over tensors and span sets; a GPU result that differs
    /// bit for bit between two runs fails.
    /// </summary>
    public static CudaCheckResult AttentionAgainstCpu(IBackend gpu, int heads, int kvHeads, int headDim, double limit)
    {
        const int keyRows = 300;
        int[] packed = [.. Enumerable.Range(0, 100), .. Enumerable.Range(0, 57), .. Enumerable.Range(0, 143)];
        (string Name, AttentionSpans Spans)[] cases =
        [
            ("causal 300", AttentionSpans.CausalFromPositions([.. Enumerable.Range(0, keyRows)])),
            ("packed 100/57/143", AttentionSpans.CausalFromPositions(packed)),
            ("decode 1 of 300", AttentionSpans.ForCache(0, keyRows - 1, 1)),
            ("decode 5 of 280 from 20", AttentionSpans.ForCache(20, keyRows - 25, 5)),
        ];
        var names = new[] { "out", "lse", "dq", "dk", "dv", "dk accumulated", "dv accumulated" };
        var worst = new double[names.Length];
        bool deterministic = true;
        var random = new Xoshiro256(11);
        foreach (var (_, spans) in cases)
        {
            var errors = CompareAttention(gpu, spans, keyRows, heads, kvHeads, headDim, random, out bool same);
            for (int i = 0; i < worst.Length; i++) worst[i] = Math.Max(worst[i], errors[i]);
            deterministic &= same;
        }
        return new($"attention {heads}/{kvHeads} heads of {headDim} {gpu.ActivationType} vs CPU", deterministic ? worst.Max() : double.PositiveInfinity,
                   limit, string.Join(", ", names.Select((n, i) => $"{n} {worst[i]:G3}")) + $" over {string.Join("; ", cases.Select(c => c.Name))}" +
                   (deterministic ? ", bitwise repeatable" : ", NOT REPEATABLE"));
    }

    static double[] CompareAttention(IBackend gpu, AttentionSpans spans, int keyRows, int heads, int kvHeads, int headDim, Xoshiro256 random,
                                     out bool deterministic)
    {
        int rows = spans.Count, qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        float[] q = Bf16Normal(random, rows * qWidth), k = Bf16Normal(random, keyRows * kvWidth), v = Bf16Normal(random, keyRows * kvWidth);
        float[] dOut = Bf16Normal(random, rows * qWidth);
        float[][] Run(IBackend be, DType type)
        {
            using Tensor tq = be.FromHost(q, type, rows, qWidth), tk = be.FromHost(k, type, keyRows, kvWidth), tv = be.FromHost(v, type, keyRows, kvWidth);
            using Tensor tdo = be.FromHost(dOut, type, rows, qWidth), tdk = be.Zeros(type, keyRows, kvWidth), tdv = be.Zeros(type, keyRows, kvWidth);
            using Tensor output = be.Allocate(type, rows, qWidth), lse = be.Allocate(DType.F32, rows, heads), tdq = be.Allocate(type, rows, qWidth);
            be.Attention(tq, tk, tv, spans, headDim, scale, output, lse);
            be.AttentionBackward(tdo, tq, tk, tv, output, lse, spans, headDim, scale, tdq, tdk, tdv);
            float[] dk = Host(be, tdk), dv = Host(be, tdv);
            // Backward accumulates into dk and dv: a second one adds the same gradients again.
            be.AttentionBackward(tdo, tq, tk, tv, output, lse, spans, headDim, scale, tdq, tdk, tdv);
            return [Host(be, output), Host(be, lse), Host(be, tdq), dk, dv, Host(be, tdk), Host(be, tdv)];
        }
        var expected = Run(CpuBackend.Instance, DType.F32);
        var got = Run(gpu, DType.BF16);
        var again = Run(gpu, DType.BF16);
        deterministic = got.Zip(again).All(p => p.First.AsSpan().SequenceEqual(p.Second));
        return [.. expected.Select((e, i) => RelativeError(got[i], e))];
    }

    static float[] Host(IBackend be, Tensor t)
    {
        var values = new float[t.Count];
        be.ToHost(t, values);
        return values;
    }

    /// <summary>Standard normal values rounded to bfloat16, so both backends see the same numbers.</summary>
    static float[] Bf16Normal(Xoshiro256 random, int n)
    {
        var values = new float[n];
        for (int i = 0; i < n; i++)
        {
            double u = 1 - random.NextDouble(), w = random.NextDouble();
            values[i] = FloatConversions.BF16ToF32(FloatConversions.F32ToBF16((float)(Math.Sqrt(-2 * Math.Log(u)) * Math.Cos(2 * Math.PI * w))));
        }
        return values;
    }

    /// <summary>
    /// The multi-tensor ops (AdamW, Σx²) and the accumulating dropout against the CPU's per-tensor ops on tensors of uneven
    /// sizes (one larger than a launch's blocks per tensor cover, so its blocks loop); error = the worst relative difference.
    /// </summary>
    public static CudaCheckResult TrainingOps(IBackend gpu)
    {
        var cpu = CpuBackend.Instance;
        int[] sizes = [5, 4096, 3 * 8192 + 7, 300_001];
        float[] Values(int count, ulong seed, float spread)
        {
            var r = new Xoshiro256(seed);
            return Enumerable.Range(0, count).Select(_ => (float)((r.NextDouble() * 2 - 1) * spread)).ToArray();
        }
        double worst = 0;
        var onGpu = new List<AdamWTensor>();
        var onCpu = new List<AdamWTensor>();
        for (int i = 0; i < sizes.Length; i++)
        {
            float[] p = Values(sizes[i], (ulong)(4 * i), 1f), g = Values(sizes[i], (ulong)(4 * i + 1), 1f),
                    m = Values(sizes[i], (ulong)(4 * i + 2), 0.1f), v = Values(sizes[i], (ulong)(4 * i + 3), 0.01f).Select(Math.Abs).ToArray();
            float decay = i % 2 == 0 ? 0.1f : 0f;
            onGpu.Add(new(gpu.FromHost(p, DType.F32, sizes[i]), gpu.FromHost(g, DType.F32, sizes[i]), gpu.FromHost(m, DType.F32, sizes[i]),
                          gpu.FromHost(v, DType.F32, sizes[i]), decay));
            onCpu.Add(new(cpu.FromHost(p, DType.F32, sizes[i]), cpu.FromHost(g, DType.F32, sizes[i]), cpu.FromHost(m, DType.F32, sizes[i]),
                          cpu.FromHost(v, DType.F32, sizes[i]), decay));
        }
        var gpuSums = new double[sizes.Length];
        gpu.SumOfSquares(onGpu.Select(t => t.Grad).ToArray(), gpuSums);
        for (int i = 0; i < sizes.Length; i++)
            worst = Math.Max(worst, Math.Abs(gpuSums[i] - cpu.SumOfSquares(onCpu[i].Grad)) / cpu.SumOfSquares(onCpu[i].Grad));
        gpu.AdamW(onGpu, 1e-3f, 0.9f, 0.999f, 1e-8f, 3);
        foreach (var t in onCpu) cpu.AdamW(t.Param, t.Grad, t.M, t.V, 1e-3f, 0.9f, 0.999f, 1e-8f, t.WeightDecay, 3);
        for (int i = 0; i < sizes.Length; i++)
        {
            worst = Math.Max(worst, Compare(onGpu[i].Param, onCpu[i].Param));
            worst = Math.Max(worst, Compare(onGpu[i].M, onCpu[i].M));
            worst = Math.Max(worst, Compare(onGpu[i].V, onCpu[i].V));
        }
        // y = dropout(x) and y += dropout(x) against the CPU's dropout (and then the addition), from x and y rounded to their
        // dtypes and the result rounded back: float32 exact, bfloat16 rounded once from the same float32 value, so both compare
        // bit for bit. bfloat16 x and y of a whole number of 16-byte words take the 8-wide kernel.
        int n = 3 * 8192 + 16;
        double dropoutError = 0;
        foreach (var xType in new[] { DType.F32, DType.BF16 })
        foreach (var yType in new[] { DType.F32, DType.BF16 })
        foreach (bool accumulate in new[] { true, false })
        {
            int count = n - (xType == DType.F32 ? 5 : 0);
            float[] x = Rounded(Values(count, 90, 1f), xType), y0 = Values(count, 91, 1f);
            using var xc = cpu.FromHost(x, DType.F32, count);
            using var dc = cpu.Allocate(DType.F32, count);
            cpu.Dropout(xc, 0.3f, 77, dc);
            using var yc = cpu.FromHost(accumulate ? Rounded(y0, yType) : new float[count], DType.F32, count);
            cpu.AddScaled(dc, 1f, yc);
            using var expected = cpu.FromHost(Rounded(yc.AsSpan().ToArray(), yType), DType.F32, count);
            using var xg = gpu.FromHost(x, xType, count);
            using var yg = gpu.FromHost(y0, yType, count);
            gpu.Dropout(xg, 0.3f, 77, yg, accumulate);
            dropoutError = Math.Max(dropoutError, Compare(yg, expected));
        }
        worst = Math.Max(worst, dropoutError);
        foreach (var t in onGpu.Concat(onCpu))
        {
            t.Param.Dispose();
            t.Grad.Dispose();
            t.M.Dispose();
            t.V.Dispose();
        }
        return new("multi-tensor AdamW, sum of squares, accumulating dropout", worst, 1e-6, $"dropout error {dropoutError:G3}");
    }

    static float[] Rounded(float[] values, DType dtype)
    {
        if (dtype == DType.F32) return values;
        var bytes = new byte[values.Length * dtype.SizeInBytes()];
        FloatConversions.FromF32(dtype, values, bytes);
        var result = new float[values.Length];
        FloatConversions.ToF32(dtype, bytes, result);
        return result;
    }

    static double Compare(Tensor gpuTensor, Tensor cpuTensor)
    {
        var got = new float[gpuTensor.Count];
        var want = new float[cpuTensor.Count];
        gpuTensor.Backend.ToHost(gpuTensor, got);
        cpuTensor.Backend.ToHost(cpuTensor, want);
        return RelativeError(got, want);
    }

    static JsonElement ReadReference(string modelDir) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(modelDir, "reference.json"))).RootElement;

    static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    static int[][] IntRows(JsonElement e) => e.EnumerateArray().Select(Ints).ToArray();

    static float[] ReadF32(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var result = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, result, 0, bytes.Length);
        return result;
    }

    internal static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }
}
