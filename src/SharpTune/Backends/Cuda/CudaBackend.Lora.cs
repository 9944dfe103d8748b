using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    const int LoraRowsPerBlock = 16, LoraThreads = 512, LoraBackThreads = 128, LoraBackRows = 32, LoraBackColumns = LoraBackThreads * 4;

    /// <summary>
    /// lora.cu's kernels, which take the branches of one input in launches of up to 4 (and at most 32 hidden columns) when
    /// all are bfloat16 of one rank (8, 16 or 32) and one dropout, and the input's row length is a multiple of 32; other
    /// operands go through <see cref="LoraDownReference"/>.
    /// </summary>
    public void LoraDownProject(Tensor x, ReadOnlySpan<LoraDownBranch> branches)
    {
        var operands = new (Tensor A, float Dropout, Tensor Hidden)[branches.Length];
        for (int i = 0; i < operands.Length; i++) operands[i] = (branches[i].A, branches[i].Dropout, branches[i].Hidden);
        if (!FusedLoraOperands(x, operands, out int rank, out int perLaunch))
        {
            LoraDownReference.Project(this, x, branches);
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
    /// writes or adds to dx once for all the branches of a launch).
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
            LoraDownReference.Backward(this, x, branches, dx, accumulateDx);
            return;
        }
        Own(dx);
        var (threshold, keep) = DropoutConstants(branches[0].Dropout);
        int k = x.RowLength;
        uint columnBlocks = (uint)((k + LoraBackColumns - 1) / LoraBackColumns), rowBlocks = (uint)((x.Rows + LoraBackRows - 1) / LoraBackRows);
        var trainable = new List<LoraDownGradient>(branches.Length);
        foreach (var b in branches)
            if (b.GradA != null) trainable.Add(b);
        // About two blocks per SM over all columns: each block's rows are as many as that allows, so its atomics are few.
        int rowChunks = (x.Rows + LoraBackRows - 1) / LoraBackRows;
        int chunksPerBlock = Math.Max(1, (int)Math.Ceiling(rowChunks / Math.Max(1.0, 2.0 * _multiprocessors / columnBlocks)));
        int rowsPerBlock = chunksPerBlock * LoraBackRows;
        uint gradRowBlocks = (uint)((x.Rows + rowsPerBlock - 1) / rowsPerBlock);
        for (int first = 0; first < trainable.Count; first += perLaunch)
        {
            var chunk = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(trainable).Slice(first, Math.Min(perLaunch, trainable.Count - first));
            Launch("lora", $"loraDownGradA{chunk.Length}x{rank}", columnBlocks, gradRowBlocks, LoraBackThreads, 0,
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
            Launch("lora", $"loraDownGradX{chunk.Length}x{rank}", columnBlocks, rowBlocks, LoraBackThreads, 0,
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
