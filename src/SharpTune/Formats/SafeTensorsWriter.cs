using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using SharpTune.Tensors;

namespace SharpTune.Formats;

/// <summary>
/// A tensor to save: its bytes come from <see cref="WriteData"/>, called once when the file is written,
/// so large models can stream tensors (of any size) without holding a second copy.
/// </summary>
public sealed class TensorToWrite
{
    public string Name { get; }
    public DType DType { get; }
    public long[] Shape { get; }
    public long ByteLength { get; }
    public Action<Stream> WriteData { get; }

    public TensorToWrite(string name, DType dtype, long[] shape, Action<Stream> writeData)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        WriteData = writeData;
        if (shape.Any(d => d < 0)) throw new ArgumentException($"tensor '{name}': negative dimension in shape [{string.Join(", ", shape)}]");
        ByteLength = checked(SafeTensorsHeader.ElementCount(shape) * dtype.SizeInBytes());
    }

    public TensorToWrite(string name, DType dtype, long[] shape, ReadOnlyMemory<byte> data)
        : this(name, dtype, shape, s => s.Write(data.Span))
    {
        if (data.Length != ByteLength) throw new ArgumentException($"tensor '{name}': {data.Length} bytes given, shape and {dtype} need {ByteLength}");
    }

    /// <summary>Float32 values narrowed to <paramref name="dtype"/> (F32, BF16 or F16) as they are written.</summary>
    public static TensorToWrite FromFloat32(string name, DType dtype, long[] shape, ReadOnlyMemory<float> values)
    {
        var size = dtype.SizeInBytes();
        return new TensorToWrite(name, dtype, shape, s =>
        {
            const int chunk = 1 << 16;
            var buffer = new byte[chunk * size];
            for (int start = 0; start < values.Length; start += chunk)
            {
                int count = Math.Min(chunk, values.Length - start);
                FloatConversions.FromF32(dtype, values.Span.Slice(start, count), buffer.AsSpan(0, count * size));
                s.Write(buffer, 0, count * size);
            }
        });
    }
}

/// <summary>Writes safetensors files the way the Hugging Face <c>safetensors</c> library does, each one atomically.</summary>
public static class SafeTensorsWriter
{
    static readonly IReadOnlyDictionary<string, string> PyTorchFormat = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>
    /// Writes one file. Like the reference library, tensors are laid out by descending element size, then by name,
    /// which keeps every tensor aligned to its element size (the header is padded to a multiple of 8 bytes).
    /// </summary>
    public static void Write(string path, IEnumerable<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ordered = tensors.OrderByDescending(t => t.DType.SizeInBytes()).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        RejectDuplicates(path, ordered);
        var header = Header(ordered, metadata ?? PyTorchFormat);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var t in ordered)
            {
                long before = stream.Position;
                t.WriteData(stream);
                if (stream.Position - before != t.ByteLength)
                    throw new SharpTuneException($"{path}: tensor '{t.Name}' wrote {stream.Position - before} bytes, its shape and {t.DType} need {t.ByteLength}");
            }
        });
    }

    /// <summary>
    /// Writes <c>{baseName}.safetensors</c> when everything fits in <paramref name="maxShardBytes"/>, otherwise
    /// <c>{baseName}-00001-of-0000N.safetensors</c>... plus <c>{baseName}.safetensors.index.json</c>, filling shards
    /// in the given order as transformers' <c>save_pretrained</c> does (a tensor larger than the limit gets a shard of its own).
    /// Files of an earlier save under the other layout are removed so that loading cannot pick them up. Returns the files written.
    /// </summary>
    public static IReadOnlyList<string> WriteSharded(string dir, IEnumerable<TensorToWrite> tensors, long maxShardBytes, string baseName = "model")
    {
        if (maxShardBytes <= 0) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), "must be positive");
        var all = tensors.ToList();
        RejectDuplicates(dir, all);
        var shards = new List<List<TensorToWrite>> { new() };
        long current = 0;
        foreach (var t in all)
        {
            if (current + t.ByteLength > maxShardBytes && shards[^1].Count > 0)
            {
                shards.Add([]);
                current = 0;
            }
            shards[^1].Add(t);
            current += t.ByteLength;
        }
        Directory.CreateDirectory(dir);
        var indexPath = Path.Combine(dir, $"{baseName}.safetensors.index.json");
        var singlePath = Path.Combine(dir, $"{baseName}.safetensors");
        if (shards.Count == 1)
        {
            Write(singlePath, shards[0]);
            RemoveStale(dir, baseName, keep: [singlePath]);
            return [singlePath];
        }

        var written = new List<string>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            var fileName = $"{baseName}-{i + 1:D5}-of-{shards.Count:D5}.safetensors";
            foreach (var t in shards[i]) weightMap[t.Name] = fileName;
            var path = Path.Combine(dir, fileName);
            Write(path, shards[i]);
            written.Add(path);
        }
        AtomicFile.WriteAllText(indexPath, IndexJson(all.Sum(t => t.ByteLength), all.Sum(t => SafeTensorsHeader.ElementCount(t.Shape)), weightMap));
        written.Add(indexPath);
        RemoveStale(dir, baseName, keep: written);
        return written;
    }

    static void RejectDuplicates(string destination, List<TensorToWrite> tensors)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in tensors)
            if (!seen.Add(t.Name)) throw new SharpTuneException($"{destination}: tensor '{t.Name}' given twice");
    }

    static byte[] Header(List<TensorToWrite> ordered, IReadOnlyDictionary<string, string> metadata)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in ordered)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.SafeTensorsName());
                json.WriteStartArray("shape");
                foreach (var d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteLength);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteLength;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < padding; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

    static string IndexJson(long totalSize, long totalParameters, SortedDictionary<string, string> weightMap)
    {
        var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_parameters", totalParameters);
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, file) in weightMap) json.WriteString(name, file);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    static void RemoveStale(string dir, string baseName, IReadOnlyCollection<string> keep)
    {
        var candidates = Directory.EnumerateFiles(dir, $"{baseName}-*-of-*.safetensors")
            .Append(Path.Combine(dir, $"{baseName}.safetensors"))
            .Append(Path.Combine(dir, $"{baseName}.safetensors.index.json"));
        var kept = keep.Select(Path.GetFullPath).ToHashSet();
        foreach (var f in candidates)
            if (File.Exists(f) && !kept.Contains(Path.GetFullPath(f))) File.Delete(f);
    }
}
