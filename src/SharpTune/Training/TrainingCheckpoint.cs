using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Adapters;
using SharpTune.Arguments;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Training;

/// <summary>
/// checkpoint-N folders: the weights (a PEFT adapter, or a full float32 Hugging Face checkpoint), args.json and
/// trainer_state.json, and — unless --save_only_model — the optimizer moments and step, the schedule position and the random
/// state. A folder is written under a temporary name and renamed, so an interruption never leaves half a checkpoint.
/// </summary>
public static class TrainingCheckpoint
{
    const string OptimizerFile = "optimizer.safetensors";

    public static void Save(string dir, SftArguments args, TrainerState state, LoraAdapter? adapter, TransformerModel model,
                            string sourceModelDir, AdamWOptimizer? optimizer, IBackend backend)
    {
        AtomicFile.WriteDirectory(dir, tmp =>
        {
            if (adapter != null) adapter.Save(tmp, backend);
            else ModelWriter.Save(model, sourceModelDir, tmp, DType.F32);
            File.WriteAllText(Path.Combine(tmp, "args.json"), ArgumentParser.ToJson(args));
            File.WriteAllText(Path.Combine(tmp, "trainer_state.json"), state.ToJson());
            if (optimizer == null) return;
            var moments = optimizer.State().Select(s => LoraAdapter.ToWrite(s.Key, s.Tensor, backend));
            SafeTensorsWriter.Write(Path.Combine(tmp, OptimizerFile), moments, new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["step"] = optimizer.Step.ToString(CultureInfo.InvariantCulture),
            });
            File.WriteAllText(Path.Combine(tmp, "scheduler.json"), new JsonObject
            {
                ["last_epoch"] = state.GlobalStep,
                ["lr_scheduler_type"] = args.LrSchedulerType.ToString(),
            }.ToJsonString(JsonText.Compact));
            // Data order and dropout masks are functions of (seed, step): the seed is the whole random state.
            File.WriteAllText(Path.Combine(tmp, "rng_state.json"), new JsonObject
            {
                ["seed"] = args.Seed,
                ["global_step"] = state.GlobalStep,
            }.ToJsonString(JsonText.Compact));
        });
    }

    /// <summary>Restores progress and optimizer state (the weights are loaded by the caller from the same folder).</summary>
    public static void Restore(string dir, TrainerState state, AdamWOptimizer optimizer, IBackend backend)
    {
        var saved = TrainerState.Load(Path.Combine(dir, "trainer_state.json"));
        state.GlobalStep = saved.GlobalStep;
        state.Epoch = saved.Epoch;
        state.BestMetric = saved.BestMetric;
        state.BestModelCheckpoint = saved.BestModelCheckpoint;
        state.LogHistory.AddRange(saved.LogHistory);
        var path = Path.Combine(dir, OptimizerFile);
        if (!File.Exists(path))
            throw new SharpTuneException($"{dir}: no {OptimizerFile} (saved with --save_only_model?); continue from its weights with --adapters instead");
        using var file = Checkpoint.Open(path);
        foreach (var (key, tensor) in optimizer.State())
        {
            if (!file.Contains(key)) throw new SharpTuneException($"{path}: no optimizer state '{key}' (was it saved for a different model or adapter?)");
            var values = file.ReadFloat32(key);
            if (values.Length != tensor.Count) throw new SharpTuneException($"{path}: '{key}' has {values.Length} values, expected {tensor.Count}");
            using var host = backend.FromHost(values, DType.F32, tensor.Shape);
            backend.Copy(host, tensor);
        }
        var step = file.Files[0].Metadata.GetValueOrDefault("step");
        optimizer.Step = int.TryParse(step, CultureInfo.InvariantCulture, out var s) ? s
            : throw new SharpTuneException($"{path}: metadata 'step' is missing");
    }
}
