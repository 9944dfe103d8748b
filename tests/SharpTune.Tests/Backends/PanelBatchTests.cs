using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Backends;

/// <summary>
/// Products of a few rows against weights packed once for batched decoding (CpuBackend.PackForFewRows / MatMulPacked):
/// against a float64 reference on the (bf16-rounded) weights, at row counts inside and outside the packed range, widths
/// that are not a multiple of the 16-row panel, and bit-identical for any thread count.
/// </summary>
public unsafe class PanelBatchTests
{
    static readonly CpuBackend Cpu = CpuBackend.Instance;

    [Theory]
    [InlineData(5, 16, 64, DType.BF16)]
    [InlineData(6, 37, 300, DType.BF16)]
    [InlineData(16, 96, 896, DType.BF16)]
    [InlineData(17, 50, 257, DType.F32)]
    [InlineData(32, 33, 129, DType.BF16)]
    [InlineData(3, 40, 70, DType.BF16)]
    [InlineData(40, 40, 70, DType.F32)]
    public void MatchesFloat64ReferenceOnTheStoredWeights(int m, int n, int k, DType dtype)
    {
        var rng = new Random(m * 131 + n * 7 + k);
        var w = Random(rng, n * k);
        var x = Random(rng, m * k);
        using var weight = Cpu.FromHost(w, dtype, n, k);
        using var packed = Cpu.PackForFewRows(weight)!;
        using var input = Cpu.FromHost(x, DType.F32, m, k);
        using var output = Cpu.Allocate(DType.F32, m, n);
        Cpu.MatMulPacked(input, weight, packed, output);
        var stored = new float[n * k];
        Cpu.ToHost(weight, stored);
        var y = new float[m * n];
        Cpu.ToHost(output, y);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double exact = 0, magnitude = 0;
            for (int p = 0; p < k; p++)
            {
                double term = (double)x[i * k + p] * stored[j * k + p];
                exact += term;
                magnitude += Math.Abs(term);
            }
            Assert.True(Math.Abs(y[i * n + j] - exact) <= 1e-5 * Math.Sqrt(k) * magnitude + 1e-30, $"({i},{j}): {y[i * n + j]} vs {exact}");
        }
    }

    [Fact]
    public void ResultsAreBitIdenticalForAnyThreadCount()
    {
        const int m = 16, n = 200, k = 500;
        var rng = new Random(3);
        var w = Random(rng, n * k).Select(FloatConversions.F32ToBF16).ToArray();
        var x = Random(rng, m * k);
        int[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var runner = new ParallelRunner(threads);
            var packed = new ushort[CpuPanelBatch.PackedLength(n, k)];
            var y = new float[m * n];
            fixed (ushort* pw = w, pp = packed)
            fixed (float* px = x, py = y)
            {
                CpuPanelBatch.Pack(n, k, pw, k, pp, runner);
                CpuPanelBatch.RowsTimesPanels<ushort, BF16Loader>(m, n, k, px, k, pp, py, n, runner);
            }
            var bits = y.Select(BitConverter.SingleToInt32Bits).ToArray();
            if (first == null) first = bits;
            else Assert.Equal(first, bits);
        }
    }

    static float[] Random(Random rng, int length) => Enumerable.Range(0, length).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
}
