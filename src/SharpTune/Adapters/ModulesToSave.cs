using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Adapters;

/// <summary>
/// PEFT's modules_to_save: whole modules (embed_tokens, lm_head, norms, linear layers) trained in full next to the LoRA
/// branches. Each such module's tensors are replaced by owned float32 copies (the originals are kept, so
/// <see cref="Restore"/> puts them back, as PEFT keeps original_module). PEFT saves them as
/// <c>base_model.model.{module}.{weight|bias}</c>: ModulesToSaveWrapper drops its <c>modules_to_save.{adapter}.</c> part.
/// A name is a module path or a suffix of one after a dot (<c>lm_head</c>, <c>embed_tokens</c>, <c>q_proj</c>).
/// Tied embeddings: each listed module gets its own copy, so listing lm_head or embed_tokens unties the output head from
/// the embeddings and both are saved separately — PEFT's default (ensure_weight_tying false).
/// </summary>
public sealed class ModulesToSave
{
    const string KeyPrefix = "base_model.model.";

    /// <summary>One trainable tensor: its adapter-file key, the copy in the model, the original, and how to swap them.</summary>
    sealed record Slot(string Key, Tensor Original, Action<Tensor> Set)
    {
        public required Tensor Copy { get; init; }
    }

    readonly List<Slot> _slots;

    ModulesToSave(List<Slot> slots) => _slots = slots;

    /// <summary>The trainable float32 tensors under their adapter-file keys.</summary>
    public IEnumerable<(string Key, Tensor Tensor)> Parameters => _slots.Select(s => (s.Key, s.Copy));

    /// <summary>
    /// Gives every module matching <paramref name="names"/> float32 copies of its tensors. A name that matches nothing, or a
    /// module that also has LoRA branches, is an error naming <paramref name="where"/>.
    /// </summary>
    public static ModulesToSave Attach(TransformerModel model, IReadOnlyList<string> names, string where)
    {
        var all = Tensors(model).ToList();
        var chosen = new List<(string Key, Func<Tensor> Get, Action<Tensor> Set)>();
        // Everything is checked before the model changes, so a bad name leaves it as it was.
        foreach (var name in names)
        {
            var matched = all.Where(t => t.Module == name || t.Module.EndsWith("." + name, StringComparison.Ordinal)).ToList();
            if (matched.Count == 0) throw new SharpTuneException($"{where}: modules_to_save '{name}' matches no module of the model");
            foreach (var (module, param, get, set, linear) in matched)
            {
                if (linear is { Adapters.Count: > 0 })
                    throw new SharpTuneException($"{where}: {module} is both a LoRA target and in modules_to_save");
                string key = $"{KeyPrefix}{module}.{param}";
                if (!chosen.Any(c => c.Key == key)) chosen.Add((key, get, set));
            }
        }
        var be = model.Backend;
        var slots = new List<Slot>();
        foreach (var (key, get, set) in chosen)
        {
            var original = get();
            var copy = be.Allocate(DType.F32, original.Shape);
            be.Copy(original, copy);
            set(copy);
            slots.Add(new Slot(key, original, set) { Copy = copy });
        }
        return new ModulesToSave(slots);
    }

    /// <summary>Reads every tensor's saved value from an adapter file; the keys read are removed from <paramref name="unused"/>.</summary>
    public void Load(Checkpoint file, string path, ISet<string> unused, IBackend be)
    {
        foreach (var slot in _slots)
        {
            if (!file.Contains(slot.Key)) throw new SharpTuneException($"{path}: no tensor '{slot.Key}' for modules_to_save");
            var shape = file.Entry(slot.Key).Shape;
            if (!shape.Select(d => (int)d).SequenceEqual(slot.Copy.Shape))
                throw new SharpTuneException($"{path}: '{slot.Key}' has shape [{string.Join(",", shape)}], the model's is [{string.Join(",", slot.Copy.Shape)}]");
            using var host = be.FromHost(file.ReadFloat32(slot.Key), DType.F32, slot.Copy.Shape);
            be.Copy(host, slot.Copy);
            unused.Remove(slot.Key);
        }
    }

    /// <summary>Puts the original tensors back and frees the copies.</summary>
    public void Restore()
    {
        foreach (var slot in _slots)
        {
            slot.Set(slot.Original);
            slot.Copy.Dispose();
        }
        _slots.Clear();
    }

    /// <summary>Every tensor of the model by module path and parameter name, with a setter (and the linear layer, if any).</summary>
    static IEnumerable<(string Module, string Param, Func<Tensor> Get, Action<Tensor> Set, Linear? Linear)> Tensors(TransformerModel m)
    {
        yield return ("model.embed_tokens", "weight", () => m.Embedding, t => m.Embedding = t, null);
        foreach (var layer in m.Layers)
        {
            string p = $"model.layers.{layer.Index}.";
            yield return (p + "input_layernorm", "weight", () => layer.InputNorm, t => layer.InputNorm = t, null);
            yield return (p + "post_attention_layernorm", "weight", () => layer.PostAttentionNorm, t => layer.PostAttentionNorm = t, null);
            if (layer.QNorm != null) yield return (p + "self_attn.q_norm", "weight", () => layer.QNorm!, t => layer.QNorm = t, null);
            if (layer.KNorm != null) yield return (p + "self_attn.k_norm", "weight", () => layer.KNorm!, t => layer.KNorm = t, null);
            foreach (var linear in layer.Linears)
            {
                yield return (linear.Name, "weight", () => linear.Weight, t => linear.Weight = t, linear);
                if (linear.Bias != null) yield return (linear.Name, "bias", () => linear.Bias!, t => linear.Bias = t, linear);
            }
        }
        yield return ("model.norm", "weight", () => m.FinalNorm, t => m.FinalNorm = t, null);
        yield return ("lm_head", "weight", () => m.LmHead.Weight, t => m.LmHead.Weight = t, m.LmHead);
    }
}
