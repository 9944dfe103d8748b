using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// Brings checkpoint tensors onto a backend, checking each name and shape against config.json. On the CPU, F32 and BF16
/// weights are used in place from the memory-mapped file (no copy); F16 is widened to F32; GPUs get uploads in their activation type.
/// Norm weights and biases are always float32.
/// </summary>
internal sealed class WeightLoader(Checkpoint checkpoint, IBackend backend, string modelDir) : IWeightSource
{
    public Tensor Matrix(string name, int rows, int cols) => Load(name, [rows, cols], keepLowPrecision: true);
    public Tensor Vector(string name, int length) => Load(name, [length], keepLowPrecision: false);

    unsafe Tensor Load(string name, int[] shape, bool keepLowPrecision)
    {
        if (!checkpoint.Contains(name)) throw new SharpTuneException($"{modelDir}: the checkpoint has no tensor '{name}'");
        var e = checkpoint.Entry(name);
        if (e.Shape.Length != shape.Length || e.Shape.Where((d, i) => d != shape[i]).Any())
            throw new SharpTuneException($"{checkpoint.FileOf(name).Path}: tensor '{name}' has shape [{string.Join(",", e.Shape)}], config.json implies [{string.Join(",", shape)}]");
        // Matrices keep their checkpoint type where the backend computes with it; GPUs hold them in their activation type
        // (bfloat16, or float32 in the checking mode). Vectors (norms, biases) are always float32.
        var target = !keepLowPrecision ? DType.F32
            : backend is CpuBackend ? (e.DType is DType.F32 or DType.BF16 ? e.DType : DType.F32)
            : backend.ActivationType;
        if (target == e.DType && backend is CpuBackend)
        {
            var file = checkpoint.FileOf(name);
            var storage = CpuStorage.Borrow(backend, (nint)file.DataPointer(e), e.ByteLength, file);
            return new Tensor(storage, e.DType, shape);
        }
        if (target == e.DType) return backend.FromHostBytes(checkpoint.Bytes(name), e.DType, shape);
        return backend.FromHost(checkpoint.ReadFloat32(name), target, shape);
    }
}

/// <summary>Where a model's weights come from: a checkpoint, or (benchmarks) random values made on the device.</summary>
internal interface IWeightSource
{
    Tensor Matrix(string name, int rows, int cols);
    Tensor Vector(string name, int length);
}
