using System.Runtime.InteropServices;

namespace SharpTune.Backends.Cuda;

/// <summary>
/// One GPU: its primary context, made current on every thread that calls into the backend, the compute stream and the
/// device's properties. Creation fails with a message that says what to do when there is no driver or no device.
/// </summary>
internal sealed unsafe class CudaDevice : IDisposable
{
    /// <summary>CUDA 12.0: the oldest driver whose API and NVRTC output we target.</summary>
    const int MinimumDriverVersion = 12000;

    [ThreadStatic] static nint _currentOnThread;

    CudaDevice(int ordinal, nint context, nint stream, int major, int minor, int driverVersion, string name)
    {
        Ordinal = ordinal;
        Context = context;
        Stream = stream;
        Major = major;
        Minor = minor;
        DriverVersion = driverVersion;
        Name = name;
    }

    public int Ordinal { get; }
    public nint Context { get; }
    public nint Stream { get; }
    public int Major { get; }
    public int Minor { get; }
    public int DriverVersion { get; }
    public string Name { get; }
    public string Architecture => $"sm_{Major}{Minor}";

    /// <summary>Opens device <paramref name="ordinal"/> (after CUDA_VISIBLE_DEVICES, which the driver applies).</summary>
    public static CudaDevice Open(int ordinal)
    {
        CudaLibraries.Register();
        int status;
        try { status = Cu.cuInit(0); }
        catch (DllNotFoundException e) { throw new SharpTuneException($"--device cuda: no NVIDIA driver ({e.Message}); install the driver or use --device cpu"); }
        if (status != 0) throw new SharpTuneException($"--device cuda: the NVIDIA driver could not start (cuInit error {status}); check nvidia-smi or use --device cpu");
        Cu.Check(Cu.cuDriverGetVersion(out int version), "cuDriverGetVersion");
        if (version < MinimumDriverVersion)
            throw new SharpTuneException($"--device cuda: the NVIDIA driver supports CUDA {version / 1000}.{version % 1000 / 10}; CUDA 12.0 or newer is needed (update the driver or use --device cpu)");
        Cu.Check(Cu.cuDeviceGetCount(out int count), "cuDeviceGetCount");
        if (count == 0) throw new SharpTuneException("--device cuda: no CUDA device is visible (check CUDA_VISIBLE_DEVICES) ; use --device cpu");
        if (ordinal >= count) throw new SharpTuneException($"--device cuda:{ordinal}: only {count} CUDA device(s) are visible");
        Cu.Check(Cu.cuDeviceGet(out int device, ordinal), "cuDeviceGet");
        Cu.Check(Cu.cuDeviceGetAttribute(out int major, Cu.AttrComputeCapabilityMajor, device), "cuDeviceGetAttribute");
        Cu.Check(Cu.cuDeviceGetAttribute(out int minor, Cu.AttrComputeCapabilityMinor, device), "cuDeviceGetAttribute");
        if (major < 8) throw new SharpTuneException($"--device cuda: compute capability {major}.{minor} has no bfloat16 tensor cores; an Ampere (8.0) or newer GPU is needed, or use --device cpu");
        var nameBytes = stackalloc byte[256];
        Cu.Check(Cu.cuDeviceGetName(nameBytes, 256, device), "cuDeviceGetName");
        Cu.Check(Cu.cuDevicePrimaryCtxRetain(out nint context, device), "cuDevicePrimaryCtxRetain");
        Cu.Check(Cu.cuCtxSetCurrent(context), "cuCtxSetCurrent");
        _currentOnThread = context;
        Cu.Check(Cu.cuStreamCreate(out nint stream, 0), "cuStreamCreate");
        return new CudaDevice(device, context, stream, major, minor, version, Marshal.PtrToStringAnsi((nint)nameBytes) ?? "GPU");
    }

    /// <summary>Binds the context to the calling thread (the driver keeps one current context per thread).</summary>
    public void MakeCurrent()
    {
        if (_currentOnThread == Context) return;
        Cu.Check(Cu.cuCtxSetCurrent(Context), "cuCtxSetCurrent");
        _currentOnThread = Context;
    }

    public void Synchronize() => Cu.Check(Cu.cuStreamSynchronize(Stream), "cuStreamSynchronize");

    public (long Free, long Total) MemoryInfo()
    {
        MakeCurrent();
        Cu.Check(Cu.cuMemGetInfo_v2(out nuint free, out nuint total), "cuMemGetInfo");
        return ((long)free, (long)total);
    }

    public void Dispose()
    {
        MakeCurrent();
        Cu.cuStreamSynchronize(Stream);
        Cu.cuStreamDestroy_v2(Stream);
        Cu.cuDevicePrimaryCtxRelease_v2(Ordinal);
    }
}
