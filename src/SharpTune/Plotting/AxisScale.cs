using System.Globalization;

namespace SharpTune.Plotting;

/// <summary>One axis: its data range (padded like matplotlib's 5% margins) and tick positions at "nice" numbers (1, 2, 5 × 10^k).</summary>
internal sealed class AxisScale
{
    public double Min { get; }
    public double Max { get; }
    public double Step { get; }
    public IReadOnlyList<double> Ticks { get; }
    public IReadOnlyList<string> Labels { get; }

    /// <param name="dataMin">Smallest finite value, or NaN when there is none.</param>
    public AxisScale(double dataMin, double dataMax, int targetTicks)
    {
        if (double.IsNaN(dataMin)) (dataMin, dataMax) = (0, 1);
        double range = dataMax - dataMin;
        // A constant series gets a visible band around it instead of a zero-height axis.
        double margin = range > 0 ? range * 0.05 : dataMin != 0 ? Math.Abs(dataMin) * 0.1 : 1;
        Min = dataMin - margin;
        Max = dataMax + margin;
        Step = NiceNumber((Max - Min) / Math.Max(1, targetTicks - 1));
        var ticks = new List<double>();
        for (double k = Math.Ceiling(Min / Step); k * Step <= Max + Step * 1e-9; k++)
            ticks.Add(k == 0 ? 0 : k * Step); // k*Step, not a running sum, so ticks carry no accumulated rounding
        Ticks = ticks;
        Labels = FormatLabels(ticks, Step);
    }

    /// <summary>The 1, 2 or 5 × 10^k nearest above <paramref name="x"/>'s rough size (Heckbert's "nice numbers").</summary>
    static double NiceNumber(double x)
    {
        double exponent = Math.Floor(Math.Log10(x));
        double power = Math.Pow(10, exponent);
        double fraction = x / power;
        double nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
        return nice * power;
    }

    /// <summary>Just enough decimals to tell ticks apart; scientific notation for very large or small values.</summary>
    static string[] FormatLabels(List<double> ticks, double step)
    {
        double largest = ticks.Count == 0 ? 0 : ticks.Max(Math.Abs);
        int stepExponent = (int)Math.Floor(Math.Log10(step));
        if (largest >= 1e6 || step < 1e-4)
        {
            int mantissaDecimals = Math.Clamp((int)Math.Floor(Math.Log10(largest)) - stepExponent, 0, 6);
            var format = mantissaDecimals == 0 ? "0e+0" : "0." + new string('#', mantissaDecimals) + "e+0";
            return ticks.Select(t => t == 0 ? "0" : t.ToString(format, CultureInfo.InvariantCulture)).ToArray();
        }
        int decimals = Math.Max(0, -stepExponent);
        return ticks.Select(t => t.ToString("F" + decimals, CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>Maps a value to a pixel coordinate between <paramref name="from"/> (at Min) and <paramref name="to"/> (at Max).</summary>
    public double ToPixel(double value, double from, double to) => from + (value - Min) / (Max - Min) * (to - from);
}
