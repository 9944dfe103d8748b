using SharpTune.Templates;

namespace SharpTune.Data;

/// <summary>
/// One supervised fine-tuning row after reading, whatever format it came in: either a conversation
/// (<see cref="Messages"/>, roles "system" / "user" / "assistant" / "tool") that the chat template will render,
/// or a pre-tokenized row (<see cref="InputIds"/>, optional <see cref="Labels"/> with -100 meaning "no loss")
/// that bypasses the template.
/// </summary>
public sealed record SftSample(IReadOnlyList<ChatMessage> Messages, int[]? InputIds = null, int[]? Labels = null)
{
    public bool IsPretokenized => InputIds != null;

    public static SftSample Conversation(params (string Role, string Content)[] messages) =>
        new(messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList());
}
