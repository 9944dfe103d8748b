using System.Text.Json.Nodes;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// Checkpoints of Qwen2.5-0.5B's shape (hidden 896, intermediate 4864, 24 layers, 14 heads, 2 KV heads, q/k/v bias, vocab
/// 151936, tied) with random weights — uniform with std 0.02 as an initialised model, norms 1 — in F32 or BF16. Each tensor is
/// generated while it is written, so writing never holds the model in memory.
/// </summary>
internal static class RandomCheckpoint
{
    const int Hidden = 896, Intermediate = 4864, Layers = 24, Heads = 14, KvHeads = 2, HeadDim = 64, Vocab = 151936;

    /// <summary>A BF16 copy written once to the temp folder and reused by later runs (and the tokenizer, when given).</summary>
    public static string Cached(string? tokenizerDir = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), tokenizerDir == null ? "sharptune-bench-qwen2.5-0.5b-shape" : "sharptune-bench-qwen2.5-0.5b-tokenizer");
        if (!File.Exists(Path.Combine(dir, "model.safetensors"))) Write(dir, DType.BF16, tokenizerDir);
        return dir;
    }

    /// <summary>Writes config.json and model.safetensors (and the tokenizer files of <paramref name="tokenizerDir"/>, if given) into <paramref name="dir"/>.</summary>
    public static void Write(string dir, DType dtype, string? tokenizerDir = null)
    {
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
            ["eos_token_id"] = 151643,
            ["torch_dtype"] = dtype == DType.BF16 ? "bfloat16" : "float32",
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        if (tokenizerDir != null)
            foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" })
                File.Copy(Path.Combine(tokenizerDir, f), Path.Combine(dir, f), overwrite: true);
        ulong seed = 1;
        var tensors = new List<TensorToWrite>();
        // Weights ~ uniform with std 0.02 (as an initialised model), norms 1; each tensor is generated while it is written.
        void Add(string name, float center, float std, params long[] shape) =>
            tensors.Add(RandomTensor(name, dtype, shape, center, std, seed++));
        Add("model.embed_tokens.weight", 0, 0.02f, Vocab, Hidden);
        for (int l = 0; l < Layers; l++)
        {
            string p = $"model.layers.{l}.";
            Add(p + "input_layernorm.weight", 1, 0, Hidden);
            Add(p + "post_attention_layernorm.weight", 1, 0, Hidden);
            Add(p + "self_attn.q_proj.weight", 0, 0.02f, Heads * HeadDim, Hidden);
            Add(p + "self_attn.k_proj.weight", 0, 0.02f, KvHeads * HeadDim, Hidden);
            Add(p + "self_attn.v_proj.weight", 0, 0.02f, KvHeads * HeadDim, Hidden);
            Add(p + "self_attn.q_proj.bias", 0, 0.02f, Heads * HeadDim);
            Add(p + "self_attn.k_proj.bias", 0, 0.02f, KvHeads * HeadDim);
            Add(p + "self_attn.v_proj.bias", 0, 0.02f, KvHeads * HeadDim);
            Add(p + "self_attn.o_proj.weight", 0, 0.02f, Hidden, Heads * HeadDim);
            Add(p + "mlp.gate_proj.weight", 0, 0.02f, Intermediate, Hidden);
            Add(p + "mlp.up_proj.weight", 0, 0.02f, Intermediate, Hidden);
            Add(p + "mlp.down_proj.weight", 0, 0.02f, Hidden, Intermediate);
        }
        Add("model.norm.weight", 1, 0, Hidden);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
    }


    static TensorToWrite RandomTensor(string name, DType dtype, long[] shape, float center, float std, ulong seed) =>
        new(name, dtype, shape, stream =>
        {
            const int chunk = 1 << 16;
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var values = new float[chunk];
            var bytes = new byte[chunk * dtype.SizeInBytes()];
            var random = new Xoshiro256(seed);
            float spread = std * MathF.Sqrt(3f); // uniform on [-a, a] has std a/√3
            for (long start = 0; start < count; start += chunk)
            {
                int n = (int)Math.Min(chunk, count - start);
                for (int i = 0; i < n; i++) values[i] = center + (float)(random.NextDouble() * 2 - 1) * spread;
                int byteCount = n * dtype.SizeInBytes();
                FloatConversions.FromF32(dtype, values.AsSpan(0, n), bytes.AsSpan(0, byteCount));
                stream.Write(bytes, 0, byteCount);
            }
        });
}
