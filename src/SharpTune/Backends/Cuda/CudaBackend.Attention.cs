using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    const int AttentionWarps = 4;
    AttentionSpans? _spans;
    Tensor? _keyStart, _keyEnd;

    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp)
    {
        int t = SameType(q, k, v, output);
        CheckHeadDim(headDim);
        if (logSumExp != null) RequireF32(logSumExp);
        var (start, end) = Spans(spans);
        int heads = q.RowLength / headDim, kvHeads = k.RowLength / headDim, rows = spans.Count;
        Launch("attention", "attentionForward", Blocks(rows * heads), AttentionWarps * 32, 0, q.Address, k.Address, v.Address, t,
               start.Address, end.Address, rows, heads, kvHeads, headDim, scale, output.Address, logSumExp?.Address ?? 0);
    }

    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv)
    {
        int t = SameType(dOutput, q, k, v, output, dq, dk, dv);
        CheckHeadDim(headDim);
        RequireF32(logSumExp);
        var (start, end) = Spans(spans);
        int heads = q.RowLength / headDim, kvHeads = k.RowLength / headDim, rows = spans.Count;
        using var delta = Allocate(DType.F32, rows * heads);
        Launch("attention", "attentionBackwardQuery", Blocks(rows * heads), AttentionWarps * 32, 0, dOutput.Address, q.Address, k.Address,
               v.Address, output.Address, t, logSumExp.Address, start.Address, end.Address, rows, heads, kvHeads, headDim, scale,
               dq.Address, delta.Address);
        Launch("attention", "attentionBackwardKey", Blocks(k.Rows * kvHeads), AttentionWarps * 32, 0, dOutput.Address, q.Address, k.Address,
               v.Address, t, logSumExp.Address, delta.Address, start.Address, end.Address, rows, k.Rows, heads, kvHeads, headDim, scale,
               dk.Address, dv.Address);
    }

    static uint Blocks(int warps) => (uint)((warps + AttentionWarps - 1) / AttentionWarps);

    static void CheckHeadDim(int headDim)
    {
        if (headDim > 256) throw new NotSupportedException($"CUDA attention supports head dimensions up to 256, not {headDim}");
    }

    /// <summary>The spans on the device; every layer of a pass uses the same spans object, so it is uploaded once.</summary>
    (Tensor Start, Tensor End) Spans(AttentionSpans spans)
    {
        if (!ReferenceEquals(spans, _spans))
        {
            DisposeSpans();
            _keyStart = FromHost(spans.KeyStart, spans.Count);
            _keyEnd = FromHost(spans.KeyEnd, spans.Count);
            _spans = spans;
        }
        return (_keyStart!, _keyEnd!);
    }

    void DisposeSpans()
    {
        _keyStart?.Dispose();
        _keyEnd?.Dispose();
        _spans = null;
    }
}
