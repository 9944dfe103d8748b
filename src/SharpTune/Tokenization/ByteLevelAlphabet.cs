namespace SharpTune.Tokenization;

/// <summary>
/// GPT-2's reversible map from the 256 byte values to printable characters: printable Latin-1 bytes map to themselves,
/// the rest to U+0100 upwards in byte order. BPE vocabularies of byte-level tokenizers are spelled in these characters.
/// </summary>
static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = BuildByteToChar();
    /// <summary>Byte value of each mapped character, -1 for characters outside the alphabet.</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    static char[] BuildByteToChar()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    static short[] BuildCharToByte()
    {
        var map = new short[512];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++) map[ByteToChar[b]] = (short)b;
        return map;
    }

    /// <summary>The UTF-8 bytes of <paramref name="text"/>, each written as its alphabet character.</summary>
    public static string Map(ReadOnlySpan<char> text)
    {
        int byteCount = System.Text.Encoding.UTF8.GetByteCount(text);
        Span<byte> bytes = byteCount <= 512 ? stackalloc byte[byteCount] : new byte[byteCount];
        System.Text.Encoding.UTF8.GetBytes(text, bytes);
        Span<char> chars = byteCount <= 512 ? stackalloc char[byteCount] : new char[byteCount];
        for (int i = 0; i < byteCount; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    /// <summary>Appends the bytes a token spells; false (nothing appended) when a character is outside the alphabet.</summary>
    public static bool TryAppendBytes(string token, List<byte> output)
    {
        foreach (var c in token)
            if (c >= CharToByte.Length || CharToByte[c] < 0) return false;
        foreach (var c in token) output.Add((byte)CharToByte[c]);
        return true;
    }
}
