using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

/// <summary>Small hand-written tokenizer.json files for the options the fixture tokenizers do not exercise, and for errors.</summary>
public class SyntheticTokenizerTests
{
    /// <summary>A character-level byte-level-free BPE over a-z, space and "▁" with one merge ("a b" -> "ab"), plus <paramref name="components"/>.</summary>
    static Tokenizer Build(string components, string addedTokens = "[]")
    {
        var letters = Enumerable.Range('a', 26).Select(c => ((char)c).ToString()).Concat([" ", "\u2581", "ab", "<unk>"]).ToList();
        var vocab = string.Join(",", letters.Select((t, i) => $"\"{t}\": {i}"));
        var json = $$"""
            { "version": "1.0", "added_tokens": {{addedTokens}},
              "model": { "type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "vocab": { {{vocab}} }, "merges": [["a", "b"]] }
              {{components}} }
            """;
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "tokenizer.json");
        File.WriteAllText(path, json);
        try { return Tokenizer.FromFile(path); }
        finally { Directory.Delete(dir, true); }
    }

    string Tokens(Tokenizer tokenizer, string text) => string.Join("|", tokenizer.Encode(text).Select(id => tokenizer.IdToToken(id)));

    [Theory]
    [InlineData("normalizer", "\"normalizer\": {\"type\": \"BertNormalizer\"}", "unsupported normalizer 'BertNormalizer'")]
    [InlineData("pre_tokenizer", "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Whitespace\"}]}", "unsupported pre_tokenizer 'Whitespace'")]
    [InlineData("decoder", "\"decoder\": {\"type\": \"WordPiece\"}", "unsupported decoder 'WordPiece'")]
    [InlineData("post_processor", "\"post_processor\": {\"type\": \"RobertaProcessing\"}", "unsupported post_processor 'RobertaProcessing'")]
    public void UnsupportedComponentNamesFileAndComponent(string field, string component, string message)
    {
        var error = Assert.Throws<SharpTuneException>(() => Build("," + component));
        Assert.Contains("tokenizer.json", error.Message);
        Assert.Contains(message, error.Message);
        Assert.Contains(field.Split('_')[0], error.Message);
    }

    [Fact]
    public void UnknownCharactersFuseIntoOneUnk()
    {
        var tokenizer = Build("");
        Assert.Equal("ab|<unk>|c", Tokens(tokenizer, "abXY1c"));
    }

    [Fact]
    public void AddedTokensHonourStripAndSingleWord()
    {
        var tokenizer = Build("", """
            [ { "id": 100, "content": "<x>", "special": true, "normalized": false, "lstrip": true, "rstrip": true, "single_word": false },
              { "id": 101, "content": "cat", "special": false, "normalized": false, "lstrip": false, "rstrip": false, "single_word": true },
              { "id": 102, "content": "<xy>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false } ]
            """);
        // lstrip/rstrip swallow the neighbouring spaces; the longest added token wins.
        Assert.Equal("a|<x>|b|<xy>| |c", Tokens(tokenizer, "a  <x>  b<xy> c"));
        // single_word: "cat" only matches as a whole word.
        Assert.Equal("cat| |c|a|t|s", Tokens(tokenizer, "cat cats"));
        Assert.True(tokenizer.IsSpecial(100));
        Assert.False(tokenizer.IsSpecial(101));
        Assert.Equal(103, tokenizer.VocabSize);
    }

    [Fact]
    public void NormalizedAddedTokensMatchAfterNormalization()
    {
        var tokenizer = Build(", \"normalizer\": {\"type\": \"Lowercase\"}", """
            [ { "id": 100, "content": "cab", "special": false, "normalized": true, "lstrip": false, "rstrip": false, "single_word": false },
              { "id": 101, "content": "CAB", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false } ]
            """);
        // "CAB" is matched in the raw text first; "Cab" only matches "cab" once lowercased.
        Assert.Equal("CAB|cab| |ab", Tokens(tokenizer, "CABCab Ab"));
    }

    [Fact]
    public void MetaspaceSplitsAndDecodes()
    {
        var tokenizer = Build("""
            , "pre_tokenizer": { "type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true },
              "decoder": { "type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": true }
            """);
        Assert.Equal("▁|ab|▁|c|▁|▁|d", Tokens(tokenizer, "ab c  d"));
        Assert.Equal("ab c  d", tokenizer.Decode(tokenizer.Encode("ab c  d")));
    }

    [Theory]
    [InlineData("Removed", false, "a|c|e")]
    [InlineData("Isolated", false, "a|b|c|d|e")]
    [InlineData("MergedWithPrevious", false, "ab|cd|e")]
    [InlineData("MergedWithNext", false, "a|bc|de")]
    [InlineData("Contiguous", false, "a|bb|c|d|e")]
    [InlineData("Removed", true, "b|b|d")]
    public void SplitBehaviors(string behavior, bool invert, string expected)
    {
        var input = behavior == "Contiguous" || invert ? "abbcde" : "abcde";
        var split = new SplitPreTokenizer(new System.Text.RegularExpressions.Regex("[bd]"), Enum.Parse<SplitBehavior>(behavior), invert);
        var words = new List<Piece>();
        split.Split(new Piece(input, true), words);
        Assert.Equal(expected, string.Join("|", words.Select(w => w.Text)));
        // Only a word that begins the input counts as at the start (Metaspace's prepend_scheme "first" relies on it).
        Assert.Equal(input.StartsWith(expected[0]), words[0].AtStart);
        Assert.All(words.Skip(1), w => Assert.False(w.AtStart));
    }
}
