using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    /// <summary>
    /// cuBLAS GemmEx with float32 accumulation. cuBLAS needs A and B of one type, so mixed operands are converted to a
    /// temporary first: to bfloat16 in the BF16 mode (the base weights are the large operands and stay as they are), to
    /// float32 in the checking mode. All-float32 products (LoRA and optimizer math) run in float32.
    /// </summary>
    public void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        Own(a);
        Own(b);
        Own(c);
        var (m, n, k) = MatMulShape.Of(a, transA, b, transB, c);
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (beta == 0f) Fill(c, 0f);
            else Scale(c, beta);
            return;
        }
        if (!transA && transB && b.DType == DType.BF16 && TryLinearRows(a, [new LinearOutput(b, null, c)], alpha, beta, null, 0f)) return;
        bool allF32 = a.DType == DType.F32 && b.DType == DType.F32;
        var operandType = allF32 || ActivationType == DType.F32 ? DType.F32 : DType.BF16;
        using var a2 = a.DType == operandType ? null : Converted(a, operandType);
        using var b2 = b.DType == operandType ? null : Converted(b, operandType);
        // With float32 operands cuBLAS writes float32 only; a bfloat16 C then goes through a float32 temporary.
        bool cFits = operandType == DType.BF16 || c.DType == DType.F32;
        using var c2 = cFits ? null : Converted(c, DType.F32, copyValues: beta != 0f);
        var ta = a2 ?? a;
        var tb = b2 ?? b;
        var tc = c2 ?? c;
        int type = operandType == DType.F32 ? Cublas.R32F : Cublas.R16BF;
        int cType = tc.DType == DType.F32 ? Cublas.R32F : Cublas.R16BF;
        _device.MakeCurrent();
        long started = ProfileStart();
        // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands, keep the transposes.
        Cublas.Check(Cublas.cublasGemmEx(_cublas, transB ? Cublas.OpT : Cublas.OpN, transA ? Cublas.OpT : Cublas.OpN, n, m, k, &alpha,
                                         tb.Address, type, tb.RowLength, ta.Address, type, ta.RowLength, &beta,
                                         tc.Address, cType, tc.RowLength, Cublas.Compute32F, Cublas.GemmDefault), "cublasGemmEx");
        if (_profile != null) ProfileEnd($"gemm {m}x{n}x{k} {(transA ? 'T' : 'N')}{(transB ? 'T' : 'N')} {operandType}->{tc.DType}", started);
        if (c2 != null) Copy(c2, c);
    }

    Tensor Converted(Tensor x, DType dtype, bool copyValues = true)
    {
        var t = Allocate(dtype, x.Shape);
        if (copyValues) Copy(x, t);
        return t;
    }
}
