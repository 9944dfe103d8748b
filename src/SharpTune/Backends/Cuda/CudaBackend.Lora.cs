using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    const int LoraRowsPerBlock = 16, LoraThreads = 512, LoraContractThreads = 128;

    /// <summary>
    /// lora.cu's kernels, which take the branches of one input in launches of up to 4 (and at most 32 hidden columns) when
    /// all are bfloat16 of one rank (8, 16 or 32) and one dropout, and the input's row length is a multiple of 32; other
    /// operands go through <see cref="LoraReference"/>.
    /// </summary>
    public void LoraDownProject(Tensor x, ReadOnlySpan<LoraDownBranch> branches)
    {
        var operands = new (Tensor A, float Dropout, Tensor Hidden)[branches.Length];
        for (int i = 0; i < operands.Length; i++) operands[i] = (branches[i].A, branches[i].Dropout, branches[i].Hidden);
        if (!FusedLoraOperands(x, operands, out int rank, out int perLaunch))
        {
            LoraReference.DownProject(this, x, branches);
            return;
        }
        var (threshold, keep) = DropoutConstants(branches[0].Dropout);
        int k = x.RowLength;
        for (int first = 0; first < branches.Length; first += perLaunch)
        {
            var chunk = branches.Slice(first, Math.Min(perLaunch, branches.Length - first));
            Launch("lora", $"loraDown{chunk.Length}x{rank}", (uint)((x.Rows + LoraRowsPerBlock - 1) / LoraRowsPerBlock), LoraThreads, 0,
                   x.Address, x.Rows, k, (int)threshold, keep,
                   Address(chunk, 0, b => b.A), Address(chunk, 1, b => b.A), Address(chunk, 2, b => b.A), Address(chunk, 3, b => b.A),
                   Seed(chunk, 0, b => b.Seed), Seed(chunk, 1, b => b.Seed), Seed(chunk, 2, b => b.Seed), Seed(chunk, 3, b => b.Seed),
                   Address(chunk, 0, b => b.Hidden), Address(chunk, 1, b => b.Hidden), Address(chunk, 2, b => b.Hidden), Address(chunk, 3, b => b.Hidden));
        }
    }

    /// <summary>
    /// The gradients of A (lora.cu's loraDownGradA, over the branches whose A is trainable) and of x (loraDownGradX, which
    /// writes or adds to dx once for all the branches of a launch), both on tensor cores.
    /// </summary>
    public void LoraDownBackward(Tensor x, ReadOnlySpan<LoraDownGradient> branches, Tensor dx, bool accumulateDx)
    {
        var operands = new (Tensor A, float Dropout, Tensor Hidden)[branches.Length];
        for (int i = 0; i < operands.Length; i++) operands[i] = (branches[i].A, branches[i].Dropout, branches[i].HiddenGradient);
        bool fused = FusedLoraOperands(x, operands, out int rank, out int perLaunch)
                     && dx.DType == DType.BF16 && dx.Count == x.Count && Aligned(dx);
        foreach (var b in branches) fused &= b.GradA == null || (b.GradA.DType == DType.F32 && b.GradA.Count == b.A.Count);
        if (!fused)
        {
            LoraReference.DownBackward(this, x, branches, dx, accumulateDx);
            return;
        }
        Own(dx);
        var (threshold, keep) = DropoutConstants(branches[0].Dropout);
        int k = x.RowLength;
        var trainable = new List<LoraDownGradient>(branches.Length);
        foreach (var b in branches)
            if (b.GradA != null) trainable.Add(b);
        var (gradBlocks, rowsPerBlock, gradRowBlocks) = ContractGrid(x.Rows, k, 32);
        for (int first = 0; first < trainable.Count; first += perLaunch)
        {
            var chunk = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(trainable).Slice(first, Math.Min(perLaunch, trainable.Count - first));
            Launch("lora", $"loraDownGradA{chunk.Length}x{rank}", gradBlocks, gradRowBlocks, LoraContractThreads, 0,
                   x.Address, x.Rows, k, rowsPerBlock, (int)threshold, keep,
                   Seed(chunk, 0, b => b.Seed), Seed(chunk, 1, b => b.Seed), Seed(chunk, 2, b => b.Seed), Seed(chunk, 3, b => b.Seed),
                   Address(chunk, 0, b => b.HiddenGradient), Address(chunk, 1, b => b.HiddenGradient),
                   Address(chunk, 2, b => b.HiddenGradient), Address(chunk, 3, b => b.HiddenGradient),
                   Address(chunk, 0, b => b.GradA!), Address(chunk, 1, b => b.GradA!), Address(chunk, 2, b => b.GradA!), Address(chunk, 3, b => b.GradA!));
        }
        bool dxHolds = accumulateDx;
        for (int first = 0; first < branches.Length; first += perLaunch)
        {
            var chunk = branches.Slice(first, Math.Min(perLaunch, branches.Length - first));
            Launch("lora", $"loraDownGradX{chunk.Length}x{rank}", ExpandBlocks(k), ExpandRowBlocks(x.Rows), LoraContractThreads, 0,
                   x.Rows, k, (int)threshold, keep,
                   Address(chunk, 0, b => b.A), Address(chunk, 1, b => b.A), Address(chunk, 2, b => b.A), Address(chunk, 3, b => b.A),
                   Seed(chunk, 0, b => b.Seed), Seed(chunk, 1, b => b.Seed), Seed(chunk, 2, b => b.Seed), Seed(chunk, 3, b => b.Seed),
                   Address(chunk, 0, b => b.HiddenGradient), Address(chunk, 1, b => b.HiddenGradient),
                   Address(chunk, 2, b => b.HiddenGradient), Address(chunk, 3, b => b.HiddenGradient),
                   dx.Address, dxHolds ? 1 : 0);
            dxHolds = true;
        }
    }

    /// <summary>
    /// lora.cu's loraUp{r} for a bfloat16 hidden [rows, r] of rank 8, 16 or 32, B [out, r] and y [rows, out] with out a
    /// multiple of 32 and beta 0 or 1; other operands go through <see cref="LoraReference"/>.
    /// </summary>
    public void LoraUpProject(Tensor hidden, Tensor b, float scale, Tensor y, float beta)
    {
        if (!FusedUpOperands(hidden, b, y) || beta is not (0f or 1f))
        {
            LoraReference.UpProject(this, hidden, b, scale, y, beta);
            return;
        }
        Launch("lora", $"loraUp{hidden.RowLength}", ExpandBlocks(y.RowLength), ExpandRowBlocks(y.Rows), LoraContractThreads, 0,
               y.Rows, y.RowLength, scale, hidden.Address, b.Address, y.Address, beta == 1f ? 1 : 0);
    }

    /// <summary>
    /// lora.cu's loraUpBackward{r}, which reads dy once for dB and for float32 partial sums of dt over column blocks, then
    /// loraHiddenReduce; the operands <see cref="LoraUpProject"/> takes, with dB float32 [out, r] (a frozen B still needs dt:
    /// its sums go to a scratch that is dropped).
    /// </summary>
    public void LoraUpBackward(Tensor dy, Tensor hidden, Tensor b, float scale, Tensor hiddenGradient, Tensor? gradB)
    {
        bool fused = FusedUpOperands(hidden, b, dy) && hiddenGradient.DType == DType.BF16 && hiddenGradient.Count == hidden.Count
                     && (gradB == null || (gradB.DType == DType.F32 && gradB.Count == b.Count));
        if (!fused)
        {
            LoraReference.UpBackward(this, dy, hidden, b, scale, hiddenGradient, gradB);
            return;
        }
        Own(hiddenGradient);
        int rank = hidden.RowLength, rows = dy.Rows, cols = dy.RowLength;
        var (blocks, rowsPerBlock, rowBlocks) = ContractGrid(rows, cols, 32 * (32 / rank));
        using var partial = Allocate(DType.F32, (int)blocks, rows * rank);
        using var frozen = gradB == null ? Allocate(DType.F32, b.Shape) : null;
        Launch("lora", $"loraUpBackward{rank}", blocks, rowBlocks, LoraContractThreads, 0,
               dy.Address, rows, cols, rowsPerBlock, scale, hidden.Address, b.Address, (gradB ?? frozen!).Address, partial.Address);
        int count = rows * rank;
        Launch("lora", "loraHiddenReduce", (uint)Math.Min((count + 255) / 256, _multiprocessors * 4), 256, 0,
               partial.Address, (int)blocks, count, scale, hiddenGradient.Address);
    }

    /// <summary>True when lora.cu's up kernels take these operands (<see cref="LoraUpProject"/>); wide is y or dy.</summary>
    internal bool FusedUpOperands(Tensor hidden, Tensor b, Tensor wide)
    {
        Own(hidden);
        Own(b);
        Own(wide);
        int rank = hidden.RowLength;
        return rank is 8 or 16 or 32 && hidden.DType == DType.BF16 && b.DType == DType.BF16 && wide.DType == DType.BF16
               && b.Rows == wide.RowLength && b.RowLength == rank && hidden.Rows == wide.Rows
               && hidden.Count == (long)hidden.Rows * rank && wide.Count == (long)wide.Rows * wide.RowLength
               && wide.RowLength % 32 == 0 && Aligned(wide) && Aligned(hidden) && Aligned(b);
    }

    /// <summary>
    /// loraContract's grid for [rows, cols]: a block per strip of <paramref name="width"/> columns and row range; the rows
    /// are split (in multiples of a block's 64) only as far as about 4 blocks per SM need, since each range adds a set of
    /// atomics.
    /// </summary>
    (uint Blocks, int RowsPerBlock, uint RowBlocks) ContractGrid(int rows, int cols, int width)
    {
        int strips = (cols + width - 1) / width, rowTiles = (rows + 63) / 64;
        int splits = Math.Clamp((4 * _multiprocessors + strips - 1) / strips, 1, Math.Max(1, rowTiles));
        int rowsPerBlock = (rowTiles + splits - 1) / splits * 64;
        return ((uint)strips, rowsPerBlock, (uint)((rows + rowsPerBlock - 1) / rowsPerBlock));
    }

    // loraExpand: 4 warps of 32 columns over 64 rows per block.
    static uint ExpandBlocks(int cols) => (uint)((cols + 127) / 128);
    static uint ExpandRowBlocks(int rows) => (uint)((rows + 63) / 64);

    /// <summary>
    /// True when lora.cu takes these operands: x bfloat16 and 16-byte aligned with rows of a multiple of 32 values; every
    /// branch's A a bfloat16 [rank, k] and its hidden (or hidden gradient) a bfloat16 [rows, rank], one rank of 8, 16 or 32
    /// and one dropout for all. <paramref name="perLaunch"/> is how many branches one launch takes (32 hidden columns).
    /// </summary>
    internal bool FusedLoraOperands(Tensor x, (Tensor A, float Dropout, Tensor Hidden)[] branches, out int rank, out int perLaunch)
    {
        rank = perLaunch = 0;
        if (branches.Length == 0 || x.DType != DType.BF16 || !Aligned(x) || x.RowLength % 32 != 0 || x.Count != (long)x.Rows * x.RowLength) return false;
        Own(x);
        var (firstA, dropout, _) = branches[0];
        rank = firstA.Rows;
        if (rank is not (8 or 16 or 32)) return false;
        foreach (var (a, p, hidden) in branches)
        {
            Own(a);
            Own(hidden);
            if (a.DType != DType.BF16 || a.Rows != rank || a.RowLength != x.RowLength || !Aligned(a) || p != dropout
                || hidden.DType != DType.BF16 || hidden.Rows != x.Rows || hidden.RowLength != rank) return false;
        }
        perLaunch = 32 / rank;
        return true;
    }

    /// <summary>The dropout's integer threshold (<see cref="CounterRandom.DropThreshold"/>) and the 1/(1-p) of the kept values.</summary>
    static (uint Threshold, float Keep) DropoutConstants(float p) => p > 0f ? (CounterRandom.DropThreshold(p), 1f / (1f - p)) : (0u, 1f);

    static nint Address<T>(ReadOnlySpan<T> chunk, int i, Func<T, Tensor> tensor) => i < chunk.Length ? tensor(chunk[i]).Address : 0;

    static ulong Seed<T>(ReadOnlySpan<T> chunk, int i, Func<T, ulong> seed) => i < chunk.Length ? seed(chunk[i]) : 0;
}
