using System.Text.Json;
using SharpTune.Data;
using SharpTune.Templates;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Data;

/// <summary>Encoding through the real Qwen (qwen2-tiny) and Llama 3 (llama3-tiny) tokenizers and chat templates from the fixtures.</summary>
public class SftEncoderTests
{
    static (Tokenizer, ChatTemplate) Load(string model)
    {
        var dir = TestData.Model(model);
        return (Tokenizer.FromModelDirectory(dir), ChatTemplates.Resolve(dir));
    }

    /// <summary>The maximal runs of positions that carry a label, as (start, end) pairs.</summary>
    static List<(int Start, int End)> TrainedRuns(EncodedSample sample)
    {
        var runs = new List<(int, int)>();
        for (var i = 0; i < sample.Length; i++)
        {
            if (sample.Labels[i] == -100) continue;
            var start = i;
            while (i < sample.Length && sample.Labels[i] != -100) i++;
            runs.Add((start, i));
        }
        return runs;
    }

    static void AssertLabelsExactlyOnAssistantReplies(Tokenizer tokenizer, EncodedSample sample, IReadOnlyList<string> trainedReplies)
    {
        for (var i = 0; i < sample.Length; i++)
            Assert.True(sample.Labels[i] == -100 || sample.Labels[i] == sample.InputIds[i], $"label {i} is neither -100 nor the input id");
        var runs = TrainedRuns(sample);
        Assert.Equal(trainedReplies.Count, runs.Count);
        for (var r = 0; r < runs.Count; r++)
        {
            var text = tokenizer.Decode(sample.InputIds[runs[r].Start..runs[r].End]);
            // Qwen3's template opens the final reply with an empty thinking block, which is part of what the model generates.
            var reply = text.StartsWith("<think>\n\n</think>\n\n") ? text["<think>\n\n</think>\n\n".Length..] : text;
            Assert.Equal(trainedReplies[r] + "<|im_end|>", reply);
        }
    }

    [SkippableFact]
    public void QwenLabelsCoverEachAssistantReplyAndItsImEnd()
    {
        var (tokenizer, template) = Load("qwen2-tiny");
        var encoder = new SftEncoder(tokenizer, template);
        var row = SftSample.Conversation(("user", "2+2?"), ("assistant", "4"), ("user", "And 3+3?"), ("assistant", "It is 6."));
        var sample = encoder.Encode(row);
        AssertLabelsExactlyOnAssistantReplies(tokenizer, sample, ["4", "It is 6."]);
        // The pieces tokenized one by one give the same ids as the whole rendered conversation.
        var messages = ChatTemplates.WithSystem(row.Messages, null, template);
        Assert.Equal(tokenizer.Encode(template.Render(messages, addGenerationPrompt: false), addSpecialTokens: false), sample.InputIds);

        var lastRound = new SftEncoder(tokenizer, template, new EncoderOptions { LossScale = LossScale.LastRound }).Encode(row);
        Assert.Equal(sample.InputIds, lastRound.InputIds);
        AssertLabelsExactlyOnAssistantReplies(tokenizer, lastRound, ["It is 6."]);
    }

    [SkippableFact]
    public void QwenPromptIdsMatchTransformersChatTemplate()
    {
        var (tokenizer, template) = Load("qwen2-tiny");
        var encoder = new SftEncoder(tokenizer, template);
        using var reference = JsonDocument.Parse(File.ReadAllText(TestData.Require("models", "qwen2-tiny", "reference.json")));
        foreach (var chat in reference.RootElement.GetProperty("chats").EnumerateArray())
        {
            var messages = chat.GetProperty("messages").EnumerateArray()
                .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
            var expectedPrompt = chat.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var sample = encoder.Encode(new SftSample([.. messages, new ChatMessage("assistant", "Fine.")]));
            Assert.Equal(expectedPrompt, sample.InputIds[..expectedPrompt.Length]);
            var earlierReplies = messages.Where(m => m.Role == "assistant").Select(m => m.Content);
            AssertLabelsExactlyOnAssistantReplies(tokenizer, sample, [.. earlierReplies, "Fine."]);
        }
    }

    [SkippableFact]
    public void SystemPromptPrecedence()
    {
        var (tokenizer, template) = Load("qwen2-tiny");
        string Text(EncoderOptions options, SftSample row) => tokenizer.Decode(new SftEncoder(tokenizer, template, options).Encode(row).InputIds);
        var plain = SftSample.Conversation(("user", "Hi"), ("assistant", "Hello"));
        var own = SftSample.Conversation(("system", "Row system."), ("user", "Hi"), ("assistant", "Hello"));
        Assert.StartsWith("<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi", Text(new EncoderOptions { System = "Be terse." }, plain));
        Assert.StartsWith("<|im_start|>system\nRow system.<|im_end|>\n", Text(new EncoderOptions { System = "Be terse." }, own));
        Assert.StartsWith("<|im_start|>user\nHi", Text(new EncoderOptions(), plain));
    }

    [SkippableFact]
    public void LlamaGetsExactlyOneBos()
    {
        var (tokenizer, template) = Load("llama3-tiny");
        var sample = new SftEncoder(tokenizer, template).Encode(SftSample.Conversation(("user", "Hi"), ("assistant", "Hello there")));
        var bos = tokenizer.BosTokenId!.Value;
        Assert.Equal(bos, sample.InputIds[0]);
        Assert.Single(sample.InputIds, id => id == bos);
        var trained = TrainedRuns(sample).Select(r => tokenizer.Decode(sample.InputIds[r.Start..r.End])).ToList();
        Assert.Equal(["Hello there<|eot_id|>"], trained);
    }

    [SkippableFact]
    public void EncodeAllTruncatesDropsAndPassesPretokenizedRowsThrough()
    {
        var (tokenizer, template) = Load("qwen2-tiny");
        var longRow = SftSample.Conversation(("user", string.Join(' ', Enumerable.Repeat("word", 50))), ("assistant", "ok"));
        var shortRow = SftSample.Conversation(("user", "Hi"), ("assistant", "Hello"));
        var unanswered = SftSample.Conversation(("user", "Hi"));
        var pretokenized = new SftSample([], [1, 2, 3], [-100, 2, 3]);
        SftSample[] rows = [longRow, shortRow, unanswered, pretokenized];
        var shortLength = new SftEncoder(tokenizer, template).Encode(shortRow).Length;

        var (kept, stats) = new SftEncoder(tokenizer, template, new EncoderOptions { MaxLength = shortLength }).EncodeAll(rows);
        Assert.Equal(new EncodeStats(2, 1, 1), stats);
        Assert.Equal([1, 2, 3], kept[1].InputIds);
        Assert.Equal([-100, 2, 3], kept[1].Labels);

        var (left, leftStats) = new SftEncoder(tokenizer, template, new EncoderOptions { MaxLength = 8, TruncationStrategy = TruncationStrategy.Left }).EncodeAll([longRow]);
        Assert.Equal(new EncodeStats(1, 0, 0), leftStats);
        Assert.Equal(8, left[0].Length);
        Assert.EndsWith("ok<|im_end|>\n", tokenizer.Decode(left[0].InputIds));
    }
}
