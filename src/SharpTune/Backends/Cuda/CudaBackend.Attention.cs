using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    // The tiling of attention.cu: 4 warps, 16 query rows (or keys) per block, tiles of 32 keys (or query rows).
    const int Threads = 128, RowsPerBlock = 16, Tile = 32, MaxHeadDim = 128;
    AttentionSpans? _spans;
    Tensor? _keyStart, _keyEnd;

    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp)
    {
        int t = SameType(q, k, v, output);
        CheckHeadDim(headDim);
        if (logSumExp != null) RequireF32(logSumExp);
        var (start, end) = Spans(spans);
        int heads = q.RowLength / headDim, kvHeads = k.RowLength / headDim, rows = spans.Count;
        uint shared = (uint)((2 * Tile * (headDim + 4) + RowsPerBlock * headDim) * sizeof(float));
        Launch("attention", "attentionForward", Blocks(rows), (uint)heads, Threads, shared, q.Address, k.Address, v.Address, t,
               start.Address, end.Address, rows, k.Rows, heads, kvHeads, headDim, scale, output.Address, logSumExp?.Address ?? 0);
    }

    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv)
    {
        int t = SameType(dOutput, q, k, v, output, dq, dk, dv);
        CheckHeadDim(headDim);
        RequireF32(logSumExp);
        var (start, end) = Spans(spans);
        int heads = q.RowLength / headDim, kvHeads = k.RowLength / headDim, rows = spans.Count;
        uint shared = (uint)((2 * Tile * (headDim + 4) + 2 * RowsPerBlock * headDim) * sizeof(float));
        using var delta = Allocate(DType.F32, rows * heads);
        Launch("attention", "attentionBackwardQuery", Blocks(rows), (uint)heads, Threads, shared, dOutput.Address, q.Address, k.Address,
               v.Address, output.Address, t, logSumExp.Address, start.Address, end.Address, rows, k.Rows, heads, kvHeads, headDim, scale,
               dq.Address, delta.Address);
        Launch("attention", "attentionBackwardKey", Blocks(k.Rows), (uint)kvHeads, Threads, shared, dOutput.Address, q.Address, k.Address,
               v.Address, t, logSumExp.Address, delta.Address, start.Address, end.Address, rows, k.Rows, heads, kvHeads, headDim, scale,
               dk.Address, dv.Address);
    }

    static uint Blocks(int rows) => (uint)((rows + RowsPerBlock - 1) / RowsPerBlock);

    static void CheckHeadDim(int headDim)
    {
        if (headDim > MaxHeadDim || headDim % 4 != 0)
            throw new NotSupportedException($"CUDA attention supports head dimensions up to {MaxHeadDim} that are multiples of 4, not {headDim}");
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
