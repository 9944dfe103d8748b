using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Tests.Adapters;

/// <summary>
/// A linear layer with a LoRA branch under active dropout, forward and backward, against a float64 reference written from
/// PEFT's definition (x_d = x⊙mask/(1−p), y = x·Wᵀ + b + s·x_d·Aᵀ·Bᵀ), the mask regenerated in the backward.
/// </summary>
public class LoraDropoutTests
{
    static readonly CpuBackend Be = CpuBackend.Instance;

    static float[] Random(int count, ulong seed)
    {
        var r = new Xoshiro256(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>One layer alone, or two layers that read the same x (as a block's q and k) run as one shared forward and backward.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ForwardAndBackwardMatchFloat64Reference(int layerCount)
    {
        const int rows = 6, inF = 40, outF = 24, rank = 4;
        const float scale = 2f, p = 0.3f, dxStartScale = 0.5f;
        float[] x = Random(rows * inF, 5), dxStart = Random(rows * inF, 7).Select(v => v * dxStartScale).ToArray();
        using var grads = new GradientSet(Be);
        using var pass = new LoraPass(seed: 5);
        using var xt = Be.FromHost(x, DType.F32, rows, inF);
        using var dxt = Be.FromHost(dxStart, DType.F32, rows, inF);
        var layers = new (Linear Layer, Tensor Output)[layerCount];
        var dys = new (Linear Layer, Tensor Dy)[layerCount];
        var dx = dxStart.Select(v => (double)v).ToArray();
        var expected = new List<(double[] Y, double[] DA, double[] DB, LoraBranch Branch)>();
        try
        {
            for (int l = 0; l < layerCount; l++)
            {
                ulong s = 10 * (ulong)l;
                float[] w = Random(outF * inF, s + 1), bias = Random(outF, s + 2), a = Random(rank * inF, s + 3), b = Random(outF * rank, s + 4),
                        dy = Random(rows * outF, s + 6);
                var linear = new Linear($"layer.proj{l}", Be.FromHost(w, DType.F32, outF, inF), Be.FromHost(bias, DType.F32, outF));
                var branch = new LoraBranch("default", Be.FromHost(a, DType.F32, rank, inF), Be.FromHost(b, DType.F32, outF, rank), scale, p) { StreamId = 9 + (ulong)l };
                linear.Adapters.Add(branch);
                grads.Add($"A{l}", branch.A);
                grads.Add($"B{l}", branch.B);
                layers[l] = (linear, Be.Allocate(DType.F32, rows, outF));
                dys[l] = (linear, Be.FromHost(dy, DType.F32, rows, outF));
                var (y, dA, dB) = Reference(x, w, bias, a, b, dy, pass.SeedFor(branch), rows, inF, outF, rank, scale, p, dx);
                expected.Add((y, dA, dB, branch));
            }
            Linear.ForwardTrainShared(Be, xt, pass, hiddensKept: false, layers);
            Linear.BackwardShared(Be, xt, dxt, accumulateDx: true, pass, grads, dys);
            for (int l = 0; l < layerCount; l++)
            {
                AssertClose(expected[l].Y, layers[l].Output);
                AssertClose(expected[l].DA, grads.GradientOf(expected[l].Branch.A));
                AssertClose(expected[l].DB, grads.GradientOf(expected[l].Branch.B));
            }
            AssertClose(dx, dxt);
        }
        finally
        {
            foreach (var (layer, output) in layers) { layer?.Dispose(); output?.Dispose(); }
            foreach (var (_, dy) in dys) dy?.Dispose();
        }
    }

    /// <summary>PEFT's definition in float64 for one layer: returns y, dA and dB, and adds the layer's part of dx to <paramref name="dx"/>.</summary>
    static (double[] Y, double[] DA, double[] DB) Reference(float[] x, float[] w, float[] bias, float[] a, float[] b, float[] dy, ulong seed,
                                                             int rows, int inF, int outF, int rank, float scale, float p, double[] dx)
    {
        var mask = Enumerable.Range(0, rows * inF).Select(i => CounterRandom.Uniform(seed, (ulong)i) < p ? 0.0 : 1.0 / (1.0 - p)).ToArray();
        Assert.Contains(0.0, mask);
        var xd = x.Select((v, i) => v * mask[i]).ToArray();
        var t = new double[rows * rank];
        var dt = new double[rows * rank];
        var y = new double[rows * outF];
        var dA = new double[rank * inF];
        var dB = new double[outF * rank];
        for (int r = 0; r < rows; r++)
        {
            for (int j = 0; j < rank; j++)
                for (int c = 0; c < inF; c++) t[r * rank + j] += xd[r * inF + c] * a[j * inF + c];
            for (int o = 0; o < outF; o++)
            {
                double v = bias[o];
                for (int c = 0; c < inF; c++) v += x[r * inF + c] * (double)w[o * inF + c];
                for (int j = 0; j < rank; j++) v += scale * t[r * rank + j] * b[o * rank + j];
                y[r * outF + o] = v;
                for (int j = 0; j < rank; j++)
                {
                    dt[r * rank + j] += scale * dy[r * outF + o] * b[o * rank + j];
                    dB[o * rank + j] += scale * dy[r * outF + o] * t[r * rank + j];
                }
            }
            for (int c = 0; c < inF; c++)
            {
                double g = 0;
                for (int o = 0; o < outF; o++) g += dy[r * outF + o] * (double)w[o * inF + c];
                double lora = 0;
                for (int j = 0; j < rank; j++)
                {
                    lora += dt[r * rank + j] * a[j * inF + c];
                    dA[j * inF + c] += dt[r * rank + j] * xd[r * inF + c];
                }
                dx[r * inF + c] += g + lora * mask[r * inF + c];
            }
        }
        return (y, dA, dB);
    }

    static void AssertClose(double[] expected, Tensor actual)
    {
        var got = actual.AsSpan().ToArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {got[i]}");
    }
}
