using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

public class GradientAccumulationTests
{
    /// <summary>
    /// Two micro-batches of one row, each scaled by 1 / (label tokens of both), give the gradient of the two rows as one batch
    /// (transformers' normalization over the whole accumulated batch, not a mean of per-micro-batch means).
    /// </summary>
    [SkippableFact]
    public void AccumulatedMicroBatchesEqualOneBatch()
    {
        var reference = new Reference("qwen2-tiny");
        var step = reference.Json.GetProperty("train_step");
        var ids = Reference.IntRows(step.GetProperty("input_ids"));
        var labels = Reference.IntRows(step.GetProperty("labels"));
        using var model = TransformerModel.Load(reference.Dir, CpuBackend.Instance);
        var adapter = LoraAdapter.Load(Path.Combine(reference.Dir, "lora_adapter"), model);
        var lm = new CausalLmStep(model, gradientCheckpointing: true);

        float[] Gradients(params TrainingBatch[] microBatches)
        {
            using var grads = new GradientSet(CpuBackend.Instance);
            foreach (var (module, branch) in adapter.Branches)
            {
                grads.Add(module.Name + ".A", branch.A);
                grads.Add(module.Name + ".B", branch.B);
            }
            int tokens = microBatches.Sum(b => b.LabelCount);
            foreach (var b in microBatches) lm.ForwardBackward(b, 1f / tokens, grads, dropoutSeed: 0);
            return grads.Parameters.SelectMany(p => grads.GradientOf(p.Parameter).AsSpan().ToArray()).ToArray();
        }

        var whole = Gradients(TrainingBatch.FromRows(ids, labels));
        var accumulated = Gradients(TrainingBatch.FromRows([ids[0]], [labels[0]]), TrainingBatch.FromRows([ids[1]], [labels[1]]));
        Assert.True(Reference.RelativeError(accumulated, whole) < 1e-5, $"relative error {Reference.RelativeError(accumulated, whole)}");
        // A per-micro-batch mean would weight the rows differently: the check above must be able to fail.
        Assert.NotEqual(TrainingBatch.FromRows([ids[0]], [labels[0]]).LabelCount, TrainingBatch.FromRows([ids[1]], [labels[1]]).LabelCount);
    }
}
