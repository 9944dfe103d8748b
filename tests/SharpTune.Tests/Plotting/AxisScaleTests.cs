using SharpTune.Plotting;

namespace SharpTune.Tests.Plotting;

public class AxisScaleTests
{
    [Fact]
    public void TicksAreNiceNumbersInsideThePaddedRange()
    {
        var axis = new AxisScale(0, 10, targetTicks: 6);
        Assert.Equal(-0.5, axis.Min, 12);
        Assert.Equal(10.5, axis.Max, 12);
        Assert.Equal(2, axis.Step);
        Assert.Equal([0.0, 2, 4, 6, 8, 10], axis.Ticks);
        Assert.Equal(["0", "2", "4", "6", "8", "10"], axis.Labels);
    }

    [Fact]
    public void DecimalsFollowTheStep()
    {
        var axis = new AxisScale(0.3, 2.9, targetTicks: 6);
        Assert.Equal(0.5, axis.Step);
        Assert.Equal(["0.5", "1.0", "1.5", "2.0", "2.5", "3.0"], axis.Labels);
    }

    [Fact]
    public void SmallValuesUseScientificNotation()
    {
        var axis = new AxisScale(0, 1e-4, targetTicks: 6);
        Assert.Equal(["0", "2e-5", "4e-5", "6e-5", "8e-5", "1e-4"], axis.Labels);
    }

    [Fact]
    public void ConstantAndEmptyRangesGetABand()
    {
        var constant = new AxisScale(2, 2, targetTicks: 6);
        Assert.True(constant.Min < 2 && constant.Max > 2);
        var empty = new AxisScale(double.NaN, double.NaN, targetTicks: 6);
        Assert.True(empty.Min < 0 && empty.Max > 1);
        Assert.NotEmpty(empty.Ticks);
    }
}
