using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Cuda;

/// <summary>
/// Kernels of the training step that the BF16 mode specialises, against the CPU on the same values. LoraProducts: every
/// product a LoRA branch makes with its rank ≤ 16 (lora.cu's kernels, chosen inside MatMul in the BF16 mode; cuBLAS in the
/// checking mode) at ranks on both kernel widths (5 pads to 8, 13 to 16), rows not a multiple of a block's rows, and a wide
/// side longer than one pass of a block's threads.
/// </summary>
public static class TrainingKernelChecks
{
    public static CudaCheckResult LoraProducts(IBackend gpu, double limit)
    {
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(17);
        const int rows = 300, wide = 2056;
        var act = gpu.ActivationType;
        double worst = 0;
        string worstCase = "";
        foreach (int rank in new[] { 8, 16, 5, 13 })
        {
            (string Name, int[] AShape, bool TransA, bool TransB, int[] BShape, DType CType, float Alpha, float Beta)[] products =
            [
                ("t = x·Aᵀ", [rows, wide], false, true, [rank, wide], act, 1f, 0f),
                ("dt = s·dy·B", [rows, wide], false, false, [wide, rank], act, 4f, 0f),
                ("dt += dy·B into float32", [rows, wide], false, false, [wide, rank], DType.F32, 1f, 1f),
                ("y += s·t·Bᵀ", [rows, rank], false, true, [wide, rank], act, 4f, 1f),
                ("dx = dt·A", [rows, rank], false, false, [rank, wide], act, 1f, 0f),
                ("dB += s·dyᵀ·t", [rows, wide], true, false, [rows, rank], DType.F32, 4f, 1f),
                ("dA += dtᵀ·x", [rows, rank], true, false, [rows, wide], DType.F32, 1f, 1f),
                ("dA = dtᵀ·x in activation precision", [rows, rank], true, false, [rows, wide], act, 1f, 0f),
            ];
            foreach (var (name, aShape, transA, transB, bShape, cType, alpha, beta) in products)
            {
                int cRows = transA ? aShape[1] : aShape[0], cols = transB ? bShape[0] : bShape[1];
                var (ag, ac) = Pair(gpu, cpu, random, act, aShape);
                var (bg, bc) = Pair(gpu, cpu, random, act, bShape);
                var (cg, cc) = Pair(gpu, cpu, random, cType, cRows, cols);
                gpu.MatMul(ag, transA, bg, transB, cg, alpha, beta);
                cpu.MatMul(ac, transA, bc, transB, cc, alpha, beta);
                double e = CudaChecks.RelativeError(Host(gpu, cg), Host(cpu, cc));
                if (e > worst || double.IsNaN(e)) (worst, worstCase) = (double.IsNaN(e) ? double.PositiveInfinity : e, $"{name} r={rank}");
                foreach (var t in new[] { ag, ac, bg, bc, cg, cc }) t.Dispose();
            }
        }
        return new($"LoRA products of rank <= 16 {gpu.ActivationType} vs CPU", worst, limit, $"worst: {worstCase}");
    }

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
