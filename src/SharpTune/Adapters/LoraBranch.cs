using SharpTune.Tensors;

namespace SharpTune.Adapters;

/// <summary>
/// One low-rank update on a linear layer: y += scale · dropout(x)·Aᵀ·Bᵀ, with A [r, in] and B [out, r] in float32
/// (PEFT's lora_A / lora_B). DoRA adds a magnitude vector [out] that rescales each output row of the adapted weight.
/// </summary>
public sealed class LoraBranch : IDisposable
{
    public LoraBranch(string adapterName, Tensor a, Tensor b, float scale, float dropout, Tensor? magnitude = null)
    {
        AdapterName = adapterName;
        A = a;
        B = b;
        Scale = scale;
        Dropout = dropout;
        Magnitude = magnitude;
    }

    public string AdapterName { get; }
    /// <summary>A stable number for this branch (from its module path), so its dropout stream is the same in every run.</summary>
    public ulong StreamId { get; init; }
    public Tensor A { get; }
    public Tensor B { get; }
    public int Rank => A.Rows;
    /// <summary>alpha / r (or alpha / √r with rsLoRA), times the user's weight for this adapter.</summary>
    public float Scale
    {
        get => _scale;
        set
        {
            _scale = value;
            Unfreeze();
        }
    }
    public float Dropout { get; }
    /// <summary>DoRA's per-output-row magnitude (PEFT's lora_magnitude_vector); null for plain LoRA.</summary>
    public Tensor? Magnitude { get; }

    /// <summary>
    /// DoRA's g = m / ‖W + s·B·A‖ computed once for inference (<see cref="LoraAdapter.FreezeForInference"/>), so decoding does
    /// not recompute the norms at every token; null otherwise, and cleared when <see cref="Scale"/> changes. Training never sets it.
    /// </summary>
    public Tensor? FrozenMagnitudeScale { get; internal set; }

    float _scale;

    internal void Unfreeze()
    {
        FrozenMagnitudeScale?.Dispose();
        FrozenMagnitudeScale = null;
    }

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
        Magnitude?.Dispose();
        Unfreeze();
    }
}
