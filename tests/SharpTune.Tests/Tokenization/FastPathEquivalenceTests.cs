using System.Text.Json;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

/// <summary>
/// Encoding takes shortcuts for speed (words as regex-match spans with deferred byte mapping; SentencePiece text cut
/// before "▁" runs so words can be cached). These tests encode without the shortcuts, straight from the components,
/// and require identical ids on the llama.cpp test strings and the decoding texts.
/// </summary>
public class FastPathEquivalenceTests
{
    static IEnumerable<string> Inputs(string vectors) =>
        File.ReadAllText(TestData.Require("tokenizer-vectors", "llama.cpp", vectors + ".inp")).Split("\n__ggml_vocab_test__\n")
            .Concat(DecodingTests.Texts).Where(t => t.Length > 0 && !t.Contains("<|") && !t.Contains("<s>") && !t.Contains("</s>"));

    /// <summary>Normalize, pre-tokenize into strings (byte mapping done eagerly), BPE each word with a fresh model without shortcuts.</summary>
    static Func<string, int[]> SlowEncoder(JsonElement root, string path)
    {
        var normalizer = Normalizer.FromJson(root.GetProperty("normalizer"), path);
        var preTokenizer = PreTokenizer.FromJson(root.GetProperty("pre_tokenizer"), path);
        var model = BpeModel.FromJson(root.GetProperty("model"), path);
        return text =>
        {
            var normalized = normalizer?.Normalize(text) ?? text;
            var words = new List<Piece>();
            if (preTokenizer == null) words.Add(new Piece(normalized, true));
            else preTokenizer.Split(new Piece(normalized, true), words);
            var ids = new List<int>();
            foreach (var word in words) model.Tokenize(word.Text, ids);
            return ids.ToArray();
        };
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny", "ggml-vocab-qwen2.gguf")]
    [InlineData("llama3-tiny", "ggml-vocab-llama-bpe.gguf")]
    [InlineData("llama2", "ggml-vocab-llama-spm.gguf")]
    public void ShortcutsGiveTheSameIds(string model, string vectors)
    {
        var path = model == "llama2" ? TestData.Require("tokenizers", "llama2", "tokenizer.json") : Path.Combine(TestData.Model(model), "tokenizer.json");
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var tokenizer = TokenizerFixtures.Get(model);
        var encodeSlowly = SlowEncoder(json.RootElement, path);
        int count = 0;
        foreach (var text in Inputs(vectors))
        {
            Assert.Equal(encodeSlowly(text), tokenizer.Encode(text, addSpecialTokens: false));
            count++;
        }
        Assert.True(count > 40);
    }

    [SkippableFact]
    public void Llama2VocabAllowsCuttingBeforeSpaceRuns()
    {
        var path = TestData.Require("tokenizers", "llama2", "tokenizer.json");
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        Assert.True(BpeModel.FromJson(json.RootElement.GetProperty("model"), path).NeverMergesInto('\u2581'));
    }
}
