using SharpTune.Adapters;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// What a training pass keeps for the LoRA branches of one layer: each branch's low-rank hidden t = dropout(x)·Aᵀ (and a DoRA
/// branch's row norms), and the dropout seed, from which the mask is regenerated in backward (recomputation gives the same mask).
/// </summary>
public sealed class LoraPass(ulong seed) : IDisposable
{
    readonly Dictionary<LoraBranch, Tensor> _hidden = new(ReferenceEqualityComparer.Instance);
    readonly Dictionary<LoraBranch, Tensor> _norms = new(ReferenceEqualityComparer.Instance);
    readonly Dictionary<(ScratchUse, int, int), Tensor> _scratch = [];
    readonly Dictionary<Tensor, Tensor> _operands = new(ReferenceEqualityComparer.Instance);
    readonly Dictionary<LoraBranch, Tensor> _keptInputs = new(ReferenceEqualityComparer.Instance);

    public ulong Seed { get; set; } = seed;

    /// <summary>A branch's hidden [rows, r]: in activation precision for LoRA (as PEFT under autocast), float32 for DoRA's norms.</summary>
    public Tensor Hidden(IBackend be, LoraBranch branch, int rows, DType dtype)
    {
        if (_hidden.TryGetValue(branch, out var t) && t.Rows == rows && t.DType == dtype) return t;
        t?.Dispose();
        t = be.Allocate(dtype, rows, branch.Rank);
        _hidden[branch] = t;
        return t;
    }

    /// <summary>A DoRA branch's row norms ‖W + s·B·A‖ [out], written by its forward and read by its backward.</summary>
    public Tensor DoraNorms(IBackend be, LoraBranch branch)
    {
        if (_norms.TryGetValue(branch, out var n)) return n;
        n = be.Allocate(DType.F32, branch.B.Rows);
        _norms[branch] = n;
        return n;
    }

    /// <summary>
    /// A reusable buffer [rows, cols] for one use inside a single linear layer's forward or backward (its contents do not
    /// outlive the call), so the branches of every layer share a few allocations per pass. Buffers are in activation precision:
    /// in the BF16 mode the LoRA products then take bfloat16 operands and only the small A and B are converted (PEFT's autocast).
    /// </summary>
    public Tensor Scratch(IBackend be, ScratchUse use, int rows, int cols)
    {
        if (!_scratch.TryGetValue((use, rows, cols), out var t)) _scratch[(use, rows, cols)] = t = be.Allocate(be.ActivationType, rows, cols);
        return t;
    }

    /// <summary>
    /// True during a forward whose layer backward comes next (no checkpointing, or a checkpoint's recomputation): the branches
    /// then keep their dropped-out inputs for the backward instead of regenerating the masks there.
    /// </summary>
    public bool KeepDroppedInputs { get; set; }

    /// <summary>Where a branch's forward writes dropout(x): a kept tensor when <see cref="KeepDroppedInputs"/>, else a scratch buffer.</summary>
    public Tensor DroppedInput(IBackend be, LoraBranch branch, int rows, int cols)
    {
        if (!KeepDroppedInputs) return Scratch(be, ScratchUse.DroppedInput, rows, cols);
        if (_keptInputs.Remove(branch, out var stale)) stale.Dispose();
        var kept = be.Allocate(be.ActivationType, rows, cols);
        _keptInputs[branch] = kept;
        return kept;
    }

    /// <summary>The dropped-out input the branch's forward kept, handed to the caller to dispose; null when none was kept.</summary>
    public Tensor? TakeDroppedInput(LoraBranch branch) => _keptInputs.Remove(branch, out var kept) ? kept : null;

    /// <summary>
    /// A LoRA matrix (float32) as the products take it: itself when activations are float32, else a copy in activation
    /// precision made once per pass (the matrices change only between passes), instead of a conversion at every product
    /// of the forward, the recomputed forward and the backward.
    /// </summary>
    public Tensor Operand(IBackend be, Tensor matrix)
    {
        if (matrix.DType == be.ActivationType) return matrix;
        if (_operands.TryGetValue(matrix, out var copy)) return copy;
        copy = be.Allocate(be.ActivationType, matrix.Shape);
        be.Copy(matrix, copy);
        _operands[matrix] = copy;
        return copy;
    }

    /// <summary>A distinct dropout stream per branch (and per call site through <see cref="Seed"/>).</summary>
    public ulong SeedFor(LoraBranch branch) => CounterRandom.Hash(Seed, branch.StreamId);

    public void Dispose()
    {
        foreach (var t in _hidden.Values) t.Dispose();
        foreach (var t in _scratch.Values) t.Dispose();
        foreach (var t in _operands.Values) t.Dispose();
        _operands.Clear();
        foreach (var t in _keptInputs.Values) t.Dispose();
        _keptInputs.Clear();
        _hidden.Clear();
        foreach (var n in _norms.Values) n.Dispose();
        _norms.Clear();
        _scratch.Clear();
    }
}

/// <summary>What a <see cref="LoraPass.Scratch"/> buffer holds: the dropped-out input, or the gradient of a branch's hidden.</summary>
public enum ScratchUse { DroppedInput, HiddenGradient }
