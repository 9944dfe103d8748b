using System.Runtime.InteropServices;
using System.Text.Json;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Tests.Formats;

/// <summary>Opens the reference checkpoints and checks every tensor against what their config.json implies.</summary>
public class CheckpointFixtureTests
{
    /// <summary>The tensors a Llama/Qwen2 causal LM has, with shapes derived from its config.</summary>
    static Dictionary<string, long[]> ExpectedTensors(ModelConfig c)
    {
        long h = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim, ff = c.IntermediateSize;
        var expected = new Dictionary<string, long[]>
        {
            ["model.embed_tokens.weight"] = [c.VocabSize, h],
            ["model.norm.weight"] = [h],
        };
        if (!c.TieWordEmbeddings) expected["lm_head.weight"] = [c.VocabSize, h];
        for (int i = 0; i < c.NumHiddenLayers; i++)
        {
            var p = $"model.layers.{i}.";
            expected[p + "input_layernorm.weight"] = [h];
            expected[p + "post_attention_layernorm.weight"] = [h];
            expected[p + "self_attn.q_proj.weight"] = [q, h];
            expected[p + "self_attn.k_proj.weight"] = [kv, h];
            expected[p + "self_attn.v_proj.weight"] = [kv, h];
            expected[p + "self_attn.o_proj.weight"] = [h, q];
            expected[p + "mlp.gate_proj.weight"] = [ff, h];
            expected[p + "mlp.up_proj.weight"] = [ff, h];
            expected[p + "mlp.down_proj.weight"] = [h, ff];
            if (c.QkvBias)
            {
                expected[p + "self_attn.q_proj.bias"] = [q];
                expected[p + "self_attn.k_proj.bias"] = [kv];
                expected[p + "self_attn.v_proj.bias"] = [kv];
            }
        }
        return expected;
    }

    [SkippableTheory]
    [InlineData("stories260K", 1)]
    [InlineData("qwen2-tiny", 2)]
    [InlineData("llama3-tiny", 3)]
    public void FixtureCheckpointMatchesItsConfig(string model, int shardCount)
    {
        var dir = TestData.Model(model);
        var config = ModelConfig.Load(dir);
        using var checkpoint = Checkpoint.Open(dir);

        Assert.Equal(shardCount, checkpoint.Files.Count);
        var expected = ExpectedTensors(config);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), checkpoint.Names);
        foreach (var (name, shape) in expected)
        {
            var entry = checkpoint.Entry(name);
            Assert.Equal(shape, entry.Shape);
            Assert.Equal(config.TorchDType, entry.DType);
            Assert.Equal(entry.ElementCount * entry.DType.SizeInBytes(), checkpoint.Bytes(name).Length);
            Assert.True(checkpoint.Contains(name));
        }
        Assert.False(checkpoint.Contains("lm_head.bias"));
        Assert.Throws<SharpTuneException>(() => checkpoint.Entry("no.such.tensor"));
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void ShardedCheckpointFollowsItsIndex(string model)
    {
        var dir = TestData.Model(model);
        using var checkpoint = Checkpoint.Open(dir);
        using var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, Checkpoint.IndexFileName)));
        long totalSize = 0;
        foreach (var p in index.RootElement.GetProperty("weight_map").EnumerateObject())
        {
            Assert.Equal(Path.Combine(dir, p.Value.GetString()!), checkpoint.FileOf(p.Name).Path);
            totalSize += checkpoint.Entry(p.Name).ByteLength;
        }
        Assert.Equal(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), totalSize);
        Assert.All(checkpoint.Files, f => Assert.Equal("pt", f.Metadata["format"]));
    }

    [SkippableFact]
    public void ReadFloat32WidensBF16ExactlyAndKeepsF32()
    {
        using (var qwen = Checkpoint.Open(TestData.Model("qwen2-tiny")))
        {
            const string name = "model.layers.0.self_attn.q_proj.bias";
            var raw = MemoryMarshal.Cast<byte, ushort>(qwen.Bytes(name));
            var widened = qwen.ReadFloat32(name);
            Assert.Equal(raw.Length, widened.Length);
            for (int i = 0; i < raw.Length; i++) Assert.Equal(BitConverter.Int32BitsToSingle(raw[i] << 16), widened[i]);
            // Norm weights are drawn around 1 (README: 1 ± 0.1), so a wrong byte order or offset would show here.
            var norm = qwen.ReadFloat32("model.norm.weight");
            Assert.InRange(norm.Average(), 0.9f, 1.1f);
        }
        using var stories = Checkpoint.Open(Path.Combine(TestData.Model("stories260K"), "model.safetensors"));
        var embed = stories.ReadFloat32("model.embed_tokens.weight");
        Assert.Equal(MemoryMarshal.Cast<byte, float>(stories.Bytes("model.embed_tokens.weight")).ToArray(), embed);
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void LoraAdapterHasRankShapedPairsForEveryTargetModule(string model)
    {
        var dir = TestData.Model(model);
        var config = ModelConfig.Load(dir);
        var expected = ExpectedTensors(config);
        using var adapterConfig = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "lora_adapter", "adapter_config.json")));
        int rank = adapterConfig.RootElement.GetProperty("r").GetInt32();
        var targets = adapterConfig.RootElement.GetProperty("target_modules").EnumerateArray().Select(t => t.GetString()!).ToList();

        using var adapter = SafeTensorsFile.Open(Path.Combine(dir, "lora_adapter", "adapter_model.safetensors"));
        Assert.Equal(2 * targets.Count, adapter.Tensors.Count);
        foreach (var module in targets)
        {
            var baseShape = expected[module + ".weight"];
            var a = adapter.Entry($"base_model.model.{module}.lora_A.weight");
            var b = adapter.Entry($"base_model.model.{module}.lora_B.weight");
            Assert.Equal([rank, baseShape[1]], a.Shape);
            Assert.Equal([baseShape[0], rank], b.Shape);
            Assert.Equal(DType.F32, a.DType);
        }
    }
}
