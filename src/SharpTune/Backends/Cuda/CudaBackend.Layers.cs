using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    const int RowBlock = 256;

    public void Embedding(Tensor table, Tensor ids, Tensor output)
    {
        Own(table);
        Own(ids);
        Own(output);
        Elementwise("embedding", output.Count, table.Address, Code(table), ids.Address, output.Address, Code(output), table.RowLength, output.Count);
    }

    public void EmbeddingBackward(Tensor dOutput, Tensor ids, Tensor dTable)
    {
        RequireF32(dTable);
        Elementwise("embeddingBackward", dOutput.Count, dOutput.Address, Code(dOutput), ids.Address, dTable.Address, dTable.RowLength, dOutput.Count);
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y, Tensor? rstd)
    {
        RequireF32(weight);
        if (rstd != null) RequireF32(rstd);
        int dim = (int)weight.Count;
        int rows = (int)(x.Count / dim);
        Launch("norm", "rmsNorm", (uint)rows, RowBlock, 0, x.Address, Code(x), weight.Address, eps, y.Address, Code(y), rstd?.Address ?? 0, dim);
    }

    public void RmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor? dWeight, bool accumulateDx)
    {
        RequireF32(weight);
        RequireF32(rstd);
        if (dWeight != null) RequireF32(dWeight);
        int dim = (int)weight.Count;
        int rows = (int)(x.Count / dim);
        Launch("norm", "rmsNormBackward", (uint)rows, RowBlock, 0, dy.Address, Code(dy), x.Address, Code(x), weight.Address, rstd.Address,
               dx.Address, Code(dx), dWeight?.Address ?? 0, accumulateDx ? 1 : 0, dim);
    }

    public void AddBias(Tensor y, Tensor bias)
    {
        RequireF32(bias);
        Elementwise("addBias", y.Count, y.Address, Code(y), bias.Address, (int)bias.Count, y.Count);
    }

    public void BiasBackward(Tensor dy, Tensor dBias)
    {
        RequireF32(dBias);
        int dim = (int)dBias.Count;
        Launch("elementwise", "biasBackward", (uint)((dim + 255) / 256), 256, 0, dy.Address, Code(dy), dBias.Address, dim, (int)(dy.Count / dim));
    }

    public void Rope(Tensor x, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse)
    {
        RequireF32(invFreq);
        int rows = (int)positions.Count;
        Elementwise("rope", (long)rows * (x.RowLength / 2), x.Address, Code(x), positions.Address, invFreq.Address, rows, x.RowLength, headDim,
                    attentionScaling, inverse ? 1 : 0);
    }

    public void SwiGlu(Tensor gate, Tensor up, Tensor h)
    {
        int t = SameType(gate, up, h);
        if (EightWide(gate, up, h)) Elementwise("swigluBF16x8", h.Count / 8, gate.Address, up.Address, h.Address, h.Count / 8);
        else Elementwise("swiglu", h.Count, gate.Address, up.Address, h.Address, t, h.Count);
    }

    public void SwiGluBackward(Tensor dh, Tensor gate, Tensor up, Tensor dGate, Tensor dUp)
    {
        int t = SameType(dh, gate, up, dGate, dUp);
        if (EightWide(dh, gate, up, dGate, dUp))
            Elementwise("swigluBackwardBF16x8", dh.Count / 8, dh.Address, gate.Address, up.Address, dGate.Address, dUp.Address, dh.Count / 8);
        else Elementwise("swigluBackward", dh.Count, dh.Address, gate.Address, up.Address, dGate.Address, dUp.Address, t, dh.Count);
    }

    public void AddScaled(Tensor x, float alpha, Tensor y)
    {
        if (x.Count != y.Count) throw new ArgumentException("AddScaled of tensors of different sizes");
        Elementwise("axpby", y.Count, x.Address, Code(x), alpha, y.Address, Code(y), 1f, y.Count);
    }

    public void Scale(Tensor x, float alpha) => Elementwise("scale", x.Count, x.Address, Code(x), alpha, x.Count);

    public void Dropout(Tensor x, float p, ulong seed, Tensor y, bool accumulate = false)
    {
        if (p <= 0f)
        {
            if (accumulate) AddScaled(x, 1f, y);
            else if (!ReferenceEquals(x, y)) Copy(x, y);
            return;
        }
        uint threshold = CounterRandom.DropThreshold(p);
        float keep = 1f / (1f - p);
        if (EightWide(x, y))
            Elementwise("dropoutBF16x8", y.Count / 8, x.Address, (int)threshold, keep, seed, y.Address, accumulate ? 1 : 0, y.Count / 8);
        else Elementwise("dropout", y.Count, x.Address, Code(x), (int)threshold, keep, seed, y.Address, Code(y), accumulate ? 1 : 0, y.Count);
    }

    static void RequireF32(Tensor t)
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{t}: expected a float32 tensor");
    }

    static int SameType(params ReadOnlySpan<Tensor> tensors)
    {
        foreach (var t in tensors)
            if (t.DType != tensors[0].DType) throw new ArgumentException($"{t}: expected {tensors[0].DType} like the other operands");
        return Code(tensors[0]);
    }

    /// <summary>
    /// True when elementwise.cu's 8-wide kernels take these tensors: all bfloat16 of one size, a whole number of 16-byte
    /// words, 16-byte aligned.
    /// </summary>
    static bool EightWide(params ReadOnlySpan<Tensor> tensors)
    {
        foreach (var t in tensors)
            if (t.DType != DType.BF16 || t.Count != tensors[0].Count || t.Count % 8 != 0 || !Aligned(t)) return false;
        return true;
    }
}
