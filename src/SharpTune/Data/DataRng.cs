namespace SharpTune.Data;

/// <summary>
/// The data pipeline's own deterministic random generator: xoshiro256** (Blackman and Vigna), its state filled
/// from the seed by SplitMix64. ms-swift draws with numpy's RandomState (MT19937); we cannot reproduce numpy's
/// streams bit for bit, so samples and orders match ms-swift's rules (which rows, how many times) but not its exact picks.
/// The same seed always gives the same sequence on every platform.
/// </summary>
public sealed class DataRng
{
    ulong _s0, _s1, _s2, _s3;

    public DataRng(ulong seed)
    {
        var x = seed;
        _s0 = SplitMix64(ref x); _s1 = SplitMix64(ref x); _s2 = SplitMix64(ref x); _s3 = SplitMix64(ref x);
    }

    public ulong NextUInt64()
    {
        var result = BitRotate(_s1 * 5, 7) * 9;
        var t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitRotate(_s3, 45);
        return result;
    }

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

    static ulong SplitMix64(ref ulong x)
    {
        var z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong BitRotate(ulong x, int k) => (x << k) | (x >> (64 - k));
}
