using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Backends;

/// <summary>
/// The CPU training ops at sizes where their blocking and chunking matter (several query-row blocks, several elementwise
/// chunks plus a tail), against float64 references written from the definitions, and AdamW against torch's scalar
/// float32 sequence bit for bit.
/// </summary>
public class CpuTrainingOpsTests
{
    static readonly CpuBackend Be = CpuBackend.Instance;

    static float[] Random(int count, ulong seed, float spread = 1f)
    {
        var r = new Xoshiro256(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)((r.NextDouble() * 2 - 1) * spread);
        return values;
    }

    static float[] Host(Tensor t)
    {
        var values = new float[t.Count];
        Be.ToHost(t, values);
        return values;
    }

    [Fact]
    public void AttentionBackwardMatchesFloat64ReferenceOverPackedRowBlocks()
    {
        // 300 rows in three packed samples: several 128-row blocks whose key ranges start mid-batch.
        int[] positions = [.. Enumerable.Range(0, 140), .. Enumerable.Range(0, 100), .. Enumerable.Range(0, 60)];
        int rows = positions.Length, headDim = 8, heads = 4, kvHeads = 2, group = heads / kvHeads;
        float scale = 1f / MathF.Sqrt(headDim);
        var spans = AttentionSpans.CausalFromPositions(positions);
        float[] qv = Random(rows * heads * headDim, 1), kv = Random(rows * kvHeads * headDim, 2), vv = Random(rows * kvHeads * headDim, 3);
        float[] dov = Random(rows * heads * headDim, 4);
        using var q = Be.FromHost(qv, DType.F32, rows, heads * headDim);
        using var k = Be.FromHost(kv, DType.F32, rows, kvHeads * headDim);
        using var v = Be.FromHost(vv, DType.F32, rows, kvHeads * headDim);
        using var dOut = Be.FromHost(dov, DType.F32, rows, heads * headDim);
        using var output = Be.Allocate(DType.F32, rows, heads * headDim);
        using var lse = Be.Allocate(DType.F32, rows * heads);
        Be.Attention(q, k, v, spans, headDim, scale, output, lse);
        using var dq = Be.Allocate(DType.F32, rows, heads * headDim);
        using var dk = Be.Zeros(DType.F32, rows, kvHeads * headDim);
        using var dv = Be.Zeros(DType.F32, rows, kvHeads * headDim);
        Be.AttentionBackward(dOut, q, k, v, output, lse, spans, headDim, scale, dq, dk, dv);

        var refDq = new double[dq.Count];
        var refDk = new double[dk.Count];
        var refDv = new double[dv.Count];
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < rows; i++)
        {
            int start = spans.KeyStart[i], end = spans.KeyEnd[i], kvh = h / group;
            double Dot(float[] a, int ai, float[] b, int bi) => Enumerable.Range(0, headDim).Sum(d => (double)a[ai + d] * b[bi + d]);
            int qi = (i * heads + h) * headDim;
            var s = Enumerable.Range(start, end - start).Select(j => scale * Dot(qv, qi, kv, (j * kvHeads + kvh) * headDim)).ToArray();
            double max = s.Max();
            var p = s.Select(x => Math.Exp(x - max)).ToArray();
            double sum = p.Sum();
            for (int j = 0; j < p.Length; j++) p[j] /= sum;
            var dp = Enumerable.Range(start, end - start).Select(j => Dot(dov, qi, vv, (j * kvHeads + kvh) * headDim)).ToArray();
            double delta = p.Select((pj, j) => pj * dp[j]).Sum();
            for (int j = 0; j < p.Length; j++)
            {
                double ds = p[j] * (dp[j] - delta) * scale;
                int kj = ((start + j) * kvHeads + kvh) * headDim;
                for (int d = 0; d < headDim; d++)
                {
                    refDq[qi + d] += ds * kv[kj + d];
                    refDk[kj + d] += ds * qv[qi + d];
                    refDv[kj + d] += p[j] * dov[qi + d];
                }
            }
        }
        AssertClose(refDq, Host(dq), 2e-5);
        AssertClose(refDk, Host(dk), 2e-5);
        AssertClose(refDv, Host(dv), 2e-5);
    }

    [Fact]
    public void CrossEntropyMatchesFloat64Reference()
    {
        int rows = 5, vocab = 70001;
        var logits = Random(rows * vocab, 5, spread: 8f);
        int[] labels = [3, -100, 70000, 12345, 0];
        float gradScale = 0.25f;
        using var l = Be.FromHost(logits, DType.F32, rows, vocab);
        using var lab = Be.FromHost(labels, rows);
        using var d = Be.Allocate(DType.F32, rows, vocab);
        var (loss, count, _) = Be.CrossEntropy(l, lab, d, gradScale);
        var grad = Host(d);
        double refLoss = 0;
        var refGrad = new double[grad.Length];
        for (int r = 0; r < rows; r++)
        {
            if (labels[r] == -100) continue;
            var row = logits.AsSpan(r * vocab, vocab).ToArray();
            double max = row.Max(), sum = row.Sum(x => Math.Exp(x - max));
            refLoss += max + Math.Log(sum) - row[labels[r]];
            for (int j = 0; j < vocab; j++) refGrad[r * vocab + j] = Math.Exp(row[j] - max) / sum * gradScale;
            refGrad[r * vocab + labels[r]] -= gradScale;
        }
        Assert.Equal(4, count);
        Assert.Equal(refLoss, loss, 1e-4);
        AssertClose(refGrad, grad, 1e-7);
    }

    [Fact]
    public void AdamWIsTorchsScalarSequenceBitForBit()
    {
        int count = 3 * (1 << 14) + 13;
        float[] p = Random(count, 6), g = Random(count, 7), m = Random(count, 8, 0.1f), v = Random(count, 9, 0.01f).Select(Math.Abs).ToArray();
        using var pt = Be.FromHost(p, DType.F32, count);
        using var gt = Be.FromHost(g, DType.F32, count);
        using var mt = Be.FromHost(m, DType.F32, count);
        using var vt = Be.FromHost(v, DType.F32, count);
        const float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, decay = 0.1f;
        const int step = 3;
        Be.AdamW(pt, gt, mt, vt, lr, beta1, beta2, eps, decay, step);
        float bias2Sqrt = MathF.Sqrt(1f - MathF.Pow(beta2, step)), stepSize = lr / (1f - MathF.Pow(beta1, step));
        for (int i = 0; i < count; i++)
        {
            p[i] *= 1f - lr * decay;
            m[i] += (g[i] - m[i]) * (1f - beta1);
            v[i] = v[i] * beta2 + (1f - beta2) * g[i] * g[i];
            p[i] -= stepSize * m[i] / (MathF.Sqrt(v[i]) / bias2Sqrt + eps);
        }
        Assert.Equal(p, Host(pt));
        Assert.Equal(m, Host(mt));
        Assert.Equal(v, Host(vt));
    }

    [Fact]
    public void SwiGluAndRmsNormBackwardMatchFloat64References()
    {
        int rows = 70, dim = 600;
        float[] gate = Random(rows * dim, 10, 4f), up = Random(rows * dim, 11), dh = Random(rows * dim, 12);
        using var gt = Be.FromHost(gate, DType.F32, rows, dim);
        using var ut = Be.FromHost(up, DType.F32, rows, dim);
        using var dht = Be.FromHost(dh, DType.F32, rows, dim);
        using var dg = Be.Allocate(DType.F32, rows, dim);
        using var du = Be.Allocate(DType.F32, rows, dim);
        Be.SwiGluBackward(dht, gt, ut, dg, du);
        double Sig(double x) => 1 / (1 + Math.Exp(-x));
        AssertClose(gate.Select((x, i) => dh[i] * x * Sig(x)).ToArray(), Host(du), 1e-6);
        AssertClose(gate.Select((x, i) => dh[i] * up[i] * Sig(x) * (1 + x * (1 - Sig(x)))).ToArray(), Host(dg), 1e-6);

        float[] w = Random(dim, 13).Select(x => 1 + 0.2f * x).ToArray(), dxStart = Random(rows * dim, 14), dwStart = Random(dim, 15);
        using var wt = Be.FromHost(w, DType.F32, dim);
        using var y = Be.Allocate(DType.F32, rows, dim);
        using var rstd = Be.Allocate(DType.F32, rows);
        Be.RmsNorm(gt, wt, 1e-6f, y, rstd);
        using var dx = Be.FromHost(dxStart, DType.F32, rows, dim);
        using var dw = Be.FromHost(dwStart, DType.F32, dim);
        Be.RmsNormBackward(dht, gt, wt, rstd, dx, dw, accumulateDx: true);
        var refDx = dxStart.Select(x => (double)x).ToArray();
        var refDw = dwStart.Select(x => (double)x).ToArray();
        for (int r = 0; r < rows; r++)
        {
            var x = gate.AsSpan(r * dim, dim).ToArray();
            double inv = 1 / Math.Sqrt(x.Sum(e => (double)e * e) / dim + 1e-6);
            double dot = 0;
            for (int j = 0; j < dim; j++) dot += dh[r * dim + j] * w[j] * x[j] * inv;
            for (int j = 0; j < dim; j++)
            {
                refDx[r * dim + j] += inv * (dh[r * dim + j] * w[j] - x[j] * inv * dot / dim);
                refDw[j] += dh[r * dim + j] * x[j] * inv;
            }
        }
        AssertClose(refDx, Host(dx), 1e-5);
        AssertClose(refDw, Host(dw), 1e-4);
    }

    [Fact]
    public void DropoutMaskIsThePureFunctionOfSeedAndIndex()
    {
        int count = 2 * (1 << 14) + 5;
        var x = Random(count, 16);
        using var xt = Be.FromHost(x, DType.F32, count);
        using var y = Be.Allocate(DType.F32, count);
        Be.Dropout(xt, 0.3f, 99, y);
        var expected = x.Select((e, i) => CounterRandom.Uniform(99, (ulong)i) < 0.3f ? 0f : e * (1f / 0.7f)).ToArray();
        Assert.Equal(expected, Host(y));
    }

    [Theory]
    [InlineData(0.3f)]
    [InlineData(0f)]
    public void AccumulatingDropoutAddsTheSameMaskedValues(float p)
    {
        int count = 2 * (1 << 14) + 5;
        float[] x = Random(count, 17), start = Random(count, 18);
        using var xt = Be.FromHost(x, DType.F32, count);
        using var y = Be.FromHost(start, DType.F32, count);
        Be.Dropout(xt, p, 99, y, accumulate: true);
        var expected = x.Select((e, i) => start[i] + (CounterRandom.Uniform(99, (ulong)i) < p ? 0f : e * (1f / (1f - p)))).ToArray();
        Assert.Equal(expected, Host(y));
    }

    [Fact]
    public void MultiTensorAdamWAndSumOfSquaresAreThePerTensorOps()
    {
        int[] sizes = [7, 5000, 3 * (1 << 14) + 1];
        var tensors = sizes.Select((n, i) => new AdamWTensor(Be.FromHost(Random(n, (ulong)(20 + i)), DType.F32, n),
                                                             Be.FromHost(Random(n, (ulong)(30 + i)), DType.F32, n),
                                                             Be.FromHost(Random(n, (ulong)(40 + i), 0.1f), DType.F32, n),
                                                             Be.FromHost(Random(n, (ulong)(50 + i), 0.01f).Select(Math.Abs).ToArray(), DType.F32, n),
                                                             i == 1 ? 0f : 0.1f)).ToArray();
        var copies = tensors.Select(t => new AdamWTensor(Be.FromHost(Host(t.Param), DType.F32, t.Param.Shape),
                                                         Be.FromHost(Host(t.Grad), DType.F32, t.Param.Shape),
                                                         Be.FromHost(Host(t.M), DType.F32, t.Param.Shape),
                                                         Be.FromHost(Host(t.V), DType.F32, t.Param.Shape), t.WeightDecay)).ToArray();
        IBackend backend = Be;
        var sums = new double[sizes.Length];
        backend.SumOfSquares(tensors.Select(t => t.Grad).ToArray(), sums);
        for (int i = 0; i < sizes.Length; i++)
        {
            double expected = Host(tensors[i].Grad).Sum(g => (double)g * g);
            Assert.True(Math.Abs(sums[i] - expected) <= 1e-6 * expected, $"tensor {i}: {sums[i]} vs {expected}");
        }
        backend.AdamW(tensors, 1e-3f, 0.9f, 0.999f, 1e-8f, 4);
        foreach (var t in copies) Be.AdamW(t.Param, t.Grad, t.M, t.V, 1e-3f, 0.9f, 0.999f, 1e-8f, t.WeightDecay, 4);
        for (int i = 0; i < sizes.Length; i++)
        {
            Assert.Equal(Host(copies[i].Param), Host(tensors[i].Param));
            Assert.Equal(Host(copies[i].M), Host(tensors[i].M));
            Assert.Equal(Host(copies[i].V), Host(tensors[i].V));
        }
    }

    static void AssertClose(double[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance * (1 + Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
    }
}
