namespace SharpTune.Plotting;

/// <summary>An 8-bit RGB colour.</summary>
internal readonly record struct Rgb(byte R, byte G, byte B)
{
    public static Rgb Hex(uint rgb) => new((byte)(rgb >> 16), (byte)(rgb >> 8), (byte)rgb);
}

/// <summary>A raster to draw a plot on: row-major RGB bytes, with antialiased lines and discs.</summary>
internal sealed class RgbImage
{
    public int Width { get; }
    public int Height { get; }
    public byte[] Pixels { get; }

    public RgbImage(int width, int height, Rgb background)
    {
        Width = width;
        Height = height;
        Pixels = new byte[width * height * 3];
        FillRect(0, 0, width, height, background);
    }

    public Rgb this[int x, int y]
    {
        get { int i = (y * Width + x) * 3; return new Rgb(Pixels[i], Pixels[i + 1], Pixels[i + 2]); }
    }

    /// <summary>Mixes <paramref name="colour"/> into a pixel with weight <paramref name="coverage"/> (0..1); outside pixels are ignored.</summary>
    public void Blend(int x, int y, Rgb colour, double coverage)
    {
        if ((uint)x >= (uint)Width || (uint)y >= (uint)Height || coverage <= 0) return;
        if (coverage > 1) coverage = 1;
        int i = (y * Width + x) * 3;
        Pixels[i] = Mix(Pixels[i], colour.R, coverage);
        Pixels[i + 1] = Mix(Pixels[i + 1], colour.G, coverage);
        Pixels[i + 2] = Mix(Pixels[i + 2], colour.B, coverage);
    }

    static byte Mix(byte under, byte over, double a) => (byte)Math.Round(under + (over - under) * a);

    public void FillRect(int x, int y, int width, int height, Rgb colour)
    {
        for (int yy = Math.Max(0, y); yy < Math.Min(Height, y + height); yy++)
            for (int xx = Math.Max(0, x); xx < Math.Min(Width, x + width); xx++)
                Blend(xx, yy, colour, 1);
    }

    /// <summary>
    /// A segment of the given width with round ends, antialiased by each pixel's distance to the segment;
    /// pixels within the core get exactly <paramref name="colour"/>, so joined segments show no seams.
    /// </summary>
    public void DrawLine(double x0, double y0, double x1, double y1, double width, Rgb colour)
    {
        double half = width / 2;
        int left = (int)Math.Floor(Math.Min(x0, x1) - half - 1), right = (int)Math.Ceiling(Math.Max(x0, x1) + half + 1);
        int top = (int)Math.Floor(Math.Min(y0, y1) - half - 1), bottom = (int)Math.Ceiling(Math.Max(y0, y1) + half + 1);
        left = Math.Max(left, 0); top = Math.Max(top, 0);
        right = Math.Min(right, Width - 1); bottom = Math.Min(bottom, Height - 1);
        double dx = x1 - x0, dy = y1 - y0, lengthSquared = dx * dx + dy * dy;
        for (int y = top; y <= bottom; y++)
            for (int x = left; x <= right; x++)
            {
                // Distance from the pixel centre to the nearest point of the segment.
                double t = lengthSquared == 0 ? 0 : Math.Clamp(((x - x0) * dx + (y - y0) * dy) / lengthSquared, 0, 1);
                double ex = x - (x0 + t * dx), ey = y - (y0 + t * dy);
                double coverage = half + 0.5 - Math.Sqrt(ex * ex + ey * ey);
                if (coverage > 0) Blend(x, y, colour, coverage);
            }
    }

    public void FillDisc(double cx, double cy, double radius, Rgb colour) => DrawLine(cx, cy, cx, cy, 2 * radius, colour);
}
