using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// The intermediate tensors of one decoder layer for a block of rows: scratch for inference, and what backward needs in
/// training (kept per layer, or with gradient checkpointing partly kept and partly borrowed from a scratch set that the
/// layer's recompute refills; see <see cref="KeptActivations"/>).
/// </summary>
public sealed class LayerActivations : IDisposable
{
    readonly List<Tensor> _owned = [];

    public LayerActivations(IBackend backend, TransformerShape shape, int rows) : this(backend, shape, rows, KeptActivations.Everything, null) { }

    /// <summary>
    /// A layer's activations under gradient checkpointing: the tensors <paramref name="kept"/> names are its own; the rest
    /// are <paramref name="scratch"/>'s (one full set shared by all layers), refilled by the layer's recompute before its backward.
    /// </summary>
    public LayerActivations(IBackend backend, TransformerShape shape, int rows, KeptActivations kept, LayerActivations? scratch)
    {
        if (kept != KeptActivations.Everything && scratch == null) throw new ArgumentException("activations kept in part need a scratch set", nameof(scratch));
        Rows = rows;
        var t = backend.ActivationType;
        bool attentionOwn = kept != KeptActivations.Input;
        bool restOwn = kept == KeptActivations.Everything;
        Tensor Get(bool own, Func<LayerActivations, Tensor?> shared, params int[] dims)
        {
            if (!own) return shared(scratch!)!;
            var x = backend.Allocate(dims.Length == 1 ? DType.F32 : t, dims);
            _owned.Add(x);
            return x;
        }
        Input = Get(true, s => s.Input, rows, shape.Hidden);
        Norm1 = Get(restOwn, s => s.Norm1, rows, shape.Hidden);
        Rstd1 = Get(restOwn, s => s.Rstd1, rows);
        Q = Get(attentionOwn, s => s.Q, rows, shape.QWidth);
        K = Get(attentionOwn, s => s.K, rows, shape.KvWidth);
        V = Get(attentionOwn, s => s.V, rows, shape.KvWidth);
        if (shape.QkNorm)
        {
            QRaw = Get(attentionOwn, s => s.QRaw, rows, shape.QWidth);
            KRaw = Get(attentionOwn, s => s.KRaw, rows, shape.KvWidth);
            QRstd = Get(attentionOwn, s => s.QRstd, rows * shape.Heads);
            KRstd = Get(attentionOwn, s => s.KRstd, rows * shape.KvHeads);
        }
        Attention = Get(attentionOwn, s => s.Attention, rows, shape.QWidth);
        LogSumExp = Get(attentionOwn, s => s.LogSumExp, rows * shape.Heads);
        Middle = Get(attentionOwn, s => s.Middle, rows, shape.Hidden);
        Norm2 = Get(restOwn, s => s.Norm2, rows, shape.Hidden);
        Rstd2 = Get(restOwn, s => s.Rstd2, rows);
        Gate = Get(restOwn, s => s.Gate, rows, shape.Intermediate);
        Up = Get(restOwn, s => s.Up, rows, shape.Intermediate);
        Act = Get(restOwn, s => s.Act, rows, shape.Intermediate);
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

    /// <summary>Disposes the tensors this set owns (a scratch set's are its owner's).</summary>
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
    }
}

/// <summary>What a decoder layer keeps from its forward for its backward.</summary>
public enum KeptActivations
{
    /// <summary>Everything: nothing is recomputed.</summary>
    Everything,
    /// <summary>Gradient checkpointing: the layer's input; the whole block is recomputed before its backward.</summary>
    Input,
    /// <summary>
    /// Gradient checkpointing that keeps the attention half (its input, q/k/v, the attention output and log-sum-exp, the
    /// residual after it): only the input norm and the MLP up to SwiGLU are recomputed.
    /// </summary>
    Attention,
}
