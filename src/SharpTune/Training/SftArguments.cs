using SharpTune.Arguments;
using SharpTune.Data;
using SharpTune.Templates;

namespace SharpTune.Training;

public enum TunerType { Lora, Full }

/// <summary><c>sharptune sft</c>: ms-swift's training arguments, names and defaults.</summary>
public sealed class SftArguments
{
    // Model and template
    [Arg("model", Help = "Hugging Face model folder")] public string? Model { get; set; }
    [Arg("tuner_type", Aliases = ["train_type"], Help = "lora or full")] public TunerType TunerType { get; set; } = TunerType.Lora;
    [Arg("template", Help = "chat template name (default: the model's own)")] public string? Template { get; set; }
    [Arg("system", Help = "system prompt for rows without one")] public string? System { get; set; }
    [Arg("model_name", Help = "self-cognition: the model's name, Chinese then English")] public string[]? ModelName { get; set; }
    [Arg("model_author", Help = "self-cognition: the author, Chinese then English")] public string[]? ModelAuthor { get; set; }
    [Arg("device", Help = "cpu, cuda or auto")] public string Device { get; set; } = "auto";
    [Arg("torch_dtype", Help = "GPU compute type: bfloat16 (default) or float32 (the checking mode)")] public string? TorchDtype { get; set; }
    [Arg("seed")] public int Seed { get; set; } = 42;
    [Arg("verbose")] public bool Verbose { get; set; }

    // Data
    [Arg("dataset", Help = "files (.jsonl .json .csv) or 'self-cognition', each optionally PATH#N")] public string[] Dataset { get; set; } = [];
    [Arg("val_dataset")] public string[] ValDataset { get; set; } = [];
    [Arg("split_dataset_ratio")] public double SplitDatasetRatio { get; set; }
    [Arg("max_length", Help = "longest sample in tokens (default: the model's context)")] public int? MaxLength { get; set; }
    [Arg("truncation_strategy", Help = "delete, left or right")] public TruncationStrategy TruncationStrategy { get; set; } = TruncationStrategy.Delete;
    [Arg("packing")] public bool Packing { get; set; }
    [Arg("loss_scale", Help = "default, last_round or all")] public LossScale LossScale { get; set; } = LossScale.Default;
    [Arg("strict", Help = "false: skip bad rows instead of failing")] public bool Strict { get; set; } = true;
    [Arg("dataset_shuffle")] public bool DatasetShuffle { get; set; } = true;

    // LoRA
    [Arg("lora_rank")] public int LoraRank { get; set; } = 8;
    [Arg("lora_alpha")] public double LoraAlpha { get; set; } = 32;
    [Arg("lora_dropout")] public double LoraDropout { get; set; } = 0.05;
    [Arg("target_modules")] public string[] TargetModules { get; set; } = ["all-linear"];
    [Arg("modules_to_save")] public string[] ModulesToSave { get; set; } = [];
    [Arg("use_rslora")] public bool UseRslora { get; set; }
    [Arg("use_dora")] public bool UseDora { get; set; }
    [Arg("init_weights", Help = "true, false or gaussian")] public string InitWeights { get; set; } = "true";
    [Arg("adapters", Help = "continue training these adapter weights")] public string[] Adapters { get; set; } = [];

