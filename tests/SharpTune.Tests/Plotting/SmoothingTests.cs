using SharpTune.Plotting;

namespace SharpTune.Tests.Plotting;

public class SmoothingTests
{
    [Fact]
    public void MatchesHandComputedDebiasedAverage()
    {
        // weight 0.5: s1 = 1; s2 = (0.5*1 + 2) / 1.5; s3 = (0.25*1 + 0.5*2 + 3) / 1.75
        var s = Smoothing.Ema([1, 2, 3], 0.5);
        Assert.Equal(1.0, s[0], 12);
        Assert.Equal(2.5 / 1.5, s[1], 12);
        Assert.Equal(4.25 / 1.75, s[2], 12);
    }

    [Fact]
    public void DefaultWeightIsMsSwifts()
    {
        // weight 0.9 over [4, 2]: (0.9*4 + 2) / 1.9
        Assert.Equal(5.6 / 1.9, Smoothing.Ema([4, 2])[1], 12);
    }

    [Fact]
    public void ZeroWeightKeepsValuesAndConstantStaysConstant()
    {
        Assert.Equal([3.0, -1.0, 7.0], Smoothing.Ema([3, -1, 7], 0));
        Assert.All(Smoothing.Ema([2.5, 2.5, 2.5, 2.5], 0.99), v => Assert.Equal(2.5, v, 12));
    }

    [Fact]
    public void NaNPassesThroughWithoutPoisoningTheAverage()
    {
        var s = Smoothing.Ema([1, double.NaN, 3], 0.5);
        Assert.True(double.IsNaN(s[1]));
        Assert.Equal((0.5 * 1 + 3) / 1.5, s[2], 12);
    }

    [Fact]
    public void RejectsWeightOutsideUnitInterval() =>
        Assert.Equal("smoothing weight 1 must be in [0, 1)", Assert.Throws<SharpTuneException>(() => Smoothing.Ema([1], 1)).Message);
}
