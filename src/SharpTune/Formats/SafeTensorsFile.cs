using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace SharpTune.Formats;

/// <summary>
/// A read-only, memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header
/// (<c>{name: {dtype, shape, data_offsets}, "__metadata__": {...}}</c>), then the tensor bytes.
/// Tensors are not copied; <see cref="Bytes"/> and <see cref="DataPointer"/> point into the mapping,
/// which stays valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    readonly MemoryMappedFile map;
    readonly MemoryMappedViewAccessor view;
    readonly byte* basePointer;
    readonly long fileLength;
    bool disposed;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorEntry> Tensors { get; private set; }
    public IReadOnlyDictionary<string, string> Metadata { get; private set; }

    SafeTensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, byte* basePointer, long fileLength)
    {
        Path = path;
        this.map = map;
        this.view = view;
        this.basePointer = basePointer;
        this.fileLength = fileLength;
        Tensors = new Dictionary<string, TensorEntry>();
        Metadata = new Dictionary<string, string>();
    }

    public static SafeTensorsFile Open(string path)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw new SharpTuneException($"{path}: safetensors file not found");
        long length = new FileInfo(path).Length;
        if (length < 8) throw new SharpTuneException($"{path}: file is {length} bytes, too short for a safetensors header");

        var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor view;
        try
        {
            view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        }
        catch
        {
            map.Dispose();
            throw;
        }
        byte* pointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref pointer);
        var file = new SafeTensorsFile(path, map, view, pointer + view.PointerOffset, length);
        try
        {
            file.ReadHeader();
            return file;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    void ReadHeader()
    {
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(basePointer, 8));
        if (headerLength > SafeTensorsHeader.MaxHeaderBytes)
            throw new SharpTuneException($"{Path}: header length {headerLength} is absurd (limit {SafeTensorsHeader.MaxHeaderBytes} bytes); not a safetensors file?");
        if ((long)headerLength > fileLength - 8)
            throw new SharpTuneException($"{Path}: header length {headerLength} runs beyond the end of the {fileLength}-byte file");
        long dataStart = 8 + (long)headerLength;
        var (tensors, metadata) = SafeTensorsHeader.Parse(Path, new ReadOnlySpan<byte>(basePointer + 8, (int)headerLength), dataStart, fileLength - dataStart);
        Tensors = tensors;
        Metadata = metadata;
    }

    public TensorEntry Entry(string name) =>
        Tensors.TryGetValue(name, out var e) ? e : throw new SharpTuneException($"{Path}: no tensor named '{name}'");

    /// <summary>Address of the tensor's first byte in the mapping; works for tensors of any size.</summary>
    public byte* DataPointer(TensorEntry e)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (e.DataOffset < 0 || e.DataOffset + e.ByteLength > fileLength) throw new ArgumentException($"tensor '{e.Name}' is not from {Path}");
        return basePointer + e.DataOffset;
    }

    /// <summary>The tensor's bytes as a span (tensors under 2 GiB; use <see cref="DataPointer"/> for bigger ones).</summary>
    public ReadOnlySpan<byte> Bytes(TensorEntry e)
    {
        if (e.ByteLength > int.MaxValue)
            throw new SharpTuneException($"{Path}: tensor '{e.Name}' is {e.ByteLength} bytes, too large for a span; read it through DataPointer");
        return new ReadOnlySpan<byte>(DataPointer(e), (int)e.ByteLength);
    }

    public ReadOnlySpan<byte> Bytes(string name) => Bytes(Entry(name));

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }
}
