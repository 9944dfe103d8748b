using SharpTune.Adapters;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// The DoRA branch of a linear layer, as PEFT's DoraLinearLayer: with g = m / ‖W + s·B·A‖ (per output row, the norm treated
/// as a constant: no gradient flows through it) and x_d = dropout(x), the branch adds
/// (g − 1) ⊙ (x_d·Wᵀ) + g ⊙ s·(x_d·Aᵀ)·Bᵀ to the layer's output; the bias is not rescaled.
/// </summary>
internal static class DoraPath
{
    /// <summary>norms[o] = ‖W[o, :] + s·(B·A)[o, :]‖₂ in float32 (PEFT's get_weight_norm).</summary>
    public static void WeightNorms(IBackend be, Tensor weight, Tensor a, Tensor b, float scale, Tensor norms)
    {
        using var adapted = be.Allocate(DType.F32, weight.Shape);
        be.Copy(weight, adapted);
        be.MatMul(b, false, a, false, adapted, scale, 1f);
        be.RowNorms(adapted, norms);
    }

    /// <summary>
    /// Inference: <paramref name="y"/> holds x·Wᵀ plus any earlier branches, without the bias (PEFT's base_result, the layer's
    /// result minus its bias); it becomes g ⊙ (y + s·(x·Aᵀ)·Bᵀ), which is y + (g − 1)⊙y + g⊙s·(x·Aᵀ)·Bᵀ.
    /// </summary>
    public static void Forward(IBackend be, Linear linear, LoraBranch lora, Tensor x, Tensor y)
    {
        using var computed = lora.FrozenMagnitudeScale == null ? MagnitudeScale(be, linear, lora) : null;
        var g = lora.FrozenMagnitudeScale ?? computed!;
        using var t = be.Allocate(be.ActivationType, x.Rows, lora.Rank);
        be.MatMul(x, false, lora.A, true, t);
        be.MatMul(t, false, lora.B, true, y, lora.Scale, 1f);
        be.ScaleColumns(y, g);
    }

    /// <summary>
    /// Training forward: adds the branch to <paramref name="y"/> (which already holds base(x) + bias and any earlier branches),
    /// keeping the hidden t = x_d·Aᵀ and the row norms in <paramref name="pass"/> for backward. As in PEFT, without dropout the
    /// layer's result so far (less the bias) is the base output that g rescales; with dropout x_d·Wᵀ is computed afresh.
    /// </summary>
    public static void ForwardTrain(IBackend be, Linear linear, LoraBranch lora, Tensor x, Tensor y, LoraPass pass)
    {
        // Backward assumes the rescaled base output is x·Wᵀ alone, which is PEFT's only when no other branch shares the layer.
        if (linear.Adapters.Count != 1) throw new SharpTuneException($"{linear.Name}: a DoRA branch trains only as the layer's one adapter");
        var norms = pass.DoraNorms(be, lora);
        WeightNorms(be, linear.Weight, lora.A, lora.B, lora.Scale, norms);
        using var g = be.Allocate(DType.F32, linear.OutFeatures);
        be.Divide(lora.Magnitude!, norms, g);
        using var dropped = Dropped(be, lora, x, pass);
        var xd = dropped ?? x;
        var t = pass.Hidden(be, lora, x.Rows, DType.F32);
        be.MatMul(xd, false, lora.A, true, t);
        if (dropped == null)
        {
            // y = g⊙(y + s·t·Bᵀ) + (1 − g)⊙bias: g rescales all but the bias.
            be.MatMul(t, false, lora.B, true, y, lora.Scale, 1f);
            be.ScaleColumns(y, g);
            if (linear.Bias == null) return;
            using var keep = be.Allocate(DType.F32, 1, linear.OutFeatures);
            be.Copy(linear.Bias, keep);
            be.ScaleColumns(keep, g);
            be.Scale(keep, -1f);
            be.AddScaled(linear.Bias, 1f, keep);
            be.AddBias(y, keep);
            return;
        }
        // z = x_d·Wᵀ + s·t·Bᵀ; the branch adds g⊙z − x_d·Wᵀ.
        using var z = be.Allocate(DType.F32, x.Rows, linear.OutFeatures);
        be.MatMul(xd, false, linear.Weight, true, z);
        be.AddScaled(z, -1f, y);
        be.MatMul(t, false, lora.B, true, z, lora.Scale, 1f);
        be.ScaleColumns(z, g);
        be.AddScaled(z, 1f, y);
    }

