using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>
/// Autoregressive generation for one sequence: prefill the prompt into a KV cache, then one token per step, streaming text
/// deltas that never split a UTF-8 character or show part of a stop word.
/// </summary>
public sealed class Generator(TransformerModel model, Tokenizer tokenizer)
{
    public TransformerModel Model => model;
    public Tokenizer Tokenizer => tokenizer;

    /// <summary>Generates a continuation of <paramref name="prompt"/>; <paramref name="onText"/> receives each new piece of text.</summary>
    public GenerationResult Generate(IReadOnlyList<int> prompt, SamplingOptions options, Action<string>? onText = null,
                                     CancellationToken cancel = default)
    {
        if (prompt.Count == 0) throw new SharpTuneException("the prompt is empty");
        var stream = new TokenStream(prompt, options, tokenizer);
        using var cache = model.NewCache(prompt.Count + stream.Budget);
        // Greedy without penalties needs only the argmax, and a plain draw only the filters and one random number: the
        // backend picks where the logits are. Otherwise the logits come to the host for the sampler.
        var draw = options.IsPlainDraw ? options.Filter : (TokenFilter?)null;
        bool picksOnBackend = !options.NeedsLogits;
        var logits = picksOnBackend ? [] : new float[model.Shape.Vocab];
        var be = model.Backend;
        string Accept(Tensor output, int? picked)
        {
            if (picked is int id) return BackendPicks.Accept(stream, id).Text;
            be.ToHost(output, logits);
            return stream.Accept(logits).Text;
        }
        if (!stream.Finished && !cancel.IsCancellationRequested)
        {
            using var output = model.Forward([.. prompt], cache);
            var text = Accept(output, picksOnBackend ? BackendPicks.Pick(be, output, [stream])[0] : null);
            if (text.Length > 0) onText?.Invoke(text);
        }
        // Then one token per step, each step's device work the same (a GPU replays it as one graph).
        using var step = draw is TokenFilter d ? model.NewDecodeStep(cache, d) : model.NewDecodeStep(cache, options.IsArgMax);
        while (!stream.Finished && !cancel.IsCancellationRequested)
        {
            int? picked = null;
            if (options.IsArgMax) picked = step.RunArgMax(stream.LastToken);
            else if (draw != null) picked = step.RunDraw(stream.LastToken, stream.NextDrawBits());
            else step.Run(stream.LastToken);
            var text = Accept(step.Logits, picked);
            if (text.Length > 0) onText?.Invoke(text);
        }
        var (rest, result) = stream.Complete();
        if (rest.Length > 0) onText?.Invoke(rest);
        return result;
    }
}

/// <summary>
/// Accumulates streamed text and cuts it at the first stop word; holds back any tail that could still become a stop word,
/// so a client never sees part of one.
/// </summary>
internal sealed class StopWordStream(IReadOnlyList<string> stopWords)
{
    readonly System.Text.StringBuilder _text = new();
    int _emitted;

    public bool Stopped { get; private set; }
    /// <summary>The text so far, without the stop word and what followed it.</summary>
    public string Text => _text.ToString();

    public (string Emit, bool Stopped) Push(string piece)
    {
        if (Stopped) return ("", true);
        _text.Append(piece);
        var all = _text.ToString();
        foreach (var w in stopWords)
        {
            if (w.Length == 0) continue;
            int at = all.IndexOf(w, Math.Max(0, _emitted - w.Length), StringComparison.Ordinal);
            if (at >= 0)
            {
                Stopped = true;
                _text.Length = at;
                var emit = at > _emitted ? all[_emitted..at] : "";
                _emitted = at;
                return (emit, true);
            }
        }
        int safe = all.Length - HeldBack(all);
        if (safe <= _emitted) return ("", false);
        var result = all[_emitted..safe];
        _emitted = safe;
        return (result, false);
    }

    /// <summary>Everything not yet emitted (at the end of generation, when no stop word can follow).</summary>
    public string Drain()
    {
        var all = _text.ToString();
        var rest = all[_emitted..];
        _emitted = all.Length;
        return rest;
    }

    int HeldBack(string all)
    {
        int hold = 0;
        foreach (var w in stopWords)
            for (int len = Math.Min(w.Length - 1, all.Length); len > hold; len--)
                if (all.AsSpan(all.Length - len).SequenceEqual(w.AsSpan(0, len)))
                {
                    hold = len;
                    break;
                }
        return hold;
    }
}
