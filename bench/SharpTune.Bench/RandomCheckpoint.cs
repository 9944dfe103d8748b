using System.Text.Json.Nodes;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// A Qwen2.5-0.5B-shaped checkpoint with random BF16 weights (the dtype the real one ships in), written once to the temp
/// folder and reused by later runs. Tensors are generated while the file is written, so writing never holds the model.
/// </summary>
internal static class RandomCheckpoint
{
    const int Hidden = 896, Intermediate = 4864, Layers = 24, Heads = 14, KvHeads = 2, HeadDim = 64, Vocab = 151936;

    public static string Qwen25HalfB()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharptune-bench-qwen2.5-0.5b-shape");
        if (File.Exists(Path.Combine(dir, "model.safetensors"))) return dir;
        Directory.CreateDirectory(dir);
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Qwen2ForCausalLM"),
            ["model_type"] = "qwen2",
            ["hidden_size"] = Hidden,
            ["intermediate_size"] = Intermediate,
            ["num_hidden_layers"] = Layers,
            ["num_attention_heads"] = Heads,
            ["num_key_value_heads"] = KvHeads,
            ["vocab_size"] = Vocab,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 1000000.0,
            ["max_position_embeddings"] = 32768,
            ["tie_word_embeddings"] = true,
            ["hidden_act"] = "silu",
            ["bos_token_id"] = 151643,
            ["eos_token_id"] = 151645,
            ["torch_dtype"] = "bfloat16",
        };
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var tensors = new List<TensorToWrite>();
        ulong stream = 0;
        void Add(string name, float center, float spread, params int[] shape)
        {
            var random = new Xoshiro256(++stream);
            long count = shape.Aggregate(1L, (a, b) => a * b);
            tensors.Add(new TensorToWrite(name, DType.BF16, shape.Select(d => (long)d).ToArray(), s =>
            {
                var buffer = new byte[1 << 16];
                for (long done = 0; done < count;)
                {
                    int n = (int)Math.Min(buffer.Length / 2, count - done);
                    for (int i = 0; i < n; i++)
                    {
                        ushort v = FloatConversions.F32ToBF16(center + (float)((random.NextDouble() * 2 - 1) * spread));
                        buffer[2 * i] = (byte)v;
                        buffer[2 * i + 1] = (byte)(v >> 8);
                    }
                    s.Write(buffer, 0, 2 * n);
                    done += n;
                }
            }));
        }
        Add("model.embed_tokens.weight", 0, 0.05f, Vocab, Hidden);
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", 1, 0.1f, Hidden);
            Add(p + "post_attention_layernorm.weight", 1, 0.1f, Hidden);
            Add(p + "self_attn.q_proj.weight", 0, 0.05f, Heads * HeadDim, Hidden);
            Add(p + "self_attn.q_proj.bias", 0, 0.05f, Heads * HeadDim);
            Add(p + "self_attn.k_proj.weight", 0, 0.05f, KvHeads * HeadDim, Hidden);
            Add(p + "self_attn.k_proj.bias", 0, 0.05f, KvHeads * HeadDim);
            Add(p + "self_attn.v_proj.weight", 0, 0.05f, KvHeads * HeadDim, Hidden);
            Add(p + "self_attn.v_proj.bias", 0, 0.05f, KvHeads * HeadDim);
            Add(p + "self_attn.o_proj.weight", 0, 0.05f, Hidden, Heads * HeadDim);
            Add(p + "mlp.gate_proj.weight", 0, 0.05f, Intermediate, Hidden);
            Add(p + "mlp.up_proj.weight", 0, 0.05f, Intermediate, Hidden);
            Add(p + "mlp.down_proj.weight", 0, 0.03f, Hidden, Intermediate);
        }
        Add("model.norm.weight", 1, 0.1f, Hidden);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    }
}
