using SharpTune.Backends.Cpu;
using SharpTune.Inference;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Tokenization;
using SharpTune.Training;

namespace SharpTune.Tests.Backends;

/// <summary>
/// The fused inference ops (linear with bias and residual, grouped linears, SwiGLU-linear, argmax) on the CPU against
/// float64 references written from their definitions, and the decoding path built on them against the training forward.
/// </summary>
public class DecodeOpsTests
{
    static readonly CpuBackend Be = CpuBackend.Instance;

    static float[] Random(int count, ulong seed)
    {
        var r = new Xoshiro256(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(r.NextDouble() * 2 - 1);
        return values;
    }

    static float[] Host(Tensor t)
    {
        var values = new float[t.Count];
        Be.ToHost(t, values);
        return values;
    }

    /// <summary>x·Wᵀ in float64 for x [m, k] and W [n, k] given as host values.</summary>
    static double[] Product(float[] x, float[] w, int m, int n, int k)
    {
        var y = new double[m * n];
        for (int r = 0; r < m; r++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int i = 0; i < k; i++) s += (double)x[r * k + i] * w[j * k + i];
            y[r * n + j] = s;
        }
        return y;
    }

    static void AssertClose(double[] expected, float[] got, double tolerance)
    {
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(got[i] - expected[i]) <= tolerance * (1 + Math.Abs(expected[i])), $"element {i}: {got[i]} vs {expected[i]}");
    }

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void LinearAddsBiasAndResidual(DType weightType)
    {
        const int m = 3, n = 20, k = 24;
        float[] xv = Random(m * k, 1), yv = Random(m * n, 3), bv = Random(n, 4);
        using var x = Be.FromHost(xv, DType.F32, m, k);
        using var w = Be.FromHost(Random(n * k, 2), weightType, n, k);
        using var bias = Be.FromHost(bv, DType.F32, n);
        using var y = Be.FromHost(yv, DType.F32, m, n);
        ((IBackend)Be).Linear(x, w, bias, y, beta: 1f);
        var expected = Product(xv, Host(w), m, n, k);
        for (int i = 0; i < expected.Length; i++) expected[i] += bv[i % n] + yv[i];
        AssertClose(expected, Host(y), 1e-5);
    }

    [Fact]
    public void GroupedLinearsMatchEachLayer()
    {
        const int m = 2, k = 16;
        int[] widths = [16, 8, 8];
        float[] xv = Random(m * k, 10);
        using var x = Be.FromHost(xv, DType.F32, m, k);
        var weights = widths.Select((n, i) => Be.FromHost(Random(n * k, 20 + (ulong)i), DType.BF16, n, k)).ToArray();
        var biases = widths.Select((n, i) => Be.FromHost(Random(n, 30 + (ulong)i), DType.F32, n)).ToArray();
        var outputs = widths.Select(n => Be.Allocate(DType.F32, m, n)).ToArray();
        ((IBackend)Be).Linear(x, [.. widths.Select((_, i) => new LinearOutput(weights[i], i == 1 ? null : biases[i], outputs[i]))]);
        for (int i = 0; i < widths.Length; i++)
        {
            var expected = Product(xv, Host(weights[i]), m, widths[i], k);
            var b = Host(biases[i]);
            if (i != 1) for (int e = 0; e < expected.Length; e++) expected[e] += b[e % widths[i]];
            AssertClose(expected, Host(outputs[i]), 1e-5);
        }
        foreach (var t in weights.Concat(biases).Concat(outputs)) t.Dispose();
    }

    [Fact]
    public void SwiGluLinearIsSiluOfGateTimesUp()
    {
        const int m = 4, n = 12, k = 32;
        float[] xv = Random(m * k, 40);
        using var x = Be.FromHost(xv, DType.F32, m, k);
        using var gate = Be.FromHost(Random(n * k, 41), DType.BF16, n, k);
        using var up = Be.FromHost(Random(n * k, 42), DType.BF16, n, k);
        using var h = Be.Allocate(DType.F32, m, n);
        ((IBackend)Be).SwiGluLinear(x, gate, up, h);
        var g = Product(xv, Host(gate), m, n, k);
        var u = Product(xv, Host(up), m, n, k);
        AssertClose([.. g.Select((v, i) => v / (1 + Math.Exp(-v)) * u[i])], Host(h), 1e-5);
    }

    [Fact]
    public void ArgMaxIsTheFirstIndexOfEachRowsMaximum()
    {
        float nan = float.NaN, inf = float.PositiveInfinity;
        float[] values = [1, 5, 5, 2, /**/ -3, -1, -2, -1, /**/ 0, nan, 9, nan, /**/ -inf, -inf, -inf, -inf];
        using var x = Be.FromHost(values, DType.F32, 4, 4);
        var indices = new int[4];
        Be.ArgMax(x, indices);
        Assert.Equal([1, 1, 1, 0], indices);
    }

    [Fact]
    public void RopeQueryKeyRotatesBothHalvesOfEveryHead()
    {
        const int headDim = 8, rows = 2;
        int[] widths = [3 * headDim, headDim];
        int[] positions = [5, 300];
        float[] invFreq = [1f, 0.1f, 0.01f, 0.001f];
        const double scaling = 1.5;
        var values = widths.Select((w, i) => Random(rows * w, 60 + (ulong)i)).ToArray();
        using var q = Be.FromHost(values[0], DType.F32, rows, widths[0]);
        using var k = Be.FromHost(values[1], DType.F32, rows, widths[1]);
        using var pos = Be.FromHost(positions, rows);
        using var inv = Be.FromHost(invFreq, DType.F32, headDim / 2);
        ((IBackend)Be).RopeQueryKey(q, k, pos, inv, headDim, (float)scaling);
        foreach (var (tensor, x, width) in new[] { (q, values[0], widths[0]), (k, values[1], widths[1]) })
        {
            var expected = new double[x.Length];
            for (int r = 0; r < rows; r++)
            for (int h = 0; h < width / headDim; h++)
            for (int j = 0; j < headDim / 2; j++)
            {
                double angle = (double)(float)(positions[r] * invFreq[j]), c = Math.Cos(angle) * scaling, s = Math.Sin(angle) * scaling;
                int at = r * width + h * headDim + j;
                double a = x[at], b = x[at + headDim / 2];
                expected[at] = a * c - b * s;
                expected[at + headDim / 2] = b * c + a * s;
            }
            AssertClose(expected, Host(tensor), 1e-5);
        }
    }

    [Fact]
    public void AttentionDecodeIsSoftmaxAttentionOverEachRowsSpan()
    {
        const int heads = 4, kvHeads = 2, headDim = 8, keys = 30;
        var spans = new AttentionSpans([0, 5], [29, 30]);
        float[] qv = Random(2 * heads * headDim, 50), kv = Random(keys * kvHeads * headDim, 51), vv = Random(keys * kvHeads * headDim, 52);
        using var q = Be.FromHost(qv, DType.F32, 2, heads * headDim);
        using var k = Be.FromHost(kv, DType.F32, keys, kvHeads * headDim);
        using var v = Be.FromHost(vv, DType.F32, keys, kvHeads * headDim);
        using var output = Be.Allocate(DType.F32, 2, heads * headDim);
        double scale = 1 / Math.Sqrt(headDim);
        ((IBackend)Be).AttentionDecode(q, k, v, spans, headDim, (float)scale, output);
        var expected = new double[output.Count];
        for (int r = 0; r < 2; r++)
        for (int h = 0; h < heads; h++)
        {
            int kvh = h / (heads / kvHeads);
            var keyRange = Enumerable.Range(spans.KeyStart[r], spans.KeyEnd[r] - spans.KeyStart[r]).ToArray();
            var scores = keyRange.Select(j => scale * Enumerable.Range(0, headDim)
                .Sum(d => (double)qv[(r * heads + h) * headDim + d] * kv[(j * kvHeads + kvh) * headDim + d])).ToArray();
            double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
            for (int d = 0; d < headDim; d++)
                expected[(r * heads + h) * headDim + d] = keyRange.Select((j, i) => Math.Exp(scores[i] - max) / sum * vv[(j * kvHeads + kvh) * headDim + d]).Sum();
        }
        AssertClose(expected, Host(output), 1e-5);
    }

    /// <summary>
    /// Token-by-token decoding through the KV cache (fused ops, keys written into the cache) gives the logits of the
    /// training forward: its cross-entropy over a sequence equals <see cref="CausalLmStep.Evaluate"/>'s loss.
    /// </summary>
    [Theory]
    [InlineData("llama")]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    public void DecodingMatchesTheTrainingForward(string modelType)
    {
        using var model = TransformerModel.Load(TinyModel.Create(modelType), Be);
        int[] ids = [1, 7, 3, 22, 9, 31, 4, 15, 2, 38];
        double lossSum = 0;
        using (var cache = model.NewCache(ids.Length))
            for (int t = 0; t + 1 < ids.Length; t++)
            {
                using var logits = model.Forward(ids.AsSpan(t, 1), cache);
                var row = Host(logits);
                double max = row.Max(), logZ = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
                lossSum += logZ - row[ids[t + 1]];
            }
        var stats = new CausalLmStep(model, gradientCheckpointing: false).Evaluate(TrainingBatch.FromRows([ids], [ids]));
        double decoded = lossSum / (ids.Length - 1);
        Assert.True(Math.Abs(decoded - stats.MeanLoss) < 1e-5 * stats.MeanLoss, $"decoded loss {decoded} vs evaluated {stats.MeanLoss}");
    }

    [Fact]
    public void GreedyGenerationPicksTheSameTokensFromTheArgMaxAsFromTheLogits()
    {
        using var model = TransformerModel.Load(TestData.BundledModel, Be);
        var argMax = new SamplingOptions { Temperature = 0f, MaxNewTokens = 40 };
        Assert.True(argMax.IsArgMax);
        GenerateOnTheBackendAndFromTheLogits(BundledGenerator(model), argMax);
    }

    [Fact]
    public void SampledGenerationDrawsTheSameTokensOnTheBackendAsFromTheLogits()
    {
        using var model = TransformerModel.Load(TestData.BundledModel, Be);
        var generator = BundledGenerator(model);
        var draw = new SamplingOptions { Temperature = 0.9f, TopK = 20, TopP = 0.9f, Seed = 5, MaxNewTokens = 40 };
        Assert.True(draw.IsPlainDraw);
        var tokens = GenerateOnTheBackendAndFromTheLogits(generator, draw);
        // The draws follow the seed: another seed, another text; and they are not the greedy text.
        Assert.NotEqual(tokens, generator.Generate([1], draw with { Seed = 6 }).TokenIds);
        Assert.NotEqual(tokens, generator.Generate([1], draw with { Temperature = 0f }).TokenIds);
    }

    /// <summary>
    /// Generates with <paramref name="options"/> (the token picked where the logits are) and with logprobs on (the logits
    /// brought to the host sampler): the same 40 tokens and text.
    /// </summary>
    static IReadOnlyList<int> GenerateOnTheBackendAndFromTheLogits(Generator generator, SamplingOptions options)
    {
        var viaLogits = options with { Logprobs = true };
        Assert.False(viaLogits.IsArgMax || viaLogits.IsPlainDraw);
        var a = generator.Generate([1], options);
        var b = generator.Generate([1], viaLogits);
        Assert.Equal(40, a.TokenIds.Count);
        Assert.Equal(b.TokenIds, a.TokenIds);
        Assert.Equal(b.Text, a.Text);
        return a.TokenIds;
    }

    static Generator BundledGenerator(TransformerModel model) => new(model, Tokenizer.FromModelDirectory(TestData.BundledModel));

    [Theory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    public void NormLinearIsTheProductsOfTheNormedRows(DType weightType)
    {
        const int m = 2, n = 12, k = 16;
        const float eps = 1e-5f;
        float[] xv = Random(m * k, 80), gv = Random(k, 81), bv = Random(n, 82);
        using var x = Be.FromHost(xv, DType.F32, m, k);
        using var g = Be.FromHost(gv, DType.F32, k);
        using var w = Be.FromHost(Random(n * k, 83), weightType, n, k);
        using var b = Be.FromHost(bv, DType.F32, n);
        using var y = Be.Allocate(DType.F32, m, n);
        using var h = Be.Allocate(DType.F32, m, n);
        ((IBackend)Be).NormLinear(x, g, eps, [new LinearOutput(w, b, y)]);
        ((IBackend)Be).NormSwiGluLinear(x, g, eps, w, w, h);
        var normed = new float[m * k];
        for (int r = 0; r < m; r++)
        {
            double ss = 0;
            for (int i = 0; i < k; i++) ss += (double)xv[r * k + i] * xv[r * k + i];
            double inv = 1 / Math.Sqrt(ss / k + eps);
            for (int i = 0; i < k; i++) normed[r * k + i] = (float)(xv[r * k + i] * inv * gv[i]);
        }
        var product = Product(normed, Host(w), m, n, k);
        AssertClose([.. product.Select((v, i) => v + bv[i % n])], Host(y), 1e-5);
        AssertClose([.. product.Select(v => v / (1 + Math.Exp(-v)) * v)], Host(h), 1e-5);
    }

    [Fact]
    public void RopeAppendRotatesAndStoresTheNewRowsAtTheirPositions()
    {
        const int headDim = 8, rows = 2, kvWidth = 2 * headDim, capacity = 10;
        int[] positions = [6, 3];
        float[] invFreq = [1f, 0.1f, 0.01f, 0.001f];
        float[] qv = Random(rows * 4 * headDim, 90), kv = Random(rows * kvWidth, 91), vv = Random(rows * kvWidth, 92);
        using var inv = Be.FromHost(invFreq, DType.F32, headDim / 2);
        using var pos = Be.FromHost(positions, rows);
        using var q = Be.FromHost(qv, DType.F32, rows, 4 * headDim);
        using var k = Be.FromHost(kv, DType.F32, rows, kvWidth);
        using var v = Be.FromHost(vv, DType.F32, rows, kvWidth);
        using var keyCache = Be.Zeros(DType.F32, capacity, kvWidth);
        using var valueCache = Be.Zeros(DType.F32, capacity, kvWidth);
        using var qRef = Be.FromHost(qv, DType.F32, rows, 4 * headDim);
        using var kRef = Be.FromHost(kv, DType.F32, rows, kvWidth);
        ((IBackend)Be).RopeQueryKeyAppend(q, k, v, pos, inv, headDim, 1f, keyCache, valueCache);
        ((IBackend)Be).RopeQueryKey(qRef, kRef, pos, inv, headDim, 1f);
        Assert.Equal(Host(qRef), Host(q));
        var keys = Host(keyCache);
        var values = Host(valueCache);
        var rotated = Host(kRef);
        for (int row = 0; row < capacity; row++)
        {
            int r = Array.IndexOf(positions, row);
            for (int c = 0; c < kvWidth; c++)
            {
                Assert.Equal(r < 0 ? 0f : rotated[r * kvWidth + c], keys[row * kvWidth + c]);
                Assert.Equal(r < 0 ? 0f : vv[r * kvWidth + c], values[row * kvWidth + c]);
            }
        }
    }

    /// <summary>
    /// The decode step (token, position and span in a backend tensor, so a GPU can replay it) gives the logits of
    /// <see cref="TransformerModel.Forward"/> one token at a time, bit for bit, and its argmax.
    /// </summary>
    [Theory]
    [InlineData("qwen2")]
    [InlineData("qwen3")]
    public void DecodeStepGivesTheLogitsOfTheForwardPass(string modelType)
    {
        using var model = TransformerModel.Load(TinyModel.Create(modelType), Be);
        int[] ids = [1, 7, 3, 22, 9, 31, 4, 15];
        using var eagerCache = model.NewCache(ids.Length + 1);
        using var stepCache = model.NewCache(ids.Length + 1);
        using (model.Forward(ids.AsSpan(0, 2), eagerCache)) { }
        using (model.Forward(ids.AsSpan(0, 2), stepCache)) { }
        using var step = model.NewDecodeStep(stepCache, argMax: true);
        for (int t = 2; t < ids.Length; t++)
        {
            using var logits = model.Forward(ids.AsSpan(t, 1), eagerCache);
            var expected = Host(logits);
            int picked = step.RunArgMax(ids[t]);
            Assert.Equal(expected, Host(step.Logits));
            Assert.Equal(Array.IndexOf(expected, expected.Max()), picked);
            Assert.Equal(eagerCache.Length, stepCache.Length);
        }
    }
}
