using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Models;

namespace SharpTune.Tests.Cli;

/// <summary>
/// <c>sft --use_dora true --modules_to_save lm_head</c> end to end on the bundled model: checkpoints in PEFT's keys, a resumed
/// run that continues bit for bit, and the merged export giving the adapter's logits.
/// </summary>
public class SftDoraCommandTests
{
    [Fact]
    public void DoraWithSavedHeadTrainsResumesAndMerges()
    {
        var dir = TestData.TempDir("sft-dora");
        var data = Path.Combine(dir, "data.jsonl");
        File.WriteAllLines(data, Enumerable.Range(1, 8).Select(i =>
            $$"""{"messages":[{"role":"user","content":"Tell me a story about cat {{i}}."},{"role":"assistant","content":"Once upon a time there was a cat. The cat was happy."}]}"""));
        string[] Args(string output) =>
        [
            "sft", "--model", TestData.BundledModel, "--dataset", data, "--max_steps", "4", "--save_steps", "2", "--use_dora", "true",
            "--modules_to_save", "lm_head", "--lora_dropout", "0.1", "--gradient_accumulation_steps", "2", "--learning_rate", "1e-2",
            "--output_dir", Path.Combine(dir, output),
        ];
        var (code, _, error) = CliRunner.Run(Args("full"));
        Assert.True(code == 0, error);
        var run = Directory.GetDirectories(Path.Combine(dir, "full")).Single();
        var final = Path.Combine(run, "checkpoint-4");
        using (var file = Checkpoint.Open(Path.Combine(final, "adapter_model.safetensors")))
        {
            Assert.True(file.Contains("base_model.model.lm_head.weight"));
            Assert.True(file.Contains("base_model.model.model.layers.4.mlp.down_proj.lora_magnitude_vector"));
        }
        using (var optimizer = Checkpoint.Open(Path.Combine(final, "optimizer.safetensors")))
        {
            Assert.True(optimizer.Contains("base_model.model.lm_head.weight.exp_avg"));
            Assert.True(optimizer.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector.exp_avg_sq"));
        }

        (code, _, error) = CliRunner.Run([.. Args("resumed"), "--resume_from_checkpoint", Path.Combine(run, "checkpoint-2")]);
        Assert.True(code == 0, error);
        var resumed = Path.Combine(Directory.GetDirectories(Path.Combine(dir, "resumed")).Single(), "checkpoint-4");
        Assert.Equal(File.ReadAllBytes(Path.Combine(final, "adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(resumed, "adapter_model.safetensors")));

        var merged = Path.Combine(dir, "merged");
        (code, _, error) = CliRunner.Run("export", "--model", TestData.BundledModel, "--adapters", final, "--merge_lora", "true", "--output_dir", merged);
        Assert.True(code == 0, error);
        int[] tokens = [1, 403, 407, 261, 378, 280];
        float[] adapted;
        using (var model = TransformerModel.Load(TestData.BundledModel, CpuBackend.Instance))
        {
            LoraAdapter.Load(final, model);
            adapted = Reference.Logits(model, tokens, allPositions: true);
        }
        using var mergedModel = TransformerModel.Load(merged, CpuBackend.Instance);
        var logits = Reference.Logits(mergedModel, tokens, allPositions: true);
        double scale = adapted.Max(Math.Abs);
        for (int i = 0; i < adapted.Length; i++) Assert.True(Math.Abs(logits[i] - adapted[i]) <= 1e-5 * scale, $"logit {i}: {logits[i]} vs {adapted[i]}");
    }
}
