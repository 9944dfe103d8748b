using SharpTune.Arguments;

namespace SharpTune.Export;

/// <summary><c>sharptune export</c> / <c>merge-lora</c> (ms-swift's names).</summary>
public sealed class ExportArguments
{
    [Arg("model", Help = "base model folder")] public string? Model { get; set; }
    [Arg("adapters", Help = "adapter folders to merge (DIR or DIR:WEIGHT)")] public string[] Adapters { get; set; } = [];
    [Arg("merge_lora", Help = "bake the adapters into the weights")] public bool MergeLora { get; set; }
    [Arg("output_dir", Help = "where the standalone checkpoint goes (default: ADAPTER-merged)")] public string? OutputDir { get; set; }
    [Arg("torch_dtype", Help = "dtype of the written weights (default: the base model's)")] public string? TorchDtype { get; set; }
    [Arg("max_shard_size", Help = "largest safetensors shard, e.g. 5GB or 500MB")] public string MaxShardSize { get; set; } = "5GB";
    [Arg("device")] public string Device { get; set; } = "cpu";
    [Arg("verbose")] public bool Verbose { get; set; }
}
