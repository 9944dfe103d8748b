using SharpTune.Plotting;

namespace SharpTune.Tests.Plotting;

public sealed class LinePlotTests : IDisposable
{
    static readonly (byte, byte, byte) White = (255, 255, 255), Raw = (0xFF, 0xE2, 0xD9), Smooth = (0xFF, 0x70, 0x43);
    readonly string dir = Directory.CreateTempSubdirectory("sharptune-plot-").FullName;

    public void Dispose() => Directory.Delete(dir, true);

    static List<(double x, double y)> NoisyLoss(int n) =>
        Enumerable.Range(1, n).Select(i => ((double)i, 2.5 * Math.Exp(-i / 60.0) + 0.3 + 0.15 * Math.Sin(i * 1.7))).ToList();

    string Plot(IReadOnlyList<(double x, double y)> points, IReadOnlyList<(double x, double y)>? smoothed = null)
    {
        var path = Path.Combine(dir, "train_loss.png");
        LinePlot.Save(path, "train/loss", "step", points, smoothed);
        return path;
    }

    [Fact]
    public void WritesAValidRgbPng()
    {
        var png = DecodedPng.Read(Plot(NoisyLoss(200)));
        Assert.Equal(LinePlot.Width, png.Width);
        Assert.Equal(LinePlot.Height, png.Height);
        Assert.Equal(["IHDR", "IDAT", "IEND"], png.ChunkTypes);
        Assert.Equal(White, png[0, 0]);
        Assert.Equal(White, png[png.Width - 1, png.Height - 1]);
        Assert.Empty(Directory.GetFiles(dir, "*.tmp-*"));
    }

    [Fact]
    public void RawSeriesIsLightAndSmoothedIsDark()
    {
        var points = NoisyLoss(300);
        var smoothed = points.Zip(Smoothing.Ema(points.Select(p => p.y).ToList()), (p, s) => (p.x, s)).ToList();
        var png = DecodedPng.Read(Plot(points, smoothed));
        Assert.True(png.Count(Raw) > 500, "raw series visible");
        Assert.True(png.Count(Smooth) > 500, "smoothed series visible");
    }

    [Fact]
    public void WithoutSmoothingTheSeriesIsDark()
    {
        var png = DecodedPng.Read(Plot(NoisyLoss(50)));
        int dark = png.Count(Smooth);
        Assert.True(dark > 300);
        // The light colour is a 20% tint of the dark one, so antialiased edge pixels can land on it; a drawn light line would not be this rare.
        Assert.True(png.Count(Raw) < dark / 10);
    }

    [Fact]
    public void SeriesPassesThroughItsEndPoints()
    {
        // A rising diagonal: its first point sits near the bottom-left of the plot area and its last near the top-right.
        var png = DecodedPng.Read(Plot([(0, 0), (10, 10)]));
        var dark = Enumerable.Range(0, png.Height).SelectMany(y => Enumerable.Range(0, png.Width).Select(x => (x, y))).Where(p => png[p.x, p.y] == Smooth).ToList();
        var lowest = dark.MaxBy(p => p.y);
        var highest = dark.MinBy(p => p.y);
        Assert.True(lowest.x < highest.x, "line rises to the right");
        Assert.True(lowest.x < png.Width / 3 && highest.x > png.Width * 2 / 3);
    }

    [Fact]
    public void SinglePointIsADot()
    {
        var png = DecodedPng.Read(Plot([(5, 1.25)]));
        int dots = png.Count(Smooth);
        Assert.InRange(dots, 20, 80); // a disc of radius 4
    }

    [Fact]
    public void ConstantSeriesAndNaNsStillPlot()
    {
        var flat = Enumerable.Range(0, 20).Select(i => ((double)i, i == 7 ? double.NaN : 0.0)).ToList();
        var png = DecodedPng.Read(Plot(flat));
        Assert.True(png.Count(Smooth) > 300);
        var empty = DecodedPng.Read(Plot([(double.NaN, 1), (2, double.PositiveInfinity)]));
        Assert.Equal(0, empty.Count(Smooth));
        Assert.Equal(White, empty[0, 0]);
    }

    [Fact]
    public void NaNBreaksTheLine()
    {
        // Two flat halves at y=0 with a NaN between x=4 and x=6: the column at x=5 must have no series pixel.
        var points = Enumerable.Range(0, 11).Select(i => ((double)i, i == 5 ? double.NaN : 0.0)).ToList();
        var png = DecodedPng.Read(Plot(points));
        int seriesRow = Enumerable.Range(0, png.Height).First(y => png[png.Width / 4, y] == Smooth);
        var columns = Enumerable.Range(0, png.Width).Where(x => png[x, seriesRow] == Smooth).ToList();
        int gaps = columns.Zip(columns.Skip(1), (a, b) => b - a).Count(d => d > 1);
        Assert.Equal(1, gaps);
    }
}
