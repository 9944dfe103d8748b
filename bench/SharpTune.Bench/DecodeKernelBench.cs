using System.Diagnostics;
using SharpTune.Backends.Cuda;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// `cuda-decode-kernels [7b|0.5b]`: each kernel of a batch-1 decode step on its own at the shape's sizes, issued back to back
/// as in a step (so launch gaps count), with the weight bytes read per call over the time per call against the device-copy
/// bandwidth. Weights rotate over enough copies (≥ 256 MB) that the 50 MB L2 cannot serve them.
/// </summary>
public static class DecodeKernelBench
{
    const int Calls = 64, Repeats = 3;

    public static int Run(string[] args)
    {
        string name = args.ElementAtOrDefault(0) ?? "7b";
        var (hidden, intermediate, heads, kvHeads, vocab) = name switch
        {
            "7b" => (3584, 18944, 28, 4, 152064),
            "0.5b" => (896, 4864, 14, 2, 151936),
            _ => throw new ArgumentException($"unknown shape '{name}' (7b or 0.5b)"),
        };
        int headDim = hidden / heads, kvWidth = kvHeads * headDim;
        using var be = CudaBackend.Create();
        double bandwidth = CudaBench.CopyBandwidth(be);
        Console.WriteLine($"cuda-decode-kernels {name} on {be.DeviceName}: batch 1, bf16 weights and activations, {Calls} calls back to back, best of {Repeats}; copy bandwidth {bandwidth / 1e9:F0} GB/s");
        var x = Normal(be, DType.BF16, 1, hidden);
        var h = Normal(be, DType.BF16, 1, intermediate);
        var logits = be.Allocate(DType.BF16, 1, vocab);
        var k = be.Allocate(DType.BF16, 1, kvWidth);
        var v = be.Allocate(DType.BF16, 1, kvWidth);
        var q = Normal(be, DType.BF16, 1, hidden);
        var qBias = Ones(be, hidden);
        var kvBias = Ones(be, kvWidth);

        var qkv = Weights(be, (hidden, hidden), (kvWidth, hidden), (kvWidth, hidden));
        Report(be, "q/k/v", qkv, bandwidth, w => be.Linear(x, [new(w[0], qBias, q), new(w[1], kvBias, k), new(w[2], kvBias, v)]));
        var o = Weights(be, (hidden, hidden));
        Report(be, "o (+residual)", o, bandwidth, w => be.Linear(q, w[0], null, x, beta: 1f));
        var gateUp = Weights(be, (intermediate, hidden), (intermediate, hidden));
        Report(be, "gate/up + SwiGLU", gateUp, bandwidth, w => be.SwiGluLinear(x, w[0], w[1], h));
        var down = Weights(be, (hidden, intermediate));
        Report(be, "down (+residual)", down, bandwidth, w => be.Linear(h, w[0], null, x, beta: 1f));
        var head = Weights(be, (vocab, hidden));
        Report(be, "lm_head", head, bandwidth, w => be.Linear(x, w[0], null, logits));

        var norm = Ones(be, hidden);
        Report(be, "q/k/v + rmsnorm", qkv, bandwidth, w => be.NormLinear(x, norm, 1e-6f, [new(w[0], qBias, q), new(w[1], kvBias, k), new(w[2], kvBias, v)]));
        Report(be, "rmsnorm + gate/up + SwiGLU", gateUp, bandwidth, w => be.NormSwiGluLinear(x, norm, 1e-6f, w[0], w[1], h));
        Report(be, "rmsnorm + lm_head", head, bandwidth, w => be.NormLinear(x, norm, 1e-6f, [new(w[0], null, logits)]));
        Report(be, "rmsnorm", [], bandwidth, _ => be.RmsNorm(x, norm, 1e-6f, q, null));
        using var positions = be.FromHost([63], 1);
        using var invFreq = be.FromHost(Enumerable.Range(0, headDim / 2).Select(i => MathF.Pow(1e6f, -2f * i / headDim)).ToArray(), DType.F32, headDim / 2);
        Report(be, "rope q+k", [], bandwidth, _ => be.RopeQueryKey(q, k, positions, invFreq, headDim, 1f));
        var keys = Normal(be, DType.BF16, 64, kvWidth);
        var values = Normal(be, DType.BF16, 64, kvWidth);
        Report(be, "rope q+k + cache append", [], bandwidth, _ => be.RopeQueryKeyAppend(q, k, v, positions, invFreq, headDim, 1f, keys, values));
        Report(be, "q/k/v + rmsnorm + rope + cache append", qkv, bandwidth,
               w => be.NormLinearRopeAppend(x, norm, 1e-6f, new(w[0], qBias, q), new(w[1], kvBias, k), new(w[2], kvBias, v), positions, invFreq,
                                            headDim, 1f, keys, values));
        var spans = AttentionSpans.ForCache(0, 63, 1);
        Report(be, "attention (64 keys)", [], bandwidth, _ => be.AttentionDecode(q, keys, values, spans, headDim, 1f / MathF.Sqrt(headDim), x));
        return 0;
    }

    /// <summary>Enough copies of the weights (shapes [rows, cols]) to read ≥ 256 MB in a rotation; each copy is one call's operands.</summary>
    static List<Tensor[]> Weights(CudaBackend be, params (int Rows, int Cols)[] shapes)
    {
        long bytes = shapes.Sum(s => 2L * s.Rows * s.Cols);
        int copies = (int)Math.Max(2, (256L << 20) / bytes + 1);
        return Enumerable.Range(0, copies).Select(_ => shapes.Select(s => Normal(be, DType.BF16, s.Rows, s.Cols)).ToArray()).ToList();
    }

    /// <summary>Prints µs per call and, for products, the weight bytes read per second and their share of the copy bandwidth.</summary>
    static void Report(CudaBackend be, string label, List<Tensor[]> weights, double bandwidth, Action<Tensor[]> call)
    {
        Tensor[] Operands(int i) => weights.Count > 0 ? weights[i % weights.Count] : [];
        for (int i = 0; i < 4; i++) call(Operands(i));
        double best = double.MaxValue;
        for (int r = 0; r < Repeats; r++)
        {
            be.Synchronize();
            var watch = Stopwatch.StartNew();
            for (int i = 0; i < Calls; i++) call(Operands(i));
            be.Synchronize();
            best = Math.Min(best, watch.Elapsed.TotalSeconds / Calls);
        }
        long bytes = weights.Count > 0 ? weights[0].Sum(w => w.ByteLength) : 0;
        string rate = bytes > 0 ? $"{bytes / best / 1e9,7:F0} GB/s {bytes / best / bandwidth,6:P1} of copy, {bytes / 1e6,7:F1} MB" : "";
        Console.WriteLine($"  {label,-22} {best * 1e6,8:F1} µs/call {rate}");
    }

    static Tensor Normal(CudaBackend be, DType dtype, int rows, int cols)
    {
        var t = be.Allocate(dtype, rows, cols);
        be.FillNormal(t, 0.02f, (ulong)Stopwatch.GetTimestamp());
        return t;
    }

    static Tensor Ones(CudaBackend be, int n)
    {
        var t = be.Allocate(DType.F32, n);
        be.Fill(t, 1f);
        return t;
    }
}
