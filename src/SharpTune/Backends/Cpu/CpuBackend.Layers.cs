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

    public void RmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor? dWeight, bool accumulateDx)
    {
        int dim = (int)weight.Count;
        int rows = (int)(x.Count / dim);
        var xs = x.AsSpan();
        var dys = dy.AsSpan();
        var dxs = dx.AsSpan();
        var w = weight.AsSpan();
        var r = rstd.AsSpan();
        var dw = dWeight == null ? default : dWeight.AsSpan();
        Span<float> g = dim <= 4096 ? stackalloc float[dim] : new float[dim];
        for (int i = 0; i < rows; i++)
        {
            var xr = xs.Slice(i * dim, dim);
            var dyr = dys.Slice(i * dim, dim);
            float inv = r[i];
            // y = w ⊙ x̂ with x̂ = x·inv; dx = inv·(g − x̂·mean(g⊙x̂)) where g = dy ⊙ w.
            TensorPrimitives.Multiply(dyr, w, g);
            float dot = TensorPrimitives.Dot(g, xr) * inv / dim;
            var dxr = dxs.Slice(i * dim, dim);
            for (int j = 0; j < dim; j++)
            {
                float xhat = xr[j] * inv;
                float v = inv * (g[j] - xhat * dot);
                dxr[j] = accumulateDx ? dxr[j] + v : v;
                if (dWeight != null) dw[j] += dyr[j] * xhat;
            }
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

    public void SwiGlu(Tensor gate, Tensor up, Tensor h)
    {
        var g = gate.AsSpan();
        var u = up.AsSpan();
        var o = h.AsSpan();
        for (int i = 0; i < g.Length; i++)
        {
            float x = g[i];
            o[i] = x / (1f + MathF.Exp(-x)) * u[i];
        }
    }

    public void SwiGluBackward(Tensor dh, Tensor gate, Tensor up, Tensor dGate, Tensor dUp)
    {
        var d = dh.AsSpan();
        var g = gate.AsSpan();
        var u = up.AsSpan();
        var dg = dGate.AsSpan();
        var du = dUp.AsSpan();
        for (int i = 0; i < g.Length; i++)
        {
            float x = g[i];
            float sig = 1f / (1f + MathF.Exp(-x));
            float silu = x * sig;
            du[i] = d[i] * silu;
            dg[i] = d[i] * u[i] * sig * (1f + x * (1f - sig));
        }
    }
}
