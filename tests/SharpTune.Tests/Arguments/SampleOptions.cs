using SharpTune.Arguments;

namespace SharpTune.Tests.Arguments;

public enum SchedulerKind { Linear, Cosine, CosineWithRestarts }
public enum SaveStrategy { No, Steps, LastRound }

/// <summary>One property of every supported type, named as ms-swift names them.</summary>
public sealed class SampleOptions
{
    [Arg("model", Help = "model id or path")] public string? Model { get; set; }
    [Arg("train_type", Aliases = new[] { "sft_type" }, Help = "lora or full")] public string TrainType { get; set; } = "lora";
    [Arg("max_new_tokens")] public int? MaxNewTokens { get; set; }
    [Arg("lora_rank")] public int LoraRank { get; set; } = 8;
    [Arg("max_steps")] public long MaxSteps { get; set; } = -1;
    [Arg("learning_rate")] public float LearningRate { get; set; } = 1e-4f;
    [Arg("temperature")] public float? Temperature { get; set; }
    [Arg("warmup_ratio")] public double WarmupRatio { get; set; }
    [Arg("stream")] public bool Stream { get; set; }
    [Arg("gradient_checkpointing")] public bool? GradientCheckpointing { get; set; }
    [Arg("lr_scheduler_type")] public SchedulerKind LrSchedulerType { get; set; } = SchedulerKind.Cosine;
    [Arg("save_strategy")] public SaveStrategy SaveStrategy { get; set; } = SaveStrategy.Steps;
    [Arg("target_modules")] public string[] TargetModules { get; set; } = ["all-linear"];
    [Arg("dataset")] public List<string> Dataset { get; set; } = [];
    [Arg("stop_token_ids")] public int[] StopTokenIds { get; set; } = [];
    [Arg("loss_scale")] public float[] LossScale { get; set; } = [];
    public string NotAnOption { get; set; } = "ignored";
}
