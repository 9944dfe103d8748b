using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// One pre-norm decoder block shared by Llama, Qwen2 and Qwen3:
/// x + Attention(RMSNorm(x)) then + SwiGLU-MLP(RMSNorm(·)), grouped-query attention with RoPE,
/// optional q/k/v biases (Qwen2) and per-head q/k RMSNorm (Qwen3).
/// </summary>
public sealed class DecoderLayer : IDisposable
{
    public required int Index { get; init; }
    public required Tensor InputNorm { get; set; }
    public required Tensor PostAttentionNorm { get; set; }
    public Tensor? QNorm { get; set; }
    public Tensor? KNorm { get; set; }
    public required Linear QProj { get; init; }
    public required Linear KProj { get; init; }
    public required Linear VProj { get; init; }
    public required Linear OProj { get; init; }
    public required Linear GateProj { get; init; }
    public required Linear UpProj { get; init; }
    public required Linear DownProj { get; init; }

    public IEnumerable<Linear> Linears => [QProj, KProj, VProj, OProj, GateProj, UpProj, DownProj];

    /// <summary>
    /// Runs the block on <paramref name="x"/> [rows, hidden] in place, keeping intermediates in <paramref name="a"/>.
    /// With a cache, the new keys/values are appended to it and attention spans index the cache; otherwise they index a.K/a.V.
    /// </summary>
    public void Forward(IBackend be, TransformerShape s, Tensor x, Tensor positions, AttentionSpans spans, LayerActivations a,
                        KvCache? cache, RotaryEmbedding rope, LoraPass? train = null)
    {
        if (cache != null && train == null)
        {
            Decode(be, s, x, positions, spans, a, cache, rope);
            return;
        }
        var mode = train == null ? Projection.Inference : Projection.Train;
        be.Copy(x, a.Input);
        AttentionHalf(be, s, positions, spans, a, cache, rope, train, mode);
        MlpUpToSwiGlu(be, s, a, train, mode);
        Project(be, a.Act, train, mode, (DownProj, x));
        be.AddScaled(a.Middle, 1f, x);
    }

    /// <summary>
    /// Gradient checkpointing: refills what <see cref="Backward"/> reads from <paramref name="a"/> out of what the layer kept,
    /// and no more: not the block's output, which backward does not read, and no LoRA down projection, whose hiddens
    /// <paramref name="train"/> kept from the forward.
    /// </summary>
    public void Recompute(IBackend be, TransformerShape s, Tensor positions, AttentionSpans spans, LayerActivations a,
                          KeptActivations kept, RotaryEmbedding rope, LoraPass train)
    {
        if (kept == KeptActivations.Attention) be.RmsNorm(a.Input, InputNorm, s.RmsNormEps, a.Norm1, a.Rstd1);
        else AttentionHalf(be, s, positions, spans, a, null, rope, train, Projection.Recompute);
        MlpUpToSwiGlu(be, s, a, train, Projection.Recompute);
    }

    /// <summary>How a block's products run: inference, a training forward, or a recompute that reuses the LoRA hiddens.</summary>
    enum Projection { Inference, Train, Recompute }

    void AttentionHalf(IBackend be, TransformerShape s, Tensor positions, AttentionSpans spans, LayerActivations a, KvCache? cache,
                       RotaryEmbedding rope, LoraPass? train, Projection mode)
    {
        int n = a.Input.Rows;
        be.RmsNorm(a.Input, InputNorm, s.RmsNormEps, a.Norm1, a.Rstd1);
        Project(be, a.Norm1, train, mode, (QProj, a.QRaw ?? a.Q), (KProj, a.KRaw ?? a.K), (VProj, a.V));
        if (s.QkNorm)
        {
            be.RmsNorm(a.QRaw!.Reshape(n * s.Heads, s.HeadDim), QNorm!, s.RmsNormEps, a.Q.Reshape(n * s.Heads, s.HeadDim), a.QRstd);
            be.RmsNorm(a.KRaw!.Reshape(n * s.KvHeads, s.HeadDim), KNorm!, s.RmsNormEps, a.K.Reshape(n * s.KvHeads, s.HeadDim), a.KRstd);
        }
        rope.ApplyQueryKey(be, a.Q, a.K, positions, inverse: false);

        Tensor keys = a.K, values = a.V;
        if (cache != null)
        {
            if (cache.Length + n > cache.Capacity) throw new SharpTuneException($"the sequence is longer than the KV cache ({cache.Capacity} positions); raise --max_length");
            be.Copy(a.K, cache.Keys[Index].SliceRows(cache.Length, n));
            be.Copy(a.V, cache.Values[Index].SliceRows(cache.Length, n));
            keys = cache.Keys[Index];
            values = cache.Values[Index];
        }
        be.Attention(a.Q, keys, values, spans, s.HeadDim, s.AttentionScale, a.Attention, a.LogSumExp);

        Project(be, a.Attention, train, mode, (OProj, a.Middle));
        be.AddScaled(a.Input, 1f, a.Middle);
    }

