namespace SharpTune.Tokenization;

/// <summary>
/// Turns generated ids into text as they arrive. It re-decodes a short window of recent ids and emits only what the
/// window added, holding back text that a later id could still change: a trailing U+FFFD (half a UTF-8 character) and,
/// with transformers' space clean-up, a space in the last few characters (" n't" may still be coming), and all of it while the
/// last id is a byte-fallback token, because ByteFallback decodes a whole run of byte tokens at once (one invalid byte
/// turns the entire run into U+FFFD).
/// The concatenation of everything returned by <see cref="Push"/> and <see cref="Flush"/> equals <see cref="Tokenizer.Decode"/> of all ids.
/// </summary>
public sealed class StreamingDecoder
{
    /// <summary>Ids kept as context after a trim: enough for decoders that treat the first token specially (Strip, Metaspace).</summary>
    const int ContextIds = 4;
    const int TrimAbove = 16;
    /// <summary>Longest clean-up pattern (" n't") less one: a space this close to the end may still be removed.</summary>
    const int CleanUpLookback = 3;

    readonly Tokenizer tokenizer;
    readonly bool skipSpecialTokens;
    readonly List<int> window = [];
    /// <summary>Characters of Decode(window) already returned.</summary>
    int emitted;

    internal StreamingDecoder(Tokenizer tokenizer, bool skipSpecialTokens)
    {
        this.tokenizer = tokenizer;
        this.skipSpecialTokens = skipSpecialTokens;
    }

    /// <summary>Ids currently re-decoded per push (bounded, so streaming stays linear in the output).</summary>
    internal int WindowLength => window.Count;

    public string Push(int id)
    {
        window.Add(id);
        if (tokenizer.IsByteFallbackToken(id)) return "";
        var text = Decode();
        int stable = StableLength(text);
        var output = stable > emitted ? text[emitted..stable] : "";
        emitted = Math.Max(emitted, stable);
        if (window.Count > TrimAbove) Trim(text);
        return output;
    }

    /// <summary>
    /// Keeps only the last few ids as context, never starting inside a run of byte tokens (which would decode differently),
    /// and only when the context decodes to the end of the current text, so the held-back tail lines up.
    /// </summary>
    void Trim(string text)
    {
        int start = window.Count - ContextIds;
        while (start > 0 && tokenizer.IsByteFallbackToken(window[start])) start--;
        if (start == 0) return;
        var contextText = tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(window)[start..], skipSpecialTokens);
        int held = text.Length - emitted;
        if (contextText.Length < held || !text.EndsWith(contextText, StringComparison.Ordinal)) return;
        window.RemoveRange(0, start);
        emitted = contextText.Length - held;
    }

    /// <summary>Returns whatever was held back (e.g. an incomplete character at the end of generation) and resets the stream.</summary>
    public string Flush()
    {
        var text = Decode();
        var output = text.Length > emitted ? text[emitted..] : "";
        window.Clear();
        emitted = 0;
        return output;
    }

    string Decode() => tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(window), skipSpecialTokens);

    int StableLength(string text)
    {
        int stable = text.Length;
        while (stable > 0 && text[stable - 1] == '\uFFFD') stable--;
        if (!tokenizer.CleansUpSpaces) return stable;
        for (int i = Math.Max(0, stable - CleanUpLookback - 1); i < stable; i++)
            if (text[i] == ' ') return i;
        return stable;
    }
}
