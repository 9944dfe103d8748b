using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Elements per parallel task of the elementwise training ops; fixed, so the split never depends on the thread count.</summary>
    const int ElementwiseChunk = 1 << 14;

    static int Chunks(long count) => (int)((count + ElementwiseChunk - 1) / ElementwiseChunk);

    /// <summary>
    /// One row per task: max, then exp(x − max) in one vectorized pass (TensorPrimitives.Exp, a port of AMD's AOCL-LibM
    /// expf, within a few ulp), summed in float32 blocks of 4096 into a float64 total. The gradient reuses the exponentials:
    /// gradScale·softmax = exp(x − max)·gradScale/Σ, written over the logits when they alias.
    /// </summary>
    public (double LossSum, int Count, int Correct) CrossEntropy(Tensor logits, Tensor labels, Tensor? dLogits, float gradScale)
    {
        var job = new CrossEntropyJob
        {
            Logits = logits.F32, DLogits = dLogits == null ? null : dLogits.F32, Vocab = logits.RowLength, GradScale = gradScale,
            Labels = labels.AsIntSpan().ToArray(), Losses = new double[logits.Rows], Correct = new bool[logits.Rows],
        };
        ParallelRunner.Default.For(logits.Rows, job, static (j, r) => j.Row(r));
        double total = 0;
        int count = 0, hits = 0;
        for (int r = 0; r < logits.Rows; r++)
        {
            if (job.Labels[r] == -100) continue;
            total += job.Losses[r];
            count++;
            if (job.Correct[r]) hits++;
        }
        return (total, count, hits);
    }

    sealed class CrossEntropyJob
    {
        public float* Logits, DLogits;
        public int Vocab;
        public float GradScale;
        public required int[] Labels;
        public required double[] Losses;
        public required bool[] Correct;

        public void Row(int r)
        {
            var row = new ReadOnlySpan<float>(Logits + (long)r * Vocab, Vocab);
            int label = Labels[r];
            if (label == -100)
            {
                if (DLogits != null) new Span<float>(DLogits + (long)r * Vocab, Vocab).Clear();
                return;
            }
            if ((uint)label >= (uint)Vocab) throw new SharpTuneException($"label {label} is outside the vocabulary of {Vocab}");
            int argmax = TensorPrimitives.IndexOfMax(row);
            float max = row[argmax], target = row[label];
            float[]? rented = DLogits == null ? ArrayPool<float>.Shared.Rent(Vocab) : null;
            var e = rented != null ? rented.AsSpan(0, Vocab) : new Span<float>(DLogits + (long)r * Vocab, Vocab);
            TensorPrimitives.Subtract(row, max, e);
            TensorPrimitives.Exp(e, e);
            double sum = 0;
            for (int i = 0; i < Vocab; i += 4096) sum += TensorPrimitives.Sum(e.Slice(i, Math.Min(4096, Vocab - i)));
            Losses[r] = max + Math.Log(sum) - target;
            Correct[r] = argmax == label;
            if (rented != null)
            {
                ArrayPool<float>.Shared.Return(rented);
                return;
            }
            TensorPrimitives.Multiply(e, (float)(GradScale / sum), e);
            e[label] -= GradScale;
        }
    }

    /// <summary>
    /// Vectorized and split into fixed chunks; every element takes exactly the scalar sequence of float operations of
    /// torch.optim.AdamW's single-tensor path (no fused multiply-adds), so lanes and chunks give the scalar result bit for bit.
    /// </summary>
    public void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step)
    {
        var job = new AdamWJob
        {
            P = param.F32, G = grad.F32, M = m.F32, V = v.F32, Count = param.Count,
            Beta1 = beta1, Beta2 = beta2, Eps = eps,
            Bias2Sqrt = MathF.Sqrt(1f - MathF.Pow(beta2, step)),
            StepSize = lr / (1f - MathF.Pow(beta1, step)),
            Decay = 1f - lr * weightDecay,
        };
        ParallelRunner.Default.For(Chunks(param.Count), job, static (j, c) => j.Chunk(c));
    }

    sealed class AdamWJob
    {
        public float* P, G, M, V;
        public long Count;
        public float Beta1, Beta2, Eps, Bias2Sqrt, StepSize, Decay;

        public void Chunk(int chunk)
        {
            long start = (long)chunk * ElementwiseChunk, end = Math.Min(Count, start + ElementwiseChunk);
            float oneMinusBeta1 = 1f - Beta1, oneMinusBeta2 = 1f - Beta2;
            long i = start;
            if (Vector256.IsHardwareAccelerated)
            {
                var decay = Vector256.Create(Decay);
                var b1 = Vector256.Create(oneMinusBeta1);
                var beta2 = Vector256.Create(Beta2);
                var b2 = Vector256.Create(oneMinusBeta2);
                var bias2 = Vector256.Create(Bias2Sqrt);
                var eps = Vector256.Create(Eps);
                var stepSize = Vector256.Create(StepSize);
                for (; i + 8 <= end; i += 8)
                {
                    var g = Vector256.Load(G + i);
                    var p = Vector256.Load(P + i) * decay;
                    var mi = Vector256.Load(M + i);
                    mi += (g - mi) * b1;
                    var vi = Vector256.Load(V + i) * beta2 + b2 * g * g;
                    var denom = Vector256.Sqrt(vi) / bias2 + eps;
                    p -= stepSize * mi / denom;
                    mi.Store(M + i);
                    vi.Store(V + i);
                    p.Store(P + i);
                }
            }
            for (; i < end; i++)
            {
                float gi = G[i];
                P[i] *= Decay;
                M[i] += (gi - M[i]) * oneMinusBeta1;
                V[i] = V[i] * Beta2 + oneMinusBeta2 * gi * gi;
                float denom = MathF.Sqrt(V[i]) / Bias2Sqrt + Eps;
                P[i] -= StepSize * M[i] / denom;
            }
        }
    }

    public void Dropout(Tensor x, float p, ulong seed, Tensor y, bool accumulate = false)
    {
        if (p <= 0f)
        {
            if (accumulate) AddScaled(x, 1f, y);
            else x.AsSpan().CopyTo(y.AsSpan());
            return;
        }
        var job = new DropoutJob { X = x.F32, Y = y.F32, Count = x.Count, Threshold = CounterRandom.DropThreshold(p), KeepScale = 1f / (1f - p), Seed = seed, Accumulate = accumulate };
        ParallelRunner.Default.For(Chunks(x.Count), job, static (j, c) => j.Chunk(c));
    }

    sealed class DropoutJob
    {
        public float* X, Y;
        public long Count;
        public float KeepScale;
        public uint Threshold;
        public ulong Seed;
        public bool Accumulate;

        // Chunks start at multiples of 4 (ElementwiseChunk is), so each hash of four elements' bits is made once.
        public void Chunk(int chunk)
        {
            long start = (long)chunk * ElementwiseChunk, end = Math.Min(Count, start + ElementwiseChunk);
            ulong bits = 0;
            for (long i = start; i < end; i++)
            {
                if ((i & 3) == 0) bits = CounterRandom.Hash(Seed, (ulong)i >> 2);
                float dropped = CounterRandom.Lane16(bits, (int)(i & 3)) < Threshold ? 0f : X[i] * KeepScale;
                Y[i] = Accumulate ? Y[i] + dropped : dropped;
            }
        }
    }
}
