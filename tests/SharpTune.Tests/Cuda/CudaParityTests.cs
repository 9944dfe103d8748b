using SharpTune.Backends.Cuda;
using SharpTune.Tensors;

namespace SharpTune.Tests.Cuda;

/// <summary>The GPUs of this machine in both CUDA modes, opened once for the class; skips when there is no GPU or driver.</summary>
public sealed class CudaBackends : IDisposable
{
    public CudaBackends()
    {
        if (!CudaBackend.IsAvailable()) return;
        BF16 = CudaBackend.Create(0, DType.BF16);
        F32 = CudaBackend.Create(0, DType.F32);
    }

    public CudaBackend? BF16 { get; }
    public CudaBackend? F32 { get; }

    public CudaBackend Require(DType mode)
    {
        var backend = mode == DType.F32 ? F32 : BF16;
        Skip.If(backend == null, "no CUDA driver or GPU on this machine (libcuda.so.1 with a visible device is needed)");
        return backend!;
    }

    public void Dispose()
    {
        BF16?.Dispose();
        F32?.Dispose();
    }
}

/// <summary>The CUDA backend against Hugging Face references and the CPU backend (see <see cref="CudaChecks"/>).</summary>
public class CudaParityTests(CudaBackends gpus) : IClassFixture<CudaBackends>
{
    [SkippableTheory]
    [InlineData("stories260K")]
    [InlineData("qwen2-tiny")]
    [InlineData("llama3-tiny")]
    public void LogitsMatchTransformersInBothModes(string modelName)
    {
        var dir = TestData.Model(modelName);
        AssertPassed(CudaChecks.FixtureLogits(gpus.Require(DType.BF16), dir, 2e-2));
        AssertPassed(CudaChecks.FixtureLogits(gpus.Require(DType.F32), dir, 1e-4));
    }

    [SkippableTheory]
    [InlineData("qwen2-tiny", false)]
    [InlineData("llama3-tiny", false)]
    [InlineData("qwen2-tiny", true)]
    public void PeftGradientsMatchInFloat32Mode(string modelName, bool checkpointing) =>
        AssertPassed(CudaChecks.PeftGradients(gpus.Require(DType.F32), TestData.Model(modelName), checkpointing, 1e-4));

    [SkippableFact]
    public void StoriesGreedyTextIsByteExactInFloat32Mode() =>
        AssertPassed(CudaChecks.StoriesGreedyText(gpus.Require(DType.F32), TestData.Model("stories260K")));

    [SkippableFact]
    public void FiftyStepLoraLossCurveStaysWithinTwoPercentOfTheCpu() =>
        AssertPassed(CudaChecks.LoraLossCurve(gpus.Require(DType.BF16), TestData.Model("stories260K"), 50, 0.02));

    [SkippableFact]
    public void OutOfMemoryDuringTrainingSaysWhatToDoAndLeavesOnlyWholeCheckpoints() =>
        AssertPassed(CudaChecks.OutOfMemoryDuringTraining(gpus.Require(DType.BF16), TestData.Model("stories260K"), TestData.TempDir()));

    [SkippableFact]
    public void DeployOnTheGpuGivesEachStreamItsSingleRequestAnswer() =>
        AssertPassed(CudaChecks.ServingMatchesGenerator(gpus.Require(DType.F32), TestData.Model("stories260K")));

    [SkippableTheory]
    [InlineData("stories260K", DType.F32)]
    [InlineData("qwen2-tiny", DType.BF16)]
    [InlineData("llama3-tiny", DType.F32)]
    public void DecodeStepReplayedAsAGraphGivesTheForwardPassLogits(string model, DType mode) =>
        AssertPassed(CudaChecks.DecodeStepMatchesForward(gpus.Require(mode), TestData.Model(model)));

    [SkippableFact]
    public void DoraLossCurveMatchesTheCpuInFloat32Mode() =>
        AssertPassed(CudaChecks.LoraLossCurve(gpus.Require(DType.F32), TestData.Model("stories260K"), 20, 1e-4, dora: true));

    [SkippableTheory]
    [InlineData(14, 2, 64)]
    [InlineData(28, 4, 128)]
    public void TensorCoreAttentionMatchesTheCpuAtQwenHeadLayouts(int heads, int kvHeads, int headDim) =>
        AssertPassed(CudaChecks.AttentionAgainstCpu(gpus.Require(DType.BF16), heads, kvHeads, headDim, 1e-2));

    [SkippableFact]
    public void MultiTensorOpsAndAccumulatingDropoutMatchTheCpu() =>
        AssertPassed(CudaChecks.TrainingOps(gpus.Require(DType.BF16)));

    [SkippableFact]
    public void SwiGluMatchesTheCpuInBothModes()
    {
        AssertPassed(TrainingKernelChecks.SwiGlu(gpus.Require(DType.BF16), 1e-2));
        AssertPassed(TrainingKernelChecks.SwiGlu(gpus.Require(DType.F32), 1e-5));
    }

    [SkippableFact]
    public void FusedLoraDownProjectionsMatchTheCpu() =>
        AssertPassed(TrainingKernelChecks.LoraDown(gpus.Require(DType.BF16), 1e-2));

    [SkippableFact]
    public void LoraUpProjectionAndItsBackwardMatchTheCpu() =>
        AssertPassed(TrainingKernelChecks.LoraUp(gpus.Require(DType.BF16), 1e-2));

    [SkippableFact]
    public void NormsAndRopeMatchTheCpuInBothModes()
    {
        AssertPassed(TrainingKernelChecks.NormsAndRope(gpus.Require(DType.BF16), 1e-2));
        AssertPassed(TrainingKernelChecks.NormsAndRope(gpus.Require(DType.F32), 1e-5));
    }

    [SkippableFact]
    public void DecodeOpsMatchTheCpuInBothModes()
    {
        AssertPassed(CudaChecks.DecodeOps(gpus.Require(DType.F32), 1e-5));
        AssertPassed(CudaChecks.DecodeOps(gpus.Require(DType.BF16), 1e-2));
    }

    [SkippableFact]
    public void SamplingOnTheGpuMatchesTheHost() => AssertPassed(CudaChecks.SampleMatchesHost(gpus.Require(DType.BF16)));

    [SkippableFact]
    public void LargeTransfersKeepTheirBytesAndOrder() => AssertPassed(CudaChecks.PinnedTransfers(gpus.Require(DType.BF16)));

    [SkippableFact]
    public void SampledGenerationMatchesTheCpu() =>
        AssertPassed(CudaChecks.SampledGenerationMatchesCpu(gpus.Require(DType.F32), TestData.Model("stories260K")));

    static void AssertPassed(CudaCheckResult result) => Assert.True(result.Passed, result.ToString());
}
