using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    // The tiling of attention.cu: 4 warps, 16 query rows (or keys) per block, tiles of 32 keys (or query rows).
    const int Threads = 128, RowsPerBlock = 16, Tile = 32, MaxHeadDim = 128;
    // flash.cu: 4 warps over 64 query rows (or keys); its kernels are instantiated for these head dims.
    const int FlashRows = 64;
    AttentionSpans? _spans;
    Tensor? _keyStart, _keyEnd;

    /// <summary>
    /// BF16 attention at head dims 64 and 128 runs on tensor cores (flash.cu); false sends it to the CUDA-core kernels of
    /// attention.cu, which also serve the F32 mode and other head dims. For comparing the two in benchmarks.
    /// </summary>
    internal bool TensorCoreAttention { get; set; } = true;

    bool UsesFlash(int headDim, params ReadOnlySpan<Tensor> tensors)
    {
        if (!TensorCoreAttention || headDim is not (64 or 128)) return false;
        // cp.async moves 16-byte chunks.
        foreach (var t in tensors)
            if (t.DType != DType.BF16 || t.Address % 16 != 0) return false;
        return true;
    }

    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp)
    {
        int t = SameType(q, k, v, output);
        CheckHeadDim(headDim);
        if (logSumExp != null) RequireF32(logSumExp);
        var (start, end) = Spans(spans);
        int heads = q.RowLength / headDim, kvHeads = k.RowLength / headDim, rows = spans.Count;
        if (UsesFlash(headDim, q, k, v, output))
        {
            Launch("flash", $"flashForward{headDim}", FlashBlocks(rows), (uint)heads, Threads, FlashShared(headDim, 3 * FlashRows),
                   q.Address, k.Address, v.Address, start.Address, end.Address, rows, k.Rows, heads, kvHeads, scale, output.Address,
                   logSumExp?.Address ?? 0);
            return;
        }
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
        if (UsesFlash(headDim, dOutput, q, k, v, output, dq, dk, dv))
        {
            FlashBackward(dOutput, q, k, v, output, logSumExp, start, end, rows, heads, kvHeads, headDim, scale, dq, dk, dv);
            return;
        }
        uint shared = (uint)((2 * Tile * (headDim + 4) + 2 * RowsPerBlock * headDim) * sizeof(float));
        using var delta = Allocate(DType.F32, rows * heads);
        Launch("attention", "attentionBackwardQuery", Blocks(rows), (uint)heads, Threads, shared, dOutput.Address, q.Address, k.Address,
               v.Address, output.Address, t, logSumExp.Address, start.Address, end.Address, rows, k.Rows, heads, kvHeads, headDim, scale,
               dq.Address, delta.Address);
        Launch("attention", "attentionBackwardKey", Blocks(k.Rows), (uint)kvHeads, Threads, shared, dOutput.Address, q.Address, k.Address,
               v.Address, t, logSumExp.Address, delta.Address, start.Address, end.Address, rows, k.Rows, heads, kvHeads, headDim, scale,
               dk.Address, dv.Address);
    }

    /// <summary>
    /// delta = rowsum(dO∘O); dq by query blocks; dk, dv by key blocks per query head into f32 partials, then summed over
    /// each KV head's group in a fixed order and added to dk, dv (deterministic, no atomics).
    /// </summary>
    void FlashBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, Tensor start, Tensor end,
                       int rows, int heads, int kvHeads, int headDim, float scale, Tensor dq, Tensor dk, Tensor dv)
    {
        int keyRows = k.Rows, warps = Threads / 32;
        using var delta = Allocate(DType.F32, rows * heads);
        Launch("flash", "flashDelta", (uint)((rows * heads + warps - 1) / warps), Threads, 0, dOutput.Address, output.Address, rows * heads,
               headDim, delta.Address);
        // q and dO, and two buffers of K and V.
        Launch("flash", $"flashBackwardQuery{headDim}", FlashBlocks(rows), (uint)heads, Threads, FlashShared(headDim, 6 * FlashRows),
               dOutput.Address, q.Address, k.Address, v.Address, logSumExp.Address, delta.Address, start.Address, end.Address, rows,
               keyRows, heads, kvHeads, scale, dq.Address);
        using var dkPart = Allocate(DType.F32, keyRows, heads * headDim);
        using var dvPart = Allocate(DType.F32, keyRows, heads * headDim);
        int queryTile = headDim == 64 ? 64 : 32; // flash.cu's FLASH_KERNELS instantiations
        // K and V, and two buffers of a query tile's q, dO and 4 values per row.
        uint keyShared = FlashShared(headDim, 2 * FlashRows + 4 * queryTile) + (uint)(2 * 4 * queryTile * sizeof(float));
        Launch("flash", $"flashBackwardKey{headDim}", FlashBlocks(keyRows), (uint)heads, Threads, keyShared, dOutput.Address, q.Address,
               k.Address, v.Address, logSumExp.Address, delta.Address, start.Address, end.Address, rows, keyRows, heads, kvHeads, scale,
               dkPart.Address, dvPart.Address);
        long n = (long)keyRows * kvHeads * headDim;
        Launch("flash", "flashReduceKeys", (uint)Math.Min((n + 255) / 256, (long)_multiprocessors * 32), 256, 0, dkPart.Address,
               dvPart.Address, keyRows, heads, kvHeads, headDim, dk.Address, dv.Address);
    }

    static uint FlashBlocks(int rows) => (uint)((rows + FlashRows - 1) / FlashRows);

    /// <summary>Shared memory of <paramref name="tileRows"/> bf16 rows of headDim + 8 (the padding flash.cu uses).</summary>
    static uint FlashShared(int headDim, int tileRows) => (uint)(tileRows * (headDim + 8) * 2);

    static uint Blocks(int rows) => (uint)((rows + RowsPerBlock - 1) / RowsPerBlock);

    static void CheckHeadDim(int headDim)
    {
        if (headDim > MaxHeadDim || headDim % 4 != 0)
            throw new NotSupportedException($"CUDA attention supports head dimensions up to {MaxHeadDim} that are multiples of 4, not {headDim}");
    }

    /// <summary>
    /// The spans on the device: their resident tensors, or an upload of their arrays (every layer of a pass uses the same
    /// spans object, so it is uploaded once).
    /// </summary>
    (Tensor Start, Tensor End) Spans(AttentionSpans spans)
    {
        if (spans.ResidentKeyStart is { } residentStart && spans.ResidentKeyEnd is { } residentEnd)
        {
            Own(residentStart);
            Own(residentEnd);
            return (residentStart, residentEnd);
        }
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
