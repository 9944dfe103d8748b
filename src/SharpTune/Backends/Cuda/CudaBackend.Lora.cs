using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    /// <summary>The largest rank lora.cu's kernels take (the thin side of a product).</summary>
    const int ThinRank = 16;
    // lora.cu's WIDE_ROWS, THIN_THREADS, GRAD_ROWS and GRAD_THREADS; a gradient block covers 256 columns.
    const int WideRows = 16, WideThreads = 256, ThinThreads = 128, GradRows = 128, GradThreads = 256, GradColumns = 256;

    /// <summary>
    /// The LoRA products of the BF16 mode (bfloat16 operands) whose k, n or m is a rank ≤ 16, on lora.cu's memory-bound
    /// kernels instead of cuBLAS, which spends several times the time it takes to read the wide operand once. False when the
    /// shape, the types or the alignment do not fit them.
    /// </summary>
    bool TryThinMatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int m, int n, int k, float alpha, float beta)
    {
        if (ActivationType != DType.BF16 || a.DType != DType.BF16 || b.DType != DType.BF16 || !IsFloat(c) || !Aligned(a) || !Aligned(b)
            || !Aligned(c))
            return false;
        if (transA)
        {
            // Σ over rows of a wide [k, w] against a thin [k, r]: dB = s·dyᵀ·t (C [w, r]) or dA = dtᵀ·dropout(x) (C [r, w]).
            if (transB) return false;
            if (m <= ThinRank && n % 8 == 0) ThinGradient(wide: b, thin: a, c, rows: k, w: n, r: m, wideMajor: false, alpha, beta);
            else if (n <= ThinRank && m % 8 == 0) ThinGradient(wide: a, thin: b, c, rows: k, w: m, r: n, wideMajor: true, alpha, beta);
            else return false;
            return true;
        }
        if (k <= ThinRank && n % 8 == 0 && c.DType == DType.BF16)
        {
            // y += s·t·Bᵀ, dx = dt·A: a wide C from a thin A.
            int threads = Math.Min(WideThreads, (n / 8 + 31) / 32 * 32);
            uint columnBlocks = (uint)((n / 8 + threads - 1) / threads), rowBlocks = (uint)((m + WideRows - 1) / WideRows);
            Launch("lora", k <= 8 ? "wideFromThin8" : "wideFromThin16", columnBlocks, rowBlocks, (uint)threads, 0,
                   a.Address, b.Address, transB ? 1 : 0, c.Address, m, n, k, alpha, beta);
            return true;
        }
        if (n <= ThinRank && k % 8 == 0)
        {
            // t = x·Aᵀ, dt = s·dy·B: a thin C from a wide A.
            int rowsPerBlock = n <= 8 ? 8 : 4;
            Launch("lora", n <= 8 ? "thinFromWide8" : "thinFromWide16", (uint)((m + rowsPerBlock - 1) / rowsPerBlock), ThinThreads, 0,
                   a.Address, b.Address, transB ? 1 : 0, c.Address, Code(c), m, n, k, alpha, beta);
            return true;
        }
        return false;
    }

    void ThinGradient(Tensor wide, Tensor thin, Tensor c, int rows, int w, int r, bool wideMajor, float alpha, float beta)
    {
        int splits = (rows + GradRows - 1) / GradRows;
        using var partial = Allocate(DType.F32, splits, w * r);
        Launch("lora", r <= 8 ? "thinGradient8" : "thinGradient16", (uint)((w + GradColumns - 1) / GradColumns), (uint)splits, GradThreads, 0,
               wide.Address, thin.Address, partial.Address, rows, w, r);
        long count = (long)w * r;
        Launch("lora", "thinGradientSum", (uint)Math.Min((count + 255) / 256, (long)_multiprocessors * 32), 256, 0,
               partial.Address, splits, c.Address, Code(c), w, r, wideMajor ? 1 : 0, alpha, beta);
    }
}
