using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// One forward step over several sequences at once (continuous batching): their new tokens are concatenated into one
/// block of rows so every linear layer is a single matrix multiply (weights read once per step, not once per sequence),
/// while attention runs per sequence against its own keys in a <see cref="PagedKvCache"/>, gathered into a contiguous
/// scratch per layer so the backend's span-based attention serves every sequence in one call.
/// </summary>
public sealed class BatchedForward(TransformerModel model, PagedKvCache cache) : IDisposable
{
    LayerActivations? _scratch;

    public TransformerModel Model => model;
    public PagedKvCache Cache => cache;

    /// <summary>
    /// Runs the segments' tokens and returns logits [segments wanting logits, vocab] (float32), in segment order;
    /// null when no segment wants any (a step of prefill chunks only).
    /// </summary>
    public Tensor? Run(IReadOnlyList<BatchSegment> segments)
    {
        var be = model.Backend;
        var s = model.Shape;
        int rows = 0, keys = 0, maxLength = 0;
        foreach (var seg in segments)
        {
            int end = seg.StartPosition + seg.Tokens.Length;
            if (seg.Tokens.Length == 0) throw new ArgumentException("a segment has no tokens");
            if (end > seg.BlockTable.Length * cache.BlockSize) throw new SharpTuneException($"the sequence outgrew its KV cache blocks ({seg.BlockTable.Length * cache.BlockSize} positions)");
            rows += seg.Tokens.Length;
            keys += end;
            maxLength = Math.Max(maxLength, end);
        }
        var ids = new int[rows];
        var positions = new int[rows];
        var keyStart = new int[rows];
        var keyEnd = new int[rows];
        var groups = new List<AdapterRows>();
        var logitRows = new List<int>();
        int row = 0, keyOffset = 0;
        foreach (var seg in segments)
        {
            AddGroup(groups, seg.Adapter, row, seg.Tokens.Length);
            for (int i = 0; i < seg.Tokens.Length; i++, row++)
            {
                ids[row] = seg.Tokens[i];
                positions[row] = seg.StartPosition + i;
                keyStart[row] = keyOffset;
                keyEnd[row] = keyOffset + seg.StartPosition + i + 1;
            }
            if (seg.WantLogits) logitRows.Add(row - 1);
            keyOffset += seg.StartPosition + seg.Tokens.Length;
        }
        var spans = new AttentionSpans(keyStart, keyEnd);
        model.Rope.EnsureLength(maxLength);
        using var idTensor = be.FromHost(ids, rows);
        using var positionTensor = be.FromHost(positions, rows);
        using var x = be.Allocate(be.ActivationType, rows, s.Hidden);
        using var gatheredKeys = be.Allocate(be.ActivationType, keys, s.KvWidth);
        using var gatheredValues = be.Allocate(be.ActivationType, keys, s.KvWidth);
        be.Embedding(model.Embedding, idTensor, x);
        var a = Scratch(rows);
        foreach (var layer in model.Layers)
            LayerForward(layer, x, positionTensor, spans, a, segments, groups, gatheredKeys, gatheredValues);
        return Head(x, logitRows, segments);
    }

    static void AddGroup(List<AdapterRows> groups, string? adapter, int start, int count)
    {
        if (groups.Count > 0 && groups[^1].Adapter == adapter && groups[^1].Start + groups[^1].Count == start)
            groups[^1] = groups[^1] with { Count = groups[^1].Count + count };
        else groups.Add(new AdapterRows(adapter, start, count));
    }

