using SharpTune.Templates;

namespace SharpTune.Tests.Templates;

/// <summary>SFT segments: concatenation equals the rendering, trainable parts are the responses plus their end-of-turn token.</summary>
public class TemplateSegmentTests
{
    static readonly ChatMessage[] Conversation =
    [
        new("system", "Be brief."),
        new("user", "2+2?"),
        new("assistant", "4"),
        new("user", "And 3+3?"),
        new("assistant", "6, of course."),
    ];

    static ChatTemplate Template(string model, string? builtin) => ChatTemplates.Resolve(TestData.Model(model), builtin);

    const string EmptyThink = "<think>\n\n</think>\n\n";

    /// <param name="finalPrefix">what the template puts before the final response and trains with it (Qwen3's empty think block).</param>
    static void AssertSegments(ChatTemplate template, IReadOnlyList<ChatMessage> messages, string endOfTurn, string[] responses, string finalPrefix = "")
    {
        var rendered = template.Render(messages, addGenerationPrompt: false);
        var trainedResponses = responses.Select((r, i) => (i == responses.Length - 1 ? finalPrefix : "") + r + endOfTurn).ToArray();
        foreach (var scale in Enum.GetValues<LossScale>())
        {
            var segments = template.RenderForTraining(messages, scale);
            Assert.Equal(rendered, string.Concat(segments.Select(s => s.Text)));
            var trainable = segments.Where(s => s.Trainable).Select(s => s.Text).ToArray();
            string[] expected = scale switch
            {
                LossScale.All => [rendered],
                LossScale.LastRound => [trainedResponses[^1]],
                _ => trainedResponses,
            };
            Assert.Equal(expected, trainable);
        }
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny", null, "<|im_end|>", EmptyThink)]
    [InlineData("qwen2-tiny", "qwen3", "<|im_end|>", EmptyThink)]
    [InlineData("qwen2-tiny", "qwen", "<|im_end|>", "")]
    [InlineData("qwen2-tiny", "qwen2_5", "<|im_end|>", "")]
    [InlineData("llama3-tiny", null, "<|eot_id|>", "")]
    [InlineData("llama3-tiny", "llama3", "<|eot_id|>", "")]
    [InlineData("llama3-tiny", "llama", "</s>", "")]
    public void TrainableSegmentsAreResponsesAndEndOfTurn(string model, string? builtin, string endOfTurn, string finalPrefix)
    {
        AssertSegments(Template(model, builtin), Conversation, endOfTurn, ["4", "6, of course."], finalPrefix);
        AssertSegments(Template(model, builtin), Conversation[1..3], endOfTurn, ["4"], finalPrefix);
    }

    [SkippableFact]
    public void DefaultTemplateEndsOnlyTheLastResponseWithEos()
    {
        var template = Template("llama3-tiny", "default");
        var segments = template.RenderForTraining(Conversation, LossScale.Default);
        Assert.Equal(["4", "6, of course.<|eot_id|>"], segments.Where(s => s.Trainable).Select(s => s.Text));
        Assert.Equal("Be brief.\n\n### Human:\n2+2?\n\n### Assistant:\n4\n\n### Human:\nAnd 3+3?\n\n### Assistant:\n6, of course.<|eot_id|>",
            string.Concat(segments.Select(s => s.Text)));
    }

    [SkippableFact]
    public void LlamaModelTemplateTrimsResponsesAndSegmentsFollow()
    {
        var template = Template("llama3-tiny", null);
        ChatMessage[] padded = [new("user", "hi"), new("assistant", "  hello there \n")];
        AssertSegments(template, padded, "<|eot_id|>", ["hello there"]);
    }

    [SkippableFact]
    public void Qwen3ModelTemplateAndBuiltinTrainTheSameReasoning()
    {
        ChatMessage[] thinking =
        [
            new("user", "2+2?"), new("assistant", "<think>\nadd them\n</think>\n\n4"),
            new("user", "And 3+3?"), new("assistant", "<think>\nagain\n</think>\n\n6"),
        ];
        var own = Template("qwen2-tiny", null);
        var builtin = Template("qwen2-tiny", "qwen3");
        foreach (var scale in Enum.GetValues<LossScale>())
            Assert.Equal(builtin.RenderForTraining(thinking, scale), own.RenderForTraining(thinking, scale));
        var trainable = own.RenderForTraining(thinking, LossScale.Default).Where(s => s.Trainable).Select(s => s.Text);
        Assert.Equal(["4<|im_end|>", "<think>\nagain\n</think>\n\n6<|im_end|>"], trainable);
    }

    [SkippableFact]
    public void Qwen3DropsThinkingOfEarlierResponsesLikeTheModelTemplate()
    {
        ChatMessage[] thinking =
        [
            new("user", "2+2?"), new("assistant", "<think>\nadd them\n</think>\n\n4"),
            new("user", "And 3+3?"), new("assistant", "<think>\nagain\n</think>\n\n6"),
        ];
        var own = Template("qwen2-tiny", null);
        var builtin = Template("qwen2-tiny", "qwen3");
        Assert.Equal(own.Render(thinking, addGenerationPrompt: false), builtin.Render(thinking, addGenerationPrompt: false));
        Assert.Equal(own.Render(thinking[..3]), builtin.Render(thinking[..3]));
        Assert.DoesNotContain("add them", builtin.Render(thinking[..3]));
    }

    [SkippableFact]
    public void TrainingNeedsAFinalAssistantMessage()
    {
        foreach (var builtin in new string?[] { null, "qwen3" })
        {
            var e = Assert.Throws<SharpTuneException>(() => Template("qwen2-tiny", builtin).RenderForTraining(Conversation[..4], LossScale.Default));
            Assert.Contains("assistant", e.Message);
        }
    }

    [SkippableFact]
    public void BuiltinTemplatesRejectRolesOutOfOrder()
    {
        ChatMessage[] twoUsers = [new("user", "a"), new("user", "b")];
        var e = Assert.Throws<SharpTuneException>(() => Template("qwen2-tiny", "qwen2_5").Render(twoUsers));
        Assert.Contains("message 1", e.Message);
    }

    [SkippableFact]
    public void SystemPrecedenceIsConversationThenArgumentThenDefault()
    {
        var qwen25 = Template("qwen2-tiny", "qwen2_5");
        ChatMessage[] user = [new("user", "hi")];
        Assert.Equal("Be brief.", ChatTemplates.WithSystem(Conversation, "Ignored.", qwen25)[0].Content);
        Assert.Equal("From --system.", ChatTemplates.WithSystem(user, "From --system.", qwen25)[0].Content);
        var withDefault = ChatTemplates.WithSystem(user, null, qwen25);
        Assert.Equal(new ChatMessage("system", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."), withDefault[0]);
        Assert.Equal(user[0], withDefault[1]);
        Assert.Equal(user, ChatTemplates.WithSystem(user, "", qwen25));
        Assert.Equal(user, ChatTemplates.WithSystem(user, null, Template("qwen2-tiny", "qwen3")));
        Assert.Equal("<|im_start|>system\nFrom --system.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
            qwen25.Render(ChatTemplates.WithSystem(user, "From --system.", qwen25)));
    }
}
