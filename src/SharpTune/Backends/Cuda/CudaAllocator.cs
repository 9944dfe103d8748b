namespace SharpTune.Backends.Cuda;

/// <summary>
/// A caching device-memory allocator: freed blocks go to per-size free lists and are reused, so steady-state training and
/// decoding never call cuMemAlloc. Sizes are rounded (512 B steps below 1 MiB, 2 MiB steps above) so blocks match again.
/// All work runs on one stream, so a block freed by the host can be reused by later work without waiting: stream order
/// keeps the old reads before the new writes. Release is callable from finalizers (it only touches the free lists).
/// </summary>
internal sealed class CudaAllocator(CudaDevice device) : IDisposable
{
    readonly Dictionary<long, Stack<nint>> _free = [];
    readonly object _lock = new();
    // Recordings (CUDA graphs) hold raw addresses: a block taken or given back while one is made stays out of the free
    // lists until that recording is forgotten, so no later tensor can get memory a replay still writes.
    readonly List<RecordedBlocks> _recordings = [];
    RecordedBlocks? _recording;

    /// <summary>The blocks one recording uses: those taken while it was made, and those of them (or others) given back since.</summary>
    internal sealed class RecordedBlocks
    {
        public readonly HashSet<nint> Taken = [];
        public readonly List<(nint Pointer, long Size)> Returned = [];
    }

    public void BeginRecording()
    {
        lock (_lock) _recording = new RecordedBlocks();
    }

    public RecordedBlocks EndRecording()
    {
        lock (_lock)
        {
            var r = _recording ?? throw new InvalidOperationException("no recording in progress");
            _recording = null;
            _recordings.Add(r);
            return r;
        }
    }

    /// <summary>The recording is gone: the blocks given back meanwhile join the free lists.</summary>
    public void Forget(RecordedBlocks recording)
    {
        lock (_lock)
        {
            if (ReferenceEquals(_recording, recording)) _recording = null;
            _recordings.Remove(recording);
            foreach (var (p, size) in recording.Returned)
            {
                var other = _recordings.Find(r => r.Taken.Contains(p));
                if (other != null) other.Returned.Add((p, size));
                else Push(p, size);
            }
        }
    }

    public long InUse { get; private set; }
    public long Cached { get; private set; }
    public long PeakInUse { get; private set; }
    /// <summary>Most bytes live tensors may hold (null: the whole device); beyond it an allocation fails as a real
    /// out-of-memory does (like torch's per-process memory fraction).</summary>
    public long? Limit { get; set; }

    public static long RoundUp(long bytes) => bytes < (1 << 20)
        ? Math.Max(512, (bytes + 511) & ~511L)
        : (bytes + (2 << 20) - 1) & ~((2L << 20) - 1);

    public nint Allocate(long bytes)
    {
        long size = RoundUp(bytes);
        if (InUse + size > Limit) throw new CudaOutOfMemoryException($"allocating {size >> 20} MiB ({InUse >> 20} MiB in use, limit {Limit >> 20} MiB)");
        lock (_lock)
        {
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                Cached -= size;
                return Take(stack.Pop(), size);
            }
        }
        device.MakeCurrent();
        int status = Cu.cuMemAlloc_v2(out nint p, (nuint)size);
        if (status == Cu.CUDA_ERROR_OUT_OF_MEMORY)
        {
            // Give the cached blocks back to the driver and try once more before reporting.
            ReleaseCached();
            status = Cu.cuMemAlloc_v2(out p, (nuint)size);
        }
        Cu.Check(status, $"cuMemAlloc of {size >> 20} MiB ({(InUse >> 20)} MiB in use)");
        lock (_lock) return Take(p, size);
    }

    nint Take(nint p, long size)
    {
        InUse += size;
        PeakInUse = Math.Max(PeakInUse, InUse);
        _recording?.Taken.Add(p);
        return p;
    }

    public void Release(nint p, long bytes)
    {
        long size = RoundUp(bytes);
        lock (_lock)
        {
            InUse -= size;
            var holder = _recording;
            if (holder == null)
                foreach (var r in _recordings)
                    if (r.Taken.Contains(p)) { holder = r; break; }
            if (holder != null) holder.Returned.Add((p, size));
            else Push(p, size);
        }
    }

    void Push(nint p, long size)
    {
        if (!_free.TryGetValue(size, out var stack)) _free[size] = stack = new Stack<nint>();
        stack.Push(p);
        Cached += size;
    }

    public void ResetPeak()
    {
        lock (_lock) PeakInUse = InUse;
    }

    /// <summary>Frees every cached block (after the stream has finished with them).</summary>
    public void ReleaseCached()
    {
        device.MakeCurrent();
        device.Synchronize();
        lock (_lock)
        {
            foreach (var stack in _free.Values)
                while (stack.Count > 0) Cu.cuMemFree_v2(stack.Pop());
            Cached = 0;
        }
    }

    public void Dispose() => ReleaseCached();
}

/// <summary>Device memory of one tensor storage, returned to the allocator's cache when released.</summary>
internal sealed class CudaStorage(CudaBackend backend, CudaAllocator allocator, long byteLength)
    : Tensors.TensorStorage(backend, allocator.Allocate(byteLength), byteLength)
{
    protected override void Release() => allocator.Release(Pointer, ByteLength);
}
