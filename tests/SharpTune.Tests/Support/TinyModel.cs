using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Tests;

/// <summary>Writes a small random Hugging Face checkpoint (config.json + model.safetensors) for tests that need one of a given architecture.</summary>
public static class TinyModel
{
    public static string Create(string modelType, int hidden = 16, int intermediate = 24, int layers = 2, int heads = 4, int kvHeads = 2,
                                int vocab = 40, bool tied = false, int? headDim = null, ulong seed = 7)
    {
        var dir = TestData.TempDir("tiny-" + modelType);
        int hd = headDim ?? hidden / heads;
        bool qkvBias = modelType == "qwen2";
        bool qkNorm = modelType == "qwen3";
        var config = new JsonObject
        {
            ["architectures"] = new JsonArray(modelType switch { "qwen2" => "Qwen2ForCausalLM", "qwen3" => "Qwen3ForCausalLM", _ => "LlamaForCausalLM" }),
            ["model_type"] = modelType,
            ["hidden_size"] = hidden,
            ["intermediate_size"] = intermediate,
            ["num_hidden_layers"] = layers,
            ["num_attention_heads"] = heads,
            ["num_key_value_heads"] = kvHeads,
            ["head_dim"] = hd,
            ["vocab_size"] = vocab,
            ["rms_norm_eps"] = 1e-6,
            ["rope_theta"] = 10000.0,
            ["max_position_embeddings"] = 256,
            ["tie_word_embeddings"] = tied,
            ["hidden_act"] = "silu",
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
            ["torch_dtype"] = "float32",
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        var random = new Xoshiro256(seed);
        var tensors = new List<TensorToWrite>();
        void Add(string name, float center, float spread, params int[] shape)
        {
            var values = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < values.Length; i++) values[i] = center + (float)((random.NextDouble() * 2 - 1) * spread);
            tensors.Add(new TensorToWrite(name, DType.F32, shape.Select(d => (long)d).ToArray(), MemoryMarshal.AsBytes(values.AsSpan()).ToArray()));
        }
        Add("model.embed_tokens.weight", 0, 0.5f, vocab, hidden);
        for (int l = 0; l < layers; l++)
        {
            string p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", 1, 0.1f, hidden);
            Add(p + "post_attention_layernorm.weight", 1, 0.1f, hidden);
            Add(p + "self_attn.q_proj.weight", 0, 0.3f, heads * hd, hidden);
            Add(p + "self_attn.k_proj.weight", 0, 0.3f, kvHeads * hd, hidden);
            Add(p + "self_attn.v_proj.weight", 0, 0.3f, kvHeads * hd, hidden);
            Add(p + "self_attn.o_proj.weight", 0, 0.3f, hidden, heads * hd);
            if (qkvBias)
            {
                Add(p + "self_attn.q_proj.bias", 0, 0.1f, heads * hd);
                Add(p + "self_attn.k_proj.bias", 0, 0.1f, kvHeads * hd);
                Add(p + "self_attn.v_proj.bias", 0, 0.1f, kvHeads * hd);
            }
            if (qkNorm)
            {
                Add(p + "self_attn.q_norm.weight", 1, 0.1f, hd);
                Add(p + "self_attn.k_norm.weight", 1, 0.1f, hd);
            }
            Add(p + "mlp.gate_proj.weight", 0, 0.3f, intermediate, hidden);
            Add(p + "mlp.up_proj.weight", 0, 0.3f, intermediate, hidden);
            Add(p + "mlp.down_proj.weight", 0, 0.3f, hidden, intermediate);
        }
        Add("model.norm.weight", 1, 0.1f, hidden);
        if (!tied) Add("lm_head.weight", 0, 0.3f, vocab, hidden);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    }
}
