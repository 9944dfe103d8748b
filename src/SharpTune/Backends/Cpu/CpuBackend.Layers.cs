using System.Buffers;
using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed unsafe partial class CpuBackend
{
    public void Embedding(Tensor table, Tensor ids, Tensor output)
    {
        var idSpan = ids.AsIntSpan();
        int dim = table.RowLength;
        var outSpan = output.AsSpan();
        for (int i = 0; i < idSpan.Length; i++)
        {
            int id = idSpan[i];
            if ((uint)id >= (uint)table.Rows) throw new SharpTuneException($"token id {id} is outside the vocabulary of {table.Rows}");
            var dst = outSpan.Slice(i * dim, dim);
            switch (table.DType)
            {
                case DType.F32: new ReadOnlySpan<float>(table.F32 + (long)id * dim, dim).CopyTo(dst); break;
                case DType.BF16: FloatConversions.BF16ToF32(new ReadOnlySpan<ushort>((ushort*)table.Address + (long)id * dim, dim), dst); break;
                case DType.F16: FloatConversions.F16ToF32(new ReadOnlySpan<Half>((Half*)table.Address + (long)id * dim, dim), dst); break;
                default: throw new NotSupportedException($"embedding table of {table.DType}");
            }
        }
    }

    public void EmbeddingBackward(Tensor dOutput, Tensor ids, Tensor dTable)
    {
        var idSpan = ids.AsIntSpan();
        int dim = dTable.RowLength;
        var d = dOutput.AsSpan();
        for (int i = 0; i < idSpan.Length; i++)
        {
            var row = new Span<float>(dTable.F32 + (long)idSpan[i] * dim, dim);
            TensorPrimitives.Add(row, d.Slice(i * dim, dim), row);
        }
    }

    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y, Tensor? rstd)
    {
        int dim = (int)weight.Count;
        int rows = (int)(x.Count / dim);
        var xs = x.AsSpan();
        var ys = y.AsSpan();
        var w = weight.AsSpan();
        var r = rstd == null ? default : rstd.AsSpan();
        for (int i = 0; i < rows; i++)
        {
            var xr = xs.Slice(i * dim, dim);
            float inv = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(xr) / dim + eps);
            if (rstd != null) r[i] = inv;
            var yr = ys.Slice(i * dim, dim);
            TensorPrimitives.Multiply(xr, inv, yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
    }

    /// <summary>
    /// Rows in fixed blocks, one task each; a block sums its own dWeight partial, and the partials are added in block order,
    /// so the result does not depend on the thread count or timing.
    /// </summary>
    public void RmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor? dWeight, bool accumulateDx)
    {
        int dim = (int)weight.Count;
        int rows = (int)(x.Count / dim);
        int blocks = (rows + RmsNormBackwardJob.BlockRows - 1) / RmsNormBackwardJob.BlockRows;
        var job = new RmsNormBackwardJob
        {
            Dy = dy.F32, X = x.F32, W = weight.F32, Rstd = rstd.F32, Dx = dx.F32, Dim = dim, Rows = rows, Accumulate = accumulateDx,
            Partials = dWeight == null ? null : new float[blocks * dim],
        };
        ParallelRunner.Default.For(blocks, job, static (j, b) => j.Block(b));
        if (dWeight == null) return;
        var dw = dWeight.AsSpan();
        for (int b = 0; b < blocks; b++) TensorPrimitives.Add(dw, job.Partials.AsSpan(b * dim, dim), dw);
    }

    sealed class RmsNormBackwardJob
    {
        public const int BlockRows = 32;
        public float* Dy, X, W, Rstd, Dx;
        public int Dim, Rows;
        public bool Accumulate;
        public float[]? Partials;

        public void Block(int block)
        {
            var w = new ReadOnlySpan<float>(W, Dim);
            float[] rented = ArrayPool<float>.Shared.Rent(2 * Dim);
            var g = rented.AsSpan(0, Dim);
            var xhat = rented.AsSpan(Dim, Dim);
            var partial = Partials == null ? default : Partials.AsSpan(block * Dim, Dim);
            for (int i = block * BlockRows; i < Math.Min(Rows, (block + 1) * BlockRows); i++)
            {
                var xr = new ReadOnlySpan<float>(X + (long)i * Dim, Dim);
                var dyr = new ReadOnlySpan<float>(Dy + (long)i * Dim, Dim);
                var dxr = new Span<float>(Dx + (long)i * Dim, Dim);
                float inv = Rstd[i];
                // y = w ⊙ x̂ with x̂ = x·inv; dx = inv·(g − x̂·mean(g⊙x̂)) where g = dy ⊙ w.
                TensorPrimitives.Multiply(dyr, w, g);
                TensorPrimitives.Multiply(xr, inv, xhat);
                float dot = TensorPrimitives.Dot(g, xhat) / Dim;
                TensorPrimitives.MultiplyAdd(xhat, -dot, g, g);
                if (Accumulate) TensorPrimitives.MultiplyAdd(g, inv, dxr, dxr);
                else TensorPrimitives.Multiply(g, inv, dxr);
                if (Partials != null) TensorPrimitives.MultiplyAdd(dyr, xhat, partial, partial);
            }
            ArrayPool<float>.Shared.Return(rented);
        }
    }

    public void AddBias(Tensor y, Tensor bias)
    {
        int dim = (int)bias.Count;
        var ys = y.AsSpan();
        var b = bias.AsSpan();
        for (int i = 0; i < ys.Length; i += dim)
        {
            var row = ys.Slice(i, dim);
            TensorPrimitives.Add(row, b, row);
        }
    }

    public void BiasBackward(Tensor dy, Tensor dBias)
    {
        int dim = (int)dBias.Count;
        var d = dy.AsSpan();
        var db = dBias.AsSpan();
        for (int i = 0; i < d.Length; i += dim) TensorPrimitives.Add(db, d.Slice(i, dim), db);
    }

    public void Rope(Tensor x, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse)
    {
        var pos = positions.AsIntSpan();
        var freq = invFreq.AsSpan();
        int width = x.RowLength;
        int half = headDim / 2;
        var xs = x.AsSpan();
        Span<float> cos = stackalloc float[half];
        Span<float> sin = stackalloc float[half];
        for (int row = 0; row < pos.Length; row++)
        {
            for (int j = 0; j < half; j++)
            {
                // As transformers: the angle is a float32 product, cos/sin scaled by the attention scaling.
                float angle = pos[row] * freq[j];
                cos[j] = (float)Math.Cos(angle) * attentionScaling;
                float s = (float)Math.Sin(angle) * attentionScaling;
                sin[j] = inverse ? -s : s;
            }
            var xr = xs.Slice(row * width, width);
            for (int h = 0; h < width; h += headDim)
            {
                for (int j = 0; j < half; j++)
                {
                    float a = xr[h + j], b = xr[h + j + half];
                    xr[h + j] = a * cos[j] - b * sin[j];
                    xr[h + j + half] = b * cos[j] + a * sin[j];
                }
            }
        }
    }

    public void ArgMax(Tensor x, Span<int> indices)
    {
        if (indices.Length != x.Rows) throw new ArgumentException($"argmax of {x.Rows} rows into {indices.Length} indices");
        var values = x.AsSpan();
        int cols = x.RowLength;
        for (int r = 0; r < indices.Length; r++) indices[r] = TensorPrimitives.IndexOfMax(values.Slice(r * cols, cols));
    }

    public void SwiGlu(Tensor gate, Tensor up, Tensor h)
    {
        // silu(g)·u = g·sigmoid(g)·u, vectorized (TensorPrimitives' sigmoid uses a SIMD exp).
        var g = gate.AsSpan();
        var o = h.AsSpan();
        TensorPrimitives.Sigmoid(g, o);
        TensorPrimitives.Multiply(o, g, o);
        TensorPrimitives.Multiply(o, up.AsSpan(), o);
    }

    /// <summary>Fixed chunks in parallel, each in L1-sized pieces through the vectorized sigmoid of TensorPrimitives.</summary>
    public void SwiGluBackward(Tensor dh, Tensor gate, Tensor up, Tensor dGate, Tensor dUp)
    {
        var job = new SwiGluBackwardJob { Dh = dh.F32, Gate = gate.F32, Up = up.F32, DGate = dGate.F32, DUp = dUp.F32, Count = gate.Count };
        ParallelRunner.Default.For(Chunks(gate.Count), job, static (j, c) => j.Chunk(c));
    }

    sealed class SwiGluBackwardJob
    {
        const int Piece = 1024;
        public float* Dh, Gate, Up, DGate, DUp;
        public long Count;

        public void Chunk(int chunk)
        {
            Span<float> sig = stackalloc float[Piece];
            Span<float> t = stackalloc float[Piece];
            long end = Math.Min(Count, (long)(chunk + 1) * ElementwiseChunk);
            for (long start = (long)chunk * ElementwiseChunk; start < end; start += Piece)
            {
                int n = (int)Math.Min(Piece, end - start);
                var x = new ReadOnlySpan<float>(Gate + start, n);
                var d = new ReadOnlySpan<float>(Dh + start, n);
                var s = sig[..n];
                var tmp = t[..n];
                TensorPrimitives.Sigmoid(x, s);
                // dUp = d·silu(x) = d·x·σ; dGate = d·up·σ·(1 + x·(1 − σ)).
                TensorPrimitives.Multiply(x, s, tmp);
                TensorPrimitives.Multiply(d, tmp, new Span<float>(DUp + start, n));
                TensorPrimitives.Subtract(1f, s, tmp);
                TensorPrimitives.MultiplyAdd(x, tmp, 1f, tmp);
                TensorPrimitives.Multiply(tmp, s, tmp);
                TensorPrimitives.Multiply(tmp, new ReadOnlySpan<float>(Up + start, n), tmp);
                TensorPrimitives.Multiply(tmp, d, new Span<float>(DGate + start, n));
            }
        }
    }
}
