using SharpTune.Adapters;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// What a training pass keeps for the LoRA branches of one layer: each branch's low-rank hidden t = dropout(x)·Aᵀ, and the
/// dropout seed, from which the mask is regenerated in backward (recomputation gives the same mask).
/// </summary>
public sealed class LoraPass(ulong seed) : IDisposable
{
    readonly Dictionary<LoraBranch, Tensor> _hidden = new(ReferenceEqualityComparer.Instance);

    public ulong Seed { get; set; } = seed;

    public Tensor Hidden(IBackend be, LoraBranch branch, int rows)
    {
        if (_hidden.TryGetValue(branch, out var t) && t.Rows == rows) return t;
        t?.Dispose();
        t = be.Allocate(DType.F32, rows, branch.Rank);
        _hidden[branch] = t;
        return t;
    }

    /// <summary>A distinct dropout stream per branch (and per call site through <see cref="Seed"/>).</summary>
    public ulong SeedFor(LoraBranch branch) => CounterRandom.Hash(Seed, branch.StreamId);

    public void Dispose()
    {
        foreach (var t in _hidden.Values) t.Dispose();
        _hidden.Clear();
    }
}
