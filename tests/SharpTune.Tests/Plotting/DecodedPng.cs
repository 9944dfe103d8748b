using System.Buffers.Binary;
using System.IO.Compression;

namespace SharpTune.Tests.Plotting;

/// <summary>
/// A deliberately separate reader for the PNGs the plotter writes: checks the signature and every chunk's CRC
/// (bit-by-bit here, not the library's table), and inflates 8-bit RGB, unfiltered rows.
/// </summary>
internal sealed class DecodedPng
{
    public int Width { get; }
    public int Height { get; }
    public IReadOnlyList<string> ChunkTypes { get; }
    readonly byte[] rgb;

    DecodedPng(int width, int height, IReadOnlyList<string> chunkTypes, byte[] rgb) => (Width, Height, ChunkTypes, this.rgb) = (width, height, chunkTypes, rgb);

    public (byte R, byte G, byte B) this[int x, int y] { get { int i = (y * Width + x) * 3; return (rgb[i], rgb[i + 1], rgb[i + 2]); } }

    public static DecodedPng Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        int pos = 8, width = 0, height = 0;
        var idat = new MemoryStream();
        var chunkTypes = new List<string>();
        while (pos < bytes.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(pos));
            var type = System.Text.Encoding.ASCII.GetString(bytes, pos + 4, 4);
            var data = bytes.AsSpan(pos + 8, length);
            uint stored = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(pos + 8 + length));
            Assert.Equal(BitwiseCrc(bytes.AsSpan(pos + 4, 4 + length)), stored);
            chunkTypes.Add(type);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                Assert.Equal(new byte[] { 8, 2, 0, 0, 0 }, data[8..13].ToArray());
            }
            if (type == "IDAT") idat.Write(data);
            pos += 12 + length;
        }
        Assert.Equal(bytes.Length, pos);

        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var zlib = new ZLibStream(idat, CompressionMode.Decompress)) zlib.CopyTo(inflated);
        var raw = inflated.ToArray();
        int stride = width * 3;
        Assert.Equal(height * (stride + 1), raw.Length);
        var rgb = new byte[height * stride];
        for (int y = 0; y < height; y++)
        {
            Assert.Equal(0, raw[y * (stride + 1)]); // filter type None
            Array.Copy(raw, y * (stride + 1) + 1, rgb, y * stride, stride);
        }
        return new DecodedPng(width, height, chunkTypes, rgb);
    }

    static uint BitwiseCrc(ReadOnlySpan<byte> bytes)
    {
        uint c = 0xFFFFFFFF;
        foreach (var b in bytes)
        {
            c ^= b;
            for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (uint)-(int)(c & 1));
        }
        return ~c;
    }

    public int Count((byte, byte, byte) colour)
    {
        int n = 0;
        for (int y = 0; y < Height; y++)
            for (int x = 0; x < Width; x++)
                if (this[x, y] == colour) n++;
        return n;
    }
}
