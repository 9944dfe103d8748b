using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization;

/// <summary>
/// A Hugging Face tokenizer.json (BPE model) with the special tokens of tokenizer_config.json. Encoding follows tokenizers:
/// split on added tokens, then per piece normalize, pre-tokenize into words, BPE each word; then the post-processor
/// (e.g. BOS). Decoding runs the decoder chain and, when tokenizer_config asks for it, transformers' space clean-up.
/// </summary>
public sealed class Tokenizer
{
    readonly BpeModel model;
    readonly Normalizer? normalizer;
    readonly PreTokenizer? preTokenizer;
    readonly PostProcessor? postProcessor;
    readonly Decoder? decoder;
    readonly Dictionary<int, AddedToken> addedById = [];
    readonly Dictionary<string, int> addedByContent = new(StringComparer.Ordinal);
    readonly string?[] tokenById;
    readonly AddedTokenSplitter rawSplitter;
    readonly AddedTokenSplitter? normalizedSplitter;
    /// <summary>Set when pre-tokenization is one regex whose matches are the words (GPT-2 / Llama 3 / Qwen2 style), so words are spans, not strings.</summary>
    readonly Regex? wordRegex;
    readonly bool cleanUpTokenizationSpaces;
    /// <summary>With no pre-tokenizer: a character (SentencePiece's ▁) before whose runs words can be cut without changing the result.</summary>
    readonly char? wordBoundary;

    public int VocabSize => tokenById.Length;
    public int? BosTokenId { get; }

    /// <summary>
    /// The ids the post-processor puts before the text when special tokens are added (Llama's BOS; empty for Qwen).
    /// Chat prompts get them too when the rendered template does not already start with them, as ms-swift's auto_add_bos does.
    /// </summary>
    public int[] SpecialPrefix => _specialPrefix ??= FindSpecialPrefix();
    int[]? _specialPrefix;

    int[] FindSpecialPrefix()
    {
        const string probe = "a";
        var plain = Encode(probe, addSpecialTokens: false);
        var full = Encode(probe, addSpecialTokens: true);
        for (var start = 0; start + plain.Length <= full.Length; start++)
            if (full.AsSpan(start, plain.Length).SequenceEqual(plain)) return full[..start];
        return [];
    }

