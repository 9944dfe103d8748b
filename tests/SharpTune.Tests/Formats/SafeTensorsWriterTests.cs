using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Tests.Formats;

public class SafeTensorsWriterTests
{
    static float[] Ramp(int n, float scale) => Enumerable.Range(0, n).Select(i => (i - n / 2) * scale).ToArray();

    static TensorToWrite[] MixedTensors() =>
    [
        TensorToWrite.FromFloat32("b.f32", DType.F32, [3, 5], Ramp(15, 0.37f)),
        TensorToWrite.FromFloat32("a.bf16", DType.BF16, [7], Ramp(7, 1.3f)),
        TensorToWrite.FromFloat32("c.f16", DType.F16, [2, 2, 3], Ramp(12, 0.011f)),
        new TensorToWrite("d.i64", DType.I64, [2], MemoryMarshal.AsBytes<long>([long.MinValue, 42]).ToArray()),
        new TensorToWrite("e.empty", DType.F32, [0, 4], ReadOnlyMemory<byte>.Empty),
        new TensorToWrite("f.u8", DType.U8, [3], new byte[] { 1, 2, 255 }),
    ];

    static float[] Narrowed(DType dtype, float[] values)
    {
        var bytes = new byte[values.Length * dtype.SizeInBytes()];
        FloatConversions.FromF32(dtype, values, bytes);
        var back = new float[values.Length];
        FloatConversions.ToF32(dtype, bytes, back);
        return back;
    }

