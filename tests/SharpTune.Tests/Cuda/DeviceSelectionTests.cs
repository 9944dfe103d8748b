using SharpTune.Backends;
using SharpTune.Backends.Cpu;
using SharpTune.Backends.Cuda;
using SharpTune.Tensors;

namespace SharpTune.Tests.Cuda;

/// <summary>--device on a machine without a GPU (as CI): auto falls back to the CPU, cuda says what to do.</summary>
public class DeviceSelectionTests
{
    [SkippableFact]
    public void WithoutAGpuAutoIsTheCpuAndCudaExplainsTheAlternative()
    {
        Skip.If(CudaBackend.IsAvailable(), "this machine has a CUDA device; the no-GPU behaviour cannot be observed here");
        Assert.Same(CpuBackend.Instance, DeviceSelection.Select("auto"));
        var error = Assert.Throws<SharpTuneException>(() => DeviceSelection.Select("cuda"));
        Assert.Contains("--device cpu", error.Message);
    }

    [Fact]
    public void UnknownDevicesAreRejectedByName()
    {
        var error = Assert.Throws<SharpTuneException>(() => DeviceSelection.Select("gpu0"));
        Assert.Contains("'gpu0'", error.Message);
        Assert.Same(CpuBackend.Instance, DeviceSelection.Select("cpu"));
    }

    [Theory]
    [InlineData(null, DType.BF16)]
    [InlineData("bfloat16", DType.BF16)]
    [InlineData("float32", DType.F32)]
    public void TorchDtypeChoosesTheGpuComputeType(string? torchDtype, DType expected) =>
        Assert.Equal(expected, DeviceSelection.ComputeType(torchDtype));

    [Fact]
    public void UnsupportedTorchDtypeIsRejectedByNameEvenOnTheCpu()
    {
        var error = Assert.Throws<SharpTuneException>(() => DeviceSelection.Select("cpu", "float16"));
        Assert.Equal("--torch_dtype: 'float16' is not supported; use bfloat16 or float32", error.Message);
        Assert.Same(CpuBackend.Instance, DeviceSelection.Select("cpu", "float32"));
    }

    [Theory]
    [InlineData(1, 512)]
    [InlineData(513, 1024)]
    [InlineData((1 << 20) - 1, 1 << 20)]
    [InlineData((1 << 20) + 1, 2 << 20)]
    [InlineData((3 << 20) - 5, 4 << 20)]
    public void AllocatorRoundsSmallBlocksTo512BytesAndLargeOnesTo2MiB(long bytes, long expected) =>
        Assert.Equal(expected, CudaAllocator.RoundUp(bytes));
}
