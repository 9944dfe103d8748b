using System.Text;
using System.Text.Json;

namespace SharpTune.Data;

/// <summary>The rows of one dataset, and how many bad rows were skipped (only when not strict).</summary>
public sealed record DatasetRows(string Name, IReadOnlyList<SftSample> Samples, int SkippedRows, string? FirstSkipReason);

/// <summary>
/// Reads a dataset file: .jsonl (one object a line), .json (an array of objects, or JSON Lines), .csv (a header row,
/// then one row per record; cells of the list-valued columns messages/conversations/history/input_ids/labels hold JSON).
/// A bad row is a <see cref="SharpTuneException"/> "FILE:N: field 'F': problem", where N is the 1-based line
/// (for a .json array: the 1-based element number). With <c>strict: false</c> bad rows are skipped and counted instead,
/// as ms-swift does by default. A dataset with no usable row is always an error, and so is a .json file that is not valid JSON
/// or a .csv whose quoting breaks the record structure (neither can be resynchronised row by row).
/// </summary>
public static class DatasetFile
{
    static readonly HashSet<string> JsonColumns = ["messages", "conversations", "history", "input_ids", "labels"];

    public static DatasetRows Read(string path, bool strict = false)
    {
        if (!File.Exists(path)) throw new SharpTuneException($"{path}: dataset file not found");
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (extension is not (".jsonl" or ".json" or ".csv"))
            throw new SharpTuneException($"{path}: unsupported dataset file type '{extension}' (expected .jsonl, .json or .csv)");
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        return Read(path, reader, extension, strict);
    }

    /// <summary>Reads rows from <paramref name="reader"/>; <paramref name="rewrite"/> may change each raw row first (self-cognition names).</summary>
    internal static DatasetRows Read(string name, TextReader reader, string extension, bool strict,
        Func<Dictionary<string, JsonElement>, Dictionary<string, JsonElement>>? rewrite = null)
    {
        var samples = new List<SftSample>();
        var skipped = 0;
        string? firstSkip = null;
        foreach (var (line, fields, error) in RawRows(name, reader, extension))
        {
            try
            {
                if (error != null) throw new SharpTuneException($"{name}:{line}: {error}");
                try { samples.Add(RowNormalizer.Normalize(rewrite == null ? fields! : rewrite(fields!))); }
                catch (BadRowException e) { throw new SharpTuneException($"{name}:{line}: {e.Message}"); }
            }
            catch (SharpTuneException e) when (!strict)
            {
                skipped++;
                firstSkip ??= e.Message;
            }
        }
        if (samples.Count == 0)
            throw new SharpTuneException(skipped == 0 ? $"{name}: the dataset has no rows"
                : $"{name}: the dataset has no usable rows ({skipped} bad rows skipped; first: {firstSkip})");
        return new DatasetRows(name, samples, skipped, firstSkip);
    }

    static IEnumerable<(int Line, Dictionary<string, JsonElement>? Fields, string? Error)> RawRows(string name, TextReader reader, string extension)
    {
        if (extension == ".csv") return CsvRows(name, reader);
        var text = reader.ReadToEnd();
        // A .json file may hold JSON Lines, as Hugging Face's json loader (which ms-swift uses) accepts.
        return extension == ".json" && text.TrimStart().StartsWith('[') ? ArrayRows(name, text) : LineRows(text);
    }

    static IEnumerable<(int, Dictionary<string, JsonElement>?, string?)> LineRows(string text)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement element;
            string? error = null;
            try { element = JsonElement.Parse(line); }
            catch (JsonException e) { element = default; error = $"invalid JSON ({FirstSentence(e.Message)})"; }
            yield return error != null ? (i + 1, null, error) : ObjectRow(i + 1, element);
        }
    }

    static IEnumerable<(int, Dictionary<string, JsonElement>?, string?)> ArrayRows(string name, string text)
    {
        JsonElement root;
        try { root = JsonElement.Parse(text); }
        catch (JsonException e) { throw new SharpTuneException($"{name}: invalid JSON ({FirstSentence(e.Message)})"); }
        var index = 0;
        foreach (var element in root.EnumerateArray()) yield return ObjectRow(++index, element);
    }

    static (int, Dictionary<string, JsonElement>?, string?) ObjectRow(int line, JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.Object) return (line, null, "expected a JSON object for the row");
        var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject()) fields[property.Name] = property.Value;
        return (line, fields, null);
    }

    static IEnumerable<(int, Dictionary<string, JsonElement>?, string?)> CsvRows(string name, TextReader reader)
    {
        List<string>? header = null;
        foreach (var (line, cells) in CsvRecords.Read(reader, name))
        {
            if (header == null) { header = cells.Select(h => h.Trim()).ToList(); continue; }
            if (cells.Count != header.Count)
            {
                yield return (line, null, $"expected {header.Count} fields as in the header, got {cells.Count}");
                continue;
            }
            var fields = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            string? error = null;
            for (var i = 0; i < cells.Count && error == null; i++)
            {
                if (cells[i].Length == 0) continue;
                if (!JsonColumns.Contains(header[i])) { fields[header[i]] = StringElement(cells[i]); continue; }
                try { fields[header[i]] = JsonElement.Parse(cells[i]); }
                catch (JsonException) { error = $"field '{header[i]}': expected JSON (a list) in the cell"; }
            }
            yield return (line, error == null ? fields : null, error);
        }
    }

    internal static JsonElement StringElement(string value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer)) writer.WriteStringValue(value);
        return JsonElement.Parse(buffer.WrittenSpan);
    }

    static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return end < 0 ? message.TrimEnd('.') : message[..end];
    }
}
