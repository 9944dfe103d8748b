using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Tests.Adapters;

/// <summary>
/// modules_to_save: the listed modules train in full next to LoRA, nothing else moves, the adapter file carries them under
/// PEFT's keys (<c>base_model.model.{module}.weight</c>), and loading or merging gives the trained model back.
/// </summary>
public class ModulesToSaveTests
{
    static readonly CpuBackend Be = CpuBackend.Instance;
    static readonly int[] Tokens = [3, 17, 9, 22, 5, 31, 2];

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TrainingMovesOnlyTheSavedModulesAndLora(bool tied)
    {
        var modelDir = TinyModel.Create("qwen2", tied: tied);
        using var model = TransformerModel.Load(modelDir, Be);
        var before = ModelWriter.Weights(model).ToDictionary(w => w.Name, w => Host(w.Tensor));
        // Tied: the head's values before training are the embeddings'.
        before.TryAdd("lm_head.weight", before["model.embed_tokens.weight"]);
        var adapter = LoraAdapter.Create(model, new LoraConfig
        {
            Rank = 2, Alpha = 4, Dropout = 0, TargetModules = ["q_proj", "v_proj"], ModulesToSave = ["embed_tokens", "lm_head"],
        }, seed: 3);
        // Each saved module has its own copy, as in PEFT: the head is no longer tied to the embeddings.
        Assert.False(model.TiedEmbeddings);
        using var grads = TrainableSet(adapter);
        Assert.Equal(["base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight"],
                     adapter.SavedModules!.Parameters.Select(p => p.Key));
        TrainSteps(model, grads, 2);

        var moved = new List<string>();
        foreach (var (name, tensor) in ModelWriter.Weights(model))
            if (!Host(tensor).SequenceEqual(before[name])) moved.Add(name);
        Assert.Equal(["model.embed_tokens.weight", "lm_head.weight"], moved);
        Assert.All(adapter.Branches, b => Assert.Contains(Host(b.Branch.B), v => v != 0));

        var trained = Reference.Logits(model, Tokens, allPositions: true);
        var dir = TestData.TempDir("saved-modules");
        adapter.Save(dir, Be);
        using (var file = Checkpoint.Open(Path.Combine(dir, "adapter_model.safetensors")))
        {
            Assert.True(file.Contains("base_model.model.lm_head.weight"));
            Assert.True(file.Contains("base_model.model.model.embed_tokens.weight"));
            Assert.Equal(2 + 4 * 2, file.Names.Count());
        }
        using var fresh = TransformerModel.Load(modelDir, Be);
        var loaded = LoraAdapter.Load(dir, fresh);
        Assert.Equal(["embed_tokens", "lm_head"], loaded.Config.ModulesToSave!);
        Assert.Equal(trained, Reference.Logits(fresh, Tokens, allPositions: true));

        // Detaching gives the base model back, tie included.
        loaded.Detach();
        Assert.Equal(tied, fresh.TiedEmbeddings);
        using var original = TransformerModel.Load(modelDir, Be);
        Assert.Equal(Reference.Logits(original, Tokens, allPositions: true), Reference.Logits(fresh, Tokens, allPositions: true));
    }

    [Fact]
    public void MergedExportOfAnUntiedHeadReloadsAsTrained()
    {
        var modelDir = TinyModel.Create("llama", tied: true);
        using var model = TransformerModel.Load(modelDir, Be);
        var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 2, Alpha = 4, Dropout = 0, UseDora = true, ModulesToSave = ["lm_head"] }, seed: 4);
        using var grads = TrainableSet(adapter);
        TrainSteps(model, grads, 2);
        var trained = Reference.Logits(model, Tokens, allPositions: true);
        LoraMerge.MergeAll(model);
        var output = TestData.TempDir("merged");
        ModelWriter.Save(model, modelDir, output, DType.F32);
        using var merged = TransformerModel.Load(output, Be);
        Assert.False(merged.Config.TieWordEmbeddings);
        var logits = Reference.Logits(merged, Tokens, allPositions: true);
        double scale = trained.Max(Math.Abs);
        for (int i = 0; i < trained.Length; i++) Assert.True(Math.Abs(logits[i] - trained[i]) <= 1e-5 * scale, $"logit {i}: {logits[i]} vs {trained[i]}");
    }

    [Fact]
    public void BadNamesAreErrorsNamingTheFlag()
    {
        using var model = TransformerModel.Load(TinyModel.Create("llama"), Be);
        var unknown = Assert.Throws<SharpTuneException>(() =>
            LoraAdapter.Create(model, new LoraConfig { TargetModules = ["q_proj"], ModulesToSave = ["classifier"] }, seed: 1));
        Assert.Contains("--modules_to_save", unknown.Message);
        Assert.Contains("classifier", unknown.Message);
        Assert.All(model.DecoderLinears, l => Assert.Empty(l.Adapters));
        var both = Assert.Throws<SharpTuneException>(() =>
            LoraAdapter.Create(model, new LoraConfig { TargetModules = ["q_proj"], ModulesToSave = ["q_proj"] }, seed: 1));
        Assert.Contains("model.layers.0.self_attn.q_proj", both.Message);
    }

    /// <summary>What SftTrainer trains: LoRA A/B, DoRA magnitudes and the saved modules' copies.</summary>
    static GradientSet TrainableSet(LoraAdapter adapter)
    {
        var grads = new GradientSet(Be);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add(module.Name + ".A", branch.A);
            grads.Add(module.Name + ".B", branch.B);
            if (branch.Magnitude != null) grads.Add(LoraAdapter.MagnitudeKey(module.Name), branch.Magnitude);
        }
        foreach (var (key, tensor) in adapter.SavedModules!.Parameters) grads.Add(key, tensor);
        return grads;
    }

    static void TrainSteps(TransformerModel model, GradientSet grads, int steps)
    {
        var batch = TrainingBatch.FromRows([[5, 9, 3, 17, 22, 8, 1, 30]], [[-100, 9, 3, 17, 22, 8, 1, 30]]);
        var step = new CausalLmStep(model, gradientCheckpointing: false);
        using var optimizer = new AdamWOptimizer(Be, grads, 0.9, 0.95, 1e-8, 0.1);
        for (int i = 0; i < steps; i++)
        {
            grads.Zero();
            step.ForwardBackward(batch, 1f / batch.LabelCount, grads, dropoutSeed: (ulong)i);
            optimizer.Update(1e-2);
        }
    }

    static float[] Host(Tensor t)
    {
        var values = new float[t.Count];
        Be.ToHost(t, values);
        return values;
    }
}
