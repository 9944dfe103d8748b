using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpTune;

/// <summary>How we write JSON files: non-ASCII text as is (as Python's ensure_ascii=False), compact for JSONL, indented for files.</summary>
public static class JsonText
{
    public static readonly JsonSerializerOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    public static readonly JsonSerializerOptions Indented = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = true };
}
