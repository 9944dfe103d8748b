using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization;

/// <summary>A tokenizer.json "normalizer": rewrites the text between added tokens before pre-tokenization.</summary>
abstract class Normalizer
{
    public abstract string Normalize(string text);

    /// <summary>Builds the normalizer described by <paramref name="json"/>; null for a JSON null (no normalizer).</summary>
    public static Normalizer? FromJson(JsonElement json, string path)
    {
        if (json.IsNull()) return null;
        var type = json.ComponentType($"{path}: normalizer");
        return type switch
        {
            "Sequence" => new SequenceNormalizer(json.Required("normalizers", $"{path}: normalizer Sequence").EnumerateArray()
                .Select(n => FromJson(n, path)).OfType<Normalizer>().ToArray()),
            "Prepend" => new PrependNormalizer(json.RequiredString("prepend", $"{path}: normalizer Prepend")),
            "Replace" => new ReplaceNormalizer(json.Pattern($"{path}: normalizer Replace"), json.LiteralPattern(),
                json.RequiredString("content", $"{path}: normalizer Replace")),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC, path),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD, path),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC, path),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD, path),
            "Lowercase" => new LowercaseNormalizer(),
            _ => throw new SharpTuneException($"{path}: unsupported normalizer '{type}'"),
        };
    }
}

sealed class SequenceNormalizer(Normalizer[] steps) : Normalizer
{
    public override string Normalize(string text)
    {
        foreach (var step in steps) text = step.Normalize(text);
        return text;
    }
}

/// <summary>Prepends a string to non-empty text (SentencePiece's leading "▁").</summary>
sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

sealed class ReplaceNormalizer(Regex pattern, string? literal, string content) : Normalizer
{
    public override string Normalize(string text) =>
        literal != null ? (literal.Length == 0 ? text : text.Replace(literal, content, StringComparison.Ordinal)) : pattern.Replace(text, content.Replace("$", "$$"));
}

sealed class LowercaseNormalizer : Normalizer
{
    public override string Normalize(string text) => text.ToLowerInvariant();
}

sealed class UnicodeNormalizer : Normalizer
{
    readonly NormalizationForm form;

    public UnicodeNormalizer(NormalizationForm form, string path)
    {
        // With invariant globalization .NET only carries the canonical (NFC/NFD) tables; compatibility forms silently do nothing.
        if ("\uFB01".Normalize(form) == "\uFB01" && form is NormalizationForm.FormKC or NormalizationForm.FormKD)
            throw new SharpTuneException($"{path}: unsupported normalizer '{(form == NormalizationForm.FormKC ? "NFKC" : "NFKD")}' (this runtime has no compatibility normalization tables)");
        this.form = form;
    }

    public override string Normalize(string text) => text.IsNormalized(form) ? text : text.Normalize(form);
}
