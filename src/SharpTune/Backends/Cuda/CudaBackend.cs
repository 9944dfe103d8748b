using System.Runtime.InteropServices;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

/// <summary>
/// The NVIDIA GPU engine: tensors in device memory (from a caching allocator), our NVRTC-compiled kernels for every op and
/// cuBLAS for matrix products, all on one stream. Activations are bfloat16 with float32 accumulation (or float32 in the
/// checking mode); norm weights, LoRA weights, gradients and optimizer state are float32.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend
{
    readonly CudaDevice _device;
    readonly CudaAllocator _allocator;
    readonly KernelModules _kernels;
    readonly nint _cublas;
    int _multiprocessors;
    /// <summary>Programmatic dependent launches (<see cref="LaunchDependent"/>): Hopper and later, unless SHARPTUNE_CUDA_PDL=0
    /// (for measuring what they bring, or ruling them out).</summary>
    readonly bool _programmaticLaunch;
    /// <summary>Large transfers through page-locked buffers on a copy stream (SHARPTUNE_CUDA_PINNED=0: all through the
    /// driver's pageable path on the compute stream).</summary>
    readonly PinnedStaging? _staging;
    bool _recording;
    /// <summary>With SHARPTUNE_CUDA_PROFILE=1, every kernel and matrix product waits for the GPU and its time is summed per
    /// name (for benchmarks: it serializes host and device).</summary>
    readonly Dictionary<string, (double Seconds, int Calls)>? _profile =
        Environment.GetEnvironmentVariable("SHARPTUNE_CUDA_PROFILE") == "1" ? [] : null;

    CudaBackend(CudaDevice device, DType activationType)
    {
        _device = device;
        _allocator = new CudaAllocator(device);
        _kernels = new KernelModules(device);
        ActivationType = activationType;
        _programmaticLaunch = device.Major >= 9 && Environment.GetEnvironmentVariable("SHARPTUNE_CUDA_PDL") != "0";
        Cu.Check(Cu.cuDeviceGetAttribute(out _multiprocessors, Cu.AttrMultiprocessorCount, device.Ordinal), "cuDeviceGetAttribute");
        try { Cublas.Check(Cublas.cublasCreate_v2(out _cublas), "cublasCreate"); }
        catch (DllNotFoundException e) { throw new SharpTuneException($"--device cuda: cuBLAS is missing ({e.Message}); install the CUDA toolkit libraries or use --device cpu"); }
        Cublas.Check(Cublas.cublasSetStream_v2(_cublas, device.Stream), "cublasSetStream");
        if (Environment.GetEnvironmentVariable("SHARPTUNE_CUDA_PINNED") != "0") _staging = new PinnedStaging(device);
    }

    /// <summary>Opens GPU <paramref name="ordinal"/>; <paramref name="activationType"/> is BF16, or F32 for the checking mode.</summary>
    public static CudaBackend Create(int ordinal = 0, DType activationType = DType.BF16)
    {
        if (activationType is not (DType.BF16 or DType.F32)) throw new ArgumentException("CUDA activations are BF16 or F32", nameof(activationType));
        return new CudaBackend(CudaDevice.Open(ordinal), activationType);
    }

    /// <summary>True when a driver loads and at least one device is visible (for --device auto); never throws.</summary>
    public static bool IsAvailable()
    {
        try
        {
            CudaLibraries.Register();
            return Cu.cuInit(0) == 0 && Cu.cuDeviceGetCount(out int count) == 0 && count > 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    public string Name => $"cuda:{_device.Ordinal} ({_device.Name})";
    public bool IsHost => false;
    public DType ActivationType { get; }
    public string DeviceName => _device.Name;
    /// <summary>Device memory held by live tensors, its peak since <see cref="ResetPeakMemory"/>, and what the cache keeps.</summary>
    public long MemoryInUse => _allocator.InUse;
    public long PeakMemoryInUse => _allocator.PeakInUse;
    public long MemoryCached => _allocator.Cached;
    public void ResetPeakMemory() => _allocator.ResetPeak();
    /// <summary>Caps the device memory live tensors may hold (null: no cap); allocations beyond it fail as out-of-memory.</summary>
    public long? MemoryLimit { get => _allocator.Limit; set => _allocator.Limit = value; }
    public (long Free, long Total) DeviceMemory() => _device.MemoryInfo();
    public void Synchronize()
    {
        _device.MakeCurrent();
        _device.Synchronize();
    }

    public Tensor Allocate(DType dtype, params int[] shape)
    {
        _device.MakeCurrent();
        long count = 1;
        foreach (var d in shape) count *= d;
        return new Tensor(new CudaStorage(this, _allocator, count * dtype.SizeInBytes()), dtype, shape);
    }

    public Tensor Zeros(DType dtype, params int[] shape)
    {
        var t = Allocate(dtype, shape);
        Cu.Check(Cu.cuMemsetD8Async(t.Address, 0, (nuint)t.ByteLength, _device.Stream), "cuMemsetD8Async");
        return t;
    }

    public Tensor FromHost(ReadOnlySpan<float> values, DType dtype, params int[] shape)
    {
        var t = Allocate(dtype, shape);
        if (values.Length != t.Count) throw new ArgumentException($"{values.Length} values for shape [{string.Join(",", shape)}]");
        if (dtype == DType.F32) Upload(MemoryMarshal.AsBytes(values), t);
        else
        {
            var bytes = new byte[t.ByteLength];
            FloatConversions.FromF32(dtype, values, bytes);
            Upload(bytes, t);
        }
        return t;
    }

    public Tensor FromHostBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape)
    {
        var t = Allocate(dtype, shape);
        if (bytes.Length != t.ByteLength) throw new ArgumentException($"{bytes.Length} bytes for {dtype} shape [{string.Join(",", shape)}]");
        Upload(bytes, t);
        return t;
    }

    public Tensor FromHost(ReadOnlySpan<int> values, params int[] shape)
    {
        var t = Allocate(DType.I32, shape);
        if (values.Length != t.Count) throw new ArgumentException($"{values.Length} values for shape [{string.Join(",", shape)}]");
        Upload(MemoryMarshal.AsBytes(values), t);
        return t;
    }

    /// <summary>Transfers this large go through <see cref="PinnedStaging"/>; none while a graph records (the copy stream
    /// would join the capture).</summary>
    bool Staged(long bytes) => _staging != null && !_recording && bytes >= PinnedStaging.MinimumBytes;

    // The caller may reuse the bytes on return: the staging buffers hold a copy, and for pageable sources the driver has
    // copied them to its own staging memory when the call returns.
    void Upload(ReadOnlySpan<byte> bytes, Tensor t)
    {
        if (bytes.Length == 0) return;
        if (Staged(bytes.Length))
        {
            _staging!.Upload(bytes, t.Address);
            return;
        }
        fixed (byte* p = bytes) Cu.Check(Cu.cuMemcpyHtoDAsync_v2(t.Address, p, (nuint)bytes.Length, _device.Stream), "cuMemcpyHtoDAsync");
    }

    public void Upload(ReadOnlySpan<int> values, Tensor destination)
    {
        Own(destination);
        if (destination.DType != DType.I32 || values.Length != destination.Count) throw new ArgumentException($"{values.Length} ints into {destination}");
        _device.MakeCurrent();
        Upload(MemoryMarshal.AsBytes(values), destination);
    }

    public void ToHost(Tensor source, Span<int> destination)
    {
        Own(source);
        if (source.DType != DType.I32 || destination.Length < source.Count) throw new ArgumentException($"{source} into {destination.Length} ints");
        Download(source, MemoryMarshal.AsBytes(destination[..checked((int)source.Count)]));
    }

    /// <summary>
    /// A CUDA graph of the work <paramref name="enqueue"/> issues on the stream (captured, not run); null while profiling,
    /// which times each kernel by waiting for it.
    /// </summary>
    public IRecordedWork? Record(Action enqueue)
    {
        if (_profile != null) return null;
        _device.MakeCurrent();
        Cu.Check(Cu.cuStreamBeginCapture_v2(_device.Stream, Cu.CaptureModeRelaxed), "cuStreamBeginCapture");
        _allocator.BeginRecording();
        _recording = true;
        Exception? failure = null;
        try { enqueue(); }
        catch (Exception e) { failure = e; }
        finally { _recording = false; }
        // The capture ends whatever happened, or the stream would stay unusable.
        int ended = Cu.cuStreamEndCapture(_device.Stream, out nint graph);
        var blocks = _allocator.EndRecording();
        nint exec = 0;
        int status = failure == null && ended == 0 ? Cu.cuGraphInstantiateWithFlags(out exec, graph, 0) : ended;
        if (failure != null || status != 0)
        {
            if (graph != 0) Cu.cuGraphDestroy(graph);
            _allocator.Forget(blocks);
            if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            Cu.Check(status, ended != 0 ? "cuStreamEndCapture" : "cuGraphInstantiateWithFlags");
        }
        return new CudaGraph(this, graph, exec, blocks);
    }

    sealed class CudaGraph(CudaBackend backend, nint graph, nint exec, CudaAllocator.RecordedBlocks blocks) : IRecordedWork
    {
        bool _disposed;

        public void Replay()
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            backend._device.MakeCurrent();
            Cu.Check(Cu.cuGraphLaunch(exec, backend._device.Stream), "cuGraphLaunch");
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            backend._device.MakeCurrent();
            // Replays in flight still read the blocks: they go back to the free lists only after the stream is done.
            backend._device.Synchronize();
            Cu.cuGraphExecDestroy(exec);
            Cu.cuGraphDestroy(graph);
            backend._allocator.Forget(blocks);
        }
    }

    public void ToHost(Tensor source, Span<float> destination)
    {
        Own(source);
        if (destination.Length < source.Count) throw new ArgumentException("destination is shorter than the tensor");
        _device.MakeCurrent();
        if (source.DType == DType.F32) Download(source, MemoryMarshal.AsBytes(destination[..checked((int)source.Count)]));
        else
        {
            var bytes = new byte[source.ByteLength];
            Download(source, bytes);
            FloatConversions.ToF32(source.DType, bytes, destination);
        }
    }

    /// <summary>Copies a tensor's raw bytes to the host (waits for the stream).</summary>
    public void Download(Tensor source, Span<byte> destination)
    {
        _device.MakeCurrent();
        if (destination.Length == 0) return;
        if (Staged(destination.Length))
        {
            _staging!.Download(source.Address, destination);
            return;
        }
        fixed (byte* p = destination) Cu.Check(Cu.cuMemcpyDtoHAsync_v2(p, source.Address, (nuint)destination.Length, _device.Stream), "cuMemcpyDtoHAsync");
        _device.Synchronize();
    }

    public void Copy(Tensor source, Tensor destination)
    {
        Own(source);
        Own(destination);
        if (source.Count != destination.Count) throw new ArgumentException("copy between tensors of different sizes");
        if (source.DType == destination.DType)
        {
            _device.MakeCurrent();
            if (source.ByteLength > 0)
                Cu.Check(Cu.cuMemcpyDtoDAsync_v2(destination.Address, source.Address, (nuint)source.ByteLength, _device.Stream), "cuMemcpyDtoDAsync");
        }
        else Elementwise("convert", source.Count, source.Address, Code(source), destination.Address, Code(destination), source.Count);
    }

    public void Fill(Tensor tensor, float value)
    {
        Own(tensor);
        if (value == 0f)
        {
            _device.MakeCurrent();
            Cu.Check(Cu.cuMemsetD8Async(tensor.Address, 0, (nuint)tensor.ByteLength, _device.Stream), "cuMemsetD8Async");
        }
        else Elementwise("fill", tensor.Count, tensor.Address, Code(tensor), value, tensor.Count);
    }

    /// <summary>Normal(0, <paramref name="std"/>) values from a counter-based stream (benchmarks' random weights).</summary>
    public void FillNormal(Tensor tensor, float std, ulong seed) =>
        Elementwise("randomNormal", tensor.Count, tensor.Address, Code(tensor), std, seed, tensor.Count);

    void Own(Tensor t)
    {
        if (!ReferenceEquals(t.Backend, this)) throw new ArgumentException($"{t} does not live on {Name}");
    }

    /// <summary>The dtype code kernels take: 0 float32, 1 bfloat16.</summary>
    static int Code(Tensor t) => t.DType switch
    {
        DType.F32 => 0,
        DType.BF16 => 1,
        _ => throw new NotSupportedException($"CUDA kernels take F32 or BF16 tensors, not {t.DType}"),
    };

    /// <summary>One kernel argument: up to 8 bytes, little-endian, as cuLaunchKernel reads it through a pointer.</summary>
    readonly struct Arg
    {
        readonly long _bits;
        Arg(long bits) => _bits = bits;
        public long Bits => _bits;
        public static implicit operator Arg(nint v) => new(v);
        public static implicit operator Arg(int v) => new((uint)v);
        public static implicit operator Arg(long v) => new(v);
        public static implicit operator Arg(ulong v) => new((long)v);
        public static implicit operator Arg(float v) => new((uint)BitConverter.SingleToInt32Bits(v));
    }

    void Launch(string module, string function, uint grid, uint block, uint sharedBytes, params ReadOnlySpan<Arg> args) =>
        Launch(module, function, grid, 1, block, sharedBytes, args);

    void Launch(string module, string function, uint gridX, uint gridY, uint block, uint sharedBytes, params ReadOnlySpan<Arg> args) =>
        Launch(false, module, function, gridX, gridY, block, sharedBytes, args);

    /// <summary>
    /// Launches a kernel that calls common.cu's gridDependencyWait before it touches what earlier work wrote, as a
    /// programmatic dependent of the kernel before it (sm_90 and later): it is scheduled while that one finishes, so
    /// decoding's short kernels overlap their starts and their weights' first bytes with the previous kernel's tail.
    /// </summary>
    void LaunchDependent(string module, string function, uint gridX, uint gridY, uint block, uint sharedBytes, params ReadOnlySpan<Arg> args) =>
        Launch(_programmaticLaunch, module, function, gridX, gridY, block, sharedBytes, args);

    void Launch(bool dependent, string module, string function, uint gridX, uint gridY, uint block, uint sharedBytes, ReadOnlySpan<Arg> args)
    {
        _device.MakeCurrent();
        var f = _kernels.Function(module, function, sharedBytes);
        long* values = stackalloc long[args.Length];
        void** pointers = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            values[i] = args[i].Bits;
            pointers[i] = values + i;
        }
        if (gridX == 0 || gridY == 0) return;
        long started = ProfileStart();
        int status;
        if (dependent)
        {
            var attribute = new Cu.LaunchAttribute { Id = Cu.LaunchAttributeProgrammaticStreamSerialization, Value = 1 };
            var config = new Cu.LaunchConfig
            {
                GridX = gridX, GridY = gridY, GridZ = 1, BlockX = block, BlockY = 1, BlockZ = 1,
                SharedBytes = sharedBytes, Stream = _device.Stream, Attributes = &attribute, AttributeCount = 1,
            };
            status = Cu.cuLaunchKernelEx(&config, f, pointers, null);
        }
        else status = Cu.cuLaunchKernel(f, gridX, gridY, 1, block, 1, 1, sharedBytes, _device.Stream, pointers, null);
        if (status != 0) Cu.Check(status, $"cuLaunchKernel({function})"); // the message is built only on failure: launches are per token
        ProfileEnd(function, started);
    }

    long ProfileStart()
    {
        if (_profile == null) return 0;
        _device.Synchronize();
        return System.Diagnostics.Stopwatch.GetTimestamp();
    }

    void ProfileEnd(string name, long started)
    {
        if (_profile == null) return;
        _device.Synchronize();
        var (seconds, calls) = _profile.GetValueOrDefault(name);
        _profile[name] = (seconds + System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds, calls + 1);
    }

    /// <summary>The registers per thread and spilled local bytes per thread of one of our kernels (for benchmarks).</summary>
    internal (int Registers, int LocalBytes) KernelResources(string module, string function) => _kernels.Resources(module, function);

    /// <summary>Device time per kernel or product name since the last call (empty unless SHARPTUNE_CUDA_PROFILE=1).</summary>
    public IReadOnlyList<(string Name, double Seconds, int Calls)> TakeProfile()
    {
        if (_profile == null) return [];
        var result = _profile.Select(p => (p.Key, p.Value.Seconds, p.Value.Calls)).OrderByDescending(p => p.Seconds).ToList();
        _profile.Clear();
        return result;
    }

    /// <summary>A grid-stride kernel of elementwise.cu over <paramref name="n"/> elements.</summary>
    void Elementwise(string function, long n, params ReadOnlySpan<Arg> args)
    {
        const int block = 256;
        long blocks = Math.Min((n + block - 1) / block, (long)_multiprocessors * 32);
        Launch("elementwise", function, (uint)Math.Max(blocks, n > 0 ? 1 : 0), block, 0, args);
    }

    public void Dispose()
    {
        _device.MakeCurrent();
        _device.Synchronize();
        DisposeSpans();
        DisposeEpilogues();
        Cublas.cublasDestroy_v2(_cublas);
        _staging?.Dispose();
        _allocator.Dispose();
        _device.Dispose();
    }
}
