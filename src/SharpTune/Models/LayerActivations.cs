using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// The intermediate tensors of one decoder layer for a block of rows: scratch for inference, and what backward needs in
/// training (kept per layer, or recomputed per layer with gradient checkpointing).
/// </summary>
public sealed class LayerActivations : IDisposable
{
    readonly List<Tensor> _owned = [];

    public LayerActivations(IBackend backend, TransformerShape shape, int rows)
    {
        Rows = rows;
        var t = backend.ActivationType;
        Tensor New(params int[] dims)
        {
            var x = backend.Allocate(dims.Length == 1 ? DType.F32 : t, dims);
            _owned.Add(x);
            return x;
        }
        Input = New(rows, shape.Hidden);
        Norm1 = New(rows, shape.Hidden);
        Rstd1 = New(rows);
        Q = New(rows, shape.QWidth);
        K = New(rows, shape.KvWidth);
        V = New(rows, shape.KvWidth);
        if (shape.QkNorm)
        {
            QRaw = New(rows, shape.QWidth);
            KRaw = New(rows, shape.KvWidth);
            QRstd = New(rows * shape.Heads);
            KRstd = New(rows * shape.KvHeads);
        }
        Attention = New(rows, shape.QWidth);
        LogSumExp = New(rows * shape.Heads);
        Middle = New(rows, shape.Hidden);
        Norm2 = New(rows, shape.Hidden);
        Rstd2 = New(rows);
        Gate = New(rows, shape.Intermediate);
        Up = New(rows, shape.Intermediate);
        Act = New(rows, shape.Intermediate);
    }

    public int Rows { get; }
    /// <summary>The residual stream entering the layer.</summary>
    public Tensor Input { get; }
    public Tensor Norm1 { get; }
    public Tensor Rstd1 { get; }
    /// <summary>Queries and keys after RoPE; values.</summary>
    public Tensor Q { get; }
    public Tensor K { get; }
    public Tensor V { get; }
    /// <summary>Qwen3: queries and keys before their per-head RMSNorm, and its 1/rms.</summary>
    public Tensor? QRaw { get; }
    public Tensor? KRaw { get; }
    public Tensor? QRstd { get; }
    public Tensor? KRstd { get; }
    public Tensor Attention { get; }
    public Tensor LogSumExp { get; }
    /// <summary>The residual stream after the attention block.</summary>
    public Tensor Middle { get; }
    public Tensor Norm2 { get; }
    public Tensor Rstd2 { get; }
    public Tensor Gate { get; }
    public Tensor Up { get; }
    public Tensor Act { get; }

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
    }
}
