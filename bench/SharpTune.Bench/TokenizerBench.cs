using System.Diagnostics;
using System.Text;
using SharpTune.Tokenization;

namespace SharpTune.Bench;

/// <summary>
/// Encoding throughput on one thread: ~5 MB of English-like text (varied sentences in seeded random order), encoded
/// paragraph by paragraph. Pass 1 fills the word cache; later passes show the steady state.
/// Usage: tokenizer [path/to/tokenizer.json] (default: the qwen2-tiny fixture).
/// </summary>
static class TokenizerBench
{
    static readonly string[] Sentences =
    [
        "The quick brown fox jumps over the lazy dog.",
        "Once upon a time, there was a little girl named Lily who loved to play outside in the park.",
        "In 2023, the company reported revenue of $4.7 billion, up 12% from the previous year.",
        "She said, \"I don't think we're going to make it before the storm arrives.\"",
        "Machine learning models are trained on large datasets to recognize patterns and make predictions.",
        "He couldn't believe what he'd seen: a bright light moving slowly across the night sky.",
        "The recipe calls for two cups of flour, three eggs, and a pinch of salt.",
        "Researchers at the university published their findings in a peer-reviewed journal last month.",
        "After the meeting, everyone agreed that the proposal needed more work.",
        "It's important to drink water regularly, especially during hot summer days.",
        "The train to Boston departs at 9:45 a.m. from platform 3.",
        "Why do cats always land on their feet? Scientists have studied this for years!",
    ];

    public static int Run(string[] args)
    {
        var path = args.Length > 0 ? args[0] : Path.Combine(FindRepoRoot(), "..", "shared", "testdata", "models", "qwen2-tiny", "tokenizer.json");
        var load = Stopwatch.StartNew();
        var tokenizer = Tokenizer.FromFile(path);
        Console.WriteLine($"tokenizer: {path} (vocab {tokenizer.VocabSize}, loaded in {load.Elapsed.TotalSeconds:F2} s)");

        var paragraphs = MakeParagraphs(targetBytes: 5 << 20);
        long bytes = paragraphs.Sum(p => (long)Encoding.UTF8.GetByteCount(p));
        for (int pass = 1; pass <= 3; pass++)
        {
            long tokens = 0;
            var timer = Stopwatch.StartNew();
            foreach (var paragraph in paragraphs) tokens += tokenizer.Encode(paragraph, addSpecialTokens: false).Length;
            var seconds = timer.Elapsed.TotalSeconds;
            Console.WriteLine($"pass {pass}: {bytes / 1e6:F1} MB, {tokens} tokens in {seconds:F3} s = {bytes / 1e6 / seconds:F1} MB/s, {tokens / seconds / 1e6:F2} M tokens/s (1 thread)");
        }
        return 0;
    }

    /// <summary>Paragraphs of 5-12 sentences, with some numbers varied so the text is not a handful of repeated words.</summary>
    static List<string> MakeParagraphs(long targetBytes)
    {
        var random = new Random(1234);
        var paragraphs = new List<string>();
        long total = 0;
        var builder = new StringBuilder();
        while (total < targetBytes)
        {
            builder.Clear();
            int count = random.Next(5, 13);
            for (int i = 0; i < count; i++)
            {
                if (i > 0) builder.Append(' ');
                builder.Append(Sentences[random.Next(Sentences.Length)]);
                if (random.Next(4) == 0) builder.Append(" (item ").Append(random.Next(100000)).Append(')');
            }
            builder.Append('\n');
            var paragraph = builder.ToString();
            paragraphs.Add(paragraph);
            total += paragraph.Length;
        }
        return paragraphs;
    }

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "SharpTune.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new SharpTuneException("cannot find SharpTune.slnx above " + AppContext.BaseDirectory + "; pass the tokenizer.json path");
    }
}
