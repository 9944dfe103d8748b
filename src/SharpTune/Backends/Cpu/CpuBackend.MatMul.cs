using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        var (m, n, k) = MatMulShape.Of(a, transA, b, transB, c);
        switch (b.DType)
        {
            case DType.F32:
                CpuMatMul.Gemm(transA, transB, m, n, k, alpha, a.F32, a.RowLength, b.F32, b.RowLength, beta, c.F32, c.RowLength);
                break;
            case DType.BF16:
                CpuMatMul.GemmBF16B(transA, transB, m, n, k, alpha, a.F32, a.RowLength, (ushort*)b.Address, b.RowLength, beta, c.F32, c.RowLength);
                break;
            default:
                throw new NotSupportedException($"matmul with {b.DType} weights (F16 weights are widened at load)");
        }
    }

    /// <summary>W in <see cref="CpuPanelBatch"/>'s panel layout (a copy as large as W), or null for other dtypes.</summary>
    public Tensor? PackForFewRows(Tensor weight)
    {
        if (weight.DType is not (DType.F32 or DType.BF16) || weight.Rank != 2) return null;
        int n = weight.Rows, k = weight.RowLength;
        var packed = Allocate(weight.DType, (n + GemmKernel.NR - 1) / GemmKernel.NR, GemmKernel.NR * k);
        if (weight.DType == DType.F32) CpuPanelBatch.Pack(n, k, weight.F32, k, packed.F32, ParallelRunner.Default);
        else CpuPanelBatch.Pack(n, k, (ushort*)weight.Address, k, (ushort*)packed.Address, ParallelRunner.Default);
        return packed;
    }

    public void MatMulPacked(Tensor x, Tensor weight, Tensor packed, Tensor y)
    {
        var (m, n, k) = MatMulShape.Of(x, false, weight, true, y);
        if (m < CpuPanelBatch.MinRows || m > CpuPanelBatch.MaxRows || packed.DType != weight.DType)
        {
            MatMul(x, false, weight, true, y);
            return;
        }
        if (weight.DType == DType.F32)
            CpuPanelBatch.RowsTimesPanels<float, F32Loader>(m, n, k, x.F32, x.RowLength, packed.F32, y.F32, y.RowLength, ParallelRunner.Default);
        else
            CpuPanelBatch.RowsTimesPanels<ushort, BF16Loader>(m, n, k, x.F32, x.RowLength, (ushort*)packed.Address, y.F32, y.RowLength, ParallelRunner.Default);
    }
}
