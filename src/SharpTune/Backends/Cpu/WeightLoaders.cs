using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// Reads matrix elements stored as <typeparamref name="T"/> as float32. The kernels are generic over a loader struct so the
/// JIT compiles one specialised copy per storage type (float32, bfloat16) with the widening inlined.
/// </summary>
internal unsafe interface IElementLoader<T> where T : unmanaged
{
    static abstract float Scalar(T* p);

    /// <summary>Eight consecutive elements; only called when AVX2 is available.</summary>
    static abstract Vector256<float> Load8(T* p);
}

internal unsafe struct F32Loader : IElementLoader<float>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scalar(float* p) => *p;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(float* p) => Avx.LoadVector256(p);
}

/// <summary>bfloat16 is the top half of a float32, so widening is a zero-extend and a 16-bit shift.</summary>
internal unsafe struct BF16Loader : IElementLoader<ushort>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Scalar(ushort* p) => BitConverter.Int32BitsToSingle(*p << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(ushort* p) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(Sse2.LoadVector128(p)), 16).AsSingle();
}
