using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

public class DecodingTests
{
    public static readonly string[] Texts =
    [
        "Hello world! It's 2024; naïve café — 日本語のテキスト and 深度学习 🤖🎉👨‍👩‍👧 done.",
        "  leading spaces, trailing spaces   \n\n\ttabs\r\nand newlines ",
        "I don't know , what 's going on ? Wow ! They 're here . ' quoted '",
        "数学：x² + y² = z²，😀😃😄 emoji soup 🏳️‍🌈 and Ünïcödé",
        "def f(x):\n    return x ** 2  # squares\n",
    ];

    public static TheoryData<string> Models => ["qwen2-tiny", "llama3-tiny", "llama2", "stories260K"];

    [SkippableTheory]
    [MemberData(nameof(Models))]
    public void DecodeInvertsEncode(string model)
    {
        var tokenizer = TokenizerFixtures.Get(model);
        foreach (var text in Texts)
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: false);
            Assert.NotEmpty(ids);
            var decoded = tokenizer.Decode(ids);
            // transformers' clean-up (on for llama3) rewrites " ," and friends.
            var expected = model == "llama3-tiny" ? Tokenizer.CleanUpTokenizationSpaces(text) : text;
            Assert.Equal(expected, decoded);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Models))]
    public void StreamingDecoderConcatenatesToDecode(string model)
    {
        var tokenizer = TokenizerFixtures.Get(model);
        // The long text makes the decoder trim its window many times, also while clean-up holds text back.
        var longText = string.Join(" <|im_end|> a b , c 's d . ", Enumerable.Repeat(Texts, 4).SelectMany(t => t));
        foreach (var text in Texts.Append(longText))
        foreach (var skip in new[] { false, true })
        {
            var ids = tokenizer.Encode(text, addSpecialTokens: true);
            var stream = tokenizer.CreateStreamingDecoder(skip);
            var pieces = new List<string>();
            int longestWindow = 0;
            foreach (var id in ids)
            {
                pieces.Add(stream.Push(id));
                longestWindow = Math.Max(longestWindow, stream.WindowLength);
            }
            Assert.InRange(longestWindow, 1, 40);
            pieces.Add(stream.Flush());
            foreach (var piece in pieces)
            {
                Assert.False(piece.Contains('\uFFFD'), $"{text}: piece {pieces.IndexOf(piece)} has U+FFFD: [{string.Join("|", pieces)}] ids [{string.Join(' ', ids.Select(tokenizer.IdToToken))}]");
                if (piece.Length > 0) Assert.False(char.IsHighSurrogate(piece[^1]), "a piece ends in half a surrogate pair");
            }
            Assert.Equal(tokenizer.Decode(ids, skip), string.Concat(pieces));
        }
    }

    [SkippableFact]
    public void StreamingDecoderHoldsBackByteTokensUntilTheirRunEnds()
    {
        var tokenizer = TokenizerFixtures.Get("stories260K");
        // stories260K has no Chinese pieces, so each character arrives as three <0xXX> byte tokens.
        var ids = tokenizer.Encode("深 and 度", addSpecialTokens: false);
        Assert.Equal(["▁", "<0xE6>", "<0xB7>", "<0xB1>", "▁and", "▁", "<0xE5>", "<0xBA>", "<0xA6>"], ids.Select(id => tokenizer.IdToToken(id)));
        var stream = tokenizer.CreateStreamingDecoder();
        Assert.Equal("", string.Concat(ids[..4].Select(stream.Push)));
        Assert.Equal("深 and", stream.Push(ids[4]));
        Assert.Equal(" ", stream.Push(ids[5]));
        Assert.Equal("", string.Concat(ids[6..].Select(stream.Push)));
        Assert.Equal("度", stream.Flush());
    }

    [SkippableFact]
    public void StreamingDecoderNeverSplitsAByteLevelCharacter()
    {
        var tokenizer = TokenizerFixtures.Get("qwen2-tiny");
        var text = "🏳️‍🌈🤖 深度学习 𝔘𝔫𝔦𝔠𝔬𝔡𝔢";
        var ids = tokenizer.Encode(text);
        // Some ids must carry only part of a character's bytes, or this test would not test anything.
        Assert.Contains(ids, id => tokenizer.Decode([id]).Contains('\uFFFD'));
        var stream = tokenizer.CreateStreamingDecoder();
        var pieces = ids.Select(stream.Push).Append(stream.Flush()).ToList();
        Assert.All(pieces, piece => Assert.DoesNotContain('\uFFFD', piece));
        Assert.Equal(text, string.Concat(pieces));
    }

    [SkippableFact]
    public void SkipsSpecialTokensOnRequest()
    {
        var tokenizer = TokenizerFixtures.Get("qwen2-tiny");
        var text = "<|im_start|>user\nHi there<|im_end|>\n<|endoftext|>";
        var ids = tokenizer.Encode(text);
        Assert.Equal(tokenizer.TokenToId("<|im_start|>"), ids[0]);
        Assert.True(tokenizer.IsSpecial(ids[0]));
        Assert.False(tokenizer.IsSpecial(tokenizer.TokenToId("Hi")!.Value));
        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.Equal("user\nHi there\n", tokenizer.Decode(ids, skipSpecialTokens: true));
        var stream = tokenizer.CreateStreamingDecoder(skipSpecialTokens: true);
        Assert.Equal("user\nHi there\n", string.Concat(ids.Select(stream.Push)) + stream.Flush());

        var llama = TokenizerFixtures.Get("llama2");
        var llamaIds = llama.Encode("Hello");
        Assert.Equal(1, llamaIds[0]);
        Assert.Equal("<s> Hello", llama.Decode(llamaIds));
        Assert.Equal("Hello", llama.Decode(llamaIds, skipSpecialTokens: true));
    }
}
