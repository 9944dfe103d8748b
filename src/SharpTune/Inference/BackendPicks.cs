using SharpTune.Tensors;

namespace SharpTune.Inference;

/// <summary>
/// The next token of each stream picked where its logits are, when its options allow: greedy without penalties or
/// logprobs takes the argmax, a plain draw the filters and one random number from the stream's seeded sequence (the
/// numbers a host draw would use, so a seed gives the same tokens on every backend). A GPU then sends back 4 bytes a
/// row, all rows in one download, instead of the logits.
/// </summary>
public static class BackendPicks
{
    /// <summary>For row r of <paramref name="logits"/> (float32 [streams, vocab]): stream r's token, or null when its
    /// options need the logits on the host (<see cref="SamplingOptions.NeedsLogits"/>).</summary>
    public static int?[] Pick(IBackend be, Tensor logits, IReadOnlyList<TokenStream> streams)
    {
        var picks = new int?[streams.Count];
        var rows = Enumerable.Range(0, streams.Count).Where(r => !streams[r].Options.NeedsLogits).ToList();
        if (rows.Count == 0) return picks;
        var bits = new int[2 * streams.Count];
        foreach (int r in rows)
            if (streams[r].Options.IsPlainDraw)
                (bits[2 * r], bits[2 * r + 1]) = TokenFilter.BitWords(streams[r].NextDrawBits());
        using var bitsTensor = be.FromHost(bits, streams.Count, 2);
        using var picked = be.Allocate(DType.I32, streams.Count, 1);
        foreach (int r in rows)
        {
            var options = streams[r].Options;
            if (options.IsArgMax) be.ArgMax(logits.SliceRows(r, 1), picked.SliceRows(r, 1));
            else be.Sample(logits.SliceRows(r, 1), options.Filter, bitsTensor.SliceRows(r, 1), picked.SliceRows(r, 1));
        }
        var ids = new int[streams.Count];
        be.ToHost(picked, ids);
        foreach (int r in rows) picks[r] = ids[r];
        return picks;
    }

    /// <summary>Hands a token from <see cref="Pick"/> to its stream.</summary>
    public static (string Text, GeneratedToken? Token) Accept(TokenStream stream, int id) =>
        stream.Options.IsArgMax ? stream.AcceptArgMax(id) : stream.AcceptDrawn(id);
}
