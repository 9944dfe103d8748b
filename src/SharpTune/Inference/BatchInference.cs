using System.Text.Json.Nodes;
using SharpTune.Data;
using SharpTune.Templates;

namespace SharpTune.Inference;

/// <summary>
/// <c>infer --val_dataset</c>: answers every conversation of the datasets and writes one JSONL row each with the
/// response, the rendered prompt and its ids, the generated ids, the reference answer (a final assistant turn) as labels,
/// and logprobs when asked. The result file is written whole at the end under a temporary name.
/// </summary>
public static class BatchInference
{
    public static int Run(InferenceEngine engine, InferArguments args, IReadOnlyList<string> datasets, string resultPath, Action<string> progress)
    {
        var lines = new List<string>();
        foreach (var path in datasets)
        {
            var rows = DatasetFile.Read(path, strict: true);
            int i = 0;
            foreach (var sample in rows.Samples)
            {
                if (sample.IsPretokenized) throw new SharpTuneException($"{path}: row {i + 1}: pre-tokenized rows cannot be answered; give messages");
                var messages = sample.Messages.Select(m => new ChatMessage(m.Role, m.Content)).ToList();
                string? labels = null;
                if (messages.Count > 0 && messages[^1].Role == "assistant")
                {
                    labels = messages[^1].Content;
                    messages.RemoveAt(messages.Count - 1);
                }
                if (messages.Count == 0 || messages[^1].Role != "user") throw new SharpTuneException($"{path}: row {i + 1}: the conversation must end with a user message");
                string prompt;
                int[] ids;
                if (args.UseChatTemplate) (prompt, ids) = engine.EncodeChat(messages, args.System, args.EnableThinking);
                else
                {
                    prompt = messages[^1].Content;
                    ids = engine.EncodeRaw(prompt);
                }
                var result = engine.Generator.Generate(ids, engine.Sampling(args, ids.Length));
                var row = new JsonObject
                {
                    ["messages"] = new JsonArray(messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
                    ["response"] = result.Text,
                    ["labels"] = labels,
                    ["prompt"] = prompt,
                    ["prompt_ids"] = new JsonArray(ids.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
                    ["generated_ids"] = new JsonArray(result.TokenIds.Select(x => (JsonNode)JsonValue.Create(x)).ToArray()),
                    ["finish_reason"] = result.FinishReasonName,
                };
                if (args.Logprobs) row["logprobs"] = LogprobsJson.Content(result.Tokens);
                lines.Add(row.ToJsonString(JsonText.Compact));
                progress($"[{lines.Count}] {Shorten(result.Text)}");
                i++;
            }
        }
        AtomicFile.WriteAllText(resultPath, string.Join("\n", lines) + (lines.Count > 0 ? "\n" : ""));
        return lines.Count;
    }

    static string Shorten(string s) => (s.Length > 70 ? s[..70] + "…" : s).ReplaceLineEndings(" ");
}
