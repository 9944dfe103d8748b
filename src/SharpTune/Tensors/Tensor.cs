using System.Runtime.CompilerServices;

namespace SharpTune.Tensors;

/// <summary>
/// Memory that holds tensor elements on one backend: host memory (owned or a view of a memory-mapped checkpoint)
/// or device memory. Storages are reference-counted by the tensors that view them.
/// </summary>
public abstract class TensorStorage : IDisposable
{
    protected TensorStorage(IBackend backend, nint pointer, long byteLength)
    {
        Backend = backend;
        Pointer = pointer;
        ByteLength = byteLength;
    }

    public IBackend Backend { get; }
    /// <summary>Host or device address of the first byte.</summary>
    public nint Pointer { get; private set; }
    public long ByteLength { get; }
    public bool IsDisposed => Pointer == 0;

    public void Dispose()
    {
        if (Pointer == 0) return;
        Release();
        Pointer = 0;
        GC.SuppressFinalize(this);
    }

    protected abstract void Release();

    ~TensorStorage()
    {
        if (Pointer != 0) Release();
    }
}

/// <summary>
/// A dense row-major tensor: a shape and a dtype over a byte range of a storage. Views (rows, reshapes)
/// share the storage. The model and trainer see only tensors and the <see cref="IBackend"/> ops,
/// so the same code runs on every backend.
/// </summary>
public sealed class Tensor : IDisposable
{
    readonly bool _ownsStorage;

    public Tensor(TensorStorage storage, DType dtype, int[] shape, long byteOffset = 0, bool ownsStorage = true)
    {
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException("negative dimension");
            count *= d;
        }
        if (byteOffset < 0 || byteOffset + count * dtype.SizeInBytes() > storage.ByteLength)
            throw new ArgumentException($"tensor [{string.Join(",", shape)}] {dtype} at byte {byteOffset} exceeds its storage of {storage.ByteLength} bytes");
        Storage = storage;
        DType = dtype;
        Shape = shape;
        ByteOffset = byteOffset;
        Count = count;
        _ownsStorage = ownsStorage;
    }

    public TensorStorage Storage { get; }
    public IBackend Backend => Storage.Backend;
    public DType DType { get; }
    public int[] Shape { get; }
    public long ByteOffset { get; }
    /// <summary>Number of elements.</summary>
    public long Count { get; }
    public long ByteLength => Count * DType.SizeInBytes();
    public int Rank => Shape.Length;
    /// <summary>Size of the first dimension (1 for a scalar).</summary>
    public int Rows => Shape.Length == 0 ? 1 : Shape[0];
    /// <summary>Elements per row: the product of every dimension but the first.</summary>
    public int RowLength => Shape.Length == 0 ? 1 : (int)(Count / Math.Max(Shape[0], 1));
    /// <summary>Address of the first element on the tensor's backend (host pointer on the CPU, device pointer on a GPU).</summary>
    public nint Address => Storage.Pointer + (nint)ByteOffset;

    public unsafe float* F32
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (DType != DType.F32) throw new InvalidOperationException($"tensor is {DType}, not F32");
            return (float*)Address;
        }
    }

    public unsafe Span<float> AsSpan()
    {
        if (DType != DType.F32) throw new InvalidOperationException($"tensor is {DType}, not F32");
        if (!Backend.IsHost) throw new InvalidOperationException("AsSpan needs host memory; use Backend.ToHost");
        return new Span<float>((void*)Address, checked((int)Count));
    }

    public unsafe Span<int> AsIntSpan()
    {
        if (DType != DType.I32) throw new InvalidOperationException($"tensor is {DType}, not I32");
        if (!Backend.IsHost) throw new InvalidOperationException("AsIntSpan needs host memory");
        return new Span<int>((void*)Address, checked((int)Count));
    }

    /// <summary>A view of <paramref name="count"/> rows (first dimension) starting at row <paramref name="start"/>.</summary>
    public Tensor SliceRows(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Rows) throw new ArgumentOutOfRangeException(nameof(start), $"rows {start}..{start + count} of {Rows}");
        var shape = (int[])Shape.Clone();
        shape[0] = count;
        return new Tensor(Storage, DType, shape, ByteOffset + (long)start * RowLength * DType.SizeInBytes(), ownsStorage: false);
    }

    /// <summary>The same elements seen with another shape.</summary>
    public Tensor Reshape(params int[] shape)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        if (count != Count) throw new ArgumentException($"cannot reshape [{string.Join(",", Shape)}] to [{string.Join(",", shape)}]");
        return new Tensor(Storage, DType, shape, ByteOffset, ownsStorage: false);
    }

    public override string ToString() => $"Tensor[{string.Join(",", Shape)}] {DType} on {Backend.Name}";

    public void Dispose()
    {
        if (_ownsStorage) Storage.Dispose();
    }
}
