using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// The CPU engine: float32 compute with SIMD (System.Numerics.Tensors and AVX2 intrinsics) and a blocked, multithreaded
/// matrix multiply. Weights may stay BF16 (widened on the fly in the matrix multiply); F16 weights are widened at load.
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    public static readonly CpuBackend Instance = new();

    public string Name => "cpu";
    public bool IsHost => true;
    public DType ActivationType => DType.F32;

    public Tensor Allocate(DType dtype, params int[] shape) => New(dtype, shape, zero: false);
    public Tensor Zeros(DType dtype, params int[] shape) => New(dtype, shape, zero: true);

    Tensor New(DType dtype, int[] shape, bool zero)
    {
        long count = 1;
        foreach (var d in shape) count *= d;
        return new Tensor(CpuStorage.Allocate(this, count * dtype.SizeInBytes(), zero), dtype, shape);
    }

    public Tensor FromHost(ReadOnlySpan<float> values, DType dtype, params int[] shape)
    {
        var t = Allocate(dtype, shape);
        if (values.Length != t.Count) throw new ArgumentException($"{values.Length} values for shape [{string.Join(",", shape)}]");
        FloatConversions.FromF32(dtype, values, Bytes(t));
        return t;
    }

    public Tensor FromHostBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape)
    {
        var t = Allocate(dtype, shape);
        if (bytes.Length != t.ByteLength) throw new ArgumentException($"{bytes.Length} bytes for {dtype} shape [{string.Join(",", shape)}]");
        bytes.CopyTo(Bytes(t));
        return t;
    }

    public Tensor FromHost(ReadOnlySpan<int> values, params int[] shape)
    {
        var t = Allocate(DType.I32, shape);
        values.CopyTo(t.AsIntSpan());
        return t;
    }

    public void ToHost(Tensor source, Span<float> destination) => FloatConversions.ToF32(source.DType, Bytes(source), destination);

    public void Copy(Tensor source, Tensor destination)
    {
        if (source.Count != destination.Count) throw new ArgumentException("copy between tensors of different sizes");
        if (source.DType == destination.DType) Bytes(source).CopyTo(Bytes(destination));
        else if (destination.DType == DType.F32) FloatConversions.ToF32(source.DType, Bytes(source), destination.AsSpan());
        else if (source.DType == DType.F32) FloatConversions.FromF32(destination.DType, source.AsSpan(), Bytes(destination));
        else throw new NotSupportedException($"copy {source.DType} -> {destination.DType}");
    }

    /// <summary>In fixed chunks on all threads (zeroing the gradients of a full model is gigabytes).</summary>
    public void Fill(Tensor tensor, float value) =>
        ParallelRunner.Default.For(Chunks(tensor.Count), (tensor, value), static (s, c) =>
        {
            long start = (long)c * ElementwiseChunk;
            new Span<float>(s.tensor.F32 + start, (int)Math.Min(ElementwiseChunk, s.tensor.Count - start)).Fill(s.value);
        });

    static Span<byte> Bytes(Tensor t) => new((void*)t.Address, checked((int)t.ByteLength));

    /// <summary>Elementwise in fixed chunks on all threads (same result for any split).</summary>
    public void AddScaled(Tensor x, float alpha, Tensor y) =>
        ParallelRunner.Default.For(Chunks(y.Count), (x, alpha, y), static (s, c) =>
        {
            long start = (long)c * ElementwiseChunk;
            int n = (int)Math.Min(ElementwiseChunk, s.y.Count - start);
            var ys = new Span<float>(s.y.F32 + start, n);
            var xs = new ReadOnlySpan<float>(s.x.F32 + start, n);
            if (s.alpha == 1f) TensorPrimitives.Add(ys, xs, ys);
            else TensorPrimitives.MultiplyAdd(xs, s.alpha, ys, ys);
        });

    public void Scale(Tensor x, float alpha)
    {
        var s = x.AsSpan();
        TensorPrimitives.Multiply(s, alpha, s);
    }

    public double SumOfSquares(Tensor x)
    {
        var s = x.AsSpan();
        double total = 0;
        // Blocks of float32 partial sums keep the SIMD speed and the float64 total keeps large norms exact enough.
        for (int i = 0; i < s.Length; i += 4096)
        {
            var block = s.Slice(i, Math.Min(4096, s.Length - i));
            total += TensorPrimitives.SumOfSquares(block);
        }
        return total;
    }

    public void Dispose() { }
}
