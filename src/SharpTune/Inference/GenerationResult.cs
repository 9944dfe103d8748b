namespace SharpTune.Inference;

/// <summary>A candidate token with its log-probability (OpenAI's top_logprobs entry).</summary>
public sealed record TokenLogprob(int Id, string Text, float Logprob);

/// <summary>One generated token: its id, its own text, and when asked its log-probability and the top alternatives.</summary>
public sealed record GeneratedToken(int Id, string Text, float? Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs);

/// <summary>Why generation ended: a stop token or stop word (<c>stop</c>), or the token budget (<c>length</c>).</summary>
public enum FinishReason { Stop, Length }

public sealed record GenerationResult(string Text, IReadOnlyList<int> TokenIds, IReadOnlyList<GeneratedToken> Tokens, FinishReason FinishReason)
{
    public string FinishReasonName => FinishReason == FinishReason.Stop ? "stop" : "length";
}
