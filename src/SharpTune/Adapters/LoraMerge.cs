using SharpTune.Models;

namespace SharpTune.Adapters;

/// <summary>Bakes LoRA branches into their base weights: W ← W + scale·B·A (float32), leaving plain linear layers.</summary>
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
                be.MatMul(branch.B, false, branch.A, false, linear.Weight, branch.Scale, 1f);
                branch.Dispose();
                merged++;
            }
            linear.Adapters.Clear();
        }
        return merged;
    }
}
