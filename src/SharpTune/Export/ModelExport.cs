using System.Globalization;
using SharpTune.Adapters;
using SharpTune.Formats;
using SharpTune.Inference;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Export;

/// <summary>
/// Writes base + adapters as one standalone Hugging Face checkpoint (sharded safetensors in the base's dtype, config,
/// generation config, tokenizer files, chat template). The folder is filled under a temporary name and renamed at the end.
/// </summary>
public static class ModelExport
{
    public static string MergeLora(ExportArguments args, IBackend backend)
    {
        if (args.Model == null) throw new SharpTuneException("--model is required");
        if (!args.MergeLora) throw new SharpTuneException("export: only --merge_lora true is supported");
        if (args.Adapters.Length == 0) throw new SharpTuneException("--adapters: give the adapter folder(s) to merge");
        var output = args.OutputDir ?? InferenceEngine.ParseAdapterSpec(args.Adapters[^1]).Path.TrimEnd('/') + "-merged";
        var config = ModelConfig.Load(args.Model);
        var dtype = args.TorchDtype == null ? config.TorchDType ?? DType.F32
            : DTypeExtensions.FromTorchName(args.TorchDtype) ?? throw new SharpTuneException($"--torch_dtype: '{args.TorchDtype}' is not float32, bfloat16 or float16");
        long shard = ParseSize(args.MaxShardSize);
        using var model = TransformerModel.Load(args.Model, backend);
        foreach (var spec in args.Adapters)
        {
            var (_, path, weight) = InferenceEngine.ParseAdapterSpec(spec);
            LoraAdapter.Load(path, model, weight);
        }
        LoraMerge.MergeAll(model);
        AtomicFile.WriteDirectory(output, tmp => ModelWriter.Save(model, args.Model, tmp, dtype, shard));
        return Path.GetFullPath(output);
    }

    /// <summary>"5GB", "500MB", "1024" (bytes); decimal units as transformers' max_shard_size.</summary>
    public static long ParseSize(string text)
    {
        var t = text.Trim().ToUpperInvariant();
        (string unit, long scale)[] units = [("GIB", 1L << 30), ("MIB", 1L << 20), ("KIB", 1L << 10), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000), ("B", 1)];
        foreach (var (unit, scale) in units)
            if (t.EndsWith(unit) && double.TryParse(t[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v > 0)
                return (long)(v * scale);
        return long.TryParse(t, out var bytes) && bytes > 0 ? bytes : throw new SharpTuneException($"--max_shard_size: '{text}' is not a size like 5GB or 500MB");
    }
}
