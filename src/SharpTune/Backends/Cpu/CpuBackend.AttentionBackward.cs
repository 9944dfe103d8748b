using System.Buffers;
using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    /// <summary>Query rows whose score block is formed at once: keeps the blocks in L2 and skips most of the causal upper triangle.</summary>
    const int AttentionBackwardRows = 128;
    /// <summary>Blocks of query rows whose tasks run together (with 14 heads, 56 tasks: enough for the threads).</summary>
    const int AttentionBackwardWave = 4;

    /// <summary>
    /// Backward of attention as matrix multiplies, one task per (block of query rows, query head), over the block's key range
    /// [min start, max end): S = Q·Kᵀ and dP = dO·Vᵀ, then per row P = exp(scale·S − lse) and dS = P·(dP − Σ dO⊙O)·scale
    /// (both zero outside the row's span), then dQ = dS·K (its own rows and columns), and partial dK = dSᵀ·Q, dV = Pᵀ·dO
    /// that are added into dk/dv afterwards in task order: bit-identical results whatever the thread count or timing.
    /// </summary>
    public void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                                  int headDim, float scale, Tensor dq, Tensor dk, Tensor dv)
    {
        int heads = q.RowLength / headDim;
        int rows = spans.Count;
        int blockRows = Math.Min(AttentionBackwardRows, Math.Max(rows, 1));
        int blocks = (rows + blockRows - 1) / blockRows;
        var key0 = new int[blocks];
        var keys = new int[blocks];
        for (int b = 0; b < blocks; b++)
        {
            int start = int.MaxValue, end = 0;
            for (int r = b * blockRows; r < Math.Min(rows, (b + 1) * blockRows); r++)
            {
                start = Math.Min(start, spans.KeyStart[r]);
                end = Math.Max(end, spans.KeyEnd[r]);
            }
            key0[b] = start;
            keys[b] = Math.Max(0, end - start);
        }
        var job = new AttentionBackwardJob
        {
            Q = q.F32, K = k.F32, V = v.F32, O = output.F32, DO = dOutput.F32, Lse = logSumExp.F32, DQ = dq.F32, DK = dk.F32, DV = dv.F32,
            Spans = spans, HeadDim = headDim, Heads = heads, Group = heads / (k.RowLength / headDim), Scale = scale,
            QWidth = q.RowLength, KvWidth = k.RowLength, BlockRows = blockRows, Key0 = key0, Keys = keys,
            PartialOffset = new long[AttentionBackwardWave * heads + 1],
        };
        // Waves of blocks bound the partials' memory; the additions still go block by block, head by head.
        for (int b0 = 0; b0 < blocks; b0 += AttentionBackwardWave)
        {
            job.FirstBlock = b0;
            job.WaveBlocks = Math.Min(AttentionBackwardWave, blocks - b0);
            for (int t = 0; t < job.WaveBlocks * heads; t++) job.PartialOffset[t + 1] = job.PartialOffset[t] + (long)keys[b0 + t / heads] * headDim;
            long partialLength = job.PartialOffset[job.WaveBlocks * heads];
            float[] dkParts = ArrayPool<float>.Shared.Rent((int)Math.Max(1, partialLength));
            float[] dvParts = ArrayPool<float>.Shared.Rent((int)Math.Max(1, partialLength));
            fixed (float* dkp = dkParts, dvp = dvParts)
            {
                job.DKParts = dkp;
                job.DVParts = dvp;
                ParallelRunner.Default.For(job.WaveBlocks * heads, job, static (j, task) => j.Task(task));
                ParallelRunner.Default.For(k.RowLength / headDim, job, static (j, kvh) => j.AddPartials(kvh));
            }
            ArrayPool<float>.Shared.Return(dkParts);
            ArrayPool<float>.Shared.Return(dvParts);
        }
    }

    sealed class AttentionBackwardJob
    {
        public float* Q, K, V, O, DO, Lse, DQ, DK, DV, DKParts, DVParts;
        public required AttentionSpans Spans;
        public required int[] Key0, Keys;
        public required long[] PartialOffset;
        public int HeadDim, Heads, Group, QWidth, KvWidth, BlockRows, FirstBlock, WaveBlocks;
        public float Scale;

        public void Task(int task)
        {
            int block = FirstBlock + task / Heads, h = task % Heads;
            int row0 = block * BlockRows, n = Math.Min(BlockRows, Spans.Count - row0), keys = Keys[block];
            if (keys == 0) return;
            long qOffset = (long)row0 * QWidth + h * HeadDim;
            long kvOffset = (long)Key0[block] * KvWidth + (long)(h / Group) * HeadDim;
            float[] scratch = ArrayPool<float>.Shared.Rent(2 * n * keys);
            fixed (float* p = scratch)
            {
                float* ds = p + n * keys;
                // Nested inside the runner's loop, these multiplies run on this task's thread.
                CpuMatMul.Gemm(false, true, n, keys, HeadDim, 1f, Q + qOffset, QWidth, K + kvOffset, KvWidth, 0f, p, keys);
                CpuMatMul.Gemm(false, true, n, keys, HeadDim, 1f, DO + qOffset, QWidth, V + kvOffset, KvWidth, 0f, ds, keys);
                for (int i = 0; i < n; i++) ScoreGradients(row0 + i, h, Key0[block], new Span<float>(p + (long)i * keys, keys), new Span<float>(ds + (long)i * keys, keys));
                CpuMatMul.Gemm(false, false, n, HeadDim, keys, 1f, ds, keys, K + kvOffset, KvWidth, 0f, DQ + qOffset, QWidth);
                long part = PartialOffset[task];
                CpuMatMul.Gemm(true, false, keys, HeadDim, n, 1f, ds, keys, Q + qOffset, QWidth, 0f, DKParts + part, HeadDim);
                CpuMatMul.Gemm(true, false, keys, HeadDim, n, 1f, p, keys, DO + qOffset, QWidth, 0f, DVParts + part, HeadDim);
            }
            ArrayPool<float>.Shared.Return(scratch);
        }

        /// <summary>Turns row <paramref name="row"/>'s scores into probabilities and its dP into dS, zero outside the row's span.</summary>
        void ScoreGradients(int row, int h, int key0, Span<float> p, Span<float> ds)
        {
            int from = Spans.KeyStart[row] - key0, to = Spans.KeyEnd[row] - key0;
            p[..from].Clear();
            p[to..].Clear();
            ds[..from].Clear();
            ds[to..].Clear();
            long qOffset = (long)row * QWidth + h * HeadDim;
            float delta = TensorPrimitives.Dot(new ReadOnlySpan<float>(DO + qOffset, HeadDim), new ReadOnlySpan<float>(O + qOffset, HeadDim));
            var ps = p[from..to];
            var dss = ds[from..to];
            TensorPrimitives.Multiply(ps, Scale, ps);
            TensorPrimitives.Subtract(ps, Lse[(long)row * Heads + h], ps);
            TensorPrimitives.Exp(ps, ps);
            TensorPrimitives.Subtract(dss, delta, dss);
            TensorPrimitives.Multiply(dss, ps, dss);
            TensorPrimitives.Multiply(dss, Scale, dss);
        }

        /// <summary>Adds the partial dK/dV of the wave's tasks on KV head <paramref name="kvh"/> in task order.</summary>
        public void AddPartials(int kvh)
        {
            for (int block = FirstBlock; block < FirstBlock + WaveBlocks; block++)
            for (int h = kvh * Group; h < (kvh + 1) * Group; h++)
            {
                long part = PartialOffset[(block - FirstBlock) * Heads + h];
                for (int j = 0; j < Keys[block]; j++)
                {
                    long target = (long)(Key0[block] + j) * KvWidth + (long)kvh * HeadDim;
                    var dkRow = new Span<float>(DK + target, HeadDim);
                    var dvRow = new Span<float>(DV + target, HeadDim);
                    TensorPrimitives.Add(dkRow, new ReadOnlySpan<float>(DKParts + part + (long)j * HeadDim, HeadDim), dkRow);
                    TensorPrimitives.Add(dvRow, new ReadOnlySpan<float>(DVParts + part + (long)j * HeadDim, HeadDim), dvRow);
                }
            }
        }
    }
}
