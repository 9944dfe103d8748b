using System.Text.Json.Nodes;
using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Tests.Export;

public class MergeLoraTests
{
    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void MergedFloat32CheckpointGivesTheLogitsOfBasePlusAdapter(string modelName)
    {
        var reference = new Reference(modelName);
        var adapterDir = Path.Combine(reference.Dir, "lora_adapter");
        var output = Path.Combine(TestData.TempDir(), "merged");
        var (code, _, error) = CliRunner.Run("export", "--model", reference.Dir, "--adapters", adapterDir, "--merge_lora", "true",
                                             "--output_dir", output, "--torch_dtype", "float32");
        Assert.True(code == 0, error);

        var ids = Reference.Ints(reference.Prompts.First().GetProperty("input_ids"));
        float[] expected;
        using (var baseModel = TransformerModel.Load(reference.Dir, CpuBackend.Instance))
        {
            LoraAdapter.Load(adapterDir, baseModel);
            expected = Reference.Logits(baseModel, ids);
        }
        using var merged = TransformerModel.Load(output, CpuBackend.Instance);
        Assert.True(Reference.RelativeError(Reference.Logits(merged, ids), expected) < 1e-5);
        foreach (var file in new[] { "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(output, file)), file);
    }

    [SkippableFact]
    public void MergeLoraWritesShardedWeightsInTheBaseDtype()
    {
        var reference = new Reference("qwen2-tiny");
        var output = Path.Combine(TestData.TempDir(), "merged");
        var (code, _, error) = CliRunner.Run("merge-lora", "--model", reference.Dir, "--adapters", Path.Combine(reference.Dir, "lora_adapter"),
                                             "--output_dir", output, "--max_shard_size", "4MB");
        Assert.True(code == 0, error);
        Assert.Equal("bfloat16", JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!["torch_dtype"]!.GetValue<string>());
        Assert.True(File.Exists(Path.Combine(output, Checkpoint.IndexFileName)));
        using var checkpoint = Checkpoint.Open(output);
        Assert.True(checkpoint.Files.Count > 1);
        Assert.All(checkpoint.Names, n => Assert.Equal(DType.BF16, checkpoint.Entry(n).DType));
        // The merged weights differ from the base ones where the adapter applies.
        using var original = Checkpoint.Open(reference.Dir);
        const string name = "model.layers.0.self_attn.q_proj.weight";
        Assert.NotEqual(original.Bytes(name).ToArray(), checkpoint.Bytes(name).ToArray());
        Assert.Equal(original.Bytes("model.norm.weight").ToArray(), checkpoint.Bytes("model.norm.weight").ToArray());
    }
}
