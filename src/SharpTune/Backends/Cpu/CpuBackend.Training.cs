using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public (double LossSum, int Count, int Correct) CrossEntropy(Tensor logits, Tensor labels, Tensor? dLogits, float gradScale)
    {
        int rows = logits.Rows, vocab = logits.RowLength;
        var lab = labels.AsIntSpan().ToArray();
        var losses = new double[rows];
        var correct = new bool[rows];
        float* lp = logits.F32;
        float* dp = dLogits == null ? null : dLogits.F32;
        Parallel.For(0, rows, r =>
        {
            var row = new ReadOnlySpan<float>(lp + (long)r * vocab, vocab);
            int label = lab[r];
            if (label == -100)
            {
                if (dp != null) new Span<float>(dp + (long)r * vocab, vocab).Clear();
                return;
            }
            if ((uint)label >= (uint)vocab) throw new SharpTuneException($"label {label} is outside the vocabulary of {vocab}");
            int argmax = TensorPrimitives.IndexOfMax(row);
            float max = row[argmax];
            double sum = 0;
            for (int j = 0; j < vocab; j++) sum += MathF.Exp(row[j] - max);
            double logZ = max + Math.Log(sum);
            losses[r] = logZ - row[label];
            correct[r] = argmax == label;
            if (dp != null)
            {
                var d = new Span<float>(dp + (long)r * vocab, vocab);
                for (int j = 0; j < vocab; j++) d[j] = (float)Math.Exp(row[j] - logZ) * gradScale;
                d[label] -= gradScale;
            }
        });
        double total = 0;
        int count = 0, hits = 0;
        for (int r = 0; r < rows; r++)
        {
            if (lab[r] == -100) continue;
            total += losses[r];
            count++;
            if (correct[r]) hits++;
        }
        return (total, count, hits);
    }

    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        var p = param.AsSpan();
        var g = grad.AsSpan();
        var ms = m.AsSpan();
        var vs = v.AsSpan();
        // The same operation order as torch.optim.AdamW (single-tensor path).
        float bias1 = 1f - MathF.Pow(beta1, step);
        float bias2Sqrt = MathF.Sqrt(1f - MathF.Pow(beta2, step));
        float stepSize = lr / bias1;
        float decay = 1f - lr * weightDecay;
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            p[i] *= decay;
            ms[i] += (gi - ms[i]) * (1f - beta1);
            vs[i] = vs[i] * beta2 + (1f - beta2) * gi * gi;
            float denom = MathF.Sqrt(vs[i]) / bias2Sqrt + eps;
            p[i] -= stepSize * ms[i] / denom;
        }
    }

    public void Dropout(Tensor x, float p, ulong seed, Tensor y)
    {
        var xs = x.AsSpan();
        var ys = y.AsSpan();
        if (p <= 0f)
        {
            xs.CopyTo(ys);
            return;
        }
        float keepScale = 1f / (1f - p);
        for (int i = 0; i < xs.Length; i++)
            ys[i] = CounterRandom.Uniform(seed, (ulong)i) < p ? 0f : xs[i] * keepScale;
    }
}
