using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Tests.Adapters;

/// <summary>
/// A linear layer with a LoRA branch under active dropout, forward and backward, against a float64 reference written from
/// PEFT's definition (x_d = x⊙mask/(1−p), y = x·Wᵀ + b + s·x_d·Aᵀ·Bᵀ), with the dropped-out input kept from the forward
/// and regenerated in the backward.
/// </summary>
public class LoraDropoutTests
{
    static readonly CpuBackend Be = CpuBackend.Instance;

    static float[] Random(int count, ulong seed)
    {
        var r = new Xoshiro256(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ForwardAndBackwardMatchFloat64Reference(bool keepDroppedInputs)
    {
        const int rows = 6, inF = 40, outF = 24, rank = 4;
        const float scale = 2f, p = 0.3f, dxStartScale = 0.5f;
        float[] w = Random(outF * inF, 1), bias = Random(outF, 2), a = Random(rank * inF, 3), b = Random(outF * rank, 4),
                x = Random(rows * inF, 5), dy = Random(rows * outF, 6), dxStart = Random(rows * inF, 7).Select(v => v * dxStartScale).ToArray();
        using var linear = new Linear("layer.q_proj", Be.FromHost(w, DType.F32, outF, inF), Be.FromHost(bias, DType.F32, outF));
        var branch = new LoraBranch("default", Be.FromHost(a, DType.F32, rank, inF), Be.FromHost(b, DType.F32, outF, rank), scale, p) { StreamId = 9 };
        linear.Adapters.Add(branch);
        using var grads = new GradientSet(Be);
        grads.Add("A", branch.A);
        grads.Add("B", branch.B);
        using var pass = new LoraPass(seed: 5) { KeepDroppedInputs = keepDroppedInputs };
        using var xt = Be.FromHost(x, DType.F32, rows, inF);
        using var yt = Be.Allocate(DType.F32, rows, outF);
        linear.ForwardTrain(Be, xt, yt, pass);
        using var dyt = Be.FromHost(dy, DType.F32, rows, outF);
        using var dxt = Be.FromHost(dxStart, DType.F32, rows, inF);
        linear.Backward(Be, xt, dyt, dxt, accumulateDx: true, pass, grads);

        ulong seed = pass.SeedFor(branch);
        var mask = Enumerable.Range(0, rows * inF).Select(i => CounterRandom.Uniform(seed, (ulong)i) < p ? 0.0 : 1.0 / (1.0 - p)).ToArray();
        Assert.Contains(0.0, mask);
        var xd = x.Select((v, i) => v * mask[i]).ToArray();
        var t = new double[rows * rank];
        var dt = new double[rows * rank];
        var y = new double[rows * outF];
        var dx = dxStart.Select(v => (double)v).ToArray();
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
        AssertClose(y, yt);
        AssertClose(dx, dxt);
        AssertClose(dA, grads.GradientOf(branch.A));
        AssertClose(dB, grads.GradientOf(branch.B));
    }

    static void AssertClose(double[] expected, Tensor actual)
    {
        var got = actual.AsSpan().ToArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {got[i]}");
    }
}
