using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpTune.Training;

/// <summary>transformers' trainer_state.json: progress, the log history and the best checkpoint so far.</summary>
public sealed class TrainerState
{
    public int GlobalStep { get; set; }
    public double Epoch { get; set; }
    public int MaxSteps { get; set; }
    public int LoggingSteps { get; set; }
    public int EvalSteps { get; set; }
    public int SaveSteps { get; set; }
    public double? BestMetric { get; set; }
    public string? BestModelCheckpoint { get; set; }
    public List<JsonObject> LogHistory { get; } = [];

    public string ToJson()
    {
        var o = new JsonObject
        {
            ["best_metric"] = BestMetric,
            ["best_model_checkpoint"] = BestModelCheckpoint,
            ["epoch"] = Epoch,
            ["eval_steps"] = EvalSteps,
            ["global_step"] = GlobalStep,
            ["is_local_process_zero"] = true,
            ["is_world_process_zero"] = true,
            ["log_history"] = new JsonArray(LogHistory.Select(l => (JsonNode)l.DeepClone()).ToArray()),
            ["logging_steps"] = LoggingSteps,
            ["max_steps"] = MaxSteps,
            ["save_steps"] = SaveSteps,
        };
        return o.ToJsonString(JsonText.Indented);
    }

    public static TrainerState Load(string path)
    {
        if (!File.Exists(path)) throw new SharpTuneException($"{path}: not found (is this a checkpoint folder?)");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path))!.AsObject(); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw new SharpTuneException($"{path}: not valid JSON ({e.Message})"); }
        var state = new TrainerState
        {
            GlobalStep = o["global_step"]?.GetValue<int>() ?? throw new SharpTuneException($"{path}: field 'global_step' is missing"),
            Epoch = o["epoch"]?.GetValue<double>() ?? 0,
            MaxSteps = o["max_steps"]?.GetValue<int>() ?? 0,
            BestMetric = o["best_metric"]?.GetValue<double>(),
            BestModelCheckpoint = o["best_model_checkpoint"]?.GetValue<string>(),
        };
        if (o["log_history"] is JsonArray history)
            foreach (var entry in history) state.LogHistory.Add(entry!.AsObject().DeepClone().AsObject());
        return state;
    }
}
