using System.Text.Json;
using SharpTune.Templates;

namespace SharpTune.Tests.Templates;

/// <summary>The models' own templates and the built-ins against what transformers' apply_chat_template rendered (reference.json chats[]).</summary>
public class ChatTemplateFixtureTests
{
    public sealed record ReferenceChat(IReadOnlyList<ChatMessage> Messages, string Text, string? TextEnableThinkingFalse);

    public static IReadOnlyList<ReferenceChat> LoadChats(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestData.Require("models", model, "reference.json")));
        var chats = new List<ReferenceChat>();
        foreach (var chat in doc.RootElement.GetProperty("chats").EnumerateArray())
        {
            Assert.True(chat.GetProperty("add_generation_prompt").GetBoolean());
            var messages = chat.GetProperty("messages").EnumerateArray()
                .Select(m => new ChatMessage(m.GetProperty("role").GetString()!, m.GetProperty("content").GetString()!)).ToList();
            var noThinking = chat.TryGetProperty("text_enable_thinking_false", out var t) ? t.GetString() : null;
            chats.Add(new ReferenceChat(messages, chat.GetProperty("text").GetString()!, noThinking));
        }
        Assert.NotEmpty(chats);
        return chats;
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void ModelTemplateRendersLikeTransformers(string model)
    {
        var template = ChatTemplates.Resolve(TestData.Model(model));
        Assert.IsType<JinjaChatTemplate>(template);
        foreach (var chat in LoadChats(model))
        {
            Assert.Equal(chat.Text, template.Render(chat.Messages));
            if (chat.TextEnableThinkingFalse != null)
                Assert.Equal(chat.TextEnableThinkingFalse, template.Render(chat.Messages, enableThinking: false));
        }
    }

    [SkippableFact]
    public void QwenModelTemplateWithThinkingEnabledIsTheDefault()
    {
        var template = ChatTemplates.Resolve(TestData.Model("qwen2-tiny"));
        foreach (var chat in LoadChats("qwen2-tiny"))
            Assert.Equal(chat.Text, template.Render(chat.Messages, enableThinking: true));
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny", "qwen3")]
    [InlineData("llama3-tiny", "llama3")]
    public void BuiltinTemplateRendersLikeTheModelTemplate(string model, string builtin)
    {
        var template = ChatTemplates.Resolve(TestData.Model(model), builtin);
        Assert.Equal(builtin, template.Name);
        foreach (var chat in LoadChats(model))
        {
            Assert.Equal(chat.Text, template.Render(chat.Messages));
            if (chat.TextEnableThinkingFalse != null)
                Assert.Equal(chat.TextEnableThinkingFalse, template.Render(chat.Messages, enableThinking: false));
        }
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny", "qwen3")]
    [InlineData("llama3-tiny", "llama3")]
    public void BuiltinAndModelTemplateAgreeOnFinishedConversations(string model, string builtin)
    {
        var own = ChatTemplates.Resolve(TestData.Model(model));
        var builtinTemplate = ChatTemplates.Resolve(TestData.Model(model), builtin);
        foreach (var chat in LoadChats(model))
        {
            var finished = chat.Messages.Append(new ChatMessage("assistant", "Fine, thanks.")).ToList();
            Assert.Equal(own.Render(finished, addGenerationPrompt: false), builtinTemplate.Render(finished, addGenerationPrompt: false));
        }
    }

    [SkippableFact]
    public void StopWordsComeFromTheTokenizerAndTemplate()
    {
        Assert.Contains("<|im_end|>", ChatTemplates.Resolve(TestData.Model("qwen2-tiny")).StopWords);
        Assert.Contains("<|eot_id|>", ChatTemplates.Resolve(TestData.Model("llama3-tiny")).StopWords);
        var stories = ChatTemplates.Resolve(TestData.Model("stories260K"));
        Assert.Equal("plain", stories.Name);
        Assert.Equal(["</s>"], stories.StopWords);
    }

    [Fact]
    public void BundledModelWithoutTemplateGetsPlainTemplate()
    {
        var template = ChatTemplates.Resolve(TestData.BundledModel);
        Assert.Equal("plain", template.Name);
        Assert.Null(template.DefaultSystem);
        var messages = new[] { new ChatMessage("user", "Once upon a time"), new ChatMessage("assistant", " there was a cat.") };
        var segments = template.RenderForTraining(messages, LossScale.Default);
        Assert.Equal("Once upon a time there was a cat.</s>", template.Render(messages, addGenerationPrompt: false));
        Assert.Equal([new TemplateSegment("Once upon a time", false), new TemplateSegment(" there was a cat.</s>", true)], segments);
    }

    [Fact]
    public void UnknownTemplateNameIsAnError()
    {
        var e = Assert.Throws<SharpTuneException>(() => ChatTemplates.Resolve(TestData.TempDir(), "chatgpt"));
        Assert.Contains("chatgpt", e.Message);
        Assert.Contains("qwen2_5", e.Message);
    }

    [Fact]
    public void ChatTemplateJinjaFileTakesPrecedenceAndListsInTokenizerConfigWork()
    {
        var dir = TestData.TempDir();
        File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
            """{"eos_token": {"content": "<|E|>"}, "bos_token": "<|B|>", "chat_template": [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"}]}""");
        var fromList = ChatTemplates.Resolve(dir);
        Assert.Equal("<|B|>hi<|E|>", fromList.Render([new ChatMessage("user", "hi")]));
        File.WriteAllText(Path.Combine(dir, "chat_template.jinja"), "[{{ messages[0].content | upper }}]");
        Assert.Equal("[HI]", ChatTemplates.Resolve(dir).Render([new ChatMessage("user", "hi")]));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void TemplateSyntaxErrorNamesTheFileAndLine()
    {
        var dir = TestData.TempDir();
        var config = Path.Combine(dir, "tokenizer_config.json");
        File.WriteAllText(config, """{"eos_token": "</s>", "chat_template": "{% for m in messages %}\n{% if %}x{% endif %}\n{% endfor %}"}""");
        var e = Assert.Throws<SharpTuneException>(() => ChatTemplates.Resolve(dir));
        Assert.Equal(config + " (chat_template): line 2: unexpected '%}' in expression", e.Message);
        File.WriteAllText(config, """{"eos_token": 5}""");
        Assert.Contains("eos_token", Assert.Throws<SharpTuneException>(() => ChatTemplates.Resolve(dir)).Message);
        Directory.Delete(dir, true);
    }
}
