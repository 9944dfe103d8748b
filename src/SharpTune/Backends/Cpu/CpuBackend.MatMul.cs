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
}
