using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Adapters;

/// <summary>
/// Bakes LoRA branches into their base weights: W ← W + scale·B·A (float32), or for DoRA W ← g ⊙ (W + scale·B·A) row by row
/// with g = m / ‖W + scale·B·A‖ (PEFT's DoraLinearVariant merge), leaving plain linear layers. Branches merge in order, each
/// onto the weight the previous ones left, as PEFT merges several adapters.
/// </summary>
public static class LoraMerge
{
    /// <summary>Merges every branch of every linear layer; the model's weights become owned float32 tensors first.</summary>
    public static int MergeAll(TransformerModel model)
    {
        model.MakeWeightsWritable();
        var be = model.Backend;
        int merged = 0;
        foreach (var linear in model.DecoderLinears.Append(model.LmHead))
        {
            foreach (var branch in linear.Adapters)
            {
                using var scale = branch.Magnitude == null ? null : DoraPath.MagnitudeScale(be, linear, branch);
                be.MatMul(branch.B, false, branch.A, false, linear.Weight, branch.Scale, 1f);
                if (scale != null) be.ScaleRows(linear.Weight, scale);
                branch.Dispose();
                merged++;
            }
            linear.Adapters.Clear();
        }
        return merged;
    }
}
