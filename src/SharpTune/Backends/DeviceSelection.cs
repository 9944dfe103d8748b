using SharpTune.Backends.Cpu;
using SharpTune.Backends.Cuda;
using SharpTune.Tensors;

namespace SharpTune.Backends;

/// <summary>Chooses the backend for --device (cpu, cuda, cuda:N, auto: the first visible GPU when a driver and a device are present).</summary>
public static class DeviceSelection
{
    /// <param name="torchDtype">--torch_dtype: the GPU's compute type, bfloat16 (default) or float32 (the checking mode).
    /// The CPU computes in float32 whatever it is.</param>
    public static IBackend Select(string device, string? torchDtype = null)
    {
        var activationType = ComputeType(torchDtype);
        return device switch
        {
            "cpu" => CpuBackend.Instance,
            "auto" => CudaBackend.IsAvailable() ? CudaBackend.Create(0, activationType) : CpuBackend.Instance,
            "cuda" => CudaBackend.Create(0, activationType),
            _ when device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5), out int ordinal) && ordinal >= 0
                => CudaBackend.Create(ordinal, activationType),
            _ => throw new SharpTuneException($"--device: '{device}' is not one of cpu, cuda, cuda:N, auto"),
        };
    }

    /// <summary>--torch_dtype as a GPU activation type (ms-swift's spellings; float16 is not supported).</summary>
    public static DType ComputeType(string? torchDtype) => torchDtype switch
    {
        null or "" or "auto" or "bfloat16" or "bf16" => DType.BF16,
        "float32" or "fp32" => DType.F32,
        _ => throw new SharpTuneException($"--torch_dtype: '{torchDtype}' is not supported; use bfloat16 or float32"),
    };
}
