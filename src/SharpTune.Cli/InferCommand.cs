using SharpTune.Inference;
using SharpTune.Templates;

namespace SharpTune.Cli;

/// <summary><c>sharptune infer</c>: one query, a dataset in batch, or an interactive chat (ms-swift's commands).</summary>
internal static class InferCommand
{
    public static int Run(InferArguments args, TextReader input, TextWriter output, TextWriter error)
    {
        using var engine = InferenceEngine.Load(args, SharpTune.Backends.DeviceSelection.Select(args.Device, args.TorchDtype));
        if (args.ValDataset.Length > 0)
        {
            var resultPath = args.ResultPath ?? Path.Combine("result", $"infer-{DateTime.Now:yyyyMMdd-HHmmss}.jsonl");
            int rows = BatchInference.Run(engine, args, args.ValDataset, resultPath, line => error.WriteLine(line));
            error.WriteLine($"wrote {rows} results to {resultPath}");
            return 0;
        }
        if (args.Query != null)
        {
            Answer(engine, args, args.System, [new ChatMessage("user", args.Query)], output);
            return 0;
        }
        return Interactive(engine, args, input, output);
    }

    static string Answer(InferenceEngine engine, InferArguments args, string? system, IReadOnlyList<ChatMessage> messages, TextWriter output)
    {
        var ids = args.UseChatTemplate ? engine.EncodeChat(messages, system, args.EnableThinking).Ids : engine.EncodeRaw(messages[^1].Content);
        var sampling = engine.Sampling(args, ids.Length);
        var result = engine.Generator.Generate(ids, sampling, args.Stream ? piece => { output.Write(piece); output.Flush(); } : null);
        if (!args.Stream) output.Write(result.Text);
        output.WriteLine();
        if (args.Logprobs)
            foreach (var t in result.Tokens)
                output.WriteLine($"  {t.Id,8} {Escape(t.Text),-16} {t.Logprob,10:F4}  " + string.Join("  ", t.TopLogprobs!.Select(a => $"{Escape(a.Text)}={a.Logprob:F3}")));
        return result.Text;
    }

    static string Escape(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    /// <summary>ms-swift's chat loop: exit/quit, clear (forget the conversation), reset-system, multi-line / single-line.</summary>
    static int Interactive(InferenceEngine engine, InferArguments args, TextReader input, TextWriter output)
    {
        output.WriteLine("Input `exit` or `quit` to exit the conversation.");
        output.WriteLine("Input `multi-line` to switch to multi-line input mode (end a message with `#`).");
        output.WriteLine("Input `reset-system` to reset the system and clear the history.");
        output.WriteLine("Input `clear` to clear the history.");
        var history = new List<ChatMessage>();
        string? system = args.System;
        bool multiLine = false;
        while (true)
        {
            output.Write(multiLine ? "<<<[M] " : "<<< ");
            output.Flush();
            var query = ReadQuery(input, multiLine);
            if (query == null) return 0;
            switch (query.Trim())
            {
                case "exit" or "quit":
                    return 0;
                case "clear":
                    history.Clear();
                    continue;
                case "reset-system":
                    output.Write("System: ");
                    output.Flush();
                    system = input.ReadLine();
                    history.Clear();
                    continue;
                case "multi-line":
                    multiLine = true;
                    continue;
                case "single-line":
                    multiLine = false;
                    continue;
            }
            history.Add(new ChatMessage("user", query));
            output.Write(">>> ");
            var answer = Answer(engine, args, system, history, output);
            history.Add(new ChatMessage("assistant", answer));
        }
    }

    static string? ReadQuery(TextReader input, bool multiLine)
    {
        if (!multiLine) return input.ReadLine();
        var lines = new List<string>();
        while (input.ReadLine() is { } line)
        {
            if (line.EndsWith('#'))
            {
                lines.Add(line[..^1]);
                return string.Join("\n", lines);
            }
            lines.Add(line);
        }
        return lines.Count > 0 ? string.Join("\n", lines) : null;
    }
}
