using System.Text.Json;
using SharpTune.Inference;

namespace SharpTune.Tests.Serving;

public class ConcurrencyTests
{
    /// <summary>
    /// 32 streams at once share batched steps (prefills chunked in beside running decodes), yet each greedy answer equals
    /// the one the single-sequence generator gives for its prompt alone.
    /// </summary>
    [Fact]
    public async Task ThirtyTwoSimultaneousStreamsEachEqualTheirSingleRequestAnswer()
    {
        await using var host = await ServerHost.Start("--model", TestData.BundledModel, "--max_num_seqs", "32", "--max_num_batched_tokens", "48");
        string[] names = ["Lily", "Tom", "The cat", "A bird", "Sue", "The old man", "Ben", "A little dog"];
        string[] actions = ["went to the park", "found a box", "was sad", "saw a big red ball"];
        var prompts = Enumerable.Range(0, 32).Select(i => $"{names[i % 8]} {actions[i / 8]}").ToArray();
        var engine = host.Server.Engine;
        var expected = prompts.Select(p =>
        {
            var ids = engine.EncodeRaw(p);
            return engine.Generator.Generate(ids, engine.Sampling(new InferArguments { Temperature = 0, MaxNewTokens = 48 }, ids.Length)).Text;
        }).ToArray();

        var streams = prompts.Select(p => host.PostStream("v1/completions",
            JsonSerializer.Serialize(new { prompt = p, max_tokens = 48, temperature = 0, stream = true }))).ToArray();
        var results = await Task.WhenAll(streams);
        for (int i = 0; i < prompts.Length; i++)
        {
            var text = string.Concat(results[i].Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
            Assert.True(expected[i] == text, $"stream {i} ({prompts[i]}): expected {JsonSerializer.Serialize(expected[i])}, got {JsonSerializer.Serialize(text)}");
        }
        // Independence shows only where answers differ: most prompts lead to their own story.
        Assert.True(expected.Distinct().Count() >= 24, $"only {expected.Distinct().Count()} distinct answers");
    }

    /// <summary>
    /// The GPU check's mix on the CPU: 8 greedy and 8 seeded sampled requests in the same batched steps, each answer equal to
    /// the generator's for the same prompt and seed (the scheduler and the generator pick through the same BackendPicks).
    /// </summary>
    [Fact]
    public void GreedyAndSeededSampledRequestsTogetherEachEqualTheGenerator()
    {
        var result = SharpTune.Tests.Cuda.CudaChecks.ServingMatchesGenerator(SharpTune.Backends.Cpu.CpuBackend.Instance, TestData.BundledModel);
        Assert.True(result.Passed, result.ToString());
    }
}
