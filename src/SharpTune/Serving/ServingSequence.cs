using System.Threading.Channels;
using SharpTune.Inference;

namespace SharpTune.Serving;

/// <summary>What a sequence reports as it runs: text that may be shown with the token that produced it, then its result.</summary>
public sealed record SequenceEvent(string Text, GeneratedToken? Token, GenerationResult? Final = null, Exception? Error = null);

/// <summary>
/// One sequence (one choice of one request) in the scheduler: its prompt, adapter and token stream (its sampling), its KV-cache blocks
/// while it runs, and the channel its tokens stream out through. Cancelling it (the client went away) stops it at the
/// next step and frees its blocks.
/// </summary>
public sealed class ServingSequence
{
    readonly Channel<SequenceEvent> _events = Channel.CreateUnbounded<SequenceEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    volatile bool _cancelled;

    public ServingSequence(int[] prompt, string? adapter, TokenStream stream)
    {
        Prompt = prompt;
        Adapter = adapter;
        Stream = stream;
    }

    public int[] Prompt { get; }
    public string? Adapter { get; }
    internal TokenStream Stream { get; }
    /// <summary>Positions whose keys/values are in the cache.</summary>
    internal int Computed { get; set; }
    internal int[]? Blocks { get; set; }
    internal bool Prefilling => Computed < Prompt.Length;
    /// <summary>Prompt plus the most tokens it may generate: what its blocks must hold.</summary>
    internal int MaxPositions => Prompt.Length + Stream.Budget;

    public ChannelReader<SequenceEvent> Events => _events.Reader;
    public bool Cancelled => _cancelled;
    public void Cancel() => _cancelled = true;

    internal void Emit(SequenceEvent e) => _events.Writer.TryWrite(e);
    internal void Close() => _events.Writer.TryComplete();
}
