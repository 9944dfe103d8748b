using System.Collections.Concurrent;
using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>
/// tokenizers' BPE model: a word starts as one symbol per character (or its UTF-8 bytes as &lt;0xXX&gt; tokens with byte
/// fallback, or unk), then the adjacent pair with the lowest merge rank is merged, leftmost first, until none applies.
/// Results are cached per word because natural text repeats words constantly.
/// </summary>
sealed class BpeModel
{
    const int MaxCachedWordLength = 256;
    const int MaxCacheEntries = 1 << 20;

    readonly Dictionary<string, int> vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> vocabBySpan;
    readonly Dictionary<long, (int Rank, int Merged)> merges;
    readonly int? unkId;
    readonly bool byteFallback, fuseUnk, ignoreMerges;
    readonly string? continuingSubwordPrefix, endOfWordSuffix;
    readonly int[] byteTokenIds = new int[256];
    readonly ConcurrentDictionary<string, int[]> cache = new();
    readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> cacheBySpan;
    /// <summary>Approximate entry count (ConcurrentDictionary.Count takes every lock, too slow to ask per miss).</summary>
    int cacheEntries;

    public IReadOnlyDictionary<string, int> Vocab => vocab;

    /// <summary>Words arrive as raw text and are written in the byte-level alphabet before BPE (see <see cref="ByteLevelPreTokenizer"/>).</summary>
    public bool MapBytesFirst { get; set; }

    BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, int? unkId, bool byteFallback, bool fuseUnk,
        bool ignoreMerges, string? continuingSubwordPrefix, string? endOfWordSuffix)
    {
        this.vocab = vocab;
        vocabBySpan = vocab.GetAlternateLookup<ReadOnlySpan<char>>();
        this.merges = merges;
        this.unkId = unkId;
        this.byteFallback = byteFallback;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        this.continuingSubwordPrefix = string.IsNullOrEmpty(continuingSubwordPrefix) ? null : continuingSubwordPrefix;
        this.endOfWordSuffix = string.IsNullOrEmpty(endOfWordSuffix) ? null : endOfWordSuffix;
        for (int b = 0; b < 256; b++) byteTokenIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
        cacheBySpan = cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public static BpeModel FromJson(JsonElement json, string path)
    {
        var where = $"{path}: model";
        var type = json.OptString("type") ?? "BPE";
        if (type != "BPE") throw new SharpTuneException($"{path}: unsupported model '{type}'");
        if (json.TryGetProperty("dropout", out var dropout) && !dropout.IsNull() && dropout.GetDouble() > 0)
            throw new SharpTuneException($"{where}: BPE dropout is not supported (tokenization would be random)");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in json.Required("vocab", where).EnumerateObject()) vocab[entry.Name] = entry.Value.GetInt32();

        var merges = new Dictionary<long, (int, int)>(PairComparer.Instance);
        int rank = 0;
        var prefix = json.OptString("continuing_subword_prefix");
        foreach (var merge in json.Required("merges", where).EnumerateArray())
        {
            string left, right;
            if (merge.ValueKind == JsonValueKind.String)
            {
                var text = merge.GetString()!;
                int space = text.IndexOf(' ', 1);
                if (space < 0) throw new SharpTuneException($"{where}.merges[{rank}]: expected \"a b\", got \"{text}\"");
                (left, right) = (text[..space], text[(space + 1)..]);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2)
                (left, right) = (merge[0].GetString()!, merge[1].GetString()!);
            else throw new SharpTuneException($"{where}.merges[{rank}]: expected \"a b\" or [a, b]");

            var mergedText = left + (prefix != null && right.StartsWith(prefix, StringComparison.Ordinal) ? right[prefix.Length..] : right);
            if (!vocab.TryGetValue(left, out var a) || !vocab.TryGetValue(right, out var b))
                throw new SharpTuneException($"{where}.merges[{rank}]: '{left} {right}' uses a token missing from the vocab");
            if (!vocab.TryGetValue(mergedText, out var mergedId))
                throw new SharpTuneException($"{where}.merges[{rank}]: merged token '{mergedText}' is missing from the vocab");
            merges.TryAdd(Pack(a, b), (rank, mergedId));
            rank++;
        }

        int? unkId = null;
        if (json.OptString("unk_token") is { } unk)
            unkId = vocab.TryGetValue(unk, out var id) ? id : throw new SharpTuneException($"{where}.unk_token: '{unk}' is not in the vocab");
        return new BpeModel(vocab, merges, unkId, json.OptBool("byte_fallback", false), json.OptBool("fuse_unk", false),
            json.OptBool("ignore_merges", false), prefix, json.OptString("end_of_word_suffix"));
    }

    /// <summary>
    /// True when no vocab token has <paramref name="boundary"/> right after another character. Then no merge can join
    /// text across the point before a run of <paramref name="boundary"/> characters, and BPE of the pieces cut there
    /// equals BPE of the whole: SentencePiece-style tokenizers (no pre-tokenizer) can then be cached per word.
    /// </summary>
    public bool NeverMergesInto(char boundary)
    {
        if (!vocab.ContainsKey(boundary.ToString())) return false;
        foreach (var token in vocab.Keys)
            for (int i = 1; i < token.Length; i++)
                if (token[i] == boundary && token[i - 1] != boundary) return false;
        return true;
    }

    /// <summary>True for the &lt;0xXX&gt; tokens of a byte-fallback vocabulary.</summary>
    public bool IsByteToken(int id) => byteFallback && Array.IndexOf(byteTokenIds, id) >= 0;

    static long Pack(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>long's own hash is high ^ low, which collides for every (a, b) with the same a ^ b; mix the bits instead.</summary>
    sealed class PairComparer : IEqualityComparer<long>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals(long x, long y) => x == y;
        public int GetHashCode(long pair) => (int)((ulong)(pair * unchecked((long)0x9E3779B97F4A7C15)) >> 32);
    }

    /// <summary>Appends the ids of one pre-tokenized word.</summary>
    public void Tokenize(ReadOnlySpan<char> word, List<int> output)
    {
        if (cacheBySpan.TryGetValue(word, out var cached)) { output.AddRange(cached); return; }
        var ids = TokenizeUncached(MapBytesFirst ? ByteLevelAlphabet.Map(word) : word.ToString());
        if (word.Length <= MaxCachedWordLength)
        {
            if (Interlocked.Increment(ref cacheEntries) > MaxCacheEntries)
            {
                cache.Clear();
                Interlocked.Exchange(ref cacheEntries, 0);
            }
            cacheBySpan.TryAdd(word, ids);
        }
        output.AddRange(ids);
    }

    int[] TokenizeUncached(string word)
    {
        if (ignoreMerges && vocab.TryGetValue(word, out var whole)) return [whole];
        var symbols = InitialSymbols(word);
        MergeAll(symbols);
        return symbols.ToArray();
    }

    List<int> InitialSymbols(string word)
    {
        var symbols = new List<int>(word.Length);
        int pendingUnk = -1;
        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var character = word.AsSpan(i, length);
            bool isFirst = i == 0, isLast = i + length == word.Length;
            i += length;
            if (LookupSymbol(character, isFirst, isLast) is int id)
            {
                if (pendingUnk >= 0) { symbols.Add(pendingUnk); pendingUnk = -1; }
                symbols.Add(id);
                continue;
            }
            if (byteFallback && TryAddBytes(character, symbols, ref pendingUnk)) continue;
            if (unkId is not int unk) continue; // tokenizers drops characters it cannot represent when there is no unk token
            if (pendingUnk >= 0 && !fuseUnk) symbols.Add(pendingUnk);
            pendingUnk = unk;
        }
        if (pendingUnk >= 0) symbols.Add(pendingUnk);
        return symbols;
    }

    int? LookupSymbol(ReadOnlySpan<char> character, bool isFirst, bool isLast)
    {
        bool addPrefix = !isFirst && continuingSubwordPrefix != null, addSuffix = isLast && endOfWordSuffix != null;
        if (!addPrefix && !addSuffix) return vocabBySpan.TryGetValue(character, out var id) ? id : null;
        var text = (addPrefix ? continuingSubwordPrefix : "") + character.ToString() + (addSuffix ? endOfWordSuffix : "");
        return vocab.TryGetValue(text, out var affixed) ? affixed : null;
    }

    bool TryAddBytes(ReadOnlySpan<char> character, List<int> symbols, ref int pendingUnk)
    {
        Span<byte> bytes = stackalloc byte[4];
        int count = System.Text.Encoding.UTF8.GetBytes(character, bytes);
        for (int b = 0; b < count; b++) if (byteTokenIds[bytes[b]] < 0) return false;
        if (pendingUnk >= 0) { symbols.Add(pendingUnk); pendingUnk = -1; }
        for (int b = 0; b < count; b++) symbols.Add(byteTokenIds[bytes[b]]);
        return true;
    }

    /// <summary>
    /// Repeatedly merges the lowest-ranked adjacent pair (leftmost on ties), as tokenizers does: a priority queue of
    /// candidate pairs over a linked list of symbols, so long unsplit inputs (SentencePiece-style, no pre-tokenizer) stay fast.
    /// </summary>
    void MergeAll(List<int> symbols)
    {
        int n = symbols.Count;
        if (n < 2) return;
        var ids = symbols.ToArray();
        var next = new int[n];
        var previous = new int[n];
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; previous[i] = i - 1; }
        var queue = new PriorityQueue<int, long>();
        for (int i = 0; i + 1 < n; i++) Enqueue(queue, ids, i, i + 1);

        while (queue.TryDequeue(out int left, out long priority))
        {
            int right = next[left];
            // Entries go stale when a neighbour merged first; the pair must still be the one that was queued.
            if (right < 0 || ids[left] < 0 || !merges.TryGetValue(Pack(ids[left], ids[right]), out var merge) || merge.Rank != (int)(priority >> 32)) continue;
            ids[left] = merge.Merged;
            ids[right] = -1;
            next[left] = next[right];
            if (next[right] >= 0) previous[next[right]] = left;
            if (previous[left] >= 0) Enqueue(queue, ids, previous[left], left);
            if (next[left] >= 0) Enqueue(queue, ids, left, next[left]);
        }
        symbols.Clear();
        for (int i = 0; i >= 0; i = next[i]) symbols.Add(ids[i]);
    }

    /// <summary>Queues the pair starting at symbol <paramref name="left"/> by (rank, position): lowest rank first, then leftmost.</summary>
    void Enqueue(PriorityQueue<int, long> queue, int[] ids, int left, int right)
    {
        if (merges.TryGetValue(Pack(ids[left], ids[right]), out var merge)) queue.Enqueue(left, ((long)merge.Rank << 32) | (uint)left);
    }
}
