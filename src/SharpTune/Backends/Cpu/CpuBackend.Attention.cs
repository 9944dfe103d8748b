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

    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv)
    {
        int heads = q.RowLength / headDim;
        int kvHeads = k.RowLength / headDim;
        int group = heads / kvHeads;
        int rows = spans.Count;
        float* qp = q.F32, kp = k.F32, vp = v.F32, op = output.F32, dop = dOutput.F32, lse = logSumExp.F32;
        float* dqp = dq.F32, dkp = dk.F32, dvp = dv.F32;
        int qWidth = q.RowLength, kvWidth = k.RowLength;
        // One task per KV head: dk/dv rows of a KV head are only touched by its own query heads, so there is no race
        // and the summation order is fixed (bit-identical results run to run).
        Parallel.For(0, kvHeads, kvh =>
        {
            long kvOffset = (long)kvh * headDim;
            float[] rented = ArrayPool<float>.Shared.Rent(1);
            for (int h = kvh * group; h < (kvh + 1) * group; h++)
            {
                for (int row = 0; row < rows; row++)
                {
                    int start = spans.KeyStart[row], count = spans.KeyEnd[row] - start;
                    if (rented.Length < count)
                    {
                        ArrayPool<float>.Shared.Return(rented);
                        rented = ArrayPool<float>.Shared.Rent(count);
                    }
                    var p = rented.AsSpan(0, count);
                    long qOffset = (long)row * qWidth + h * headDim;
                    var qv = new ReadOnlySpan<float>(qp + qOffset, headDim);
                    var dov = new ReadOnlySpan<float>(dop + qOffset, headDim);
                    var dqv = new Span<float>(dqp + qOffset, headDim);
                    float l = lse[(long)row * heads + h];
                    float delta = TensorPrimitives.Dot(dov, new ReadOnlySpan<float>(op + qOffset, headDim));
                    dqv.Clear();
                    for (int j = 0; j < count; j++)
                    {
                        long kvRow = (long)(start + j) * kvWidth + kvOffset;
                        var kv = new ReadOnlySpan<float>(kp + kvRow, headDim);
                        float pj = MathF.Exp(scale * TensorPrimitives.Dot(qv, kv) - l);
                        float dp = TensorPrimitives.Dot(dov, new ReadOnlySpan<float>(vp + kvRow, headDim));
                        float ds = pj * (dp - delta) * scale;
                        TensorPrimitives.MultiplyAdd(kv, ds, dqv, dqv);
                        var dkv = new Span<float>(dkp + kvRow, headDim);
                        TensorPrimitives.MultiplyAdd(qv, ds, dkv, dkv);
                        var dvv = new Span<float>(dvp + kvRow, headDim);
                        TensorPrimitives.MultiplyAdd(dov, pj, dvv, dvv);
                    }
                }
            }
            ArrayPool<float>.Shared.Return(rented);
        });
    }
}
