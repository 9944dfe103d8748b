using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SharpTune.Tensors;

/// <summary>Widening and narrowing between float32 and the 16-bit storage types.</summary>
public static class FloatConversions
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float BF16ToF32(ushort b) => BitConverter.Int32BitsToSingle(b << 16);

    /// <summary>Round to nearest even, as torch does; NaN stays NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort F32ToBF16(float f)
    {
        uint bits = BitConverter.SingleToUInt32Bits(f);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    public static void BF16ToF32(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException("destination too short");
        var dstBits = MemoryMarshal.Cast<float, uint>(dst);
        for (int i = 0; i < src.Length; i++) dstBits[i] = (uint)src[i] << 16;
    }

    public static void F32ToBF16(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = F32ToBF16(src[i]);
    }

    public static void F16ToF32(ReadOnlySpan<Half> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = (float)src[i];
    }

    public static void F32ToF16(ReadOnlySpan<float> src, Span<Half> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = (Half)src[i];
    }

    /// <summary>Widens raw little-endian bytes of a floating-point type into float32.</summary>
    public static void ToF32(DType type, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (type)
        {
            case DType.F32: MemoryMarshal.Cast<byte, float>(src).CopyTo(dst); break;
            case DType.BF16: BF16ToF32(MemoryMarshal.Cast<byte, ushort>(src), dst); break;
            case DType.F16: F16ToF32(MemoryMarshal.Cast<byte, Half>(src), dst); break;
            case DType.F64:
                var d = MemoryMarshal.Cast<byte, double>(src);
                for (int i = 0; i < d.Length; i++) dst[i] = (float)d[i];
                break;
            default: throw new SharpTuneException($"cannot convert {type} to float32");
        }
    }

    /// <summary>Narrows float32 into raw little-endian bytes of a floating-point type.</summary>
    public static void FromF32(DType type, ReadOnlySpan<float> src, Span<byte> dst)
    {
        switch (type)
        {
            case DType.F32: MemoryMarshal.AsBytes(src).CopyTo(dst); break;
            case DType.BF16: F32ToBF16(src, MemoryMarshal.Cast<byte, ushort>(dst)); break;
            case DType.F16: F32ToF16(src, MemoryMarshal.Cast<byte, Half>(dst)); break;
            default: throw new SharpTuneException($"cannot convert float32 to {type}");
        }
    }
}
