using System.Buffers.Binary;
using System.Text;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Tests.Formats;

/// <summary>Corrupt and hostile files must fail on open with a message naming the file and the tensor.</summary>
public class SafeTensorsValidationTests : IDisposable
{
    readonly string dir = TestData.TempDir();

    public void Dispose() => Directory.Delete(dir, true);

    string WriteRaw(byte[] bytes)
    {
        var path = Path.Combine(dir, $"bad-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>A file with the given header text (its true length) followed by <paramref name="dataBytes"/> zero bytes.</summary>
    string WriteWithHeader(string header, int dataBytes, ulong? claimedLength = null)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, claimedLength ?? (ulong)json.Length);
        json.CopyTo(bytes, 8);
        return WriteRaw(bytes);
    }

    string OpenFails(string path)
    {
        var e = Assert.Throws<SharpTuneException>(() => SafeTensorsFile.Open(path));
        Assert.Contains(path, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        return e.Message;
    }

    [Fact]
    public void ValidFileOpens()
    {
        var path = WriteWithHeader("""{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}""", 16);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(new FileInfo(path).Length - 16, file.Entry("w").DataOffset);
        Assert.Equal(16, file.Bytes("w").Length);
    }

    [Fact]
    public void TooShortFile() => Assert.Contains("too short", OpenFails(WriteRaw([1, 2, 3])));

    [Fact]
    public void EmptyFile() => Assert.Contains("0 bytes", OpenFails(WriteRaw([])));

    [Fact]
    public void HeaderLengthBeyondFile() =>
        Assert.Contains("beyond the end", OpenFails(WriteWithHeader("""{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4, claimedLength: 1000)));

    [Fact]
    public void AbsurdHeaderLength() =>
        Assert.Contains("absurd", OpenFails(WriteWithHeader("{}", 0, claimedLength: ulong.MaxValue)));

    [Fact]
    public void TruncatedFileFailsOnTheTensorPastTheEnd()
    {
        var path = Path.Combine(dir, "truncated.safetensors");
        SafeTensorsWriter.Write(path, [TensorToWrite.FromFloat32("a", DType.F32, [4], new float[4]), TensorToWrite.FromFloat32("b", DType.F32, [4], new float[4])]);
        var bytes = File.ReadAllBytes(path);
        var message = OpenFails(WriteRaw(bytes[..^3]));
        Assert.Contains("tensor 'b'", message);
        Assert.Contains("beyond the data section", message);
    }

    [Fact]
    public void BadJson() => Assert.Contains("not valid JSON", OpenFails(WriteWithHeader("""{"w": {"dtype": "F32",""", 0)));

    [Fact]
    public void HeaderNotAnObject() => Assert.Contains("must be a JSON object", OpenFails(WriteWithHeader("[1, 2]", 0)));

    [Fact]
    public void UnknownDType()
    {
        var message = OpenFails(WriteWithHeader("""{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", 2));
        Assert.Contains("tensor 'w'", message);
        Assert.Contains("F8_E4M3", message);
    }

    [Theory]
    [InlineData("[-1, 2]")]
    [InlineData("[1.5]")]
    [InlineData("[\"2\"]")]
    public void BadShape(string shape) =>
        Assert.Contains("shape", OpenFails(WriteWithHeader($$$"""{"w":{"dtype":"U8","shape":{{{shape}}},"data_offsets":[0,2]}}""", 2)));

    [Theory]
    [InlineData("[0]")]
    [InlineData("[0, 2, 4]")]
    [InlineData("[0, 1.5]")]
    [InlineData("[-2, 2]")]
    [InlineData("\"0-2\"")]
    public void DataOffsetsNotTwoNonNegativeIntegers(string offsets) =>
        Assert.Contains("data_offsets", OpenFails(WriteWithHeader($$$"""{"w":{"dtype":"U8","shape":[2],"data_offsets":{{{offsets}}}}}""", 2)));

    [Fact]
    public void BeginAfterEnd() =>
        Assert.Contains("is after end", OpenFails(WriteWithHeader("""{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}""", 4)));

    [Fact]
    public void OffsetsBeyondDataSection() =>
        Assert.Contains("beyond the data section", OpenFails(WriteWithHeader("""{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 8)));

    [Fact]
    public void ByteLengthDisagreesWithShape()
    {
        var message = OpenFails(WriteWithHeader("""{"w":{"dtype":"BF16","shape":[3,2],"data_offsets":[0,8]}}""", 8));
        Assert.Contains("tensor 'w'", message);
        Assert.Contains("needs 12", message);
    }

    [Fact]
    public void OverlappingTensors()
    {
        var message = OpenFails(WriteWithHeader(
            """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12));
        Assert.Contains("'a' and 'b' overlap", message);
    }

    [Fact]
    public void DuplicateTensorName() =>
        Assert.Contains("appears twice", OpenFails(WriteWithHeader(
            """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}""", 2)));

    [Fact]
    public void NonStringMetadata() =>
        Assert.Contains("__metadata__", OpenFails(WriteWithHeader("""{"__metadata__":{"format":1}}""", 0)));

    [Fact]
    public void MissingShardIsNamedWithTheIndex()
    {
        SafeTensorsWriter.WriteSharded(dir, [TensorToWrite.FromFloat32("a", DType.F32, [4], new float[4]), TensorToWrite.FromFloat32("b", DType.F32, [4], new float[4])], maxShardBytes: 16);
        var missing = Path.Combine(dir, "model-00002-of-00002.safetensors");
        File.Delete(missing);
        var message = Assert.Throws<SharpTuneException>(() => Checkpoint.Open(dir)).Message;
        Assert.Contains(Checkpoint.IndexFileName, message);
        Assert.Contains(missing, message);
    }

    [Fact]
    public void IndexedNameAbsentFromItsShardIsNamedWithBothFiles()
    {
        SafeTensorsWriter.WriteSharded(dir, [TensorToWrite.FromFloat32("a", DType.F32, [4], new float[4]), TensorToWrite.FromFloat32("b", DType.F32, [4], new float[4])], maxShardBytes: 16);
        var index = Path.Combine(dir, Checkpoint.IndexFileName);
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"b\"", "\"renamed\""));
        var message = Assert.Throws<SharpTuneException>(() => Checkpoint.Open(dir)).Message;
        Assert.Contains(index, message);
        Assert.Contains("'renamed'", message);
        Assert.Contains("model-00002-of-00002.safetensors", message);
    }

    [Fact]
    public void FolderWithoutCheckpoint() =>
        Assert.Contains("no model.safetensors.index.json or model.safetensors", Assert.Throws<SharpTuneException>(() => Checkpoint.Open(dir)).Message);
}