    void MlpUpToSwiGlu(IBackend be, TransformerShape s, LayerActivations a, LoraPass? train, Projection mode)
    {
        be.RmsNorm(a.Middle, PostAttentionNorm, s.RmsNormEps, a.Norm2, a.Rstd2);
        Project(be, a.Norm2, train, mode, (GateProj, a.Gate), (UpProj, a.Up));
        be.SwiGlu(a.Gate, a.Up, a.Act);
    }

    /// <summary>Products of layers that read one input; in training their LoRA down projections are one op.</summary>
    static void Project(IBackend be, Tensor input, LoraPass? train, Projection mode, params ReadOnlySpan<(Linear Layer, Tensor Output)> layers)
    {
        if (mode == Projection.Inference)
        {
            foreach (var (layer, output) in layers) layer.Forward(be, input, output);
            return;
        }
        Linear.ForwardTrainShared(be, input, train!, hiddensKept: mode == Projection.Recompute, layers);
    }

    /// <summary>
    /// The forward with a KV cache (generation): the same block in fewer, fused ops, since nothing is kept for backward —
    /// the norms are folded into the products that read them; q/k/v, rope and the cache append are one op (two, around the
    /// per-head q/k norms of Qwen3; the cache row is each row's position, read on the device); the residual adds are folded
    /// into the o and down products, and gate/up/SwiGLU are one more. Nothing here depends on host values that change from
    /// step to step, so a recorded step (<see cref="DecodeStep"/>) replays it.
    /// </summary>
    void Decode(IBackend be, TransformerShape s, Tensor x, Tensor positions, AttentionSpans spans, LayerActivations a, KvCache cache,
                RotaryEmbedding rope)
    {
        int n = x.Rows;
        if (cache.Length + n > cache.Capacity) throw new SharpTuneException($"the sequence is longer than the KV cache ({cache.Capacity} positions); raise --max_length");
        if (!s.QkNorm && QProj.Adapters.Count == 0 && KProj.Adapters.Count == 0 && VProj.Adapters.Count == 0)
            rope.ApplyNormLinearAppend(be, x, InputNorm, s.RmsNormEps, new(QProj.Weight, QProj.Bias, a.Q), new(KProj.Weight, KProj.Bias, a.K),
                                       new(VProj.Weight, VProj.Bias, a.V), positions, cache.Keys[Index], cache.Values[Index]);
        else
        {
            Linear.ForwardNormed(be, x, InputNorm, s.RmsNormEps, a.Norm1, (QProj, a.QRaw ?? a.Q), (KProj, a.KRaw ?? a.K), (VProj, a.V));
            if (s.QkNorm)
            {
                be.RmsNorm(a.QRaw!.Reshape(n * s.Heads, s.HeadDim), QNorm!, s.RmsNormEps, a.Q.Reshape(n * s.Heads, s.HeadDim), null);
                be.RmsNorm(a.KRaw!.Reshape(n * s.KvHeads, s.HeadDim), KNorm!, s.RmsNormEps, a.K.Reshape(n * s.KvHeads, s.HeadDim), null);
            }
            rope.ApplyQueryKeyAppend(be, a.Q, a.K, a.V, positions, cache.Keys[Index], cache.Values[Index]);
        }
        be.AttentionDecode(a.Q, cache.Keys[Index], cache.Values[Index], spans, s.HeadDim, s.AttentionScale, a.Attention);
        OProj.ForwardAccumulate(be, a.Attention, x);
        if (GateProj.Adapters.Count == 0 && UpProj.Adapters.Count == 0 && GateProj.Bias == null && UpProj.Bias == null)
            be.NormSwiGluLinear(x, PostAttentionNorm, s.RmsNormEps, GateProj.Weight, UpProj.Weight, a.Act);
        else
        {
            be.RmsNorm(x, PostAttentionNorm, s.RmsNormEps, a.Norm2, null);
            GateProj.Forward(be, a.Norm2, a.Gate);
            UpProj.Forward(be, a.Norm2, a.Up);
            be.SwiGlu(a.Gate, a.Up, a.Act);
        }
        DownProj.ForwardAccumulate(be, a.Act, x);
    }

