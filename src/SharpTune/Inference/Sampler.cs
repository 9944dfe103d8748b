using System.Numerics.Tensors;
using SharpTune.Tensors;

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
        return _options.Filter.Pick(logits, TokenFilter.Uniform(NextDrawBits()));
    }

    /// <summary>The 53 random bits of the next draw, for a draw made elsewhere (on the GPU) from the same seeded stream.</summary>
    public ulong NextDrawBits() => _random.NextUInt64() >> 11;

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
}
