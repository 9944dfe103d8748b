using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Cuda;

/// <summary>
/// The LoRA products of rank ≤ 16 (in the BF16 mode lora.cu's kernels, chosen inside MatMul; cuBLAS in the checking mode)
/// against the CPU's float32 product of the same values: every product a LoRA branch makes, at ranks on both kernel widths (5 pads to 8, 13 to
/// 16), rows not a multiple of a block's rows, and a wide side longer than one pass of a block's threads.
/// </summary>
public static class LoraProductChecks
{
    public static CudaCheckResult Run(IBackend gpu, double limit)
    {
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(17);
        const int rows = 300, wide = 2056;
        var act = gpu.ActivationType;
        double worst = 0;
        string worstCase = "";
        foreach (int rank in new[] { 8, 16, 5, 13 })
        {
            // (name, A shape, transB, B shape, C dtype, alpha, beta)
            (string Name, int[] AShape, bool TransB, int[] BShape, DType CType, float Alpha, float Beta)[] products =
            [
                ("t = x·Aᵀ", [rows, wide], true, [rank, wide], act, 1f, 0f),
                ("dt = s·dy·B", [rows, wide], false, [wide, rank], act, 4f, 0f),
                ("dt += dy·B into float32", [rows, wide], false, [wide, rank], DType.F32, 1f, 1f),
                ("y += s·t·Bᵀ", [rows, rank], true, [wide, rank], act, 4f, 1f),
                ("dx = dt·A", [rows, rank], false, [rank, wide], act, 1f, 0f),
            ];
            foreach (var (name, aShape, transB, bShape, cType, alpha, beta) in products)
            {
                int cols = transB ? bShape[0] : bShape[1];
                var (ag, ac) = Pair(gpu, cpu, random, act, aShape);
                var (bg, bc) = Pair(gpu, cpu, random, act, bShape);
                var (cg, cc) = Pair(gpu, cpu, random, cType, rows, cols);
                gpu.MatMul(ag, false, bg, transB, cg, alpha, beta);
                cpu.MatMul(ac, false, bc, transB, cc, alpha, beta);
                double e = CudaChecks.RelativeError(Host(gpu, cg), Host(cpu, cc));
                if (e > worst || double.IsNaN(e)) (worst, worstCase) = (double.IsNaN(e) ? double.PositiveInfinity : e, $"{name} r={rank}");
                foreach (var t in new[] { ag, ac, bg, bc, cg, cc }) t.Dispose();
            }
        }
        return new($"LoRA products of rank <= 16 {gpu.ActivationType} vs CPU", worst, limit, $"worst: {worstCase}");
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
