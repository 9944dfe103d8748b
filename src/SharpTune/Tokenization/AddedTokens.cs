using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>An entry of tokenizer.json's "added_tokens": matched in the text before the model sees it.</summary>
sealed record AddedToken(int Id, string Content, bool Special, bool Normalized, bool LStrip, bool RStrip, bool SingleWord)
{
    public static AddedToken FromJson(JsonElement json, string where)
    {
        bool special = json.OptBool("special", false);
        // tokenizers' default: special tokens are matched in the raw text, others in the normalized text.
        return new(json.Required("id", where).GetInt32(), json.RequiredString("content", where), special,
            json.OptBool("normalized", !special), json.OptBool("lstrip", false), json.OptBool("rstrip", false), json.OptBool("single_word", false));
    }
}

/// <summary>A stretch of input: either an added token (<see cref="TokenId"/> set) or text [Start, End) to encode.</summary>
readonly record struct Segment(int? TokenId, int Start, int End);

/// <summary>
/// Finds added tokens in text as tokenizers' AddedVocabulary does: leftmost-longest matches, skipped when single_word and
/// touching a word character, widened over neighbouring whitespace for lstrip/rstrip (that whitespace is dropped).
/// </summary>
sealed class AddedTokenSplitter
{
    readonly Dictionary<char, AddedToken[]> byFirstChar;
    readonly bool[] isFirstChar = new bool[char.MaxValue + 1];

    /// <param name="contentOf">the text to look for (the content itself, or its normalized form for normalized tokens)</param>
    public AddedTokenSplitter(IEnumerable<AddedToken> tokens, Func<AddedToken, string> contentOf)
    {
        byFirstChar = tokens.Select(t => (Token: t, Text: contentOf(t))).Where(t => t.Text.Length > 0)
            .GroupBy(t => t.Text[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Text.Length).Select(t => t.Token with { Content = t.Text }).ToArray());
        foreach (var c in byFirstChar.Keys) isFirstChar[c] = true;
    }

    public bool IsEmpty => byFirstChar.Count == 0;

    public void Split(string text, List<Segment> output)
    {
        int startOffset = 0;
        for (int i = 0; i < text.Length;)
        {
            if (!isFirstChar[text[i]] || LongestMatch(text, i) is not AddedToken token) { i++; continue; }
            int start = i, stop = i + token.Content.Length;
            i = stop;
            if (token.SingleWord && ((start > 0 && IsWordChar(text[start - 1])) || (stop < text.Length && IsWordChar(text[stop])))) continue;
            if (token.LStrip)
            {
                int widened = start;
                while (widened > 0 && char.IsWhiteSpace(text[widened - 1])) widened--;
                start = Math.Max(widened, startOffset);
            }
            if (token.RStrip) while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++;
            if (startOffset < start) output.Add(new Segment(null, startOffset, start));
            output.Add(new Segment(token.Id, start, stop));
            startOffset = stop;
            i = Math.Max(i, stop);
        }
        if (startOffset < text.Length) output.Add(new Segment(null, startOffset, text.Length));
    }

    AddedToken? LongestMatch(string text, int at)
    {
        foreach (var candidate in byFirstChar[text[at]])
            if (text.AsSpan(at).StartsWith(candidate.Content, StringComparison.Ordinal)) return candidate;
        return null;
    }

    static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
