using System.Buffers;
using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Query rows whose score block is formed at once: keeps the blocks in L2 and skips most of the causal upper triangle.</summary>
    const int AttentionBackwardRows = 128;

    /// <summary>
    /// Backward of attention as matrix multiplies, per query head and block of query rows, over the block's key range
    /// [min start, max end): S = Q·Kᵀ and dP = dO·Vᵀ, then per row P = exp(scale·S − lse) and dS = P·(dP − Σ dO⊙O)·scale
    /// (both zero outside the row's span), then dQ = dS·K, dK += dSᵀ·Q, dV += Pᵀ·dO. Blocks and heads run in a fixed order
    /// and the matrix multiply is deterministic, so results are bit-identical run to run.
    /// </summary>
    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv)
    {
        int heads = q.RowLength / headDim;
        int group = heads / (k.RowLength / headDim);
        int rows = spans.Count;
        int qWidth = q.RowLength, kvWidth = k.RowLength;
        var job = new AttentionBackwardJob
        {
            Q = q.F32, K = k.F32, V = v.F32, O = output.F32, DO = dOutput.F32, Lse = logSumExp.F32, DQ = dq.F32, DK = dk.F32, DV = dv.F32,
            Spans = spans, HeadDim = headDim, Heads = heads, Scale = scale, QWidth = qWidth, KvWidth = kvWidth,
        };
        int blockRows = Math.Min(AttentionBackwardRows, rows);
        float[] scoresArray = ArrayPool<float>.Shared.Rent(blockRows * MaxKeyRange(spans, blockRows));
        float[] dScoresArray = ArrayPool<float>.Shared.Rent(scoresArray.Length);
        fixed (float* scores = scoresArray, dScores = dScoresArray)
        {
            job.P = scores;
            job.DS = dScores;
            for (int r0 = 0; r0 < rows; r0 += blockRows)
            {
                job.Row0 = r0;
                job.BlockRows = Math.Min(blockRows, rows - r0);
                job.Key0 = int.MaxValue;
                int keyEnd = 0;
                for (int r = r0; r < r0 + job.BlockRows; r++)
                {
                    job.Key0 = Math.Min(job.Key0, spans.KeyStart[r]);
                    keyEnd = Math.Max(keyEnd, spans.KeyEnd[r]);
                }
                job.Keys = keyEnd - job.Key0;
                if (job.Keys <= 0) continue;
                for (int h = 0; h < heads; h++)
                {
                    job.Head = h;
                    long qOffset = (long)r0 * qWidth + h * headDim;
                    long kvOffset = (long)job.Key0 * kvWidth + (long)(h / group) * headDim;
                    int n = job.BlockRows, keys = job.Keys;
                    CpuMatMul.Gemm(false, true, n, keys, headDim, 1f, job.Q + qOffset, qWidth, job.K + kvOffset, kvWidth, 0f, scores, keys);
                    CpuMatMul.Gemm(false, true, n, keys, headDim, 1f, job.DO + qOffset, qWidth, job.V + kvOffset, kvWidth, 0f, dScores, keys);
                    ParallelRunner.Default.For(n, job, static (j, i) => j.ScoreGradients(i));
                    CpuMatMul.Gemm(false, false, n, headDim, keys, 1f, dScores, keys, job.K + kvOffset, kvWidth, 0f, job.DQ + qOffset, qWidth);
                    CpuMatMul.Gemm(true, false, keys, headDim, n, 1f, dScores, keys, job.Q + qOffset, qWidth, 1f, job.DK + kvOffset, kvWidth);
                    CpuMatMul.Gemm(true, false, keys, headDim, n, 1f, scores, keys, job.DO + qOffset, qWidth, 1f, job.DV + kvOffset, kvWidth);
                }
            }
        }
        ArrayPool<float>.Shared.Return(scoresArray);
        ArrayPool<float>.Shared.Return(dScoresArray);
    }

    static int MaxKeyRange(AttentionSpans spans, int blockRows)
    {
        int widest = 1;
        for (int r0 = 0; r0 < spans.Count; r0 += blockRows)
        {
            int start = int.MaxValue, end = 0;
            for (int r = r0; r < Math.Min(r0 + blockRows, spans.Count); r++)
            {
                start = Math.Min(start, spans.KeyStart[r]);
                end = Math.Max(end, spans.KeyEnd[r]);
            }
            widest = Math.Max(widest, end - start);
        }
        return widest;
    }

    sealed class AttentionBackwardJob
    {
        public float* Q, K, V, O, DO, Lse, DQ, DK, DV, P, DS;
        public required AttentionSpans Spans;
        public int HeadDim, Heads, QWidth, KvWidth, Head, Row0, BlockRows, Key0, Keys;
        public float Scale;

        /// <summary>Row i of the block: turns its scores into probabilities and its dP into dS, zero outside the row's span.</summary>
        public void ScoreGradients(int i)
        {
            int row = Row0 + i;
            var p = new Span<float>(P + (long)i * Keys, Keys);
            var ds = new Span<float>(DS + (long)i * Keys, Keys);
            int from = Spans.KeyStart[row] - Key0, to = Spans.KeyEnd[row] - Key0;
            p[..from].Clear();
            p[to..].Clear();
            ds[..from].Clear();
            ds[to..].Clear();
            long qOffset = (long)row * QWidth + Head * HeadDim;
            float delta = TensorPrimitives.Dot(new ReadOnlySpan<float>(DO + qOffset, HeadDim), new ReadOnlySpan<float>(O + qOffset, HeadDim));
            var ps = p[from..to];
            var dss = ds[from..to];
            TensorPrimitives.Multiply(ps, Scale, ps);
            TensorPrimitives.Subtract(ps, Lse[(long)row * Heads + Head], ps);
            TensorPrimitives.Exp(ps, ps);
            TensorPrimitives.Subtract(dss, delta, dss);
            TensorPrimitives.Multiply(dss, ps, dss);
            TensorPrimitives.Multiply(dss, Scale, dss);
        }
    }
}
