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

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        RequireF32(param);
        RequireF32(grad);
        RequireF32(m);
        RequireF32(v);
        // The bias corrections as the CPU computes them (torch.optim.AdamW's single-tensor order).
        float bias1 = 1f - MathF.Pow(beta1, step);
        float bias2Sqrt = MathF.Sqrt(1f - MathF.Pow(beta2, step));
        Elementwise("adamw", param.Count, param.Address, grad.Address, m.Address, v.Address, lr, beta1, beta2, eps, 1f - lr * weightDecay,
                    lr / bias1, bias2Sqrt, param.Count);
    }
}
