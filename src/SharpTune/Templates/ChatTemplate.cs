namespace SharpTune.Templates;

public sealed record ChatMessage(string Role, string Content);

/// <summary>Which tokens carry loss in SFT, as ms-swift's <c>--loss_scale default|last_round|all</c>.</summary>
public enum LossScale { Default, LastRound, All }

/// <summary>A piece of rendered conversation; <see cref="Trainable"/> pieces get labels, the rest are masked (-100).</summary>
public sealed record TemplateSegment(string Text, bool Trainable);

/// <summary>Turns a conversation into model input text: for inference (<see cref="Render"/>) and for SFT with label masks (<see cref="RenderForTraining"/>).</summary>
public abstract class ChatTemplate
{
    public abstract string Name { get; }

    /// <summary>The system prompt used when neither the conversation nor --system gives one (see <see cref="ChatTemplates.WithSystem"/>).</summary>
    public abstract string? DefaultSystem { get; }

    /// <summary>Strings that end generation, e.g. "&lt;|im_end|&gt;", "&lt;|eot_id|&gt;".</summary>
    public abstract IReadOnlyList<string> StopWords { get; }

    /// <param name="enableThinking">null leaves the template's own default (the Jinja variable stays undefined).</param>
    public abstract string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, bool? enableThinking = null);

    /// <summary>
    /// Cuts a conversation that ends with an assistant message into segments whose concatenation is
    /// <c>Render(messages, addGenerationPrompt: false)</c>. Trainable: each assistant response plus the end-of-turn token right after it
    /// (not the newline after that) for <see cref="LossScale.Default"/>, only the last one for <see cref="LossScale.LastRound"/>, everything for <see cref="LossScale.All"/>.
    /// </summary>
    public abstract IReadOnlyList<TemplateSegment> RenderForTraining(IReadOnlyList<ChatMessage> messages, LossScale lossScale);

    /// <summary>A piece of text and the index of the assistant turn it belongs to (-1: not part of a response).</summary>
    protected readonly record struct Piece(string Text, int AssistantTurn);

    /// <summary>Applies the loss scale to pieces and merges neighbours with the same flag.</summary>
    protected static IReadOnlyList<TemplateSegment> ToSegments(IEnumerable<Piece> pieces, int assistantTurns, LossScale lossScale)
    {
        var segments = new List<TemplateSegment>();
        foreach (var piece in pieces)
        {
            if (piece.Text.Length == 0) continue;
            bool trainable = lossScale switch
            {
                LossScale.All => true,
                LossScale.LastRound => piece.AssistantTurn == assistantTurns - 1,
                _ => piece.AssistantTurn >= 0,
            };
            if (segments.Count > 0 && segments[^1].Trainable == trainable)
                segments[^1] = segments[^1] with { Text = segments[^1].Text + piece.Text };
            else segments.Add(new TemplateSegment(piece.Text, trainable));
        }
        return segments;
    }

    protected void RequireEndsWithAssistant(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0 || messages[^1].Role != "assistant")
            throw new SharpTuneException($"template '{Name}': a training conversation must end with an assistant message, "
                                         + $"this one ends with {(messages.Count == 0 ? "nothing" : $"a '{messages[^1].Role}' message")}");
    }
}
