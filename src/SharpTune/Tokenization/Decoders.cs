using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization;

/// <summary>A tokenizer.json "decoder": turns token strings back into text, as a chain of steps over the token list.</summary>
abstract class Decoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    public static Decoder? FromJson(JsonElement json, string path)
    {
        if (json.IsNull()) return null;
        var where = $"{path}: decoder";
        var type = json.ComponentType(where);
        return type switch
        {
            "Sequence" => new SequenceDecoder(json.Required("decoders", where).EnumerateArray()
                .Select(d => FromJson(d, path)).OfType<Decoder>().ToArray()),
            "Replace" => new ReplaceDecoder(json.Pattern($"{where} Replace"), json.LiteralPattern(), json.RequiredString("content", $"{where} Replace")),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(json.RequiredString("content", $"{where} Strip"), json.OptInt("start", 0), json.OptInt("stop", 0)),
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => MetaspaceDecoder.FromJson(json, $"{where} Metaspace"),
            _ => throw new SharpTuneException($"{path}: unsupported decoder '{type}'"),
        };
    }
}

sealed class SequenceDecoder(Decoder[] steps) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var step in steps) tokens = step.DecodeChain(tokens);
        return tokens;
    }
}

sealed class ReplaceDecoder(Regex pattern, string? literal, string content) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(t =>
        literal != null ? (literal.Length == 0 ? t : t.Replace(literal, content, StringComparison.Ordinal)) : pattern.Replace(t, content.Replace("$", "$$")));
}

/// <summary>Runs of &lt;0xXX&gt; tokens become the text their bytes spell, or one U+FFFD per byte when they are not valid UTF-8.</summary>
sealed class ByteFallbackDecoder : Decoder
{
    static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
                && byte.TryParse(token.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out var value))
            {
                pending.Add(value);
                continue;
            }
            Flush(pending, result);
            result.Add(token);
        }
        Flush(pending, result);
        return result;
    }

    static void Flush(List<byte> pending, List<string> result)
    {
        if (pending.Count == 0) return;
        try { result.Add(StrictUtf8.GetString(pending.ToArray())); }
        catch (DecoderFallbackException) { for (int i = 0; i < pending.Count; i++) result.Add("\uFFFD"); }
        pending.Clear();
    }
}

sealed class FuseDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of one character from every token.</summary>
sealed class StripDecoder(string content, int start, int stop) : Decoder
{
    public override List<string> DecodeChain(List<string> tokens) => tokens.ConvertAll(token =>
    {
        if (content.Length != 1) return token;
        char c = content[0];
        int from = 0, to = token.Length;
        while (from < start && from < token.Length && token[from] == c) from++;
        while (token.Length - to < stop && to > from && token[to - 1] == c) to--;
        return token[from..to];
    });
}

/// <summary>Maps the byte-level alphabet back to bytes and decodes them as UTF-8 (invalid sequences become U+FFFD).</summary>
sealed class ByteLevelDecoder : Decoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
            if (!ByteLevelAlphabet.TryAppendBytes(token, bytes)) bytes.AddRange(Encoding.UTF8.GetBytes(token));
        return [Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes))];
    }
}

/// <summary>The replacement character becomes a space; the first token loses its leading space unless the prepend scheme is "never".</summary>
sealed class MetaspaceDecoder(char replacement, bool stripFirst) : Decoder
{
    public static MetaspaceDecoder FromJson(JsonElement json, string where)
    {
        var replacement = json.OptString("replacement") ?? "\u2581";
        if (replacement.Length != 1) throw new SharpTuneException($"{where}: replacement must be one character, got '{replacement}'");
        var scheme = json.OptString("prepend_scheme") ?? (json.OptBool("add_prefix_space", true) ? "always" : "never");
        return new MetaspaceDecoder(replacement[0], scheme != "never");
    }

    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            var text = tokens[i].Replace(replacement, ' ');
            result.Add(i == 0 && stripFirst && text.StartsWith(' ') ? text[1..] : text);
        }
        return result;
    }
}
