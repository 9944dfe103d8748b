using System.Text.Json.Nodes;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// A Qwen2.5-0.5B-shaped checkpoint with random bf16 weights (std 0.02, norms 1) and the real Qwen tokenizer from the
/// shared fixtures: the speed of the real model without downloading it.
/// </summary>
public static class RandomQwenCheckpoint
{
    public static string Create(string dir, string tokenizerDir)
    {
        Directory.CreateDirectory(dir);
        if (File.Exists(Path.Combine(dir, "model.safetensors"))) return dir;
        const int hidden = 896, intermediate = 4864, layers = 24, heads = 14, kvHeads = 2, headDim = 64, vocab = 151936;
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray("Qwen2ForCausalLM"), ["model_type"] = "qwen2", ["hidden_size"] = hidden,
            ["intermediate_size"] = intermediate, ["num_hidden_layers"] = layers, ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads, ["vocab_size"] = vocab, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 1000000.0,
            ["max_position_embeddings"] = 32768, ["tie_word_embeddings"] = true, ["hidden_act"] = "silu",
            ["bos_token_id"] = 151643, ["eos_token_id"] = 151645, ["torch_dtype"] = "bfloat16",
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f), overwrite: true);
        var random = new Xoshiro256(2024);
        var tensors = new List<TensorToWrite>();
        void Add(string name, float center, float std, params long[] shape) =>
            tensors.Add(new TensorToWrite(name, DType.BF16, shape, s =>
            {
                long count = shape.Aggregate(1L, (a, b) => a * b);
                var buffer = new byte[1 << 17];
                for (long done = 0; done < count;)
                {
                    int n = (int)Math.Min(buffer.Length / 2, count - done);
                    for (int i = 0; i < n; i++)
                    {
                        // Uniform with the given standard deviation (√3·std bound): cheap and enough for timing.
                        var bits = FloatConversions.F32ToBF16(center + std * 1.7320508f * (float)(random.NextDouble() * 2 - 1));
                        buffer[2 * i] = (byte)bits;
                        buffer[2 * i + 1] = (byte)(bits >> 8);
                    }
                    s.Write(buffer, 0, 2 * n);
                    done += n;
                }
            }));
        Add("model.embed_tokens.weight", 0, 0.02f, vocab, hidden);
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", 1, 0, hidden);
            Add(p + "post_attention_layernorm.weight", 1, 0, hidden);
            Add(p + "self_attn.q_proj.weight", 0, 0.02f, heads * headDim, hidden);
            Add(p + "self_attn.q_proj.bias", 0, 0.02f, heads * headDim);
            Add(p + "self_attn.k_proj.weight", 0, 0.02f, kvHeads * headDim, hidden);
            Add(p + "self_attn.k_proj.bias", 0, 0.02f, kvHeads * headDim);
            Add(p + "self_attn.v_proj.weight", 0, 0.02f, kvHeads * headDim, hidden);
            Add(p + "self_attn.v_proj.bias", 0, 0.02f, kvHeads * headDim);
            Add(p + "self_attn.o_proj.weight", 0, 0.02f, hidden, heads * headDim);
            Add(p + "mlp.gate_proj.weight", 0, 0.02f, intermediate, hidden);
            Add(p + "mlp.up_proj.weight", 0, 0.02f, intermediate, hidden);
            Add(p + "mlp.down_proj.weight", 0, 0.02f, hidden, intermediate);
        }
        Add("model.norm.weight", 1, 0, hidden);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    }
}