    /// <summary>
    /// Backward through the block whose forward filled <paramref name="a"/> (training layout: no cache, spans over a.K/a.V).
    /// On entry <paramref name="dx"/> holds the gradient of the block's output; on exit, of its input. In between it
    /// accumulates, in place, the gradient of the residual stream after attention (Middle), then of the input: both residual
    /// connections pass the gradient through unchanged, so each half only adds its own part.
    /// </summary>
    public void Backward(IBackend be, TransformerShape s, Tensor dx, Tensor positions, AttentionSpans spans, LayerActivations a,
                         RotaryEmbedding rope, LoraPass train, Training.GradientSet grads)
    {
        int n = dx.Rows;
        var t = be.ActivationType;
        // out = Middle + Down(Act)
        using (var dAct = be.Allocate(t, n, s.Intermediate))
        {
            DownProj.Backward(be, a.Act, dx, dAct, false, train, grads);
            using var dGate = be.Allocate(t, n, s.Intermediate);
            using var dUp = be.Allocate(t, n, s.Intermediate);
            be.SwiGluBackward(dAct, a.Gate, a.Up, dGate, dUp);
            using var dNorm2 = be.Allocate(t, n, s.Hidden);
            Linear.BackwardShared(be, a.Norm2, dNorm2, false, train, grads, (GateProj, dGate), (UpProj, dUp));
            be.RmsNormBackward(dNorm2, a.Middle, PostAttentionNorm, a.Rstd2, dx, grads.For(PostAttentionNorm), accumulateDx: true);
        }
        // dx now holds the gradient of Middle = Input + O(Attention)
        using var dAttention = be.Allocate(t, n, s.QWidth);
        OProj.Backward(be, a.Attention, dx, dAttention, false, train, grads);
        using var dq = be.Allocate(t, n, s.QWidth);
        using var dk = be.Zeros(t, n, s.KvWidth);
        using var dv = be.Zeros(t, n, s.KvWidth);
        be.AttentionBackward(dAttention, a.Q, a.K, a.V, a.Attention, a.LogSumExp, spans, s.HeadDim, s.AttentionScale, dq, dk, dv);
        rope.ApplyQueryKey(be, dq, dk, positions, inverse: true);
        Tensor dqRaw = dq, dkRaw = dk;
        using var dqPre = s.QkNorm ? be.Allocate(t, n, s.QWidth) : null;
        using var dkPre = s.QkNorm ? be.Allocate(t, n, s.KvWidth) : null;
        if (s.QkNorm)
        {
            be.RmsNormBackward(dq.Reshape(n * s.Heads, s.HeadDim), a.QRaw!.Reshape(n * s.Heads, s.HeadDim), QNorm!, a.QRstd!,
                               dqPre!.Reshape(n * s.Heads, s.HeadDim), grads.For(QNorm!), accumulateDx: false);
            be.RmsNormBackward(dk.Reshape(n * s.KvHeads, s.HeadDim), a.KRaw!.Reshape(n * s.KvHeads, s.HeadDim), KNorm!, a.KRstd!,
                               dkPre!.Reshape(n * s.KvHeads, s.HeadDim), grads.For(KNorm!), accumulateDx: false);
            dqRaw = dqPre;
            dkRaw = dkPre!;
        }
        using var dNorm1 = be.Allocate(t, n, s.Hidden);
        Linear.BackwardShared(be, a.Norm1, dNorm1, false, train, grads, (QProj, dqRaw), (KProj, dkRaw), (VProj, dv));
        be.RmsNormBackward(dNorm1, a.Input, InputNorm, a.Rstd1, dx, grads.For(InputNorm), accumulateDx: true);
    }

    public void Dispose()
    {
        InputNorm.Dispose();
        PostAttentionNorm.Dispose();
        QNorm?.Dispose();
        KNorm?.Dispose();
        foreach (var l in Linears) l.Dispose();
    }
}
