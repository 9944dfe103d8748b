using System.Buffers;
using System.Numerics.Tensors;

namespace SharpTune.Tensors;

/// <summary>
/// The logits processors of a sampled step in Hugging Face generate's order (temperature, top-k, top-p, min-p) and the draw
/// that follows. <see cref="Pick"/> is the host implementation; a GPU backend runs the same rules where the logits are
/// (<see cref="IBackend.Sample"/>), so a step sends back a token instead of the vocabulary's logits. Where transformers'
/// top-p cuts inside a tie (its sort orders tied tokens arbitrarily) both keep the whole tie; elsewhere they pick what
/// transformers' processors pick (TokenFilterTests).
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
        // No filter drops the most likely token, so the maximum and each token's weight exp(logit - max) are computed once;
        // each filter is a threshold below which tokens go (logit -inf, weight 0).
        float max = TensorPrimitives.Max(logits);
        var buffer = ArrayPool<float>.Shared.Rent(logits.Length);
        var weights = buffer.AsSpan(0, logits.Length);
        TensorPrimitives.Subtract(logits, max, weights);
        TensorPrimitives.Exp(weights, weights);
        if (TopK > 0 && TopK < logits.Length) Drop(logits, weights, TopKThreshold(logits, max, TopK));
        if (TopP < 1f) Drop(logits, weights, TopPThreshold(logits, weights, max, TopP));
        // p_i < min_p · p_max  <=>  logit_i < max + ln(min_p)
        if (MinP > 0f) Drop(logits, weights, max + MathF.Log(MinP));
        int pick = Draw(logits, weights, uniform);
        ArrayPool<float>.Shared.Return(buffer);
        return pick;
    }

    /// <summary>A draw's random bits as the two int32 a device tensor carries them in (low word first), and back.</summary>
    public static (int Low, int High) BitWords(ulong bits) => ((int)(uint)bits, (int)(uint)(bits >> 32));

    public static ulong FromBitWords(int low, int high) => (uint)low | (ulong)(uint)high << 32;

    /// <summary>The 53 random bits <paramref name="bits"/> as the uniform number of a draw (as Xoshiro256.NextDouble).</summary>
    public static double Uniform(ulong bits) => (bits & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    static void Drop(Span<float> logits, Span<float> weights, float below)
    {
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] < below)
            {
                logits[i] = float.NegativeInfinity;
                weights[i] = 0f;
            }
    }

    // The k-th largest value; ties with it are kept, as transformers' TopKLogitsWarper does. It is selected among the values
    // within a margin of the maximum that already holds k of them (the margin doubling from 2), not among the vocabulary.
    static float TopKThreshold(ReadOnlySpan<float> logits, float max, int k)
    {
        var copy = ArrayPool<float>.Shared.Rent(logits.Length);
        int n;
        for (float margin = 2f; ; margin = Wider(margin))
        {
            n = 0;
            float bound = max - margin;
            foreach (var v in logits)
                if (v >= bound) copy[n++] = v;
            if (n >= k || float.IsPositiveInfinity(margin)) break;
        }
        // Fewer than k only when the row holds NaNs (never at or above a bound): then every number stays.
        float threshold = n >= k ? KthLargest(copy.AsSpan(0, n), k) : float.NegativeInfinity;
        ArrayPool<float>.Shared.Return(copy);
        return threshold;
    }

    /// <summary>The next gathering margin: doubled up to 64, then everything (so a pathological row costs a few passes).</summary>
    static float Wider(float margin) => margin < 64f ? margin * 2 : float.PositiveInfinity;

    // Keeps the tokens whose mass strictly above them is under top_p of the total, so ties with the last kept token are all
    // kept (as the GPU's key threshold; transformers' sort keeps an arbitrary part of a tie). Only the tokens within a
    // margin of the maximum that already holds top_p of the mass are sorted, the margin doubling from 8 when it does not:
    // a trained model's row sorts a few hundred tokens, not the vocabulary.
    static float TopPThreshold(ReadOnlySpan<float> logits, ReadOnlySpan<float> weights, float max, float topP)
    {
        double target = topP * Sum(weights);
        var order = ArrayPool<int>.Shared.Rent(logits.Length);
        var keys = ArrayPool<float>.Shared.Rent(logits.Length);
        int n;
        double gathered;
        float margin = 8f;
        do
        {
            n = 0;
            gathered = 0;
            float bound = max - margin;
            for (int i = 0; i < logits.Length; i++)
                if (logits[i] >= bound)
                {
                    keys[n] = -logits[i];                  // descending by value
                    order[n++] = i;
                    gathered += weights[i];
                }
            if (float.IsPositiveInfinity(margin)) break;
            margin = Wider(margin);
        }
        while (gathered < target);
        keys.AsSpan(0, n).Sort(order.AsSpan(0, n));
        double above = 0;
        int kept = 0;
        while (kept < n)
        {
            int end = kept;
            double group = 0;
            while (end < n && keys[end] == keys[kept]) group += weights[order[end++]];
            if (kept > 0 && above >= target) break;         // the most likely tokens always stay
            above += group;
            kept = end;
        }
        float lowest = kept > 0 ? -keys[kept - 1] : max;
        ArrayPool<int>.Shared.Return(order);
        ArrayPool<float>.Shared.Return(keys);
        return lowest;
    }

    /// <summary>The weights' sum in float64, in index order.</summary>
    static double Sum(ReadOnlySpan<float> weights)
    {
        double total = 0;
        foreach (var w in weights) total += w;
        return total;
    }

    static int Draw(ReadOnlySpan<float> logits, ReadOnlySpan<float> weights, double uniform)
    {
        double target = uniform * Sum(weights), cumulative = 0;
        int last = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            last = i;
            cumulative += weights[i];
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
