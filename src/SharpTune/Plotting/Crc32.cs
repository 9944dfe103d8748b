namespace SharpTune.Plotting;

/// <summary>The CRC-32 of PNG chunks (ISO 3309 / zlib polynomial 0xEDB88320, reflected, inverted in and out).</summary>
internal static class Crc32
{
    static readonly uint[] Table = BuildTable();

    static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }

    /// <summary>Continues a running CRC (start with 0) over more bytes.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> bytes)
    {
        uint c = ~crc;
        foreach (var b in bytes) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return ~c;
    }
}
