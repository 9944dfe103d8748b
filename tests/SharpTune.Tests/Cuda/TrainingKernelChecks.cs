using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Cuda;

/// <summary>Elementwise kernels of the training step that the BF16 mode runs 8 elements wide, against the CPU on the same values.</summary>
public static class TrainingKernelChecks
{
    /// <summary>
    /// SwiGLU and its backward against the CPU on the same values: activation-precision tensors of a whole number of 16-byte
    /// words (the BF16 mode's 8-wide kernels) and of a count that is not (the scalar kernels).
    /// </summary>
    public static CudaCheckResult SwiGlu(IBackend gpu, double limit)
    {
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(23);
        var act = gpu.ActivationType;
        double worst = 0;
        string worstCase = "";
        foreach (int count in new[] { 8 * 4099, 8 * 4099 + 3 })
        {
            var (gate, gateC) = Pair(gpu, cpu, random, act, count);
            var (up, upC) = Pair(gpu, cpu, random, act, count);
            var (dh, dhC) = Pair(gpu, cpu, random, act, count);
            Tensor h = gpu.Allocate(act, count), dGate = gpu.Allocate(act, count), dUp = gpu.Allocate(act, count);
            Tensor hC = cpu.Allocate(DType.F32, count), dGateC = cpu.Allocate(DType.F32, count), dUpC = cpu.Allocate(DType.F32, count);
            gpu.SwiGlu(gate, up, h);
            cpu.SwiGlu(gateC, upC, hC);
            gpu.SwiGluBackward(dh, gate, up, dGate, dUp);
            cpu.SwiGluBackward(dhC, gateC, upC, dGateC, dUpC);
            foreach (var (name, g, c) in new[] { ("h", h, hC), ("dGate", dGate, dGateC), ("dUp", dUp, dUpC) })
            {
                double e = CudaChecks.RelativeError(Host(gpu, g), Host(cpu, c));
                if (e > worst || double.IsNaN(e)) (worst, worstCase) = (double.IsNaN(e) ? double.PositiveInfinity : e, $"{name} of {count}");
            }
            foreach (var t in new[] { gate, gateC, up, upC, dh, dhC, h, dGate, dUp, hC, dGateC, dUpC }) t.Dispose();
        }
        return new($"SwiGLU forward and backward {gpu.ActivationType} vs CPU", worst, limit, $"worst: {worstCase}");
    }

    /// <summary>A tensor on each backend holding the same values as the GPU stores them (the CPU's in float32).</summary>
    static (Tensor Gpu, Tensor Cpu) Pair(IBackend gpu, IBackend cpu, Xoshiro256 random, DType dtype, params int[] shape)
    {
        var values = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        var g = gpu.FromHost(values, dtype, shape);
        return (g, cpu.FromHost(Host(gpu, g), DType.F32, shape));
    }

    static float[] Host(IBackend be, Tensor t)
    {
        var values = new float[t.Count];
        be.ToHost(t, values);
        return values;
    }
}
