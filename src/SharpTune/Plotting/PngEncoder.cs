using System.Buffers.Binary;
using System.IO.Compression;

namespace SharpTune.Plotting;

/// <summary>Writes 8-bit RGB PNGs: signature, IHDR, one zlib IDAT, IEND (PNG spec, ISO/IEC 15948).</summary>
internal static class PngEncoder
{
    static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static void Write(Stream output, RgbImage image)
    {
        output.Write(Signature);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], image.Height);
        header[8] = 8;  // bits per sample
        header[9] = 2;  // colour type: RGB
        header[10] = 0; // compression: deflate
        header[11] = 0; // filter method: adaptive (each row starts with its filter type)
        header[12] = 0; // no interlace
        WriteChunk(output, "IHDR", header);

        WriteChunk(output, "IDAT", Compress(image));
        WriteChunk(output, "IEND", []);
    }

    /// <summary>Rows with filter type 0 (None): plots are mostly flat colour, which deflate already shrinks well.</summary>
    static byte[] Compress(RgbImage image)
    {
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            int stride = image.Width * 3;
            for (int y = 0; y < image.Height; y++)
            {
                zlib.WriteByte(0);
                zlib.Write(image.Pixels, y * stride, stride);
            }
        }
        return compressed.ToArray();
    }

    static void WriteChunk(Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        Span<byte> typeBytes = stackalloc byte[4];
        for (int i = 0; i < 4; i++) typeBytes[i] = (byte)type[i];
        output.Write(typeBytes);
        output.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32.Append(Crc32.Append(0, typeBytes), data));
        output.Write(word);
    }
}
