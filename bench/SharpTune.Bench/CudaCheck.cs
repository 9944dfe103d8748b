using SharpTune.Backends.Cuda;
using SharpTune.Tensors;
using SharpTune.Tests.Cuda;

namespace SharpTune.Bench;

/// <summary>
/// `cuda-check [testdata]`: the GPU parity checks of tests/SharpTune.Tests/Cuda (linked source) as PASS/FAIL lines, for
/// the GPU machine, which has no .NET SDK to run xunit. Exit code 1 when any check fails.
/// </summary>
public static class CudaCheck
{
    public static int Run(string[] args)
    {
        var root = args.Length > 0 ? args[0] : Path.Combine("..", "shared", "testdata");
        string Model(string name) => Path.Combine(root, "models", name);
        using var bf16 = CudaBackend.Create(0, DType.BF16);
        using var f32 = CudaBackend.Create(0, DType.F32);
        Console.WriteLine($"device: {bf16.DeviceName}");
        var checks = new List<Func<CudaCheckResult>>();
        checks.Add(() => CudaChecks.DecodeOps(f32, 1e-5));
        checks.Add(() => CudaChecks.DecodeOps(bf16, 1e-2));
        foreach (var name in new[] { "stories260K", "qwen2-tiny", "llama3-tiny" })
        {
            checks.Add(() => CudaChecks.FixtureLogits(bf16, Model(name), 2e-2));
            checks.Add(() => CudaChecks.FixtureLogits(f32, Model(name), 1e-4));
        }
        checks.Add(() => CudaChecks.TrainingOps(bf16));
        checks.Add(() => TrainingKernelChecks.SwiGlu(bf16, 1e-2));
        checks.Add(() => TrainingKernelChecks.SwiGlu(f32, 1e-5));
        checks.Add(() => TrainingKernelChecks.LoraDown(bf16, 1e-2));
        checks.Add(() => TrainingKernelChecks.LoraUp(bf16, 1e-2));
        checks.Add(() => TrainingKernelChecks.NormsAndRope(bf16, 1e-2));
        checks.Add(() => TrainingKernelChecks.NormsAndRope(f32, 1e-5));
        checks.Add(() => CudaChecks.PeftGradients(f32, Model("qwen2-tiny"), false, 1e-4));
        checks.Add(() => CudaChecks.PeftGradients(f32, Model("llama3-tiny"), false, 1e-4));
        checks.Add(() => CudaChecks.PeftGradients(f32, Model("qwen2-tiny"), true, 1e-4));
        checks.Add(() => CudaChecks.StoriesGreedyText(f32, Model("stories260K")));
        checks.Add(() => CudaChecks.LoraLossCurve(bf16, Model("stories260K"), 50, 0.02));
        checks.Add(() => CudaChecks.LoraLossCurve(f32, Model("stories260K"), 50, 0.02));
        checks.Add(() => CudaChecks.LoraLossCurve(f32, Model("stories260K"), 20, 1e-4, dora: true));
        checks.Add(() => CudaChecks.LoraLossCurve(bf16, Model("stories260K"), 20, 0.02, dora: true));
        checks.Add(() => CudaChecks.OutOfMemoryDuringTraining(bf16, Model("stories260K"), Directory.CreateTempSubdirectory("sharptune-oom").FullName));
        checks.Add(() => CudaChecks.AttentionAgainstCpu(bf16, 14, 2, 64, 1e-2));
        checks.Add(() => CudaChecks.AttentionAgainstCpu(bf16, 28, 4, 128, 1e-2));
        checks.Add(() => CudaChecks.ServingMatchesGenerator(f32, Model("stories260K")));
        foreach (var name in new[] { "stories260K", "qwen2-tiny", "llama3-tiny" })
        {
            checks.Add(() => CudaChecks.DecodeStepMatchesForward(bf16, Model(name)));
            checks.Add(() => CudaChecks.DecodeStepMatchesForward(f32, Model(name)));
        }
        checks.Add(() => CudaChecks.SampleMatchesHost(bf16));
        checks.Add(() => CudaChecks.PinnedTransfers(bf16));
        checks.Add(() => CudaChecks.SampledGenerationMatchesCpu(f32, Model("stories260K")));
        checks.Add(() => CudaChecks.SampledGenerationMatchesCpu(f32, Model("qwen2-tiny")));
        int failed = 0;
        foreach (var check in checks)
        {
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var result = check();
                if (!result.Passed) failed++;
                Console.WriteLine($"{result} [{System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds:F1}s]");
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"FAIL exception: {e}");
            }
        }
        Console.WriteLine($"{checks.Count - failed}/{checks.Count} checks passed");
        return failed == 0 ? 0 : 1;
    }
}
