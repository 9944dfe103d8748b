using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp)
    {
        int heads = q.RowLength / headDim;
        var job = new AttentionJob
        {
            Spans = spans, HeadDim = headDim, Heads = heads, Group = heads / (k.RowLength / headDim), Scale = scale,
            Q = q.F32, K = k.F32, V = v.F32, Output = output.F32, LogSumExp = logSumExp == null ? null : logSumExp.F32,
            QWidth = q.RowLength, KvWidth = k.RowLength,
        };
        // The shared runner, not Parallel.For: its workers are the ones the matrix products just used (thread-pool
        // threads would compete with them for the cores), and a decode step's few heads start without scheduling delay.
        ParallelRunner.Default.For(spans.Count * heads, job, static (j, task) => j.Run(task));
    }

    /// <summary>One (query row, head) pair per task: scores, softmax and the weighted sum of values, each output written
    /// by its own task in a fixed order.</summary>
    struct AttentionJob
    {
        const int StackScores = 2048;
        public AttentionSpans Spans;
        public int HeadDim, Heads, Group, QWidth, KvWidth;
        public float Scale;
        public float* Q, K, V, Output, LogSumExp;

        [SkipLocalsInit]
        public readonly void Run(int task)
        {
            int row = task / Heads, h = task % Heads;
            int start = Spans.KeyStart[row], count = Spans.KeyEnd[row] - start;
            var qv = new ReadOnlySpan<float>(Q + (long)row * QWidth + h * HeadDim, HeadDim);
            var ov = new Span<float>(Output + (long)row * QWidth + h * HeadDim, HeadDim);
            float* k = K + (long)start * KvWidth + (long)(h / Group) * HeadDim;
            float* v = V + (long)start * KvWidth + (long)(h / Group) * HeadDim;
            float[]? rented = count > StackScores ? ArrayPool<float>.Shared.Rent(count) : null;
            Span<float> scores = rented != null ? rented.AsSpan(0, count) : stackalloc float[StackScores].Slice(0, count);
            for (int j = 0; j < count; j++)
                scores[j] = TensorPrimitives.Dot(qv, new ReadOnlySpan<float>(k + (long)j * KvWidth, HeadDim));
            TensorPrimitives.Multiply(scores, Scale, scores);
            float max = TensorPrimitives.Max(scores);
            TensorPrimitives.Subtract(scores, max, scores);
            TensorPrimitives.Exp(scores, scores);
            float sum = TensorPrimitives.Sum(scores);
            float inv = 1f / sum;
            ov.Clear();
            for (int j = 0; j < count; j++)
                TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(v + (long)j * KvWidth, HeadDim), scores[j] * inv, ov, ov);
            if (LogSumExp != null) LogSumExp[(long)row * Heads + h] = max + MathF.Log(sum);
            if (rented != null) ArrayPool<float>.Shared.Return(rented);
        }
    }
}
