using System.Text.Json;
using SharpTune.Templates;

namespace SharpTune.Data;

/// <summary>What is wrong with one row, before the reader adds the file and line.</summary>
sealed class BadRowException(string field, string problem) : Exception($"field '{field}': {problem}")
{
    public string Field { get; } = field;
}

/// <summary>
/// Turns one row, in any of the formats ms-swift's AutoPreprocessor accepts, into an <see cref="SftSample"/>.
/// The format is detected per row, by the first of these fields present:
/// <c>input_ids</c> (pre-tokenized, optional <c>labels</c>), <c>messages</c> (OpenAI: role/content),
/// <c>conversations</c> (ShareGPT: from/value), <c>instruction</c> (Alpaca: instruction, input, output),
/// <c>query</c> (query, response, history as [[q, r], ...]). A <c>system</c> field becomes the leading system message.
/// As in ms-swift, the response (<c>output</c> / <c>response</c>) may be absent: such a conversation ends with the user's turn,
/// which inference answers and training drops (nothing to learn from it).
/// </summary>
static class RowNormalizer
{
    static readonly Dictionary<string, string> ShareGptRoles = new(StringComparer.Ordinal)
    {
        ["human"] = "user", ["user"] = "user", ["gpt"] = "assistant", ["assistant"] = "assistant", ["system"] = "system",
    };

    static readonly HashSet<string> OpenAiRoles = ["system", "user", "assistant", "tool"];

    public static SftSample Normalize(IReadOnlyDictionary<string, JsonElement> row)
    {
        if (Has(row, "input_ids")) return Pretokenized(row);
        List<ChatMessage> messages;
        if (Has(row, "messages")) messages = OpenAi(row["messages"]);
        else if (Has(row, "conversations")) messages = ShareGpt(row["conversations"]);
        else if (Has(row, "instruction")) messages = Alpaca(row);
        else if (Has(row, "query")) messages = QueryResponse(row);
        else throw new BadRowException("messages", "missing (the row has none of messages, conversations, instruction, query, input_ids)");

        if (Has(row, "system") && (messages.Count == 0 || messages[0].Role != "system"))
            messages.Insert(0, new ChatMessage("system", String(row["system"], "system")));
        return new SftSample(messages);
    }

    /// <summary>A field counts as present unless absent or null (an empty CSV cell reads as null, as pandas reads it as NaN).</summary>
    static bool Has(IReadOnlyDictionary<string, JsonElement> row, string field) =>
        row.TryGetValue(field, out var value) && value.ValueKind is not (JsonValueKind.Null or JsonValueKind.Undefined);

    static List<ChatMessage> OpenAi(JsonElement list)
    {
        var messages = new List<ChatMessage>();
        foreach (var (item, i) in Items(list, "messages"))
        {
            var field = $"messages[{i}]";
            Object(item, field);
            var role = String(Property(item, "role", field), field + ".role");
            if (!OpenAiRoles.Contains(role)) throw new BadRowException(field + ".role", $"unknown role '{role}' (expected system, user, assistant or tool)");
            messages.Add(new ChatMessage(role, String(Property(item, "content", field), field + ".content")));
        }
        return messages;
    }

    static List<ChatMessage> ShareGpt(JsonElement list)
    {
        var messages = new List<ChatMessage>();
        foreach (var (item, i) in Items(list, "conversations"))
        {
            var field = $"conversations[{i}]";
            Object(item, field);
            var from = String(Property(item, "from", field), field + ".from");
            if (!ShareGptRoles.TryGetValue(from, out var role))
                throw new BadRowException(field + ".from", $"unknown speaker '{from}' (expected human, user, gpt, assistant or system)");
            messages.Add(new ChatMessage(role, String(Property(item, "value", field), field + ".value")));
        }
        return messages;
    }

    /// <summary>ms-swift joins a non-empty instruction and input with one newline; either alone is the query.</summary>
    static List<ChatMessage> Alpaca(IReadOnlyDictionary<string, JsonElement> row)
    {
        var instruction = String(row["instruction"], "instruction");
        var input = Has(row, "input") ? String(row["input"], "input") : "";
        var query = instruction.Length > 0 && input.Length > 0 ? instruction + "\n" + input : instruction.Length > 0 ? instruction : input;
        return Has(row, "output")
            ? [new ChatMessage("user", query), new ChatMessage("assistant", String(row["output"], "output"))]
            : [new ChatMessage("user", query)];
    }

    static List<ChatMessage> QueryResponse(IReadOnlyDictionary<string, JsonElement> row)
    {
        var messages = new List<ChatMessage>();
        if (Has(row, "history"))
        {
            foreach (var (pair, i) in Items(row["history"], "history"))
            {
                var field = $"history[{i}]";
                if (pair.ValueKind != JsonValueKind.Array || pair.GetArrayLength() != 2)
                    throw new BadRowException(field, "expected a [query, response] pair");
                messages.Add(new ChatMessage("user", String(pair[0], field + "[0]")));
                messages.Add(new ChatMessage("assistant", String(pair[1], field + "[1]")));
            }
        }
        messages.Add(new ChatMessage("user", String(row["query"], "query")));
        if (Has(row, "response")) messages.Add(new ChatMessage("assistant", String(row["response"], "response")));
        return messages;
    }

    static SftSample Pretokenized(IReadOnlyDictionary<string, JsonElement> row)
    {
        var ids = Ints(row["input_ids"], "input_ids");
        if (ids.Length == 0) throw new BadRowException("input_ids", "expected a non-empty list");
        int[]? labels = null;
        if (Has(row, "labels"))
        {
            labels = Ints(row["labels"], "labels");
            if (labels.Length != ids.Length)
                throw new BadRowException("labels", $"has {labels.Length} entries but input_ids has {ids.Length}");
        }
        return new SftSample([], ids, labels);
    }

    static IEnumerable<(JsonElement Item, int Index)> Items(JsonElement list, string field)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new BadRowException(field, $"expected a list, got {Describe(list)}");
        if (list.GetArrayLength() == 0) throw new BadRowException(field, "expected a non-empty list");
        var i = 0;
        foreach (var item in list.EnumerateArray()) yield return (item, i++);
    }

    static int[] Ints(JsonElement list, string field)
    {
        if (list.ValueKind != JsonValueKind.Array) throw new BadRowException(field, $"expected a list of token ids, got {Describe(list)}");
        var result = new int[list.GetArrayLength()];
        var i = 0;
        foreach (var item in list.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt32(out result[i]))
                throw new BadRowException($"{field}[{i}]", $"expected an integer token id, got {Describe(item)}");
            i++;
        }
        return result;
    }

    static void Object(JsonElement item, string field)
    {
        if (item.ValueKind != JsonValueKind.Object) throw new BadRowException(field, $"expected an object, got {Describe(item)}");
    }

    static JsonElement Property(JsonElement item, string name, string field) =>
        item.TryGetProperty(name, out var value) ? value : throw new BadRowException(field + "." + name, "missing");

    static string String(JsonElement value, string field) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : throw new BadRowException(field, $"expected a string, got {Describe(value)}");

    static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Array => "a list",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
