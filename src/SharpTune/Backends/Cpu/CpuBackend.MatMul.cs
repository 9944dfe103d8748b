using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        int m = transA ? a.RowLength : a.Rows;
        int k = transA ? a.Rows : a.RowLength;
        int n = transB ? b.Rows : b.RowLength;
        int kb = transB ? b.RowLength : b.Rows;
        if (k != kb || c.Rows != m || c.RowLength != n)
            throw new ArgumentException($"matmul shapes: A{(transA ? "ᵀ" : "")} [{string.Join(",", a.Shape)}], B{(transB ? "ᵀ" : "")} [{string.Join(",", b.Shape)}], C [{string.Join(",", c.Shape)}]");
        float* ap = a.F32, cp = c.F32;
        int lda = a.RowLength, ldb = b.RowLength, ldc = c.RowLength;
        var bt = b.DType;
        void* bp = (void*)b.Address;
        // Reference loops; replaced by the blocked kernels of CpuMatMul.
        Parallel.For(0, m, i =>
        {
            var rowB = new float[k];
            var rowA = new float[k];
            for (int p = 0; p < k; p++) rowA[p] = transA ? ap[(long)p * lda + i] : ap[(long)i * lda + p];
            for (int j = 0; j < n; j++)
            {
                for (int p = 0; p < k; p++)
                {
                    long idx = transB ? (long)j * ldb + p : (long)p * ldb + j;
                    rowB[p] = bt switch
                    {
                        DType.F32 => ((float*)bp)[idx],
                        DType.BF16 => FloatConversions.BF16ToF32(((ushort*)bp)[idx]),
                        DType.F16 => (float)((Half*)bp)[idx],
                        _ => throw new NotSupportedException($"matmul with {bt} weights"),
                    };
                }
                float dot = alpha * TensorPrimitives.Dot(rowA, rowB);
                long ci = (long)i * ldc + j;
                cp[ci] = beta == 0f ? dot : dot + beta * cp[ci];
            }
        });
    }
}
