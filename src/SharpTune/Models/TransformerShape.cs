using SharpTune.Formats;

namespace SharpTune.Models;

/// <summary>The sizes the ops need, derived once from config.json.</summary>
public sealed record TransformerShape(int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int HeadDim, int Vocab,
                                      float RmsNormEps, bool QkNorm)
{
    public int QWidth => Heads * HeadDim;
    public int KvWidth => KvHeads * HeadDim;
    public float AttentionScale => 1f / MathF.Sqrt(HeadDim);

    public static TransformerShape From(ModelConfig c) => new(c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads,
        c.NumKeyValueHeads, c.HeadDim, c.VocabSize, (float)c.RmsNormEps, c.QkNorm);
}
