using System.Numerics.Tensors;

namespace SharpTune.Inference;

/// <summary>
/// Turns a row of logits into the next token, applying the processors in Hugging Face generate's order:
/// repetition penalty (and OpenAI's presence/frequency penalties), then temperature, top-k, top-p and min-p, then a draw.
/// Draws come from a seeded xoshiro256** generator, so a seed reproduces a run (not torch's draws).
/// </summary>
public sealed class Sampler
{
    readonly SamplingOptions _options;
    readonly Xoshiro256 _random;
    float[] _work = [];
    int[] _order = [];

    public Sampler(SamplingOptions options)
    {
        _options = options;
        _random = new Xoshiro256(options.Seed ?? (ulong)Random.Shared.NextInt64());
    }

    /// <summary>Picks the next token. <paramref name="logits"/> is modified (penalties and filters are applied in place).</summary>
    public int Next(Span<float> logits, IReadOnlyList<int> history)
    {
        ApplyPenalties(logits, history);
        if (_options.IsGreedy) return TensorPrimitives.IndexOfMax(logits);
        TensorPrimitives.Divide(logits, _options.Temperature, logits);
        if (_options.TopK > 0 && _options.TopK < logits.Length) KeepTopK(logits, _options.TopK);
        if (_options.TopP < 1f) KeepTopP(logits, _options.TopP);
        if (_options.MinP > 0f) KeepMinP(logits, _options.MinP);
        return Draw(logits);
    }

    void ApplyPenalties(Span<float> logits, IReadOnlyList<int> history)
    {
        float rp = _options.RepetitionPenalty;
        if (rp != 1f)
        {
            // Each distinct token once, as torch.gather/scatter over input_ids does.
            var seen = new HashSet<int>();
            foreach (var id in history)
            {
                if (!seen.Add(id) || (uint)id >= (uint)logits.Length) continue;
                logits[id] = logits[id] < 0 ? logits[id] * rp : logits[id] / rp;
            }
        }
        if (_options.PresencePenalty != 0f || _options.FrequencyPenalty != 0f)
        {
            var counts = new Dictionary<int, int>();
            foreach (var id in history) counts[id] = counts.GetValueOrDefault(id) + 1;
            foreach (var (id, c) in counts)
                if ((uint)id < (uint)logits.Length) logits[id] -= _options.PresencePenalty + _options.FrequencyPenalty * c;
        }
    }

    void KeepTopK(Span<float> logits, int k)
    {
        EnsureWork(logits.Length);
        var copy = _work.AsSpan(0, logits.Length);
        logits.CopyTo(copy);
        // The k-th largest value; ties with it are kept, as transformers' TopKLogitsWarper does.
        float threshold = KthLargest(copy, k);
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] < threshold) logits[i] = float.NegativeInfinity;
    }

    void KeepTopP(Span<float> logits, float topP)
    {
        EnsureWork(logits.Length);
        var order = _order.AsSpan(0, logits.Length);
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var keys = _work.AsSpan(0, logits.Length);
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
    }

    static void KeepMinP(Span<float> logits, float minP)
    {
        float max = TensorPrimitives.Max(logits);
        // p_i < min_p · p_max  <=>  logit_i < max + ln(min_p)
        float threshold = max + MathF.Log(minP);
        for (int i = 0; i < logits.Length; i++)
            if (logits[i] < threshold) logits[i] = float.NegativeInfinity;
    }

    int Draw(ReadOnlySpan<float> logits)
    {
        float max = TensorPrimitives.Max(logits);
        double total = 0;
        for (int i = 0; i < logits.Length; i++) total += MathF.Exp(logits[i] - max);
        double target = _random.NextDouble() * total;
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

    void EnsureWork(int n)
    {
        if (_work.Length < n)
        {
            _work = new float[n];
            _order = new int[n];
        }
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
