using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Training;

/// <summary>Loss statistics of a forward pass: summed token losses, label tokens, and tokens whose argmax was right.</summary>
public readonly record struct LossStats(double LossSum, int Tokens, int Correct)
{
    public static LossStats operator +(LossStats a, LossStats b) => new(a.LossSum + b.LossSum, a.Tokens + b.Tokens, a.Correct + b.Correct);
    public double MeanLoss => Tokens == 0 ? 0 : LossSum / Tokens;
    public double Accuracy => Tokens == 0 ? 0 : (double)Correct / Tokens;
}

/// <summary>
/// Forward and backward of the causal-LM loss for one micro-batch, in the style of llm.c: every layer's forward keeps what
/// its backward needs, or (gradient checkpointing) only part of it (<see cref="KeptActivations"/>: the layer inputs, or also
/// the attention halves with <paramref name="keepAttention"/>) and the rest is recomputed just before the layer's backward.
/// The output head and cross-entropy run in row chunks so the [tokens, vocab] logits never exist whole.
/// </summary>
public sealed class CausalLmStep(TransformerModel model, bool gradientCheckpointing, bool keepAttention = false)
{
    /// <summary>Rows of logits computed at once, whatever the vocabulary.</summary>
    // Logits per chunk: 16M values (64 MB) on a CPU; 128M (512 MB) on a GPU, where the head's product with a few hundred rows
    // runs near the matrix rate and one of about 100 rows (16M / 152k) at half of it (H200: 357 TFLOP/s at 110 rows).
    static int ChunkRows(IBackend be, int vocab) => Math.Max(1, (be.IsHost ? 16 << 20 : 128 << 20) / vocab);

    KeptActivations Kept => !gradientCheckpointing ? KeptActivations.Everything : keepAttention ? KeptActivations.Attention : KeptActivations.Input;

    /// <summary>
    /// Accumulates into <paramref name="grads"/> the gradient of (Σ token losses)·<paramref name="gradScale"/>
    /// (gradScale = 1 / label tokens of the whole accumulated batch, as transformers normalizes).
    /// </summary>
    public LossStats ForwardBackward(TrainingBatch batch, float gradScale, GradientSet grads, ulong dropoutSeed)
    {
        var be = model.Backend;
        var s = model.Shape;
        var t = be.ActivationType;
        using var input = new BatchInput(model, batch);
        var (ids, positions, targets, spans, x) = (input.Ids, input.Positions, input.Targets, input.Spans, input.Hidden);
        int n = batch.Length;
        using var pass = new LoraPass(dropoutSeed);

        int layers = model.Layers.Length;
        // The first layer's set is whole; under checkpointing the others borrow from it what they do not keep.
        var acts = new LayerActivations[layers];
        try
        {
            for (int l = 0; l < layers; l++)
            {
                acts[l] = l == 0 || Kept == KeptActivations.Everything ? new LayerActivations(be, s, n)
                                                                        : new LayerActivations(be, s, n, Kept, acts[0]);
                model.Layers[l].Forward(be, s, x, positions, spans, acts[l], null, model.Rope, pass);
            }

            using var dx = be.Allocate(t, n, s.Hidden);
            var stats = HeadForwardBackward(x, targets, gradScale, grads, dx);

            for (int l = layers - 1; l >= 0; l--)
            {
                // The last layer's forward left its activations in the scratch set, and nothing has written there since.
                if (Kept != KeptActivations.Everything && l < layers - 1)
                    model.Layers[l].Recompute(be, s, positions, spans, acts[l], Kept, model.Rope, pass);
                model.Layers[l].Backward(be, s, dx, positions, spans, acts[l], model.Rope, pass, grads);
            }
            if (grads.For(model.Embedding) is { } dEmbedding) be.EmbeddingBackward(dx, ids, dEmbedding);
            return stats;
        }
        finally
        {
            foreach (var a in acts) a?.Dispose();
        }
    }

    /// <summary>Loss only (evaluation): the same forward without keeping anything for backward.</summary>
    public LossStats Evaluate(TrainingBatch batch)
    {
        var be = model.Backend;
        using var input = new BatchInput(model, batch);
        using var a = new LayerActivations(be, model.Shape, batch.Length);
        foreach (var layer in model.Layers) layer.Forward(be, model.Shape, input.Hidden, input.Positions, input.Spans, a, null, model.Rope);
        return HeadForwardBackward(input.Hidden, input.Targets, 0f, null, null);
    }

    /// <summary>Final norm, output head and cross-entropy in row chunks; with <paramref name="dx"/>, also their backward.</summary>
    LossStats HeadForwardBackward(Tensor x, Tensor targets, float gradScale, GradientSet? grads, Tensor? dx)
    {
        var be = model.Backend;
        var s = model.Shape;
        int n = x.Rows;
        using var normed = be.Allocate(be.ActivationType, n, s.Hidden);
        using var rstd = be.Allocate(DType.F32, n);
        be.RmsNorm(x, model.FinalNorm, s.RmsNormEps, normed, rstd);
        using var dNormed = dx == null ? null : be.Allocate(be.ActivationType, n, s.Hidden);
        var head = model.LmHead.Weight;
        var dHead = grads?.For(head);
        int chunk = ChunkRows(be, s.Vocab);
        var stats = new LossStats();
        for (int r = 0; r < n; r += chunk)
        {
            int rows = Math.Min(chunk, n - r);
            var h = normed.SliceRows(r, rows);
            using var logits = be.Allocate(DType.F32, rows, s.Vocab);
            be.MatMul(h, false, head, true, logits);
            var (loss, count, correct) = be.CrossEntropy(logits, targets.SliceRows(r, rows), dNormed == null ? null : logits, gradScale);
            stats += new LossStats(loss, count, correct);
            if (dNormed == null) continue;
            be.MatMul(logits, false, head, false, dNormed.SliceRows(r, rows));
            if (dHead != null) be.MatMul(logits, true, h, false, dHead, 1f, 1f);
        }
        if (dx != null) be.RmsNormBackward(dNormed!, x, model.FinalNorm, rstd, dx, grads!.For(model.FinalNorm), accumulateDx: false);
        return stats;
    }
}

/// <summary>A micro-batch on the backend: ids, positions, shifted targets, attention spans, and the embedded hidden states.</summary>
internal sealed class BatchInput : IDisposable
{
    public BatchInput(TransformerModel model, TrainingBatch batch)
    {
        var be = model.Backend;
        int n = batch.Length;
        model.Rope.EnsureLength(batch.Positions.Max() + 1);
        Ids = be.FromHost(batch.InputIds, n);
        Positions = be.FromHost(batch.Positions, n);
        Targets = be.FromHost(batch.Targets, n);
        Spans = AttentionSpans.CausalFromPositions(batch.Positions);
        Hidden = be.Allocate(be.ActivationType, n, model.Shape.Hidden);
        be.Embedding(model.Embedding, Ids, Hidden);
    }

    public Tensor Ids { get; }
    public Tensor Positions { get; }
    public Tensor Targets { get; }
    public AttentionSpans Spans { get; }
    public Tensor Hidden { get; }

    public void Dispose()
    {
        Ids.Dispose();
        Positions.Dispose();
        Targets.Dispose();
        Hidden.Dispose();
    }
}
