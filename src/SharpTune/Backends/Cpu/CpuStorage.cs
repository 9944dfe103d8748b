using System.Runtime.InteropServices;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

/// <summary>Host memory: 64-byte-aligned memory we own, or a borrowed range (a memory-mapped checkpoint) kept alive by its owner.</summary>
public sealed unsafe class CpuStorage : TensorStorage
{
    readonly object? _owner;
    readonly bool _owned;

    CpuStorage(IBackend backend, nint pointer, long byteLength, bool owned, object? owner) : base(backend, pointer, byteLength)
    {
        _owned = owned;
        _owner = owner;
    }

    public static CpuStorage Allocate(IBackend backend, long byteLength, bool zero)
    {
        var p = NativeMemory.AlignedAlloc((nuint)Math.Max(byteLength, 64), 64);
        if (zero) NativeMemory.Clear(p, (nuint)byteLength);
        return new CpuStorage(backend, (nint)p, byteLength, owned: true, owner: null);
    }

    /// <summary>Wraps memory that <paramref name="owner"/> keeps valid (for example an open memory-mapped file).</summary>
    public static CpuStorage Borrow(IBackend backend, nint pointer, long byteLength, object owner) =>
        new(backend, pointer, byteLength, owned: false, owner);

    protected override void Release()
    {
        if (_owned) NativeMemory.AlignedFree((void*)Pointer);
        GC.KeepAlive(_owner);
    }
}
