namespace SharpTune;

/// <summary>
/// xoshiro256** (Blackman and Vigna) seeded through SplitMix64: small, fast and reproducible on every platform. Used for sampling,
/// initialization and the data pipeline. ms-swift draws with numpy's RandomState, whose streams we do not reproduce: samples and
/// orders follow ms-swift's rules (which rows, how many times) but not its exact picks.
/// </summary>
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

    /// <summary>Uniform integer in [0, bound) without modulo bias (Lemire's multiply-and-reject).</summary>
    public int NextBelow(int bound)
    {
        if (bound <= 0) throw new ArgumentOutOfRangeException(nameof(bound));
        var range = (ulong)bound;
        var m = Math.BigMul(NextUInt64(), range, out var low);
        if (low < range)
        {
            var threshold = (0 - range) % range;
            while (low < threshold) m = Math.BigMul(NextUInt64(), range, out low);
        }
        return (int)m;
    }

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher-Yates from the end), like numpy's permutation(n).</summary>
    public int[] Permutation(int n)
    {
        var result = new int[n];
        for (var i = 0; i < n; i++) result[i] = i;
        Shuffle(result);
        return result;
    }

    public void Shuffle<T>(IList<T> items)
    {
        for (var i = items.Count - 1; i > 0; i--)
        {
            var j = NextBelow(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A child seed, the way ms-swift's get_seed(random_state) draws one seed from the shared state for a sub-step.</summary>
    public ulong NextSeed() => NextUInt64();

    public (ulong, ulong, ulong, ulong) State { get => (_s0, _s1, _s2, _s3); set => (_s0, _s1, _s2, _s3) = value; }
}
