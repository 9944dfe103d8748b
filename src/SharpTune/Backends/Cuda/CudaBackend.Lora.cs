using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    /// <summary>The largest rank lora.cu's kernels take (the thin side of a product).</summary>
    const int ThinRank = 16;
    const int WideRows = 16, WideThreads = 256, ThinThreads = 128;

    /// <summary>
    /// The LoRA products of the BF16 mode (all operands bfloat16, no transposed A) whose k or n is a rank ≤ 16, on lora.cu's
    /// memory-bound kernels instead of cuBLAS, which spends several times the time it takes to read the wide operand once.
    /// False when the shape or the alignment does not fit them.
    /// </summary>
    bool TryThinMatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int m, int n, int k, float alpha, float beta)
    {
        if (ActivationType != DType.BF16 || transA || a.DType != DType.BF16 || b.DType != DType.BF16 || !Aligned(a) || !Aligned(b) || !Aligned(c))
            return false;
        if (k <= ThinRank && n % 8 == 0 && c.DType == DType.BF16)
        {
            int threads = Math.Min(WideThreads, (n / 8 + 31) / 32 * 32);
            uint columnBlocks = (uint)((n / 8 + threads - 1) / threads), rowBlocks = (uint)((m + WideRows - 1) / WideRows);
            Launch("lora", k <= 8 ? "wideFromThin8" : "wideFromThin16", columnBlocks, rowBlocks, (uint)threads, 0,
                   a.Address, b.Address, transB ? 1 : 0, c.Address, m, n, k, alpha, beta);
            return true;
        }
        if (n <= ThinRank && k % 8 == 0 && IsFloat(c))
        {
            int rowsPerBlock = n <= 8 ? 8 : 4;
            Launch("lora", n <= 8 ? "thinFromWide8" : "thinFromWide16", (uint)((m + rowsPerBlock - 1) / rowsPerBlock), ThinThreads, 0,
                   a.Address, b.Address, transB ? 1 : 0, c.Address, Code(c), m, n, k, alpha, beta);
            return true;
        }
        return false;
    }
}
