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

    /// <summary>
    /// Element <paramref name="index"/>'s 16 random bits: one hash serves four consecutive elements (lowest bits first), which
    /// makes a dropout mask four times cheaper to generate than a hash per element; 16 bits resolve a dropout probability to 1/65536.
    /// </summary>
    public static uint Bits16(ulong seed, ulong index) => Lane16(Hash(seed, index >> 2), (int)(index & 3));

    /// <summary>The 16 bits of lane 0..3 (lowest first) of a hash: what <see cref="Bits16"/> takes for element 4·k + lane.</summary>
    public static uint Lane16(ulong hash, int lane) => (uint)(hash >> (16 * lane)) & 0xFFFF;

    /// <summary>Uniform in [0, 1) with 16 bits: <see cref="Bits16"/> / 65536.</summary>
    public static float Uniform(ulong seed, ulong index) => Bits16(seed, index) * (1f / 65536);

    /// <summary>
    /// The integer form of the test Uniform &lt; p: an element is dropped when its <see cref="Bits16"/> is below this
    /// (exact: 65536·p is exact in float, and bits &lt; 65536·p ⇔ bits &lt; ⌈65536·p⌉).
    /// </summary>
    public static uint DropThreshold(float p) => (uint)Math.Clamp(MathF.Ceiling(p * 65536f), 0f, 65536f);
}
