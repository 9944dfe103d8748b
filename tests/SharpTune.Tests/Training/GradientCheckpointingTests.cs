using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

/// <summary>
/// Gradient checkpointing changes what is kept, never the result: keeping everything, keeping only the layer inputs and
/// keeping the attention halves give the same loss and bit-identical gradients, with LoRA dropout on (the recompute reuses
/// the forward's LoRA hiddens instead of drawing the masks again), for each architecture's differences, DoRA and full training.
/// </summary>
public class GradientCheckpointingTests
{
    [Theory]
    [InlineData("llama", "lora")]
    [InlineData("qwen2", "lora")]
    [InlineData("qwen3", "lora")]
    [InlineData("qwen3", "dora")]
    [InlineData("llama", "full")]
    public void EveryPolicyGivesTheSameGradients(string modelType, string tuning)
    {
        using var model = TransformerModel.Load(TinyModel.Create(modelType, layers: 3), CpuBackend.Instance);
        using var grads = new GradientSet(CpuBackend.Instance);
        if (tuning == "full")
        {
            foreach (var layer in model.Layers)
                foreach (var linear in layer.Linears) grads.Add(linear.Name, linear.Weight);
        }
        else
        {
            var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.2, UseDora = tuning == "dora", InitWeights = "false" }, seed: 3);
            foreach (var (module, branch) in adapter.Branches)
            {
                grads.Add(module.Name + ".A", branch.A);
                grads.Add(module.Name + ".B", branch.B);
                if (branch.Magnitude != null) grads.Add(module.Name + ".m", branch.Magnitude);
            }
        }
        // Two samples packed in one row plus a second row.
        var batch = TrainingBatch.FromRows(
            [[5, 9, 3, 17, 22, 8, 1, 30, 12], [4, 4, 19, 33, 7]],
            [[-100, 9, 3, 17, -100, 8, 1, 30, 12], [-100, 4, 19, 33, 7]],
            [[0, 1, 2, 3, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]);
        (double Loss, float[] Gradients) Run(bool checkpointing, bool keepAttention)
        {
            grads.Zero();
            var stats = new CausalLmStep(model, checkpointing, keepAttention).ForwardBackward(batch, 1f / batch.LabelCount, grads, dropoutSeed: 5);
            return (stats.LossSum, grads.Parameters.SelectMany(p => grads.GradientOf(p.Parameter).AsSpan().ToArray()).ToArray());
        }

        var everything = Run(checkpointing: false, keepAttention: false);
        Assert.Contains(everything.Gradients, g => g != 0);
        foreach (bool keepAttention in new[] { false, true })
        {
            var checkpointed = Run(checkpointing: true, keepAttention);
            Assert.Equal(everything.Loss, checkpointed.Loss);
            Assert.Equal(everything.Gradients, checkpointed.Gradients);
        }
    }
}
