using SharpTune.Tensors;

namespace SharpTune.Tests.Backends;

/// <summary>The dropout stream: four 16-bit numbers per SplitMix64 hash, and the integer threshold the kernels compare with.</summary>
public class CounterRandomTests
{
    [Fact]
    public void FourConsecutiveElementsShareOneHashLowestBitsFirst()
    {
        const ulong seed = 0xDEADBEEF;
        for (ulong group = 0; group < 100; group++)
        {
            ulong hash = CounterRandom.Hash(seed, group);
            for (int lane = 0; lane < 4; lane++)
                Assert.Equal((uint)((hash >> (16 * lane)) & 0xFFFF), CounterRandom.Bits16(seed, 4 * group + (ulong)lane));
        }
    }

    [Theory]
    [InlineData(0.05f)]
    [InlineData(0.1f)]
    [InlineData(0.3f)]
    [InlineData(1f / 3)]
    [InlineData(0.5f)]
    public void ThresholdAgreesWithTheUniformTestAndDropsAboutP(float p)
    {
        uint threshold = CounterRandom.DropThreshold(p);
        const int n = 1 << 20;
        int dropped = 0;
        for (ulong i = 0; i < n; i++)
        {
            bool byUniform = CounterRandom.Uniform(7, i) < p;
            Assert.Equal(byUniform, CounterRandom.Bits16(7, i) < threshold);
            if (byUniform) dropped++;
        }
        // Binomial(n, p): 5 standard deviations.
        double sigma = Math.Sqrt(n * p * (1 - p));
        Assert.InRange(dropped, n * p - 5 * sigma, n * p + 5 * sigma);
    }

    [Fact]
    public void ThresholdCoversTheWholeRange()
    {
        Assert.Equal(0u, CounterRandom.DropThreshold(0f));
        Assert.Equal(65536u, CounterRandom.DropThreshold(1f));
        Assert.Equal(3277u, CounterRandom.DropThreshold(0.05f)); // 65536·0.05 = 3276.8
    }
}
