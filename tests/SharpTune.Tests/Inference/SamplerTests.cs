using SharpTune.Inference;

namespace SharpTune.Tests.Inference;

public class SamplerTests
{
    static float[] Logits() => [2.0f, 1.0f, 0.5f, -1.0f, 3.0f, 0.0f];

    static Dictionary<int, int> Histogram(SamplingOptions options, int draws, float[]? logits = null, IReadOnlyList<int>? history = null)
    {
        var sampler = new Sampler(options);
        var counts = new Dictionary<int, int>();
        for (int i = 0; i < draws; i++)
        {
            var l = (float[])(logits ?? Logits()).Clone();
            int id = sampler.Next(l, history ?? []);
            counts[id] = counts.GetValueOrDefault(id) + 1;
        }
        return counts;
    }

    [Fact]
    public void GreedyPicksTheArgmax() => Assert.Equal([4], Histogram(new SamplingOptions { Temperature = 0 }, 20).Keys);

    [Fact]
    public void TopKKeepsOnlyTheKMostLikely() =>
        Assert.Equal([0, 4], Histogram(new SamplingOptions { Temperature = 1, TopK = 2, Seed = 1 }, 2000).Keys.Order());

    [Fact]
    public void TopPKeepsTheSmallestSetAboveP()
    {
        // softmax of the logits: 4 → 0.61, 0 → 0.22, 1 → 0.08, ...; top_p 0.8 keeps {4, 0}, 0.6 keeps only {4}... (0.61 > 0.6)
        Assert.Equal([0, 4], Histogram(new SamplingOptions { Temperature = 1, TopP = 0.8f, Seed = 2 }, 2000).Keys.Order());
        Assert.Equal([4], Histogram(new SamplingOptions { Temperature = 1, TopP = 0.6f, Seed = 2 }, 500).Keys);
    }

    [Fact]
    public void MinPDropsTokensBelowAFractionOfTheBest()
    {
        // p_i / p_max = exp(l_i - 3): token 0 → 0.37, token 1 → 0.14, token 2 → 0.08
        Assert.Equal([0, 1, 4], Histogram(new SamplingOptions { Temperature = 1, MinP = 0.1f, Seed = 3 }, 3000).Keys.Order());
    }

    [Fact]
    public void SamplingFollowsTheSoftmaxDistribution()
    {
        var counts = Histogram(new SamplingOptions { Temperature = 1, Seed = 4 }, 20000);
        var logits = Logits();
        double z = logits.Sum(l => Math.Exp(l));
        for (int i = 0; i < logits.Length; i++)
        {
            double expected = Math.Exp(logits[i]) / z;
            double observed = counts.GetValueOrDefault(i) / 20000.0;
            Assert.True(Math.Abs(observed - expected) < 0.015, $"token {i}: {observed} vs {expected}");
        }
    }

    [Fact]
    public void TemperatureSharpensAndFlattens()
    {
        int Top(float t) => Histogram(new SamplingOptions { Temperature = t, Seed = 5 }, 4000).GetValueOrDefault(4);
        Assert.True(Top(0.3f) > Top(1f));
        Assert.True(Top(3f) < Top(1f));
    }

    [Fact]
    public void SameSeedSameDraws()
    {
        var a = Histogram(new SamplingOptions { Temperature = 1, Seed = 9 }, 500);
        var b = Histogram(new SamplingOptions { Temperature = 1, Seed = 9 }, 500);
        Assert.Equal(a.OrderBy(kv => kv.Key), b.OrderBy(kv => kv.Key));
    }

    [Fact]
    public void RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOfSeenTokens()
    {
        var logits = Logits();
        new Sampler(new SamplingOptions { Temperature = 0, RepetitionPenalty = 2f }).Next(logits, [4, 3, 4]);
        Assert.Equal(1.5f, logits[4]);
        Assert.Equal(-2f, logits[3]);
        Assert.Equal(2f, logits[0]);
    }

    [Fact]
    public void PresenceAndFrequencyPenaltiesSubtract()
    {
        var logits = Logits();
        new Sampler(new SamplingOptions { Temperature = 0, PresencePenalty = 0.5f, FrequencyPenalty = 0.25f }).Next(logits, [4, 4, 1]);
        Assert.Equal(3f - 0.5f - 0.5f, logits[4]);
        Assert.Equal(1f - 0.5f - 0.25f, logits[1]);
    }
}
