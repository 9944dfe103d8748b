using System.Diagnostics;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// Wraps a backend and adds up the wall time of each op (matrix products by their shape), to see where a forward pass
/// spends its time. Ops are synchronous on the CPU, so each call's time is its own.
/// </summary>
internal sealed class ProfilingBackend(IBackend inner) : IBackend
{
    readonly Dictionary<string, (long Ticks, long Calls)> _totals = [];

    public void Reset() => _totals.Clear();

    public void Print(int tokens)
    {
        long all = _totals.Values.Sum(v => v.Ticks);
        Console.WriteLine($"{"op",-34} {"ms/token",9} {"share",6} {"calls",7}");
        foreach (var (name, (ticks, calls)) in _totals.OrderByDescending(p => p.Value.Ticks))
            Console.WriteLine($"{name,-34} {ticks * 1000.0 / Stopwatch.Frequency / tokens,9:F3} {ticks / (double)all,6:P0} {calls,7}");
        Console.WriteLine($"{"total in ops",-34} {all * 1000.0 / Stopwatch.Frequency / tokens,9:F3}");
    }

    void Time(string name, Action op)
    {
        long start = Stopwatch.GetTimestamp();
        op();
        long elapsed = Stopwatch.GetTimestamp() - start;
        _totals[name] = _totals.TryGetValue(name, out var t) ? (t.Ticks + elapsed, t.Calls + 1) : (elapsed, 1);
    }

    T Time<T>(string name, Func<T> op)
    {
        T result = default!;
        Time(name, () => { result = op(); });
        return result;
    }

    public string Name => inner.Name;
    public bool IsHost => inner.IsHost;
    public DType ActivationType => inner.ActivationType;
    public Tensor Allocate(DType dtype, params int[] shape) => Time("Allocate", () => inner.Allocate(dtype, shape));
    public Tensor Zeros(DType dtype, params int[] shape) => Time("Zeros", () => inner.Zeros(dtype, shape));
    public Tensor FromHost(ReadOnlySpan<float> values, DType dtype, params int[] shape) => inner.FromHost(values, dtype, shape);
    public Tensor FromHostBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape) => inner.FromHostBytes(bytes, dtype, shape);
    public Tensor FromHost(ReadOnlySpan<int> values, params int[] shape) => inner.FromHost(values, shape);
    public void ToHost(Tensor source, Span<float> destination) => inner.ToHost(source, destination);
    public void Copy(Tensor source, Tensor destination) => Time("Copy", () => inner.Copy(source, destination));
    public void Fill(Tensor tensor, float value) => Time("Fill", () => inner.Fill(tensor, value));
    public void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f) =>
        Time($"MatMul {b.DType} {c.Rows}x{c.RowLength}x{(transA ? a.Rows : a.RowLength)}", () => inner.MatMul(a, transA, b, transB, c, alpha, beta));
    public void Embedding(Tensor table, Tensor ids, Tensor output) => Time("Embedding", () => inner.Embedding(table, ids, output));
    public void EmbeddingBackward(Tensor dOutput, Tensor ids, Tensor dTable) => inner.EmbeddingBackward(dOutput, ids, dTable);
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y, Tensor? rstd) => Time("RmsNorm", () => inner.RmsNorm(x, weight, eps, y, rstd));
    public void RmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor? dWeight, bool accumulateDx) =>
        inner.RmsNormBackward(dy, x, weight, rstd, dx, dWeight, accumulateDx);
    public void AddBias(Tensor y, Tensor bias) => Time("AddBias", () => inner.AddBias(y, bias));
    public void BiasBackward(Tensor dy, Tensor dBias) => inner.BiasBackward(dy, dBias);
    public void Rope(Tensor x, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse) =>
        Time("Rope", () => inner.Rope(x, positions, invFreq, headDim, attentionScaling, inverse));
    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp) =>
        Time("Attention", () => inner.Attention(q, k, v, spans, headDim, scale, output, logSumExp));
    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv) =>
        inner.AttentionBackward(dOutput, q, k, v, output, logSumExp, spans, headDim, scale, dq, dk, dv);
    public void SwiGlu(Tensor gate, Tensor up, Tensor h) => Time("SwiGlu", () => inner.SwiGlu(gate, up, h));
    public void SwiGluBackward(Tensor dh, Tensor gate, Tensor up, Tensor dGate, Tensor dUp) => inner.SwiGluBackward(dh, gate, up, dGate, dUp);
    public void AddScaled(Tensor x, float alpha, Tensor y) => Time("AddScaled", () => inner.AddScaled(x, alpha, y));
    public void Dropout(Tensor x, float p, ulong seed, Tensor y) => inner.Dropout(x, p, seed, y);
    public (double LossSum, int Count, int Correct) CrossEntropy(Tensor logits, Tensor labels, Tensor? dLogits, float gradScale) =>
        inner.CrossEntropy(logits, labels, dLogits, gradScale);
    public double SumOfSquares(Tensor x) => inner.SumOfSquares(x);
    public void Scale(Tensor x, float alpha) => inner.Scale(x, alpha);
    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step) =>
        inner.AdamW(param, grad, m, v, lr, beta1, beta2, eps, weightDecay, step);
    public void Dispose() { }
}
