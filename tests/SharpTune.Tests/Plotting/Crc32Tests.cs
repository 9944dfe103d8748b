using SharpTune.Plotting;

namespace SharpTune.Tests.Plotting;

public class Crc32Tests
{
    [Fact]
    public void MatchesTheStandardCheckValues()
    {
        // The CRC-32 check value for "123456789", and the CRC every PNG's IEND chunk carries.
        Assert.Equal(0xCBF43926u, Crc32.Append(0, "123456789"u8));
        Assert.Equal(0xAE426082u, Crc32.Append(0, "IEND"u8));
        Assert.Equal(Crc32.Append(0, "123456789"u8), Crc32.Append(Crc32.Append(0, "1234"u8), "56789"u8));
    }
}
