using System.Runtime.InteropServices;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public (double LossSum, int Count, int Correct) CrossEntropy(Tensor logits, Tensor labels, Tensor? dLogits, float gradScale)
    {
        RequireF32(logits);
        if (dLogits != null) RequireF32(dLogits);
        int rows = logits.Rows, vocab = logits.RowLength;
        using var losses = Allocate(DType.F64, rows);
        using var correct = Allocate(DType.I32, rows);
        Launch("loss", "crossEntropy", (uint)rows, 1024, 0, logits.Address, labels.Address, dLogits?.Address ?? 0, gradScale, vocab,
               losses.Address, correct.Address);
        var lossValues = new double[rows];
        var hits = new int[rows];
        Download(losses, System.Runtime.InteropServices.MemoryMarshal.AsBytes(lossValues.AsSpan()));
        Download(correct, System.Runtime.InteropServices.MemoryMarshal.AsBytes(hits.AsSpan()));
        double total = 0;
        int count = 0, right = 0;
        for (int r = 0; r < rows; r++)
        {
            if (hits[r] == -2) throw new SharpTuneException($"a label is outside the vocabulary of {vocab}");
            if (hits[r] < 0) continue;
            total += lossValues[r];
            count++;
            right += hits[r];
        }
        return (total, count, right);
    }

    public double SumOfSquares(Tensor x)
    {
        using var total = Zeros(DType.F64, 1);
        Elementwise("sumOfSquares", x.Count, x.Address, Code(x), x.Count, total.Address);
        var value = new double[1];
        Download(total, System.Runtime.InteropServices.MemoryMarshal.AsBytes(value.AsSpan()));
        return value[0];
    }

    /// <summary>One launch for all tensors: blockIdx.y picks a tensor from a device table, so small LoRA gradients do not each
    /// pay a launch and a wait for the result.</summary>
    public void SumOfSquares(IReadOnlyList<Tensor> tensors, Span<double> sums)
    {
        if (tensors.Count == 0) return;
        var slots = new TensorSlot[tensors.Count];
        long longest = 0;
        for (int i = 0; i < slots.Length; i++)
        {
            Own(tensors[i]);
            slots[i] = new TensorSlot { Address = tensors[i].Address, Count = tensors[i].Count, Type = Code(tensors[i]) };
            longest = Math.Max(longest, tensors[i].Count);
        }
        using var table = FromHostBytes(MemoryMarshal.AsBytes(slots.AsSpan()), DType.U8, slots.Length * sizeof(TensorSlot));
        using var totals = Zeros(DType.F64, slots.Length);
        Launch("elementwise", "sumOfSquaresMany", BlocksPerTensor(longest), (uint)slots.Length, 256, 0, table.Address, totals.Address);
        Download(totals, MemoryMarshal.AsBytes(sums[..slots.Length]));
    }

    public void AdamW(IReadOnlyList<AdamWTensor> tensors, float lr, float beta1, float beta2, float eps, int step)
    {
        if (tensors.Count == 0) return;
        var slots = new AdamWSlot[tensors.Count];
        long longest = 0;
        for (int i = 0; i < slots.Length; i++)
        {
            var t = tensors[i];
            foreach (var x in (ReadOnlySpan<Tensor>)[t.Param, t.Grad, t.M, t.V])
            {
                Own(x);
                RequireF32(x);
                if (x.Count != t.Param.Count) throw new ArgumentException($"AdamW: {x} differs in size from its parameter {t.Param}");
            }
            slots[i] = new AdamWSlot { Param = t.Param.Address, Grad = t.Grad.Address, M = t.M.Address, V = t.V.Address, Count = t.Param.Count,
                                       Decay = 1f - lr * t.WeightDecay };
            longest = Math.Max(longest, t.Param.Count);
        }
        var (stepSize, bias2Sqrt) = AdamBiasCorrections(lr, beta1, beta2, step);
        using var table = FromHostBytes(MemoryMarshal.AsBytes(slots.AsSpan()), DType.U8, slots.Length * sizeof(AdamWSlot));
        Launch("elementwise", "adamwMany", BlocksPerTensor(longest), (uint)slots.Length, 256, 0, table.Address, beta1, beta2, eps,
               stepSize, bias2Sqrt);
    }

    // Enough 256-thread blocks per tensor to cover the largest one, capped so a table of many tensors stays one wave or so.
    static uint BlocksPerTensor(long longest) => (uint)Math.Clamp((longest + 255) / 256, 1, 32);

    // The bias corrections as the CPU computes them (torch.optim.AdamW's single-tensor order).
    static (float StepSize, float Bias2Sqrt) AdamBiasCorrections(float lr, float beta1, float beta2, int step) =>
        (lr / (1f - MathF.Pow(beta1, step)), MathF.Sqrt(1f - MathF.Pow(beta2, step)));

    /// <summary>elementwise.cu's TensorSlot.</summary>
    [StructLayout(LayoutKind.Sequential)]
    struct TensorSlot
    {
        public nint Address;
        public long Count;
        public long Type;
    }

    /// <summary>elementwise.cu's AdamWSlot.</summary>
    [StructLayout(LayoutKind.Sequential)]
    struct AdamWSlot
    {
        public nint Param, Grad, M, V;
        public long Count;
        public float Decay, Unused;
    }

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        RequireF32(param);
        RequireF32(grad);
        RequireF32(m);
        RequireF32(v);
        var (stepSize, bias2Sqrt) = AdamBiasCorrections(lr, beta1, beta2, step);
        Elementwise("adamw", param.Count, param.Address, grad.Address, m.Address, v.Address, lr, beta1, beta2, eps, 1f - lr * weightDecay,
                    stepSize, bias2Sqrt, param.Count);
    }
}
