namespace SharpTune.Backends.Cuda;

/// <summary>
/// Large transfers between host memory and the GPU through two page-locked buffers on a copy stream of their own: the
/// host copies one chunk into a buffer while the copy engine moves the other, so the copy engine reads and writes locked
/// memory at the bus's rate instead of the driver staging pageable memory chunk by chunk behind each call. The copy stream
/// waits for the work queued on the compute stream before it touches a tensor (a block from the allocator may still be
/// read by it), and the compute stream waits for an upload before its next work, so transfers keep the order of calls.
/// </summary>
internal sealed unsafe class PinnedStaging : IDisposable
{
    /// <summary>Transfers below this go straight through the driver on the compute stream (their cost is the call).</summary>
    public const long MinimumBytes = 1 << 20;
    const int ChunkBytes = 8 << 20;

    readonly CudaDevice _device;
    readonly nint _stream, _computeDone, _copyDone;
    readonly nint[] _buffers = new nint[2], _bufferFree = new nint[2];
    readonly Lock _gate = new();   // one transfer at a time owns the buffers

    public PinnedStaging(CudaDevice device)
    {
        _device = device;
        device.MakeCurrent();
        Cu.Check(Cu.cuStreamCreate(out _stream, Cu.StreamNonBlocking), "cuStreamCreate");
        Cu.Check(Cu.cuEventCreate(out _computeDone, Cu.EventDisableTiming), "cuEventCreate");
        Cu.Check(Cu.cuEventCreate(out _copyDone, Cu.EventDisableTiming), "cuEventCreate");
        for (int i = 0; i < 2; i++)
        {
            Cu.Check(Cu.cuMemAllocHost_v2(out _buffers[i], ChunkBytes), "cuMemAllocHost");
            Cu.Check(Cu.cuEventCreate(out _bufferFree[i], Cu.EventDisableTiming), "cuEventCreate");
            Cu.Check(Cu.cuEventRecord(_bufferFree[i], _stream), "cuEventRecord");
        }
    }

    /// <summary>Copies <paramref name="bytes"/> to device address <paramref name="destination"/>; the span may be reused on return.</summary>
    public void Upload(ReadOnlySpan<byte> bytes, nint destination)
    {
        using var _ = _gate.EnterScope();
        AfterCompute();
        fixed (byte* source = bytes)
            for (int offset = 0, chunk = 0; offset < bytes.Length; offset += ChunkBytes, chunk++)
            {
                int b = chunk & 1, length = Math.Min(ChunkBytes, bytes.Length - offset);
                Cu.Check(Cu.cuEventSynchronize(_bufferFree[b]), "cuEventSynchronize");
                HostCopy((nint)(source + offset), _buffers[b], length);
                Cu.Check(Cu.cuMemcpyHtoDAsync_v2(destination + offset, (void*)_buffers[b], (nuint)length, _stream), "cuMemcpyHtoDAsync");
                Cu.Check(Cu.cuEventRecord(_bufferFree[b], _stream), "cuEventRecord");
            }
        Cu.Check(Cu.cuEventRecord(_copyDone, _stream), "cuEventRecord");
        Cu.Check(Cu.cuStreamWaitEvent(_device.Stream, _copyDone, 0), "cuStreamWaitEvent");
    }

    /// <summary>Copies device memory at <paramref name="source"/> into <paramref name="destination"/> after the queued work.</summary>
    public void Download(nint source, Span<byte> destination)
    {
        using var _ = _gate.EnterScope();
        AfterCompute();
        int chunks = (destination.Length + ChunkBytes - 1) / ChunkBytes;
        // Chunk c + 1 is queued before chunk c is copied out of its buffer, so the bus and the host copy overlap.
        for (int c = 0; c <= chunks; c++)
        {
            if (c < chunks)
            {
                int b = c & 1, length = Math.Min(ChunkBytes, destination.Length - c * ChunkBytes);
                Cu.Check(Cu.cuMemcpyDtoHAsync_v2((void*)_buffers[b], source + (nint)c * ChunkBytes, (nuint)length, _stream), "cuMemcpyDtoHAsync");
                Cu.Check(Cu.cuEventRecord(_bufferFree[b], _stream), "cuEventRecord");
            }
            if (c == 0) continue;
            int p = (c - 1) & 1, done = Math.Min(ChunkBytes, destination.Length - (c - 1) * ChunkBytes);
            Cu.Check(Cu.cuEventSynchronize(_bufferFree[p]), "cuEventSynchronize");
            fixed (byte* target = destination) HostCopy(_buffers[p], (nint)(target + (long)(c - 1) * ChunkBytes), done);
        }
    }

    /// <summary>
    /// A chunk between pageable and page-locked memory in slices on several threads: one thread's copy (~8 GB/s measured on
    /// the H200 machine) and not the bus sets the rate of a staged transfer.
    /// </summary>
    static void HostCopy(nint from, nint to, int length)
    {
        int slices = Math.Clamp(Environment.ProcessorCount / 2, 1, 4);
        int slice = (length + slices - 1) / slices;
        Parallel.For(0, slices, i =>
        {
            long start = (long)i * slice, count = Math.Min(slice, length - start);
            if (count > 0) Buffer.MemoryCopy((void*)(from + (nint)start), (void*)(to + (nint)start), count, count);
        });
    }

    void AfterCompute()
    {
        _device.MakeCurrent();
        Cu.Check(Cu.cuEventRecord(_computeDone, _device.Stream), "cuEventRecord");
        Cu.Check(Cu.cuStreamWaitEvent(_stream, _computeDone, 0), "cuStreamWaitEvent");
    }

    public void Dispose()
    {
        _device.MakeCurrent();
        Cu.cuStreamSynchronize(_stream);
        for (int i = 0; i < 2; i++)
        {
            Cu.cuMemFreeHost(_buffers[i]);
            Cu.cuEventDestroy_v2(_bufferFree[i]);
        }
        Cu.cuEventDestroy_v2(_computeDone);
        Cu.cuEventDestroy_v2(_copyDone);
        Cu.cuStreamDestroy_v2(_stream);
    }
}
