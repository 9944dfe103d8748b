using System.Globalization;
using System.Text;

namespace SharpTune.Templates.Jinja;

enum TokenKind { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, End }

readonly record struct Token(TokenKind Kind, string Value, int Line)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public override string ToString() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.VarEnd => "'}}'",
        TokenKind.BlockEnd => "'%}'",
        _ => $"'{Value}'",
    };
}

/// <summary>
/// Splits a template into text and tag tokens, applying whitespace control the way transformers configures Jinja:
/// trim_blocks (drop the first newline after a block or comment tag) and lstrip_blocks (drop spaces and tabs before a
/// block or comment tag at the start of a line), plus the explicit <c>-</c> and <c>+</c> modifiers on tags.
/// </summary>
sealed class JinjaLexer(string source, string sourceName)
{
    static readonly string[] Operators = ["**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%", "~", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":", "|"];

    readonly List<Token> tokens = [];
    int pos, line = 1;

    public List<Token> Tokenize()
    {
        bool stripNextText = false;
        while (pos < source.Length)
        {
            int start = FindTagStart(pos);
            string text = source[pos..(start < 0 ? source.Length : start)];
            if (stripNextText) text = text.TrimStart();
            stripNextText = false;
            if (start < 0)
            {
                EmitText(text);
                break;
            }
            char kind = source[start + 1];
            char modifier = start + 2 < source.Length ? source[start + 2] : '\0';
            if (modifier == '-') text = text.TrimEnd();
            else if (kind != '{' && modifier != '+' && StartsLine(start)) text = text.TrimEnd(' ', '\t');
            EmitText(text);
            line += CountNewlines(pos, start);
            pos = start + 2 + (modifier is '-' or '+' ? 1 : 0);

            var (rightStrip, trimNewline) = kind == '#' ? SkipComment() : LexTag(kind == '{');
            stripNextText = rightStrip;
            if (!rightStrip && trimNewline && kind != '{') SkipOneNewline();
        }
        tokens.Add(new Token(TokenKind.End, "", line));
        return tokens;
    }

