using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

/// <summary>One LoRA training step against Hugging Face PEFT: loss, gradient norm and every LoRA gradient (reference.json train_step).</summary>
public class PeftGradientTests
{
    [SkippableTheory]
    [InlineData("qwen2-tiny", false, false)]
    [InlineData("llama3-tiny", false, false)]
    [InlineData("qwen2-tiny", true, false)]
    [InlineData("llama3-tiny", true, true)]
    public void FirstStepMatchesPeft(string modelName, bool checkpointing, bool keepAttention)
    {
        var reference = new Reference(modelName);
        var step = reference.Json.GetProperty("train_step");
        using var model = TransformerModel.Load(reference.Dir, CpuBackend.Instance);
        var adapter = LoraAdapter.Load(Path.Combine(reference.Dir, "lora_adapter"), model);
        using var grads = new GradientSet(CpuBackend.Instance);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add($"base_model.model.{module.Name}.lora_A.weight", branch.A);
            grads.Add($"base_model.model.{module.Name}.lora_B.weight", branch.B);
        }
        var ids = Reference.IntRows(step.GetProperty("input_ids"));
        var labels = Reference.IntRows(step.GetProperty("labels"));
        var batch = TrainingBatch.FromRows(ids, labels);
        var stats = new CausalLmStep(model, checkpointing, keepAttention).ForwardBackward(batch, 1f / batch.LabelCount, grads, dropoutSeed: 1);

        double expectedLoss = step.GetProperty("loss").GetDouble();
        double expectedNorm = step.GetProperty("grad_norm").GetDouble();
        Assert.True(Math.Abs(stats.MeanLoss - expectedLoss) / expectedLoss < 1e-4, $"loss {stats.MeanLoss} vs {expectedLoss}");
        Assert.True(Math.Abs(grads.Norm() - expectedNorm) / expectedNorm < 1e-4, $"grad norm {grads.Norm()} vs {expectedNorm}");

        using var expected = Checkpoint.Open(Path.Combine(reference.Dir, step.GetProperty("grads_file").GetString()!));
        Assert.Equal(expected.Names.Count(), grads.Parameters.Count);
        foreach (var (name, parameter) in grads.Parameters)
        {
            var want = expected.ReadFloat32(name);
            var got = grads.GradientOf(parameter).AsSpan().ToArray();
            double error = Reference.RelativeError(got, want);
            Assert.True(error < 1e-4, $"{name}: relative error {error}");
        }
    }
}
