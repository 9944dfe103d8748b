using SharpTune.Models;

namespace SharpTune.Bench;

/// <summary>
/// Matrix FLOPs of one training step over one causal sequence, counted from the shapes (a multiply-add is 2 FLOPs).
/// Convention: forward = 2·(weights in matmuls, the tied head included)·tokens + attention QKᵀ and PV over the causal
/// keys only (token i sees i+1 keys); backward = dX of every matmul, plus dW for full training; attention backward =
/// 2× its forward (dP, dV, dQ, dK). LoRA branches r·(in+out) count like weights (forward once, backward dX and dA/dB).
/// Gradient checkpointing adds what DecoderLayer.Recompute runs, for every layer but the last: the block's forward without
/// the down projection and without the LoRA down projections (kept from the forward). FLOPs executed, not model FLOPs.
/// </summary>
internal sealed record TrainingFlops(double Linear, double Head, double Attention, double Lora)
{
    public double Total => Linear + Head + Attention + Lora;
    /// <summary>The part that goes through IBackend.MatMul (attention runs inside the attention ops).</summary>
    public double ThroughMatMul => Linear + Head + Lora;

    public static TrainingFlops Count(TransformerShape s, int tokens, bool full, int loraRank, bool checkpointing)
    {
        double layerWeights = (double)s.Hidden * s.QWidth * 2 + (double)s.Hidden * s.KvWidth * 2 + 3.0 * s.Hidden * s.Intermediate;
        double loraWeights = loraRank * ((s.Hidden + s.QWidth) * 2.0 + (s.Hidden + s.KvWidth) * 2.0 + 3.0 * (s.Hidden + s.Intermediate));
        double causalKeys = tokens * (tokens + 1) / 2.0;
        double attentionForward = 4.0 * s.Heads * s.HeadDim * causalKeys * s.Layers;
        double linearForward = 2.0 * layerWeights * tokens * s.Layers;
        double loraForward = 2.0 * loraWeights * tokens * s.Layers;
        double headForward = 2.0 * s.Hidden * s.Vocab * tokens;
        double passes = 2 + (full ? 1 : 0);
        double recomputed = checkpointing ? (s.Layers - 1.0) / s.Layers : 0;
        double loraUps = loraRank * (s.QWidth + 2.0 * s.KvWidth + s.Hidden + 2.0 * s.Intermediate);
        return new TrainingFlops(
            Linear: linearForward * passes + recomputed * linearForward * (1 - s.Hidden * (double)s.Intermediate / layerWeights),
            Head: headForward * (full ? 3 : 2),
            Attention: attentionForward * (3 + recomputed),
            Lora: loraForward * 3 + recomputed * 2.0 * loraUps * tokens * s.Layers);
    }
}
