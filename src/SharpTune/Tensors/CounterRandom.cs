namespace SharpTune.Tensors;

/// <summary>
/// A counter-based random number generator: the value is a pure function of (seed, index), so dropout masks are the same on
/// every backend and thread count, and can be regenerated in backward instead of stored.
/// </summary>
public static class CounterRandom
{
    /// <summary>SplitMix64's finalizer over the seed and the element index.</summary>
    public static ulong Hash(ulong seed, ulong index)
    {
        ulong z = seed + 0x9E3779B97F4A7C15UL * (index + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 24 bits.</summary>
    public static float Uniform(ulong seed, ulong index) => (Hash(seed, index) >> 40) * (1f / (1 << 24));
}
