using System.Text.Json;

namespace SharpTune.Tests.Tokenization;

/// <summary>Token ids recorded by Hugging Face transformers in the models' reference.json files.</summary>
public class ReferenceTokenizationTests
{
    static int[] Ints(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt32()).ToArray();

    [SkippableFact]
    public void Stories260KDecodesTheDocumentedGreedyText()
    {
        var dir = TestData.Model("stories260K");
        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, "reference.json")));
        var greedy = reference.RootElement.GetProperty("greedy_from_bos");
        var ids = Ints(greedy.GetProperty("generated_ids_first_255"));
        var expected = File.ReadAllText(Path.Combine(dir, greedy.GetProperty("expected_text_file").GetString()!));
        var tokenizer = TokenizerFixtures.Get("stories260K");

        var decoded = tokenizer.Decode(ids);
        Assert.True(decoded.Length > 200, $"decoded only {decoded.Length} characters");
        Assert.StartsWith(decoded, expected);

        // Encoding the decoded text gives back the same ids, with BOS (id 1) first from the post-processor.
        Assert.Equal(1, tokenizer.BosTokenId);
        Assert.Equal([1, .. ids], tokenizer.Encode(decoded));
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void PromptsEncodeToTheReferenceIds(string model)
    {
        var tokenizer = TokenizerFixtures.Get(model);
        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.Model(model), "reference.json")));
        int count = 0;
        foreach (var prompt in reference.RootElement.GetProperty("prompts").EnumerateArray())
        {
            var text = prompt.GetProperty("text").GetString()!;
            var expected = Ints(prompt.GetProperty("input_ids"));
            Assert.Equal(expected, tokenizer.Encode(text));
            Assert.Equal(text, tokenizer.Decode(expected, skipSpecialTokens: true));
            count++;
        }
        Assert.True(count >= 3);
        if (model == "llama3-tiny") Assert.Equal(128000, tokenizer.Encode("x")[0]);
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void ChatTemplatesTextEncodesToTheReferenceIds(string model)
    {
        var tokenizer = TokenizerFixtures.Get(model);
        using var reference = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.Model(model), "reference.json")));
        int count = 0;
        foreach (var chat in reference.RootElement.GetProperty("chats").EnumerateArray())
        {
            var text = chat.GetProperty("text").GetString()!;
            var expected = Ints(chat.GetProperty("input_ids"));
            Assert.Equal(expected, tokenizer.Encode(text, addSpecialTokens: false));
            count++;
        }
        Assert.True(count >= 3);
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny", null, "<|im_end|>", "<|endoftext|>")]
    [InlineData("llama3-tiny", "<|begin_of_text|>", "<|eot_id|>", null)]
    [InlineData("stories260K", "<s>", "</s>", null)]
    public void SpecialTokensComeFromTokenizerConfig(string model, string? bos, string? eos, string? pad)
    {
        var tokenizer = TokenizerFixtures.Get(model);
        Assert.Equal(bos, tokenizer.BosToken);
        Assert.Equal(eos, tokenizer.EosToken);
        Assert.Equal(bos == null ? null : tokenizer.TokenToId(bos), tokenizer.BosTokenId);
        Assert.Equal(eos == null ? null : tokenizer.TokenToId(eos), tokenizer.EosTokenId);
        Assert.Equal(pad == null ? null : tokenizer.TokenToId(pad), tokenizer.PadTokenId);
        Assert.True(tokenizer.IsSpecial(tokenizer.EosTokenId!.Value));
        Assert.Equal(eos, tokenizer.IdToToken(tokenizer.EosTokenId!.Value));
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    [InlineData("stories260K")]
    public void VocabSizeMatchesTheModelConfig(string model)
    {
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestData.Model(model), "config.json")));
        var tokenizer = TokenizerFixtures.Get(model);
        // Checkpoints pad the embedding; the tokenizer's ids must fit in it.
        Assert.InRange(tokenizer.VocabSize, 1, config.RootElement.GetProperty("vocab_size").GetInt32());
        Assert.NotNull(tokenizer.IdToToken(tokenizer.VocabSize - 1));
        Assert.Null(tokenizer.IdToToken(tokenizer.VocabSize));
    }
}