    /// <summary>DecoderLayer.Forward's block with per-row adapters and paged keys/values.</summary>
    void LayerForward(DecoderLayer layer, Tensor x, Tensor positions, AttentionSpans spans, LayerActivations a,
                      IReadOnlyList<BatchSegment> segments, List<AdapterRows> groups, Tensor gatheredKeys, Tensor gatheredValues)
    {
        var be = model.Backend;
        var s = model.Shape;
        int n = x.Rows;
        be.Copy(x, a.Input);
        be.RmsNorm(x, layer.InputNorm, s.RmsNormEps, a.Norm1, null);
        layer.QProj.ForwardRows(be, a.Norm1, a.QRaw ?? a.Q, groups);
        layer.KProj.ForwardRows(be, a.Norm1, a.KRaw ?? a.K, groups);
        layer.VProj.ForwardRows(be, a.Norm1, a.V, groups);
        if (s.QkNorm)
        {
            be.RmsNorm(a.QRaw!.Reshape(n * s.Heads, s.HeadDim), layer.QNorm!, s.RmsNormEps, a.Q.Reshape(n * s.Heads, s.HeadDim), null);
            be.RmsNorm(a.KRaw!.Reshape(n * s.KvHeads, s.HeadDim), layer.KNorm!, s.RmsNormEps, a.K.Reshape(n * s.KvHeads, s.HeadDim), null);
        }
        model.Rope.ApplyQueryKey(be, a.Q, a.K, positions, inverse: false);

        var poolKeys = cache.Keys[layer.Index];
        var poolValues = cache.Values[layer.Index];
        int row = 0, gathered = 0;
        foreach (var seg in segments)
        {
            // New keys/values into the sequence's blocks, then its whole history (old and new) into the contiguous scratch.
            ForEachRun(seg, seg.StartPosition, seg.Tokens.Length, (slot, offset, count) =>
            {
                be.Copy(a.K.SliceRows(row + offset, count), poolKeys.SliceRows(slot, count));
                be.Copy(a.V.SliceRows(row + offset, count), poolValues.SliceRows(slot, count));
            });
            int length = seg.StartPosition + seg.Tokens.Length;
            int at = gathered;
            ForEachRun(seg, 0, length, (slot, offset, count) =>
            {
                be.Copy(poolKeys.SliceRows(slot, count), gatheredKeys.SliceRows(at + offset, count));
                be.Copy(poolValues.SliceRows(slot, count), gatheredValues.SliceRows(at + offset, count));
            });
            row += seg.Tokens.Length;
            gathered += length;
        }
        be.Attention(a.Q, gatheredKeys, gatheredValues, spans, s.HeadDim, s.AttentionScale, a.Attention, null);

        layer.OProj.ForwardRows(be, a.Attention, a.Middle, groups);
        be.AddScaled(a.Input, 1f, a.Middle);
        be.RmsNorm(a.Middle, layer.PostAttentionNorm, s.RmsNormEps, a.Norm2, null);
        layer.GateProj.ForwardRows(be, a.Norm2, a.Gate, groups);
        layer.UpProj.ForwardRows(be, a.Norm2, a.Up, groups);
        be.SwiGlu(a.Gate, a.Up, a.Act);
        layer.DownProj.ForwardRows(be, a.Act, x, groups);
        be.AddScaled(a.Middle, 1f, x);
    }

    /// <summary>Splits positions first..first+count-1 of a sequence into runs inside one block: (pool row, offset from first, length).</summary>
    void ForEachRun(BatchSegment seg, int first, int count, Action<int, int, int> run)
    {
        int bs = cache.BlockSize;
        for (int offset = 0; offset < count;)
        {
            int p = first + offset;
            int inBlock = p % bs;
            int length = Math.Min(bs - inBlock, count - offset);
            run(seg.BlockTable[p / bs] * bs + inBlock, offset, length);
            offset += length;
        }
    }

    /// <summary>Final norm and output head over the rows that want logits, each with its own sequence's adapter.</summary>
    Tensor? Head(Tensor x, List<int> logitRows, IReadOnlyList<BatchSegment> segments)
    {
        var be = model.Backend;
        var s = model.Shape;
        int k = logitRows.Count;
        if (k == 0) return null;
        using var picked = be.Allocate(be.ActivationType, k, s.Hidden);
        var groups = new List<AdapterRows>();
        int i = 0;
        foreach (var seg in segments)
        {
            if (!seg.WantLogits) continue;
            be.Copy(x.SliceRows(logitRows[i], 1), picked.SliceRows(i, 1));
            AddGroup(groups, seg.Adapter, i, 1);
            i++;
        }
        using var normed = be.Allocate(be.ActivationType, k, s.Hidden);
        var logits = be.Allocate(DType.F32, k, s.Vocab);
        be.RmsNorm(picked, model.FinalNorm, s.RmsNormEps, normed, null);
        model.LmHead.ForwardRows(be, normed, logits, groups);
        return logits;
    }

    LayerActivations Scratch(int rows)
    {
        if (_scratch?.Rows != rows)
        {
            _scratch?.Dispose();
            _scratch = new LayerActivations(model.Backend, model.Shape, rows);
        }
        return _scratch;
    }

    public void Dispose() => _scratch?.Dispose();
}