    [Fact]
    public void SingleFileRoundTripsValuesShapesAndMetadata()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "adapter_model.safetensors");
        SafeTensorsWriter.Write(path, MixedTensors(), new Dictionary<string, string> { ["format"] = "pt", ["note"] = "round trip" });

        using var file = SafeTensorsFile.Open(path);
        Assert.Equal("round trip", file.Metadata["note"]);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(6, file.Tensors.Count);
        Assert.Equal([2L, 2, 3], file.Entry("c.f16").Shape);
        Assert.Equal(DType.F16, file.Entry("c.f16").DType);
        Assert.Equal(0, file.Entry("e.empty").ByteLength);
        Assert.Equal([long.MinValue, 42L], MemoryMarshal.Cast<byte, long>(file.Bytes("d.i64")).ToArray());
        Assert.Equal(new byte[] { 1, 2, 255 }, file.Bytes("f.u8").ToArray());

        using var checkpoint = Checkpoint.Open(path);
        Assert.Equal(Ramp(15, 0.37f), checkpoint.ReadFloat32("b.f32"));
        Assert.Equal(Narrowed(DType.BF16, Ramp(7, 1.3f)), checkpoint.ReadFloat32("a.bf16"));
        Assert.Equal(Narrowed(DType.F16, Ramp(12, 0.011f)), checkpoint.ReadFloat32("c.f16"));
        Assert.NotEqual(Ramp(7, 1.3f), checkpoint.ReadFloat32("a.bf16")); // bf16 really narrowed
        Assert.Throws<SharpTuneException>(() => checkpoint.ReadFloat32("d.i64"));
        Directory.Delete(dir, true);
    }

    [Fact]
    public void LayoutIsPaddedAlignedAndDeterministic()
    {
        var dir = TestData.TempDir();
        var first = Path.Combine(dir, "one.safetensors");
        var second = Path.Combine(dir, "two.safetensors");
        SafeTensorsWriter.Write(first, MixedTensors());
        SafeTensorsWriter.Write(second, MixedTensors().Reverse());
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));

        var bytes = File.ReadAllBytes(first);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLength % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        Assert.EndsWith("}", header.TrimEnd(' '));
        using var doc = JsonDocument.Parse(header);
        Assert.Equal("pt", doc.RootElement.GetProperty("__metadata__").GetProperty("format").GetString());

        using var file = SafeTensorsFile.Open(first);
        foreach (var e in file.Tensors.Values) Assert.Equal(0, e.DataOffset % e.DType.SizeInBytes());
        // Widest element type first, as the safetensors library orders them.
        var byOffset = file.Tensors.Values.Where(e => e.ByteLength > 0).OrderBy(e => e.DataOffset).Select(e => e.Name).ToArray();
        Assert.Equal(["d.i64", "b.f32", "a.bf16", "c.f16", "f.u8"], byOffset);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void ShardedWriteSplitsByBudgetWritesIndexAndReopensAsOneCheckpoint()
    {
        var dir = TestData.TempDir();
        var tensors = Enumerable.Range(0, 5)
            .Select(i => TensorToWrite.FromFloat32($"layer.{i}.weight", DType.BF16, [4, 8], Ramp(32, 0.1f * (i + 1))))
            .ToArray(); // 64 bytes each
        var written = SafeTensorsWriter.WriteSharded(dir, tensors, maxShardBytes: 150);

        string[] shardNames = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"];
        Assert.Equal([.. shardNames.Select(n => Path.Combine(dir, n)), Path.Combine(dir, Checkpoint.IndexFileName)], written);
        using (var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(dir, Checkpoint.IndexFileName))))
        {
            Assert.Equal(5 * 64, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            Assert.Equal("model-00003-of-00003.safetensors", index.RootElement.GetProperty("weight_map").GetProperty("layer.4.weight").GetString());
        }

        using (var checkpoint = Checkpoint.Open(dir))
        {
            Assert.Equal(3, checkpoint.Files.Count);
            Assert.Equal(tensors.Select(t => t.Name), checkpoint.Names);
            for (int i = 0; i < 5; i++)
                Assert.Equal(Narrowed(DType.BF16, Ramp(32, 0.1f * (i + 1))), checkpoint.ReadFloat32($"layer.{i}.weight"));
        }

        // Saving again in one file removes the shards and the index, so the folder cannot load stale weights.
        var single = SafeTensorsWriter.WriteSharded(dir, tensors.Take(2), maxShardBytes: 1 << 20);
        Assert.Equal([Path.Combine(dir, "model.safetensors")], single);
        Assert.Equal(["model.safetensors"], Directory.GetFiles(dir).Select(f => Path.GetFileName(f)).ToArray());
        using (var checkpoint = Checkpoint.Open(dir)) Assert.Equal(["layer.0.weight", "layer.1.weight"], checkpoint.Names);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void OversizedTensorGetsItsOwnShard()
    {
        var dir = TestData.TempDir();
        var written = SafeTensorsWriter.WriteSharded(dir,
            [TensorToWrite.FromFloat32("small", DType.F32, [2], Ramp(2, 1)), TensorToWrite.FromFloat32("big", DType.F32, [100], Ramp(100, 1))],
            maxShardBytes: 16);
        Assert.Equal(3, written.Count);
        using var checkpoint = Checkpoint.Open(dir);
        Assert.EndsWith("model-00002-of-00002.safetensors", checkpoint.FileOf("big").Path);
        Directory.Delete(dir, true);
    }

    [Fact]
    public void WriterRejectsDuplicatesAndWrongByteCounts()
    {
        var dir = TestData.TempDir();
        var path = Path.Combine(dir, "x.safetensors");
        var t = TensorToWrite.FromFloat32("same", DType.F32, [1], new float[] { 1 });
        Assert.Contains("'same' given twice", Assert.Throws<SharpTuneException>(() => SafeTensorsWriter.Write(path, [t, t])).Message);
        Assert.Throws<ArgumentException>(() => new TensorToWrite("short", DType.F32, [2], new byte[4]));
        var liar = new TensorToWrite("liar", DType.F32, [2], s => s.Write(new byte[4]));
        Assert.Contains("'liar' wrote 4 bytes", Assert.Throws<SharpTuneException>(() => SafeTensorsWriter.Write(path, [liar])).Message);
        Assert.Empty(Directory.GetFiles(dir)); // the failed write left nothing behind
        Directory.Delete(dir, true);
    }
}
