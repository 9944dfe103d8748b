using System.Text;

namespace SharpTune.Data;

/// <summary>
/// RFC 4180 CSV: comma-separated fields, a field in double quotes may hold commas, newlines and doubled quotes ("").
/// Yields each record with the 1-based line it starts on, so errors can point at it.
/// </summary>
static class CsvRecords
{
    public static IEnumerable<(int Line, List<string> Fields)> Read(TextReader reader, string name)
    {
        var line = 1;
        var fields = new List<string>();
        var field = new StringBuilder();
        var recordLine = 1;
        bool inQuotes = false, fieldWasQuoted = false, any = false;
        int c;
        while ((c = reader.Read()) != -1)
        {
            var ch = (char)c;
            if (inQuotes)
            {
                if (ch == '"')
                {
                    if (reader.Peek() == '"') { reader.Read(); field.Append('"'); }
                    else inQuotes = false;
                }
                else
                {
                    if (ch == '\n') line++;
                    field.Append(ch);
                }
                continue;
            }
            switch (ch)
            {
                case '"' when field.Length == 0 && !fieldWasQuoted:
                    inQuotes = fieldWasQuoted = any = true;
                    break;
                case '"':
                    throw new SharpTuneException($"{name}:{line}: a quote inside an unquoted field (quote the whole field and double the quote)");
                case ',':
                    fields.Add(field.ToString()); field.Clear(); fieldWasQuoted = false; any = true;
                    break;
                case '\r':
                    break;
                case '\n':
                    if (any || field.Length > 0)
                    {
                        fields.Add(field.ToString());
                        yield return (recordLine, fields);
                    }
                    fields = []; field.Clear(); fieldWasQuoted = false; any = false;
                    recordLine = ++line;
                    break;
                default:
                    if (fieldWasQuoted) throw new SharpTuneException($"{name}:{line}: text after a closing quote");
                    field.Append(ch); any = true;
                    break;
            }
        }
        if (inQuotes) throw new SharpTuneException($"{name}:{recordLine}: a quoted field is never closed");
        if (any || field.Length > 0)
        {
            fields.Add(field.ToString());
            yield return (recordLine, fields);
        }
    }
}
