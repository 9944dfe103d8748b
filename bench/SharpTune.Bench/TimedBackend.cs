using System.Diagnostics;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// Wraps a backend and times every op by name (wall time, the calling thread waits for each op), counts the FLOPs of every
/// matrix multiply (2·m·n·k), timing those with a dimension ≤ 16 (LoRA's) apart, and samples the process's anonymous resident memory (heap and tensors, not mapped files)
/// after each op, so its peak is seen at op granularity.
/// </summary>
internal sealed class TimedBackend(IBackend inner) : IBackend
{
    readonly Dictionary<string, (double Seconds, long Calls)> _ops = [];

    public double MatMulFlops { get; private set; }
    public long PeakAnonymousBytes { get; private set; }
    public IReadOnlyDictionary<string, (double Seconds, long Calls)> Ops => _ops;

    public void Reset()
    {
        _ops.Clear();
        MatMulFlops = 0;
    }

    void Time(string op, Action run)
    {
        long start = Stopwatch.GetTimestamp();
        run();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        var (total, calls) = _ops.GetValueOrDefault(op);
        _ops[op] = (total + seconds, calls + 1);
        PeakAnonymousBytes = Math.Max(PeakAnonymousBytes, ProcessMemory.AnonymousResidentBytes());
    }

    T Time<T>(string op, Func<T> run)
    {
        T result = default!;
        Time(op, () => { result = run(); });
        return result;
    }

    public string Name => inner.Name;
    public bool IsHost => inner.IsHost;
    public DType ActivationType => inner.ActivationType;
    public Tensor Allocate(DType dtype, params int[] shape) => inner.Allocate(dtype, shape);
    public Tensor Zeros(DType dtype, params int[] shape) => Time("Zeros", () => inner.Zeros(dtype, shape));
    public Tensor FromHost(ReadOnlySpan<float> values, DType dtype, params int[] shape) => inner.FromHost(values, dtype, shape);
    public Tensor FromHostBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape) => inner.FromHostBytes(bytes, dtype, shape);
    public Tensor FromHost(ReadOnlySpan<int> values, params int[] shape) => inner.FromHost(values, shape);
    public void ToHost(Tensor source, Span<float> destination) => inner.ToHost(source, destination);
    public void Copy(Tensor source, Tensor destination) => Time("Copy", () => inner.Copy(source, destination));
    public void Fill(Tensor tensor, float value) => Time("Fill", () => inner.Fill(tensor, value));
    public void RowNorms(Tensor x, Tensor norms) => Time("RowNorms", () => inner.RowNorms(x, norms));
    public void Divide(Tensor a, Tensor b, Tensor y) => Time("Divide", () => inner.Divide(a, b, y));
    public void ScaleColumns(Tensor x, Tensor scale) => Time("ScaleColumns", () => inner.ScaleColumns(x, scale));
    public void ScaleRows(Tensor x, Tensor scale) => Time("ScaleRows", () => inner.ScaleRows(x, scale));
    public void ColumnDots(Tensor a, Tensor b, Tensor result) => Time("ColumnDots", () => inner.ColumnDots(a, b, result));

    public void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        int k = transA ? a.Rows : a.RowLength;
        MatMulFlops += 2.0 * c.Rows * c.RowLength * k;
        bool lowRank = Math.Min(k, Math.Min(c.Rows, c.RowLength)) <= 16;
        Time(lowRank ? "MatMul (rank<=16)" : "MatMul", () => inner.MatMul(a, transA, b, transB, c, alpha, beta));
    }

    public void Embedding(Tensor table, Tensor ids, Tensor output) => Time("Embedding", () => inner.Embedding(table, ids, output));
    public void EmbeddingBackward(Tensor dOutput, Tensor ids, Tensor dTable) => Time("EmbeddingBackward", () => inner.EmbeddingBackward(dOutput, ids, dTable));
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y, Tensor? rstd) => Time("RmsNorm", () => inner.RmsNorm(x, weight, eps, y, rstd));
    public void RmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor? dWeight, bool accumulateDx) =>
        Time("RmsNormBackward", () => inner.RmsNormBackward(dy, x, weight, rstd, dx, dWeight, accumulateDx));
    public void AddBias(Tensor y, Tensor bias) => Time("AddBias", () => inner.AddBias(y, bias));
    public void BiasBackward(Tensor dy, Tensor dBias) => Time("BiasBackward", () => inner.BiasBackward(dy, dBias));
    public void Rope(Tensor x, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse) =>
        Time("Rope", () => inner.Rope(x, positions, invFreq, headDim, attentionScaling, inverse));
    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp) =>
        Time("Attention", () => inner.Attention(q, k, v, spans, headDim, scale, output, logSumExp));
    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv) =>
        Time("AttentionBackward", () => inner.AttentionBackward(dOutput, q, k, v, output, logSumExp, spans, headDim, scale, dq, dk, dv));
    public void SwiGlu(Tensor gate, Tensor up, Tensor h) => Time("SwiGlu", () => inner.SwiGlu(gate, up, h));
    public void SwiGluBackward(Tensor dh, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) =>
        Time("SwiGluBackward", () => inner.SwiGluBackward(dh, gate, up, dGate, dUp));
    public void AddScaled(Tensor x, float alpha, Tensor y) => Time("AddScaled", () => inner.AddScaled(x, alpha, y));
    public void Dropout(Tensor x, float p, ulong seed, Tensor y, bool accumulate = false) =>
        Time("Dropout", () => inner.Dropout(x, p, seed, y, accumulate));
    public (double LossSum, int Count, int Correct) CrossEntropy(Tensor logits, Tensor labels, Tensor? dLogits, float gradScale) =>
        Time("CrossEntropy", () => inner.CrossEntropy(logits, labels, dLogits, gradScale));
    public double SumOfSquares(Tensor x) => Time("SumOfSquares", () => inner.SumOfSquares(x));
    public void ArgMax(Tensor x, Span<int> indices)
    {
        var result = new int[indices.Length];
        Time("ArgMax", () => inner.ArgMax(x, result));
        result.CopyTo(indices);
    }

    public void Scale(Tensor x, float alpha) => Time("Scale", () => inner.Scale(x, alpha));
    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step) =>
        Time("AdamW", () => inner.AdamW(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step));

    public void Dispose() => inner.Dispose();
}

/// <summary>Linux's per-process memory counters (/proc/self/status); zero elsewhere.</summary>
internal static class ProcessMemory
{
    public static long AnonymousResidentBytes() => StatusKilobytes("RssAnon:") * 1024;

    static long StatusKilobytes(string key)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(key, StringComparison.Ordinal))
                return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        return 0;
    }
}
