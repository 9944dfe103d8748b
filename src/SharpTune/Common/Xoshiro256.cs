namespace SharpTune;

/// <summary>xoshiro256** seeded through SplitMix64: small, fast and reproducible on every platform.</summary>
public sealed class Xoshiro256
{
    ulong _s0, _s1, _s2, _s3;

    public Xoshiro256(ulong seed)
    {
        _s0 = SplitMix(ref seed); _s1 = SplitMix(ref seed); _s2 = SplitMix(ref seed); _s3 = SplitMix(ref seed);
    }

    static ulong SplitMix(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextUInt64()
    {
        ulong result = ulong.RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = ulong.RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform in [0, 1) with 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n) => (int)((NextUInt64() >> 33) % (ulong)n);

    public (ulong, ulong, ulong, ulong) State { get => (_s0, _s1, _s2, _s3); set => (_s0, _s1, _s2, _s3) = value; }
}
