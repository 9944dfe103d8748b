using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// Writes a model as a standalone Hugging Face checkpoint: sharded safetensors in the requested dtype, config.json (its
/// torch_dtype updated), and the source folder's generation config, tokenizer files and chat template.
/// </summary>
public static class ModelWriter
{
    static readonly string[] CopiedFiles =
    [
        "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja",
        "vocab.json", "merges.txt", "tokenizer.model", "added_tokens.json",
    ];

    public static void Save(TransformerModel model, string sourceDir, string dir, DType dtype, long maxShardBytes = 5L << 30)
    {
        Directory.CreateDirectory(dir);
        var be = model.Backend;
        var tensors = Weights(model).Select(w =>
        {
            var values = new float[w.Tensor.Count];
            be.ToHost(w.Tensor, values);
            var bytes = new byte[values.Length * dtype.SizeInBytes()];
            FloatConversions.FromF32(dtype, values, bytes);
            return new TensorToWrite(w.Name, dtype, w.Tensor.Shape.Select(d => (long)d).ToArray(), bytes);
        });
        SafeTensorsWriter.WriteSharded(dir, tensors, maxShardBytes);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(sourceDir, "config.json")))!.AsObject();
        // A head trained apart from the embeddings (modules_to_save) is written as its own tensor; transformers must not re-tie it.
        if (model.Config.TieWordEmbeddings && !model.TiedEmbeddings) config["tie_word_embeddings"] = false;
        config["torch_dtype"] = dtype.TorchName();
        if (config.ContainsKey("dtype")) config["dtype"] = dtype.TorchName();
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString(JsonText.Indented));
        foreach (var name in CopiedFiles)
        {
            var from = Path.Combine(sourceDir, name);
            if (File.Exists(from)) File.Copy(from, Path.Combine(dir, name), overwrite: true);
        }
    }

    /// <summary>Every weight under its checkpoint name (tied embeddings written once, as transformers does).</summary>
    public static IEnumerable<(string Name, Tensor Tensor)> Weights(TransformerModel m)
    {
        yield return ("model.embed_tokens.weight", m.Embedding);
        foreach (var layer in m.Layers)
        {
            string p = $"model.layers.{layer.Index}.";
            yield return (p + "input_layernorm.weight", layer.InputNorm);
            yield return (p + "post_attention_layernorm.weight", layer.PostAttentionNorm);
            if (layer.QNorm != null) yield return (p + "self_attn.q_norm.weight", layer.QNorm);
            if (layer.KNorm != null) yield return (p + "self_attn.k_norm.weight", layer.KNorm);
            foreach (var linear in layer.Linears)
            {
                yield return (linear.Name + ".weight", linear.Weight);
                if (linear.Bias != null) yield return (linear.Name + ".bias", linear.Bias);
            }
        }
        yield return ("model.norm.weight", m.FinalNorm);
        if (!m.TiedEmbeddings) yield return ("lm_head.weight", m.LmHead.Weight);
    }
}