    int FindTagStart(int from)
    {
        for (int i = source.IndexOf('{', from); i >= 0 && i + 1 < source.Length; i = source.IndexOf('{', i + 1))
            if (source[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    bool StartsLine(int tagStart)
    {
        int i = tagStart - 1;
        while (i >= pos && source[i] is ' ' or '\t') i--;
        return i < 0 || source[i] == '\n';
    }

    void EmitText(string text)
    {
        if (text.Length > 0) tokens.Add(new Token(TokenKind.Text, text, line));
    }

    int CountNewlines(int from, int to)
    {
        int n = 0;
        for (int i = from; i < to; i++) if (source[i] == '\n') n++;
        return n;
    }

    void SkipOneNewline()
    {
        if (pos < source.Length && source[pos] == '\n') { pos++; line++; }
        else if (pos + 1 < source.Length && source[pos] == '\r' && source[pos + 1] == '\n') { pos += 2; line++; }
    }

    /// <returns>whether the comment closed with <c>-#}</c>, and whether trim_blocks may drop the newline after it (not after <c>+#}</c>).</returns>
    (bool RightStrip, bool TrimNewline) SkipComment()
    {
        int end = source.IndexOf("#}", pos, StringComparison.Ordinal);
        if (end < 0) throw Error("comment '{#' is never closed");
        char modifier = end > pos ? source[end - 1] : '\0';
        line += CountNewlines(pos, end);
        pos = end + 2;
        return (modifier == '-', modifier != '+');
    }

    /// <summary>Lexes the expression tokens of a <c>{{ }}</c> or <c>{% %}</c> tag up to and including its closing delimiter.</summary>
    /// <returns>whether the tag closed with a <c>-</c> modifier (strip the whitespace after it), and whether trim_blocks may apply (not after <c>+</c>).</returns>
    (bool RightStrip, bool TrimNewline) LexTag(bool isVariable)
    {
        int tagLine = line;
        tokens.Add(new Token(isVariable ? TokenKind.VarBegin : TokenKind.BlockBegin, isVariable ? "{{" : "{%", line));
        string close = isVariable ? "}}" : "%}";
        int braceDepth = 0;
        while (true)
        {
            SkipWhitespace();
            if (pos >= source.Length) throw Error($"tag opened on line {tagLine} is never closed with '{close}'");
            char modifier = source[pos];
            if (modifier is '-' or '+' && string.CompareOrdinal(source, pos + 1, close, 0, 2) == 0 && braceDepth == 0)
            {
                pos += 3;
                tokens.Add(new Token(isVariable ? TokenKind.VarEnd : TokenKind.BlockEnd, close, line));
                return (modifier == '-', modifier != '+');
            }
            if (string.CompareOrdinal(source, pos, close, 0, 2) == 0 && braceDepth == 0)
            {
                pos += 2;
                tokens.Add(new Token(isVariable ? TokenKind.VarEnd : TokenKind.BlockEnd, close, line));
                return (false, true);
            }
            var token = LexExpressionToken();
            if (token.Is(TokenKind.Operator, "{")) braceDepth++;
            else if (token.Is(TokenKind.Operator, "}")) braceDepth--;
            tokens.Add(token);
        }
    }

    void SkipWhitespace()
    {
        while (pos < source.Length && char.IsWhiteSpace(source[pos]))
        {
            if (source[pos] == '\n') line++;
            pos++;
        }
    }

    Token LexExpressionToken()
    {
        char c = source[pos];
        if (char.IsLetter(c) || c == '_')
        {
            int start = pos;
            while (pos < source.Length && (char.IsLetterOrDigit(source[pos]) || source[pos] == '_')) pos++;
            return new Token(TokenKind.Name, source[start..pos], line);
        }
        if (char.IsDigit(c)) return LexNumber();
        if (c is '\'' or '"') return LexString(c);
        foreach (var op in Operators)
            if (string.CompareOrdinal(source, pos, op, 0, op.Length) == 0)
            {
                pos += op.Length;
                return new Token(TokenKind.Operator, op, line);
            }
        throw Error($"unexpected character '{c}'");
    }

    Token LexNumber()
    {
        int start = pos;
        bool isFloat = false;
        while (pos < source.Length && (char.IsDigit(source[pos]) || source[pos] == '_')) pos++;
        if (pos + 1 < source.Length && source[pos] == '.' && char.IsDigit(source[pos + 1]))
        {
            isFloat = true;
            pos++;
            while (pos < source.Length && (char.IsDigit(source[pos]) || source[pos] == '_')) pos++;
        }
        if (pos < source.Length && source[pos] is 'e' or 'E')
        {
            int save = pos++;
            if (pos < source.Length && source[pos] is '+' or '-') pos++;
            if (pos < source.Length && char.IsDigit(source[pos]))
            {
                isFloat = true;
                while (pos < source.Length && char.IsDigit(source[pos])) pos++;
            }
            else pos = save;
        }
        string text = source[start..pos].Replace("_", "");
        return new Token(isFloat ? TokenKind.Float : TokenKind.Integer, text, line);
    }

    Token LexString(char quote)
    {
        int startLine = line;
        pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (pos >= source.Length) throw Error($"string opened on line {startLine} is never closed");
            char c = source[pos++];
            if (c == quote) break;
            if (c == '\n') line++;
            if (c != '\\' || pos >= source.Length)
            {
                sb.Append(c);
                continue;
            }
            char e = source[pos++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 't': sb.Append('\t'); break;
                case 'r': sb.Append('\r'); break;
                case '0': sb.Append('\0'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case '\\': case '\'': case '"': sb.Append(e); break;
                case '\n': line++; break;
                case 'x': sb.Append(ParseHex(2)); break;
                case 'u': sb.Append(ParseHex(4)); break;
                case 'U': sb.Append(char.ConvertFromUtf32(int.Parse(HexDigits(8), NumberStyles.HexNumber))); break;
                default: sb.Append('\\').Append(e); break; // Python keeps unknown escapes verbatim
            }
        }
        return new Token(TokenKind.String, sb.ToString(), startLine);
    }

    char ParseHex(int digits) => (char)int.Parse(HexDigits(digits), NumberStyles.HexNumber);

    string HexDigits(int digits)
    {
        if (pos + digits > source.Length) throw Error("truncated escape sequence in string");
        var hex = source.Substring(pos, digits);
        if (!hex.All(Uri.IsHexDigit)) throw Error($"bad escape sequence '\\{hex}' in string");
        pos += digits;
        return hex;
    }

    SharpTuneException Error(string problem) => new($"{sourceName}: line {line}: {problem}");
}
