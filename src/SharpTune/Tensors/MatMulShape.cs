namespace SharpTune.Tensors;

/// <summary>The sizes of C = op(A)·op(B) for 2-D tensors, checked once for every backend's MatMul.</summary>
public readonly record struct MatMulShape(int M, int N, int K)
{
    public static MatMulShape Of(Tensor a, bool transA, Tensor b, bool transB, Tensor c)
    {
        int m = transA ? a.RowLength : a.Rows;
        int k = transA ? a.Rows : a.RowLength;
        int n = transB ? b.Rows : b.RowLength;
        int kb = transB ? b.RowLength : b.Rows;
        if (k != kb || c.Rows != m || c.RowLength != n)
            throw new ArgumentException($"matmul shapes: A{(transA ? "ᵀ" : "")} [{string.Join(",", a.Shape)}], B{(transB ? "ᵀ" : "")} [{string.Join(",", b.Shape)}], C [{string.Join(",", c.Shape)}]");
        return new MatMulShape(m, n, k);
    }
}
