using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    // lora.cu's LORA_MAX_RANK and LORA_ROWS.
    const int LoraDownMaxRank = 16, LoraDownRows = 4;

    /// <summary>One fused kernel up to rank 16 (PEFT's usual ranks); larger ranks take dropout and then a cuBLAS product.</summary>
    public void LoraDown(Tensor x, Tensor a, float p, ulong seed, Tensor t, Tensor? dropped)
    {
        Own(x);
        Own(a);
        Own(t);
        if (dropped != null) Own(dropped);
        if (a.RowLength != x.RowLength || t.Rows != x.Rows || t.RowLength != a.Rows || (dropped != null && dropped.Count != x.Count))
            throw new ArgumentException($"LoRA down-projection of {x} by {a} into {t}");
        if (a.Rows > LoraDownMaxRank)
        {
            using var scratch = dropped == null && p > 0f ? Allocate(x.DType, x.Shape) : null;
            var input = dropped ?? scratch ?? x;
            if (!ReferenceEquals(input, x)) Dropout(x, p, seed, input);
            MatMul(input, false, a, true, t);
            return;
        }
        Launch("lora", "loraDown", (uint)((x.Rows + LoraDownRows - 1) / LoraDownRows), 256, 0, x.Address, Code(x), a.Address, Code(a),
               x.Rows, x.RowLength, a.Rows, p, seed, dropped?.Address ?? 0, dropped == null ? 0 : Code(dropped), t.Address, Code(t));
    }
}
