using System.Buffers;
using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp)
    {
        int heads = q.RowLength / headDim;
        int kvHeads = k.RowLength / headDim;
        int group = heads / kvHeads;
        int rows = spans.Count;
        float* qp = q.F32, kp = k.F32, vp = v.F32, op = output.F32;
        float* lse = logSumExp == null ? null : logSumExp.F32;
        int qWidth = q.RowLength, kvWidth = k.RowLength;
        Parallel.For(0, rows * heads, task =>
        {
            int row = task / heads, h = task % heads;
            int start = spans.KeyStart[row], count = spans.KeyEnd[row] - start;
            var qv = new ReadOnlySpan<float>(qp + (long)row * qWidth + h * headDim, headDim);
            var ov = new Span<float>(op + (long)row * qWidth + h * headDim, headDim);
            long kvOffset = (long)(h / group) * headDim;
            float[] rented = ArrayPool<float>.Shared.Rent(count);
            var scores = rented.AsSpan(0, count);
            for (int j = 0; j < count; j++)
                scores[j] = scale * TensorPrimitives.Dot(qv, new ReadOnlySpan<float>(kp + (long)(start + j) * kvWidth + kvOffset, headDim));
            float max = TensorPrimitives.Max(scores);
            float sum = 0;
            for (int j = 0; j < count; j++)
            {
                float e = MathF.Exp(scores[j] - max);
                scores[j] = e;
                sum += e;
            }
            ov.Clear();
            float inv = 1f / sum;
            for (int j = 0; j < count; j++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(vp + (long)(start + j) * kvWidth + kvOffset, headDim), scores[j] * inv, ov, ov);
            if (lse != null) lse[(long)row * heads + h] = max + MathF.Log(sum);
            ArrayPool<float>.Shared.Return(rented);
        });
    }
}
