using System.Numerics.Tensors;
using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>
/// The per-sequence side of generation, shared by the single-sequence <see cref="Generator"/> and the serving scheduler:
/// takes each step's logits, samples the next token, tracks stop tokens and stop words, logprobs and streamed text,
/// so both paths pick and show exactly the same tokens.
/// </summary>
public sealed class TokenStream
{
    readonly SamplingOptions _options;
    readonly Tokenizer _tokenizer;
    readonly Sampler _sampler;
    readonly List<int> _history;
    readonly List<int> _generated = [];
    readonly List<GeneratedToken> _tokens = [];
    readonly HashSet<int> _stopIds;
    readonly StopWordStream _stream;
    readonly StreamingDecoder _decoder;
    FinishReason _finish = FinishReason.Length;

    public TokenStream(IReadOnlyList<int> prompt, SamplingOptions options, Tokenizer tokenizer)
    {
        _options = options;
        _tokenizer = tokenizer;
        _sampler = new Sampler(options);
        _history = new List<int>(prompt);
        _stopIds = new HashSet<int>(options.StopTokenIds);
        _stream = new StopWordStream(options.StopWords);
        _decoder = tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        Budget = Math.Max(0, options.MaxNewTokens);
        Finished = Budget == 0;
    }

    public int Budget { get; }
    public bool Finished { get; private set; }
    public IReadOnlyList<int> GeneratedIds => _generated;
    public IReadOnlyList<GeneratedToken> Tokens => _tokens;
    public SamplingOptions Options => _options;
    /// <summary>The token to feed next (the last one accepted).</summary>
    public int LastToken => _history[^1];

    /// <summary>
    /// Picks the next token from <paramref name="logits"/> (modified in place) and returns the text that may be shown now
    /// plus the token's entry (null when it was a stop token). Sets <see cref="Finished"/> at a stop or the budget.
    /// </summary>
    public (string Text, GeneratedToken? Token) Accept(Span<float> logits)
    {
        if (Finished) throw new InvalidOperationException("generation already finished");
        var logprobs = _options.Logprobs ? LogSoftmax(logits) : null;
        return Take(_sampler.Next(logits, _history), logprobs);
    }

    /// <summary>
    /// As <see cref="Accept(Span{float})"/> for options where <see cref="SamplingOptions.IsArgMax"/> holds, given the
    /// logits' argmax (found where the logits are, e.g. on the GPU) instead of the logits.
    /// </summary>
    public (string Text, GeneratedToken? Token) AcceptArgMax(int id)
    {
        if (!_options.IsArgMax) throw new InvalidOperationException("these sampling options need the logits");
        return AcceptPicked(id);
    }

    /// <summary>
    /// As <see cref="Accept(Span{float})"/> for options where <see cref="SamplingOptions.IsPlainDraw"/> holds, given the
    /// token drawn where the logits are with the bits of <see cref="NextDrawBits"/>.
    /// </summary>
    public (string Text, GeneratedToken? Token) AcceptDrawn(int id)
    {
        if (!_options.IsPlainDraw) throw new InvalidOperationException("these sampling options need the logits");
        return AcceptPicked(id);
    }

    /// <summary>The random bits of the next draw, from the seeded stream a host draw would use (so a seed gives one run).</summary>
    public ulong NextDrawBits() => _sampler.NextDrawBits();

    (string Text, GeneratedToken? Token) AcceptPicked(int id)
    {
        if (Finished) throw new InvalidOperationException("generation already finished");
        return Take(id, null);
    }

    (string Text, GeneratedToken? Token) Take(int id, float[]? logprobs)
    {
        _history.Add(id);
        if (_stopIds.Contains(id))
        {
            _finish = FinishReason.Stop;
            Finished = true;
            return ("", null);
        }
        _generated.Add(id);
        var token = new GeneratedToken(id, _tokenizer.Decode([id]), logprobs?[id], logprobs == null ? null : Top(logprobs, _options.TopLogprobs));
        _tokens.Add(token);
        var (emit, stopped) = _stream.Push(_decoder.Push(id));
        if (stopped) _finish = FinishReason.Stop;
        if (stopped || _generated.Count >= Budget) Finished = true;
        return (emit, token);
    }

    /// <summary>Ends generation (also when cancelled early): the held-back text that can still be shown, and the result.</summary>
    public (string Text, GenerationResult Result) Complete()
    {
        Finished = true;
        string rest = "";
        if (_finish == FinishReason.Length || !_stream.Stopped)
        {
            (rest, _) = _stream.Push(_decoder.Flush());
            rest += _stream.Drain();
        }
        return (rest, new GenerationResult(_stream.Text, _generated, _tokens, _finish));
    }

    static float[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        var result = new float[logits.Length];
        float max = TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        float logZ = max + (float)Math.Log(sum);
        TensorPrimitives.Subtract(logits, logZ, result);
        return result;
    }

    List<TokenLogprob> Top(float[] logprobs, int k)
    {
        var top = new List<TokenLogprob>(k);
        if (k <= 0) return top;
        var indices = new int[logprobs.Length];
        for (int i = 0; i < indices.Length; i++) indices[i] = i;
        var keys = (float[])logprobs.Clone();
        Array.Sort(keys, indices);
        for (int i = indices.Length - 1; i >= 0 && top.Count < k; i--)
            top.Add(new TokenLogprob(indices[i], _tokenizer.Decode([indices[i]]), logprobs[indices[i]]));
        return top;
    }
}
