using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization;

/// <summary>A piece of text on its way to the model; <see cref="AtStart"/> says it begins at offset 0 of the input.</summary>
readonly record struct Piece(string Text, bool AtStart);

/// <summary>A tokenizer.json "pre_tokenizer": cuts normalized text into the words the model encodes one by one.</summary>
abstract class PreTokenizer
{
    public abstract void Split(Piece piece, List<Piece> output);

    public static PreTokenizer? FromJson(JsonElement json, string path)
    {
        if (json.IsNull()) return null;
        var where = $"{path}: pre_tokenizer";
        var type = json.ComponentType(where);
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(json.Required("pretokenizers", where).EnumerateArray()
                .Select(p => FromJson(p, path)).OfType<PreTokenizer>().ToArray()),
            "Split" => new SplitPreTokenizer(json.Pattern($"{where} Split"), ParseBehavior(json, $"{where} Split"), json.OptBool("invert", false)),
            "ByteLevel" => new ByteLevelPreTokenizer(json.OptBool("add_prefix_space", true), json.OptBool("use_regex", true)),
            "Metaspace" => MetaspacePreTokenizer.FromJson(json, $"{where} Metaspace"),
            _ => throw new SharpTuneException($"{path}: unsupported pre_tokenizer '{type}'"),
        };
    }

    static SplitBehavior ParseBehavior(JsonElement json, string where) => json.RequiredString("behavior", where) switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        var other => throw new SharpTuneException($"{where}: unsupported behavior '{other}'"),
    };
}

enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

sealed class SequencePreTokenizer(PreTokenizer[] steps) : PreTokenizer
{
    public IReadOnlyList<PreTokenizer> Steps => steps;

    public override void Split(Piece piece, List<Piece> output)
    {
        var current = new List<Piece> { piece };
        var next = new List<Piece>();
        foreach (var step in steps)
        {
            next.Clear();
            foreach (var p in current) step.Split(p, next);
            (current, next) = (next, current);
        }
        output.AddRange(current);
    }
}

/// <summary>Splits on regex matches as tokenizers' Split does: each match and each gap is a segment, then the behavior merges or drops them.</summary>
sealed class SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert) : PreTokenizer
{
    /// <summary>The regex when matches and gaps alike become words (Isolated, not inverted).</summary>
    public Regex? IsolatingRegex => behavior == SplitBehavior.Isolated && !invert ? pattern : null;

    public override void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text;
        var segments = new List<(int Start, int End, bool IsMatch)>();
        int previous = 0;
        foreach (var m in pattern.EnumerateMatches(text))
        {
            if (m.Length == 0) continue;
            if (m.Index > previous) segments.Add((previous, m.Index, invert));
            segments.Add((m.Index, m.Index + m.Length, !invert));
            previous = m.Index + m.Length;
        }
        if (previous < text.Length) segments.Add((previous, text.Length, invert));
        Emit(piece, Merge(segments, behavior), output);
    }

    /// <summary>Applies the delimiter behavior to (start, end, isMatch) segments, returning the kept ranges.</summary>
    internal static List<(int Start, int End)> Merge(List<(int Start, int End, bool IsMatch)> segments, SplitBehavior behavior)
    {
        var kept = new List<(int Start, int End)>();
        bool previousMatch = false;
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var s in segments) if (!s.IsMatch) kept.Add((s.Start, s.End));
                break;
            case SplitBehavior.Isolated:
                foreach (var s in segments) kept.Add((s.Start, s.End));
                break;
            case SplitBehavior.MergedWithPrevious:
                foreach (var s in segments)
                {
                    if (s.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (kept[^1].Start, s.End);
                    else kept.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (int i = segments.Count - 1; i >= 0; i--)
                {
                    var s = segments[i];
                    if (s.IsMatch && !previousMatch && kept.Count > 0) kept[^1] = (s.Start, kept[^1].End);
                    else kept.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                kept.Reverse();
                break;
            case SplitBehavior.Contiguous:
                for (int i = 0; i < segments.Count; i++)
                {
                    var s = segments[i];
                    if (i > 0 && s.IsMatch == previousMatch) kept[^1] = (kept[^1].Start, s.End);
                    else kept.Add((s.Start, s.End));
                    previousMatch = s.IsMatch;
                }
                break;
        }
        return kept;
    }

    internal static void Emit(Piece piece, List<(int Start, int End)> ranges, List<Piece> output)
    {
        foreach (var (start, end) in ranges)
            if (end > start) output.Add(new Piece(start == 0 && end == piece.Text.Length ? piece.Text : piece.Text[start..end], piece.AtStart && start == 0));
    }
}

/// <summary>
/// GPT-2's byte-level step: optionally a leading space and the GPT-2 regex split, then every UTF-8 byte written as its
/// <see cref="ByteLevelAlphabet"/> character. When it is the last step the tokenizer defers the byte mapping to the model
/// (<see cref="DeferByteMapping"/>), so cached words skip it.
/// </summary>
sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
    static readonly SplitPreTokenizer Gpt2Split = new(new Regex(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant), SplitBehavior.Isolated, false);

    public bool DeferByteMapping { get; set; }

    /// <summary>The regex whose matches are exactly this step's words, when it adds no prefix space.</summary>
    public Regex? WordRegex => useRegex && !addPrefixSpace ? Gpt2Split.IsolatingRegex : null;

    /// <summary>True when the step only maps bytes (no prefix space, no split).</summary>
    public bool IsMappingOnly => !useRegex && !addPrefixSpace;

    public override void Split(Piece piece, List<Piece> output)
    {
        if (addPrefixSpace && !piece.Text.StartsWith(' ')) piece = piece with { Text = " " + piece.Text };
        int first = output.Count;
        if (useRegex) Gpt2Split.Split(piece, output);
        else output.Add(piece);
        if (DeferByteMapping) return;
        for (int i = first; i < output.Count; i++) output[i] = output[i] with { Text = ByteLevelAlphabet.Map(output[i].Text) };
    }
}

/// <summary>SentencePiece's whitespace handling: spaces become the replacement character (▁), optionally prepended, optionally split before each.</summary>
sealed class MetaspacePreTokenizer(char replacement, string prependScheme, bool split) : PreTokenizer
{
    public static MetaspacePreTokenizer FromJson(JsonElement json, string where)
    {
        var replacement = json.OptString("replacement") ?? "\u2581";
        if (replacement.Length != 1) throw new SharpTuneException($"{where}: replacement must be one character, got '{replacement}'");
        var scheme = json.OptString("prepend_scheme") ?? (json.OptBool("add_prefix_space", true) ? "always" : "never");
        if (scheme is not ("always" or "first" or "never")) throw new SharpTuneException($"{where}: unsupported prepend_scheme '{scheme}'");
        return new MetaspacePreTokenizer(replacement[0], scheme, json.OptBool("split", true));
    }

    public override void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text.Replace(' ', replacement);
        bool prepend = prependScheme == "always" || (prependScheme == "first" && piece.AtStart);
        if (prepend && !text.StartsWith(replacement)) text = replacement + text;
        piece = piece with { Text = text };
        if (!split) { output.Add(piece); return; }
        var segments = new List<(int Start, int End, bool IsMatch)>();
        int previous = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] != replacement) continue;
            if (i > previous) segments.Add((previous, i, false));
            segments.Add((i, i + 1, true));
            previous = i + 1;
        }
        if (previous < text.Length) segments.Add((previous, text.Length, false));
        SplitPreTokenizer.Emit(piece, SplitPreTokenizer.Merge(segments, SplitBehavior.MergedWithNext), output);
    }
}
