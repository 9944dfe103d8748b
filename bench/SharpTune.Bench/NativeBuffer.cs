using System.Runtime.InteropServices;

namespace SharpTune.Bench;

/// <summary>A 64-byte aligned native array filled with small random values (touching every page before timing).</summary>
internal sealed unsafe class NativeBuffer<T> : IDisposable where T : unmanaged
{
    public readonly T* Pointer;
    public readonly long Length;

    public NativeBuffer(long length, int seed, Func<float, T> fromFloat)
    {
        Length = length;
        Pointer = (T*)NativeMemory.AlignedAlloc((nuint)(length * sizeof(T)), 64);
        var rng = new Random(seed);
        var values = new T[4096];
        for (int i = 0; i < values.Length; i++) values[i] = fromFloat((float)(rng.NextDouble() - 0.5));
        for (long i = 0; i < length; i++) Pointer[i] = values[i & 4095];
    }

    public long Bytes => Length * sizeof(T);

    public void Dispose() => NativeMemory.AlignedFree(Pointer);
}
