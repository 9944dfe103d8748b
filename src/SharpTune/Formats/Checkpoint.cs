using SharpTune.Tensors;

namespace SharpTune.Formats;

/// <summary>
/// One view over the tensors of a checkpoint: a single safetensors file, a folder with <c>model.safetensors</c>,
/// or a folder whose <c>model.safetensors.index.json</c> maps tensor names to shard files.
/// </summary>
public sealed unsafe class Checkpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    readonly Dictionary<string, SafeTensorsFile> fileOfTensor;
    readonly List<SafeTensorsFile> files;

    /// <summary>The file or folder it was opened from.</summary>
    public string Source { get; }

    /// <summary>Tensor names in ordinal order.</summary>
    public IEnumerable<string> Names { get; }

    public IReadOnlyList<SafeTensorsFile> Files => files;

    Checkpoint(string source, List<SafeTensorsFile> files, Dictionary<string, SafeTensorsFile> fileOfTensor)
    {
        Source = source;
        this.files = files;
        this.fileOfTensor = fileOfTensor;
        Names = fileOfTensor.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Opens a safetensors file, an index file, or a folder holding either <see cref="IndexFileName"/> or <see cref="SingleFileName"/>.</summary>
    public static Checkpoint Open(string pathOrDirectory)
    {
        var full = Path.GetFullPath(pathOrDirectory);
        if (Directory.Exists(full))
        {
            var index = Path.Combine(full, IndexFileName);
            if (File.Exists(index)) return OpenIndex(index);
            var single = Path.Combine(full, SingleFileName);
            if (File.Exists(single)) return OpenSingle(single);
            throw new SharpTuneException($"{full}: no {IndexFileName} or {SingleFileName} in this folder");
        }
        if (!File.Exists(full)) throw new SharpTuneException($"{full}: checkpoint not found");
        return full.EndsWith(".index.json", StringComparison.Ordinal) ? OpenIndex(full) : OpenSingle(full);
    }

    static Checkpoint OpenSingle(string path)
    {
        var file = SafeTensorsFile.Open(path);
        return new Checkpoint(path, [file], file.Tensors.Keys.ToDictionary(n => n, _ => file, StringComparer.Ordinal));
    }

    static Checkpoint OpenIndex(string indexPath)
    {
        var weightMap = ReadWeightMap(indexPath);
        var dir = Path.GetDirectoryName(indexPath)!;
        var opened = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
        try
        {
            var fileOfTensor = new Dictionary<string, SafeTensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shardName) in weightMap)
            {
                if (!opened.TryGetValue(shardName, out var shard))
                {
                    var shardPath = Path.Combine(dir, shardName);
                    if (!File.Exists(shardPath)) throw new SharpTuneException($"{indexPath}: shard {shardPath} (holding '{name}') is missing");
                    opened[shardName] = shard = SafeTensorsFile.Open(shardPath);
                }
                if (!shard.Tensors.ContainsKey(name))
                    throw new SharpTuneException($"{indexPath}: tensor '{name}' is listed in the index but absent from {shard.Path}");
                fileOfTensor[name] = shard;
            }
            return new Checkpoint(indexPath, opened.Values.ToList(), fileOfTensor);
        }
        catch
        {
            foreach (var f in opened.Values) f.Dispose();
            throw;
        }
    }

    static List<(string Name, string Shard)> ReadWeightMap(string indexPath)
    {
        using var doc = JsonFields.ParseFile(indexPath);
        var map = new JsonFields(indexPath, doc.RootElement).Object("weight_map");
        var result = new List<(string, string)>();
        foreach (var p in map.Element.EnumerateObject())
        {
            var shard = map.OptionalString(p.Name) ?? throw map.Error(p.Name, "must name a shard file");
            if (shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                throw map.Error(p.Name, $"names '{shard}', which is not a file beside the index");
            result.Add((p.Name, shard));
        }
        return result;
    }

    public bool Contains(string name) => fileOfTensor.ContainsKey(name);

    public SafeTensorsFile FileOf(string name) =>
        fileOfTensor.TryGetValue(name, out var f) ? f : throw new SharpTuneException($"{Source}: no tensor named '{name}'");

    public TensorEntry Entry(string name) => FileOf(name).Tensors[name];

    public ReadOnlySpan<byte> Bytes(string name) => FileOf(name).Bytes(Entry(name));

    public byte* DataPointer(string name) => FileOf(name).DataPointer(Entry(name));

    /// <summary>The tensor widened to float32 (from F32, BF16, F16 or F64), as a new array.</summary>
    public float[] ReadFloat32(string name)
    {
        var file = FileOf(name);
        var e = file.Tensors[name];
        if (e.DType is not (DType.F32 or DType.BF16 or DType.F16 or DType.F64))
            throw new SharpTuneException($"{file.Path}: tensor '{name}' is {e.DType}, not a floating-point type");
        if (e.ElementCount > Array.MaxLength) throw new SharpTuneException($"{file.Path}: tensor '{name}' has {e.ElementCount} elements, too many for one array");
        var result = new float[e.ElementCount];
        // Converts in chunks through the pointer, so tensors whose bytes exceed 2 GiB work too.
        const int chunk = 1 << 20;
        int elementSize = e.DType.SizeInBytes();
        byte* source = file.DataPointer(e);
        for (long start = 0; start < result.Length; start += chunk)
        {
            int count = (int)Math.Min(chunk, result.Length - start);
            FloatConversions.ToF32(e.DType, new ReadOnlySpan<byte>(source + start * elementSize, count * elementSize), result.AsSpan((int)start, count));
        }
        return result;
    }

    public void Dispose()
    {
        foreach (var f in files) f.Dispose();
    }
}
