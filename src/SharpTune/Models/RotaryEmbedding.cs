using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>RoPE with the model's inverse frequencies (all of transformers' scalings, computed by <see cref="RopeScaling"/>).</summary>
public sealed class RotaryEmbedding : IDisposable
{
    readonly ModelConfig _config;
    readonly IBackend _backend;
    Tensor _invFreq;
    float _attentionScaling;
    int _validUpTo;

    public RotaryEmbedding(IBackend backend, ModelConfig config)
    {
        _backend = backend;
        _config = config;
        (_invFreq, _attentionScaling, _validUpTo) = Build(config.MaxPositionEmbeddings);
    }

    public int HeadDim => _config.HeadDim;

    /// <summary>Rotates the queries q and the keys k of the same rows in place (inverse: the backward rotation).</summary>
    public void ApplyQueryKey(IBackend be, Tensor q, Tensor k, Tensor positions, bool inverse) =>
        be.RopeQueryKey(q, k, positions, _invFreq, _config.HeadDim, _attentionScaling, inverse);

    /// <summary>
    /// Decoding: rotates queries and the new keys, and appends keys and values to the cache rows their positions name.
    /// </summary>
    public void ApplyQueryKeyAppend(IBackend be, Tensor q, Tensor k, Tensor v, Tensor positions, Tensor keyCache, Tensor valueCache) =>
        be.RopeQueryKeyAppend(q, k, v, positions, _invFreq, _config.HeadDim, _attentionScaling, keyCache, valueCache);

    /// <summary>
    /// Decoding's q/k/v products of RmsNorm(x) with rope and the cache append (<see cref="IBackend.NormLinearRopeAppend"/>):
    /// q's output ends rotated, the caches hold the new rows.
    /// </summary>
    public void ApplyNormLinearAppend(IBackend be, Tensor x, Tensor normWeight, float eps, LinearOutput q, LinearOutput k, LinearOutput v,
                                      Tensor positions, Tensor keyCache, Tensor valueCache) =>
        be.NormLinearRopeAppend(x, normWeight, eps, q, k, v, positions, _invFreq, _config.HeadDim, _attentionScaling, keyCache, valueCache);

    /// <summary>The inverse frequencies now in use (a new tensor whenever <see cref="EnsureLength"/> rebuilds them).</summary>
    public Tensor Frequencies => _invFreq;

    /// <summary>
    /// Dynamic NTK scaling changes the frequencies once a sequence outgrows the original context, as transformers'
    /// dynamic_rope_update does; other scalings never change.
    /// </summary>
    public void EnsureLength(int sequenceLength)
    {
        if (sequenceLength <= _validUpTo) return;
        _invFreq.Dispose();
        (_invFreq, _attentionScaling, _validUpTo) = Build(sequenceLength);
    }

    (Tensor, float, int) Build(int sequenceLength)
    {
        var inv = RopeScaling.InverseFrequencies(_config, sequenceLength);
        float scaling = RopeScaling.AttentionScaling(_config);
        int validUpTo = _config.Rope.RopeType == "dynamic" ? Math.Max(sequenceLength, _config.MaxPositionEmbeddings) : int.MaxValue;
        return (_backend.FromHost(inv, DType.F32, inv.Length), scaling, validUpTo);
    }

    public void Dispose() => _invFreq.Dispose();
}
