namespace SharpTune.Tests.Tokenization;

/// <summary>llama.cpp's tokenizer test vectors: each .out line is Hugging Face's encode(text, add_special_tokens=False).</summary>
public class LlamaCppVectorTests
{
    const string Separator = "\n__ggml_vocab_test__\n";

    [SkippableTheory]
    [InlineData("ggml-vocab-qwen2.gguf", "qwen2-tiny")]
    [InlineData("ggml-vocab-llama-bpe.gguf", "llama3-tiny")]
    [InlineData("ggml-vocab-llama-spm.gguf", "llama2")]
    public void EncodesEveryVectorLikeHuggingFace(string vectors, string tokenizerName)
    {
        var inputs = File.ReadAllText(TestData.Require("tokenizer-vectors", "llama.cpp", vectors + ".inp")).Split(Separator);
        var outputs = File.ReadAllLines(TestData.Require("tokenizer-vectors", "llama.cpp", vectors + ".out"));
        // The .inp file ends with a separator, leaving one empty entry after the last test string.
        Assert.Equal("", inputs[^1]);
        Assert.Equal(inputs.Length - 1, outputs.Length);
        var tokenizer = TokenizerFixtures.Get(tokenizerName);

        var failures = new List<string>();
        for (int i = 0; i < outputs.Length; i++)
        {
            var expected = outputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
            var actual = tokenizer.Encode(inputs[i], addSpecialTokens: false);
            if (!expected.SequenceEqual(actual))
                failures.Add($"#{i} {System.Text.Json.JsonSerializer.Serialize(inputs[i])}: expected [{string.Join(' ', expected)}] got [{string.Join(' ', actual)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count}/{outputs.Length} vectors differ:\n" + string.Join("\n", failures));
        Assert.True(outputs.Length >= 40, $"only {outputs.Length} vectors read from {vectors}");
    }
}
