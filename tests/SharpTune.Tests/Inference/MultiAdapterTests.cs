using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Inference;
using SharpTune.Models;

namespace SharpTune.Tests.Inference;

public class MultiAdapterTests
{
    [SkippableFact]
    public void StackedAdaptersAddTheirWeightedUpdates()
    {
        var reference = new Reference("qwen2-tiny");
        var adapter = Path.Combine(reference.Dir, "lora_adapter");
        var ids = Reference.Ints(reference.Prompts.First().GetProperty("input_ids"));
        using var model = TransformerModel.Load(reference.Dir, CpuBackend.Instance);
        var base_ = Reference.Logits(model, ids);
        var (name, path, weight) = InferenceEngine.ParseAdapterSpec("first=" + adapter + ":0.25");
        Assert.Equal(("first", adapter, 0.25f), (name, path, weight));
        LoraAdapter.Load(path, model, weight, "a");
        LoraAdapter.Load(adapter, model, 0.75f, "b");
        var stacked = Reference.Logits(model, ids);
        var expected = reference.Floats("lora_adapter/ref_logits_p0_with_adapter.f32");
        // 0.25 + 0.75 of the same adapter is the adapter at weight 1 (PEFT's reference), and differs from the base.
        Assert.True(Reference.RelativeError(stacked, expected) < 1e-4);
        Assert.True(Reference.RelativeError(base_, expected) > 1e-3);
    }
}
