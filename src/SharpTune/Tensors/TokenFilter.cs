using System.Buffers;
using System.Numerics.Tensors;

namespace SharpTune.Tensors;

/// <summary>
/// The logits processors of a sampled step in Hugging Face generate's order (temperature, top-k, top-p, min-p) and the draw
/// that follows. <see cref="Pick"/> is the host implementation; a GPU backend runs the same rules where the logits are
/// (<see cref="IBackend.Sample"/>), so a step sends back a token instead of the vocabulary's logits.
/// </summary>
/// <param name="Temperature">Divides the logits (greater than 0).</param>
/// <param name="TopK">Keeps the k largest (and ties with the k-th); 0 keeps all.</param>
/// <param name="TopP">Keeps the most likely tokens whose mass reaches p; 1 keeps all.</param>
/// <param name="MinP">Drops tokens less likely than min_p times the most likely; 0 keeps all.</param>
public readonly record struct TokenFilter(float Temperature, int TopK, float TopP, float MinP)
{
    /// <summary>
    /// Applies the filters to <paramref name="logits"/> (in place: dropped tokens become -inf) and draws with
    /// <paramref name="uniform"/> in [0, 1): the first token, in index order, whose cumulative weight exceeds uniform·total.
    /// </summary>
    public int Pick(Span<float> logits, double uniform)
    {
        TensorPrimitives.Divide(logits, Temperature, logits);
        if (TopK > 0 && TopK < logits.Length) KeepTopK(logits, TopK);
        if (TopP < 1f) KeepTopP(logits, TopP);
        if (MinP > 0f) KeepMinP(logits, MinP);
        return Draw(logits, uniform);
    }

    /// <summary>The 53 random bits <paramref name="bits"/> as the uniform number of a draw (as Xoshiro256.NextDouble).</summary>
    public static double Uniform(ulong bits) => (bits & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    static void KeepTopK(Span<float> logits, int k)
    {
        var copy = ArrayPool<float>.Shared.Rent(logits.Length);
        logits.CopyTo(copy);
        // The k-th largest value; ties with it are kept, as transformers' TopKLogitsWarper does.
        float threshold = KthLargest(copy.AsSpan(0, logits.Length), k);
        ArrayPool<float>.Shared.Return(copy);
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] < threshold) logits[i] = float.NegativeInfinity;
    }

    static void KeepTopP(Span<float> logits, float topP)
    {
        var orderArray = ArrayPool<int>.Shared.Rent(logits.Length);
        var keysArray = ArrayPool<float>.Shared.Rent(logits.Length);
        var order = orderArray.AsSpan(0, logits.Length);
        var keys = keysArray.AsSpan(0, logits.Length);
        for (int i = 0; i < order.Length; i++) order[i] = i;
        logits.CopyTo(keys);
        keys.Sort(order);                          // ascending, as transformers sorts
        float max = keys[^1];
        double total = 0;
        foreach (var l in keys) total += MathF.Exp(l - max);
        // Remove the low tail whose cumulative probability is <= 1 - top_p; the most likely token always stays.
        double cumulative = 0;
        for (int i = 0; i < keys.Length - 1; i++)
        {
            cumulative += MathF.Exp(keys[i] - max) / total;
            if (cumulative > 1 - topP) break;
            logits[order[i]] = float.NegativeInfinity;
        }
        ArrayPool<int>.Shared.Return(orderArray);
        ArrayPool<float>.Shared.Return(keysArray);
    }

    static void KeepMinP(Span<float> logits, float minP)
    {
        float max = TensorPrimitives.Max(logits);
        // p_i < min_p · p_max  <=>  logit_i < max + ln(min_p)
        float threshold = max + MathF.Log(minP);
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] < threshold) logits[i] = float.NegativeInfinity;
    }

    static int Draw(ReadOnlySpan<float> logits, double uniform)
    {
        float max = TensorPrimitives.Max(logits);
        double total = 0;
        for (int i = 0; i < logits.Length; i++) total += MathF.Exp(logits[i] - max);
        double target = uniform * total;
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            last = i;
            cumulative += MathF.Exp(logits[i] - max);
            if (cumulative > target) return i;
        }
        return last;
    }

    static float KthLargest(Span<float> a, int k)
    {
        // Quickselect (Hoare partition) for the (n-k)-th smallest value.
        int target = a.Length - k, lo = 0, hi = a.Length - 1;
        while (lo < hi)
        {
            float pivot = a[lo + (hi - lo) / 2];
            int i = lo, j = hi;
            while (i <= j)
            {
                while (a[i] < pivot) i++;
                while (a[j] > pivot) j--;
                if (i <= j)
                {
                    (a[i], a[j]) = (a[j], a[i]);
                    i++;
                    j--;
                }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else break;
        }
        return a[target];
    }
}
