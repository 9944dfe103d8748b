using System.Text.Json;
using SharpTune.Tensors;

namespace SharpTune.Formats;

/// <summary>One tensor of a safetensors file. <see cref="DataOffset"/> is absolute in the file, not relative to the data section.</summary>
public sealed record TensorEntry(string Name, DType DType, long[] Shape, long DataOffset, long ByteLength)
{
    public long ElementCount => SafeTensorsHeader.ElementCount(Shape);
}

/// <summary>
/// Parses and validates the JSON header of a safetensors file: every entry is checked against the data section
/// before any byte of it is read, so a corrupt or hostile file fails with a message instead of reading out of bounds.
/// </summary>
internal static class SafeTensorsHeader
{
    /// <summary>The safetensors reference implementation refuses larger headers too (it caps them at 100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public static (Dictionary<string, TensorEntry> Tensors, Dictionary<string, string> Metadata) Parse(
        string file, ReadOnlySpan<byte> json, long dataStart, long dataLength)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new SharpTuneException($"{file}: safetensors header is not valid JSON ({e.Message})");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SharpTuneException($"{file}: safetensors header must be a JSON object, found {doc.RootElement.ValueKind}");
            var tensors = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var property in doc.RootElement.EnumerateObject())
            {
                if (property.Name == "__metadata__") ReadMetadata(file, property.Value, metadata);
                else if (!tensors.TryAdd(property.Name, ReadEntry(file, property.Name, property.Value, dataStart, dataLength)))
                    throw new SharpTuneException($"{file}: tensor '{property.Name}' appears twice in the header");
            }
            CheckNoOverlap(file, tensors.Values);
            return (tensors, metadata);
        }
    }

    public static long ElementCount(long[] shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    static void ReadMetadata(string file, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new SharpTuneException($"{file}: __metadata__ must be an object of strings, found {value.ValueKind}");
        foreach (var p in value.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.String)
                throw new SharpTuneException($"{file}: __metadata__ value '{p.Name}' must be a string, found {JsonFields.Describe(p.Value)}");
            metadata[p.Name] = p.Value.GetString()!;
        }
    }

    static TensorEntry ReadEntry(string file, string name, JsonElement value, long dataStart, long dataLength)
    {
        string where = $"{file}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object) throw new SharpTuneException($"{where} must be a JSON object, found {value.ValueKind}");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SharpTuneException($"{where} has no string 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypeExtensions.TryParseSafeTensorsName(dtypeName, out var dtype))
            throw new SharpTuneException($"{where} has unsupported dtype '{dtypeName}'");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new SharpTuneException($"{where} has no 'shape' array");
        var shape = new long[shapeElement.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long dim) || dim < 0)
                throw new SharpTuneException($"{where} has an invalid shape dimension {JsonFields.Describe(d)} (must be a non-negative integer)");
            shape[i++] = dim;
        }

        if (!value.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2)
            throw new SharpTuneException($"{where}: 'data_offsets' must be an array of two integers");
        var bounds = new long[2];
        i = 0;
        foreach (var o in offsets.EnumerateArray())
        {
            if (o.ValueKind != JsonValueKind.Number || !o.TryGetInt64(out long off) || off < 0)
                throw new SharpTuneException($"{where}: 'data_offsets' must be two non-negative integers, found {JsonFields.Describe(o)}");
            bounds[i++] = off;
        }
        long begin = bounds[0], end = bounds[1];
        if (begin > end) throw new SharpTuneException($"{where}: data_offsets begin {begin} is after end {end}");
        if (end > dataLength) throw new SharpTuneException($"{where}: data_offsets end {end} is beyond the data section ({dataLength} bytes; file truncated?)");

        long expected;
        try
        {
            expected = checked(ElementCount(shape) * dtype.SizeInBytes());
        }
        catch (OverflowException)
        {
            throw new SharpTuneException($"{where}: shape [{string.Join(", ", shape)}] is too large");
        }
        if (end - begin != expected)
            throw new SharpTuneException($"{where}: data_offsets span {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expected}");
        return new TensorEntry(name, dtype, shape, dataStart + begin, end - begin);
    }

    static void CheckNoOverlap(string file, IEnumerable<TensorEntry> entries)
    {
        TensorEntry? previous = null;
        foreach (var e in entries.Where(e => e.ByteLength > 0).OrderBy(e => e.DataOffset))
        {
            if (previous != null && e.DataOffset < previous.DataOffset + previous.ByteLength)
                throw new SharpTuneException($"{file}: tensors '{previous.Name}' and '{e.Name}' overlap in the data section");
            previous = e;
        }
    }
}
