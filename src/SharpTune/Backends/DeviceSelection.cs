using SharpTune.Backends.Cpu;
using SharpTune.Backends.Cuda;
using SharpTune.Tensors;

namespace SharpTune.Backends;

/// <summary>Chooses the backend for --device (cpu, cuda, cuda:N, auto: the first visible GPU when a driver and a device are present).</summary>
public static class DeviceSelection
{
    /// <param name="activationType">GPU compute type: BF16, or F32 for the checking mode.</param>
    public static IBackend Select(string device, DType activationType = DType.BF16) => device switch
    {
        "cpu" => CpuBackend.Instance,
        "auto" => CudaBackend.IsAvailable() ? CudaBackend.Create(0, activationType) : CpuBackend.Instance,
        "cuda" => CudaBackend.Create(0, activationType),
        _ when device.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(device.AsSpan(5), out int ordinal) && ordinal >= 0
            => CudaBackend.Create(ordinal, activationType),
        _ => throw new SharpTuneException($"--device: '{device}' is not one of cpu, cuda, cuda:N, auto"),
    };
}
