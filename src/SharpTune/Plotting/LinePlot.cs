namespace SharpTune.Plotting;

/// <summary>
/// PNG line charts of training curves, in the manner of ms-swift's plot_images (images/train_loss.png):
/// the raw series in a light colour under its smoothed curve in a dark one, a lone point as a dot.
/// </summary>
public static class LinePlot
{
    public const int Width = 800, Height = 500;

    // ms-swift's TB_COLOR and TB_COLOR_SMOOTH.
    internal static readonly Rgb RawColour = Rgb.Hex(0xFFE2D9), SmoothColour = Rgb.Hex(0xFF7043);
    internal static readonly Rgb Background = Rgb.Hex(0xFFFFFF), Ink = Rgb.Hex(0x333333), Grid = Rgb.Hex(0xEBEBEB);

    const int TextScale = 2, LineWidth = 2, TickLength = 5;

    /// <summary>
    /// Writes an 800x500 RGB PNG to <paramref name="path"/> (atomically). Points with a NaN or infinite coordinate are
    /// left out and break the line. Without <paramref name="smoothed"/> the raw series is drawn in the dark colour.
    /// </summary>
    public static void Save(string path, string title, string xLabel, IReadOnlyList<(double x, double y)> points,
        IReadOnlyList<(double x, double y)>? smoothed = null)
    {
        var image = Render(title, xLabel, points, smoothed);
        AtomicFile.Write(path, stream => PngEncoder.Write(stream, image));
    }

    internal static RgbImage Render(string title, string xLabel, IReadOnlyList<(double x, double y)> points,
        IReadOnlyList<(double x, double y)>? smoothed)
    {
        var all = smoothed == null ? points : points.Concat(smoothed).ToList();
        var finite = all.Where(p => double.IsFinite(p.x) && double.IsFinite(p.y)).ToList();
        double xMin = finite.Count == 0 ? double.NaN : finite.Min(p => p.x), xMax = finite.Count == 0 ? double.NaN : finite.Max(p => p.x);
        double yMin = finite.Count == 0 ? double.NaN : finite.Min(p => p.y), yMax = finite.Count == 0 ? double.NaN : finite.Max(p => p.y);

        var yAxis = new AxisScale(yMin, yMax, targetTicks: 6);
        int yLabelWidth = yAxis.Labels.Max(l => BitmapFont.MeasureWidth(l, TextScale));
        int textHeight = BitmapFont.Height(TextScale);
        int left = 16 + yLabelWidth + TickLength + 6, right = Width - 32;
        int top = 24 + textHeight + 12, bottom = Height - (TickLength + 8 + textHeight + 14 + textHeight + 16);
        var xAxis = FittingXAxis(xMin, xMax, right - left);

        var image = new RgbImage(Width, Height, Background);
        DrawFrame(image, xAxis, yAxis, left, right, top, bottom);

        double X(double v) => xAxis.ToPixel(v, left, right);
        double Y(double v) => yAxis.ToPixel(v, bottom, top);
        var front = smoothed == null ? SmoothColour : RawColour;
        DrawSeries(image, points, X, Y, front);
        if (smoothed != null) DrawSeries(image, smoothed, X, Y, SmoothColour);

        DrawCentred(image, title, (left + right) / 2, 24);
        DrawCentred(image, xLabel, (left + right) / 2, Height - 16 - textHeight);
        return image;
    }

    /// <summary>The x axis with as many ticks as fit without their labels touching.</summary>
    static AxisScale FittingXAxis(double min, double max, int plotWidth)
    {
        for (int target = 9; ; target--)
        {
            var axis = new AxisScale(min, max, target);
            int widest = axis.Labels.Max(l => BitmapFont.MeasureWidth(l, TextScale));
            if (target <= 2 || axis.Ticks.Count * (widest + 16) <= plotWidth) return axis;
        }
    }

    static void DrawFrame(RgbImage image, AxisScale xAxis, AxisScale yAxis, int left, int right, int top, int bottom)
    {
        int textHeight = BitmapFont.Height(TextScale);
        for (int i = 0; i < xAxis.Ticks.Count; i++)
        {
            int x = (int)Math.Round(xAxis.ToPixel(xAxis.Ticks[i], left, right));
            image.FillRect(x, top, 1, bottom - top, Grid);
            image.FillRect(x, bottom, 1, TickLength, Ink);
            DrawCentred(image, xAxis.Labels[i], x, bottom + TickLength + 8);
        }
        for (int i = 0; i < yAxis.Ticks.Count; i++)
        {
            int y = (int)Math.Round(yAxis.ToPixel(yAxis.Ticks[i], bottom, top));
            image.FillRect(left, y, right - left, 1, Grid);
            image.FillRect(left - TickLength, y, TickLength, 1, Ink);
            var label = yAxis.Labels[i];
            BitmapFont.Draw(image, label, left - TickLength - 6 - BitmapFont.MeasureWidth(label, TextScale), y - textHeight / 2, TextScale, Ink);
        }
        image.FillRect(left, top, right - left + 1, 1, Ink);
        image.FillRect(left, bottom, right - left + 1, 1, Ink);
        image.FillRect(left, top, 1, bottom - top + 1, Ink);
        image.FillRect(right, top, 1, bottom - top + 1, Ink);
    }

    /// <summary>Connects consecutive finite points; a point with no finite neighbour is drawn as a dot so it stays visible.</summary>
    static void DrawSeries(RgbImage image, IReadOnlyList<(double x, double y)> points, Func<double, double> toX, Func<double, double> toY, Rgb colour)
    {
        int finiteCount = points.Count(p => double.IsFinite(p.x) && double.IsFinite(p.y));
        for (int i = 0; i < points.Count; i++)
        {
            var (x, y) = points[i];
            if (!double.IsFinite(x) || !double.IsFinite(y)) continue;
            bool hasPrevious = i > 0 && double.IsFinite(points[i - 1].x) && double.IsFinite(points[i - 1].y);
            bool hasNext = i + 1 < points.Count && double.IsFinite(points[i + 1].x) && double.IsFinite(points[i + 1].y);
            if (hasPrevious)
                image.DrawLine(toX(points[i - 1].x), toY(points[i - 1].y), toX(x), toY(y), LineWidth, colour);
            else if (!hasNext)
                // ms-swift scatters a one-value series; a lone point inside a longer series just needs to show.
                image.FillDisc(toX(x), toY(y), finiteCount == 1 ? 4 : LineWidth, colour);
        }
    }

    static void DrawCentred(RgbImage image, string text, int centreX, int y) =>
        BitmapFont.Draw(image, text, centreX - BitmapFont.MeasureWidth(text, TextScale) / 2, y, TextScale, Ink);
}
