using System.Text.Json;

namespace SharpTune.Tests.Tokenization;

/// <summary>
/// transformers.js's vectors: text, ids (with special tokens) and decoded text from Python transformers. Only the sets made
/// with a tokenizer we have a fixture for are checked; the others (GPT-2 family, TinyLlama, DeepSeek, TamilLlama) need vocabularies
/// the fixtures do not carry.
/// </summary>
public class TransformersJsVectorTests
{
    [SkippableTheory]
    [InlineData("qwen2.json", "Xenova/Qwen1.5-0.5B-Chat", "qwen2-tiny", true)]
    [InlineData("llama.json", "Xenova/llama-tokenizer", "llama2", true)]
    [InlineData("llama.json", "Xenova/llama3-tokenizer-new", "llama3-tiny", true)]
    // The older llama3 export had no BOS template; its ids are our encoding without the post-processor.
    [InlineData("llama.json", "Xenova/llama3-tokenizer", "llama3-tiny", false)]
    public void MatchesIdsAndDecodedText(string file, string set, string tokenizerName, bool addSpecialTokens)
    {
        using var json = JsonDocument.Parse(File.ReadAllBytes(TestData.Require("tokenizer-vectors", "transformers.js", file)));
        Assert.True(json.RootElement.TryGetProperty(set, out var cases), $"{file} has no set {set}");
        var tokenizer = TokenizerFixtures.Get(tokenizerName);

        var failures = new List<string>();
        int count = 0;
        foreach (var entry in cases.EnumerateObject())
        {
            count++;
            var text = entry.Value.GetProperty("text").GetString()!;
            var expectedIds = entry.Value.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var expectedDecoded = entry.Value.GetProperty("decoded").GetString()!;
            var ids = tokenizer.Encode(text, addSpecialTokens);
            if (!expectedIds.SequenceEqual(ids))
                failures.Add($"{entry.Name}: ids expected [{string.Join(' ', expectedIds)}] got [{string.Join(' ', ids)}]");
            var decoded = tokenizer.Decode(expectedIds);
            if (decoded != expectedDecoded)
                failures.Add($"{entry.Name}: decoded expected {JsonSerializer.Serialize(expectedDecoded)} got {JsonSerializer.Serialize(decoded)}");
        }
        Assert.True(count > 20, $"{set}: only {count} cases");
        Assert.True(failures.Count == 0, $"{set}: {failures.Count} mismatches in {count} cases:\n" + string.Join("\n", failures));
    }

}