    /// <summary>
    /// Backward of <see cref="ForwardTrain"/> (the base path dy·W is the caller's): accumulates dm = Σ_rows dy⊙z / ‖·‖,
    /// dB = s·(g⊙dy)ᵀ·t, dA = dtᵀ·x_d with dt = s·(g⊙dy)·B, and adds dx_d = ((g − 1)⊙dy)·W + dt·A (through the dropout mask) to dx.
    /// </summary>
    public static void Backward(IBackend be, Linear linear, LoraBranch lora, Tensor x, Tensor dy, Tensor dx, LoraPass pass,
                                Training.GradientSet grads)
    {
        var norms = pass.DoraNorms(be, lora);
        var t = pass.Hidden(be, lora, x.Rows, DType.F32);
        using var dropped = Dropped(be, lora, x, pass);
        var xd = dropped ?? x;
        using var scaled = be.Allocate(DType.F32, x.Rows, linear.OutFeatures);
        if (grads.For(lora.Magnitude!) is { } dm)
        {
            // scaled = z = x_d·Wᵀ + s·t·Bᵀ, then dm += (Σ_rows dy⊙z) / norms.
            be.MatMul(xd, false, linear.Weight, true, scaled);
            be.MatMul(t, false, lora.B, true, scaled, lora.Scale, 1f);
            using var dots = be.Zeros(DType.F32, linear.OutFeatures);
            be.ColumnDots(dy, scaled, dots);
            be.Divide(dots, norms, dots);
            be.AddScaled(dots, 1f, dm);
        }
        using var g = be.Allocate(DType.F32, linear.OutFeatures);
        be.Divide(lora.Magnitude!, norms, g);
        be.Copy(dy, scaled);
        be.ScaleColumns(scaled, g);
        if (grads.For(lora.B) is { } dB) be.MatMul(scaled, true, t, false, dB, lora.Scale, 1f);
        using var dt = be.Allocate(DType.F32, x.Rows, lora.Rank);
        be.MatMul(scaled, false, lora.B, false, dt, lora.Scale, 0f);
        if (grads.For(lora.A) is { } dA) be.MatMul(dt, true, xd, false, dA, 1f, 1f);
        // scaled = (g − 1)⊙dy.
        be.AddScaled(dy, -1f, scaled);
        if (dropped == null)
        {
            be.MatMul(scaled, false, linear.Weight, false, dx, 1f, 1f);
            be.MatMul(dt, false, lora.A, false, dx, 1f, 1f);
            return;
        }
        // Through the dropout: the same mask (same seed) applied to the gradient of x_d.
        be.MatMul(scaled, false, linear.Weight, false, dropped);
        be.MatMul(dt, false, lora.A, false, dropped, 1f, 1f);
        be.Dropout(dropped, lora.Dropout, pass.SeedFor(lora), dropped);
        be.AddScaled(dropped, 1f, dx);
    }

    /// <summary>g = m / ‖W + s·B·A‖ for inference and merging (a new [out] tensor).</summary>
    public static Tensor MagnitudeScale(IBackend be, Linear linear, LoraBranch lora)
    {
        var g = be.Allocate(DType.F32, linear.OutFeatures);
        WeightNorms(be, linear.Weight, lora.A, lora.B, lora.Scale, g);
        be.Divide(lora.Magnitude!, g, g);
        return g;
    }

    static Tensor? Dropped(IBackend be, LoraBranch lora, Tensor x, LoraPass pass)
    {
        if (lora.Dropout <= 0f) return null;
        var dropped = be.Allocate(DType.F32, x.Shape);
        be.Dropout(x, lora.Dropout, pass.SeedFor(lora), dropped);
        return dropped;
    }
}
