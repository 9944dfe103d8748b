using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

/// <summary>The fixture tokenizers, loaded once per test run (the big vocabularies take a moment to parse).</summary>
public static class TokenizerFixtures
{
    static readonly Dictionary<string, Tokenizer> Loaded = [];

    /// <summary>"qwen2-tiny", "llama3-tiny", "stories260K" (model folders) or "llama2" (tokenizers/llama2).</summary>
    public static Tokenizer Get(string name)
    {
        var dir = name == "llama2" ? TestData.Require("tokenizers", "llama2") : TestData.Model(name);
        lock (Loaded)
        {
            if (!Loaded.TryGetValue(name, out var tokenizer)) Loaded[name] = tokenizer = Tokenizer.FromModelDirectory(dir);
            return tokenizer;
        }
    }
}
