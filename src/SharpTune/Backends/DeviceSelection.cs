using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Backends;

/// <summary>Chooses the backend for --device (cpu, cuda, auto).</summary>
public static class DeviceSelection
{
    public static IBackend Select(string device) => device switch
    {
        "cpu" or "auto" => CpuBackend.Instance,
        "cuda" => throw new SharpTuneException("--device cuda: the CUDA backend is not available in this build; use --device cpu"),
        _ => throw new SharpTuneException($"--device: '{device}' is not one of cpu, cuda, auto"),
    };
}
