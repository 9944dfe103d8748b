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
    readonly Dictionary<Tensor, Tensor> _operands = new(ReferenceEqualityComparer.Instance);

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
        foreach (var t in _operands.Values) t.Dispose();
        _operands.Clear();
        _hidden.Clear();
        foreach (var n in _norms.Values) n.Dispose();
        _norms.Clear();
    }
}