    // Optimization
    [Arg("num_train_epochs")] public double NumTrainEpochs { get; set; } = 3;
    [Arg("max_steps")] public int MaxSteps { get; set; } = -1;
    [Arg("per_device_train_batch_size", Aliases = ["batch_size"])] public int PerDeviceTrainBatchSize { get; set; } = 1;
    [Arg("per_device_eval_batch_size")] public int PerDeviceEvalBatchSize { get; set; } = 1;
    [Arg("gradient_accumulation_steps", Help = "default: ceil(16 / batch size)")] public int? GradientAccumulationSteps { get; set; }
    [Arg("learning_rate", Help = "default 1e-4 for lora, 1e-5 for full")] public double? LearningRate { get; set; }
    [Arg("lr_scheduler_type")] public SchedulerType LrSchedulerType { get; set; } = SchedulerType.Cosine;
    [Arg("warmup_ratio")] public double WarmupRatio { get; set; }
    [Arg("warmup_steps")] public int WarmupSteps { get; set; }
    [Arg("weight_decay")] public double WeightDecay { get; set; } = 0.1;
    [Arg("adam_beta1")] public double AdamBeta1 { get; set; } = 0.9;
    [Arg("adam_beta2")] public double AdamBeta2 { get; set; } = 0.95;
    [Arg("adam_epsilon")] public double AdamEpsilon { get; set; } = 1e-8;
    [Arg("max_grad_norm")] public double MaxGradNorm { get; set; } = 1.0;
    [Arg("gradient_checkpointing")] public bool GradientCheckpointing { get; set; } = true;
    [Arg("keep_attention_activations", Help = "with gradient checkpointing, keep each layer's attention half and recompute only its MLP: " +
                                              "faster, more memory (hidden + 2·(q + kv) more values per token and layer: 1.2 GiB for a 7B model at 2048 tokens)")]
    public bool KeepAttentionActivations { get; set; }

    // Bookkeeping
    [Arg("output_dir")] public string OutputDir { get; set; } = "output";
    [Arg("add_version")] public bool AddVersion { get; set; } = true;
    [Arg("logging_steps")] public int LoggingSteps { get; set; } = 5;
    [Arg("eval_steps", Help = "default: save_steps")] public int? EvalSteps { get; set; }
    [Arg("save_steps")] public int SaveSteps { get; set; } = 500;
    [Arg("save_total_limit")] public int? SaveTotalLimit { get; set; }
    [Arg("save_only_model")] public bool SaveOnlyModel { get; set; }
    [Arg("resume_from_checkpoint")] public string? ResumeFromCheckpoint { get; set; }

    public double EffectiveLearningRate => LearningRate ?? (TunerType == TunerType.Lora ? 1e-4 : 1e-5);
    public int EffectiveGradientAccumulation => GradientAccumulationSteps ?? Math.Max(1, (int)Math.Ceiling(16.0 / PerDeviceTrainBatchSize));

    /// <summary>Checks value ranges; the message names the flag.</summary>
    public void Validate()
    {
        if (Model == null) throw new SharpTuneException("--model is required");
        if (Dataset.Length == 0) throw new SharpTuneException("--dataset is required");
        if (LoraRank <= 0) throw new SharpTuneException("--lora_rank must be positive");
        if (LoraDropout is < 0 or >= 1) throw new SharpTuneException("--lora_dropout must be in [0, 1)");
        if (PerDeviceTrainBatchSize <= 0) throw new SharpTuneException("--per_device_train_batch_size must be positive");
        if (GradientAccumulationSteps is <= 0) throw new SharpTuneException("--gradient_accumulation_steps must be positive");
        if (EffectiveLearningRate <= 0) throw new SharpTuneException("--learning_rate must be positive");
        if (MaxLength is <= 0) throw new SharpTuneException("--max_length must be positive");
        if (SplitDatasetRatio is < 0 or >= 1) throw new SharpTuneException("--split_dataset_ratio must be in [0, 1)");
        if (LoggingSteps <= 0 || SaveSteps <= 0 || EvalSteps is <= 0) throw new SharpTuneException("--logging_steps, --save_steps and --eval_steps must be positive");
        if (NumTrainEpochs <= 0 && MaxSteps <= 0) throw new SharpTuneException("--num_train_epochs or --max_steps must be positive");
        if (TunerType == TunerType.Full && (UseDora || ModulesToSave.Length > 0))
            throw new SharpTuneException("--use_dora and --modules_to_save apply to --tuner_type lora");
    }
}