    /// <summary><paramref name="ids"/> with <see cref="SpecialPrefix"/> in front unless they already start with it.</summary>
    public int[] WithSpecialPrefix(int[] ids) =>
        SpecialPrefix.Length == 0 || ids.AsSpan().StartsWith(SpecialPrefix) ? ids : [.. SpecialPrefix, .. ids];
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }

    Tokenizer(JsonElement root, string path, JsonElement? config, string? configPath)
    {
        model = BpeModel.FromJson(root.Required("model", path), path);
        normalizer = root.TryGetProperty("normalizer", out var n) ? Normalizer.FromJson(n, path) : null;
        preTokenizer = root.TryGetProperty("pre_tokenizer", out var p) ? PreTokenizer.FromJson(p, path) : null;
        postProcessor = root.TryGetProperty("post_processor", out var pp) ? PostProcessor.FromJson(pp, path) : null;
        decoder = root.TryGetProperty("decoder", out var d) ? Decoder.FromJson(d, path) : null;

        if (root.TryGetProperty("added_tokens", out var added) && !added.IsNull())
        {
            int index = 0;
            foreach (var entry in added.EnumerateArray())
            {
                var token = AddedToken.FromJson(entry, $"{path}: added_tokens[{index++}]");
                addedById[token.Id] = token;
                addedByContent[token.Content] = token.Id;
            }
        }
        int maxId = Math.Max(model.Vocab.Count == 0 ? -1 : model.Vocab.Values.Max(), addedById.Count == 0 ? -1 : addedById.Keys.Max());
        tokenById = new string?[maxId + 1];
        foreach (var (text, id) in model.Vocab) tokenById[id] = text;
        foreach (var (id, token) in addedById) tokenById[id] = token.Content;

        rawSplitter = new AddedTokenSplitter(addedById.Values.Where(t => !t.Normalized || normalizer == null), t => t.Content);
        if (normalizer != null && addedById.Values.Any(t => t.Normalized))
            normalizedSplitter = new AddedTokenSplitter(addedById.Values.Where(t => t.Normalized), t => normalizer.Normalize(t.Content));

        wordRegex = ConfigureByteLevel();
        if (preTokenizer == null && model.NeverMergesInto('\u2581')) wordBoundary = '\u2581';

        if (config is { } c)
        {
            cleanUpTokenizationSpaces = c.OptBool("clean_up_tokenization_spaces", false);
            (BosToken, BosTokenId) = SpecialFromConfig(c, "bos_token", configPath!);
            (EosToken, EosTokenId) = SpecialFromConfig(c, "eos_token", configPath!);
            (_, PadTokenId) = SpecialFromConfig(c, "pad_token", configPath!);
        }
    }

    /// <summary>
    /// When byte-level mapping is the last pre-tokenization step, leave it to the model (cached words skip it); when the
    /// whole pre-tokenization is "split on one regex, keep matches", return that regex so encoding can walk spans.
    /// </summary>
    Regex? ConfigureByteLevel()
    {
        var steps = preTokenizer is SequencePreTokenizer s ? s.Steps : preTokenizer is null ? [] : [preTokenizer];
        if (steps.Count == 0 || steps[^1] is not ByteLevelPreTokenizer byteLevel) return null;
        byteLevel.DeferByteMapping = true;
        model.MapBytesFirst = true;
        return steps.Count == 1 ? byteLevel.WordRegex : steps.Count == 2 && steps[0] is SplitPreTokenizer split && byteLevel.IsMappingOnly ? split.IsolatingRegex : null;
    }

    (string?, int?) SpecialFromConfig(JsonElement config, string field, string configPath)
    {
        if (!config.TryGetProperty(field, out var value) || value.IsNull()) return (null, null);
        var content = value.ValueKind == JsonValueKind.String ? value.GetString()! : value.OptString("content")
            ?? throw new SharpTuneException($"{configPath}: {field} must be a string or {{\"content\": ...}}");
        return (content, TokenToId(content) ?? throw new SharpTuneException($"{configPath}: {field} '{content}' is not a token of the tokenizer"));
    }

    public static Tokenizer FromModelDirectory(string dir)
    {
        var json = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(json)) throw new SharpTuneException($"{json}: not found (only tokenizer.json tokenizers are supported)");
        var config = Path.Combine(dir, "tokenizer_config.json");
        return FromFile(json, File.Exists(config) ? config : null);
    }

    public static Tokenizer FromFile(string tokenizerJsonPath, string? tokenizerConfigPath = null)
    {
        using var root = ParseJson(tokenizerJsonPath);
        using var config = tokenizerConfigPath == null ? null : ParseJson(tokenizerConfigPath);
        return new Tokenizer(root.RootElement, tokenizerJsonPath, config?.RootElement, tokenizerConfigPath);
    }

    static JsonDocument ParseJson(string path)
    {
        if (!File.Exists(path)) throw new SharpTuneException($"{path}: not found");
        try { return JsonDocument.Parse(File.ReadAllBytes(path)); }
        catch (JsonException e) { throw new SharpTuneException($"{path}: invalid JSON ({e.Message})", e); }
    }

    public int[] Encode(string text, bool addSpecialTokens = true)
    {
        var ids = new List<int>(text.Length / 3 + 4);
        var segments = new List<Segment>();
        rawSplitter.Split(text, segments);
        foreach (var segment in segments)
        {
            if (segment.TokenId is int id) { ids.Add(id); continue; }
            var piece = text.Substring(segment.Start, segment.End - segment.Start);
            if (normalizer != null) piece = normalizer.Normalize(piece);
            if (normalizedSplitter == null) { EncodePiece(new Piece(piece, segment.Start == 0), ids); continue; }
            var inner = new List<Segment>();
            normalizedSplitter.Split(piece, inner);
            foreach (var part in inner)
                if (part.TokenId is int innerId) ids.Add(innerId);
                else EncodePiece(new Piece(piece[part.Start..part.End], segment.Start == 0 && part.Start == 0), ids);
        }
        if (addSpecialTokens) postProcessor?.Apply(ids);
        return ids.ToArray();
    }

    void EncodePiece(Piece piece, List<int> ids)
    {
        if (wordRegex != null)
        {
            var text = piece.Text.AsSpan();
            int previous = 0;
            foreach (var match in wordRegex.EnumerateMatches(text))
            {
                if (match.Length == 0) continue;
                if (match.Index > previous) model.Tokenize(text[previous..match.Index], ids);
                model.Tokenize(text.Slice(match.Index, match.Length), ids);
                previous = match.Index + match.Length;
            }
            if (previous < text.Length) model.Tokenize(text[previous..], ids);
            return;
        }
        if (preTokenizer == null)
        {
            if (wordBoundary is char boundary) TokenizeCutBefore(piece.Text, boundary, ids);
            else model.Tokenize(piece.Text, ids);
            return;
        }
        var words = new List<Piece>();
        preTokenizer.Split(piece, words);
        foreach (var word in words) model.Tokenize(word.Text, ids);
    }

    /// <summary>Tokenizes <paramref name="text"/> in pieces cut before each run of <paramref name="boundary"/> (see <see cref="BpeModel.NeverMergesInto"/>).</summary>
    void TokenizeCutBefore(string text, char boundary, List<int> ids)
    {
        int start = 0;
        for (int i = 1; i < text.Length; i++)
        {
            if (text[i] != boundary || text[i - 1] == boundary) continue;
            model.Tokenize(text.AsSpan(start, i - start), ids);
            start = i;
        }
        model.Tokenize(text.AsSpan(start), ids);
    }

    public string Decode(ReadOnlySpan<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>(ids.Length);
        foreach (var id in ids)
        {
            if (skipSpecialTokens && IsSpecial(id)) continue;
            if (IdToToken(id) is { } token) tokens.Add(token);
        }
        var text = decoder != null ? string.Concat(decoder.DecodeChain(tokens)) : string.Join(' ', tokens);
        return cleanUpTokenizationSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>transformers' clean_up_tokenization: drops the space tokenizers of old put before punctuation and English contractions.</summary>
    internal static string CleanUpTokenizationSpaces(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    internal bool CleansUpSpaces => cleanUpTokenizationSpaces;

    internal bool IsByteFallbackToken(int id) => model.IsByteToken(id);

    public string? IdToToken(int id) => (uint)id < (uint)tokenById.Length ? tokenById[id] : null;

    public int? TokenToId(string token) =>
        addedByContent.TryGetValue(token, out var id) ? id : model.Vocab.TryGetValue(token, out id) ? id : null;

    public bool IsSpecial(int id) => addedById.TryGetValue(id, out var token) && token.Special;

    public StreamingDecoder CreateStreamingDecoder(bool skipSpecialTokens = false) => new(this, skipSpecialTokens);
}
