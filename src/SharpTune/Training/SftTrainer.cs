using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpTune.Adapters;
using SharpTune.Arguments;
using SharpTune.Data;
using SharpTune.Models;
using SharpTune.Templates;
using SharpTune.Tensors;
using SharpTune.Tokenization;

namespace SharpTune.Training;

public sealed record SftResult(string RunDirectory, string? LastCheckpoint, string? BestCheckpoint, TrainerState State, bool Interrupted);

/// <summary>
/// <c>sharptune sft</c>: data → encoded rows → LoRA or full fine-tuning with AdamW, warmup + schedule, clipping and gradient
/// accumulation → checkpoints, logs and plots in ms-swift's layout. One optimizer step consumes gradient_accumulation_steps
/// micro-batches of one epoch (the last group of an epoch may be smaller, as in transformers); the data order is a function of
/// (seed, epoch), and dropout masks of (seed, micro-batch), so a resumed run continues bit for bit.
/// </summary>
public sealed class SftTrainer : IDisposable
{
    readonly SftArguments _args;
    readonly IBackend _backend;
    readonly ITrainingObserver _observer;
    readonly TransformerModel _model;
    readonly Tokenizer _tokenizer;
    readonly ChatTemplate _template;
    readonly GradientSet _grads;
    readonly AdamWOptimizer _optimizer;
    readonly LoraAdapter? _adapter;
    readonly SftDataLoader _train;
    readonly IReadOnlyList<SftRow> _validation;
    readonly LearningRateSchedule _schedule;
    readonly CausalLmStep _step;
    readonly TrainerState _state;
    readonly string _runDir;
    readonly string _sourceModelDir;
    readonly JsonLog _log;
    readonly int _updatesPerEpoch;
    readonly int _accumulation;
    readonly List<string> _checkpoints = [];

    public SftTrainer(SftArguments args, IBackend backend, ITrainingObserver observer)
    {
        args.Validate();
        _args = args;
        _backend = backend;
        _observer = observer;
        _accumulation = args.EffectiveGradientAccumulation;
        var resume = args.ResumeFromCheckpoint;
        if (resume != null && !Directory.Exists(resume)) throw new SharpTuneException($"--resume_from_checkpoint: {resume} not found");
        _sourceModelDir = args.Model!;
        _tokenizer = Tokenizer.FromModelDirectory(_sourceModelDir);
        _template = ChatTemplates.Resolve(_sourceModelDir, args.Template);

        var (trainRows, validationRows, validationSamples) = LoadData();
        _validation = validationRows;
        int padId = _tokenizer.PadTokenId ?? _tokenizer.EosTokenId ?? 0;
        _train = new SftDataLoader(trainRows, args.PerDeviceTrainBatchSize, (ulong)args.Seed, padId, args.DatasetShuffle);
        _updatesPerEpoch = (_train.StepsPerEpoch + _accumulation - 1) / _accumulation;
        int maxSteps = args.MaxSteps > 0 ? args.MaxSteps : Math.Max(1, (int)Math.Ceiling(args.NumTrainEpochs * _updatesPerEpoch));
        _schedule = new LearningRateSchedule(args.LrSchedulerType, args.EffectiveLearningRate,
            LearningRateSchedule.WarmupFrom(args.WarmupSteps, args.WarmupRatio, maxSteps), maxSteps);

        bool fullFromCheckpoint = resume != null && args.TunerType == TunerType.Full;
        _model = TransformerModel.Load(fullFromCheckpoint ? resume! : _sourceModelDir, backend);
        _grads = new GradientSet(backend);
        if (args.TunerType == TunerType.Full)
        {
            _model.MakeWeightsWritable();
            foreach (var (name, tensor) in ModelWriter.Weights(_model)) _grads.Add(name, tensor);
        }
        else
        {
            _adapter = CreateOrLoadAdapter(resume);
            foreach (var (module, branch) in _adapter.Branches)
            {
                _grads.Add($"base_model.model.{module.Name}.lora_A.weight", branch.A);
                _grads.Add($"base_model.model.{module.Name}.lora_B.weight", branch.B);
                if (branch.Magnitude != null) _grads.Add(LoraAdapter.MagnitudeKey(module.Name), branch.Magnitude);
            }
            if (_adapter.SavedModules != null)
                foreach (var (key, tensor) in _adapter.SavedModules.Parameters) _grads.Add(key, tensor);
        }
        _optimizer = new AdamWOptimizer(backend, _grads, args.AdamBeta1, args.AdamBeta2, args.AdamEpsilon, args.WeightDecay);
        _step = new CausalLmStep(_model, args.GradientCheckpointing, args.KeepAttentionActivations);
        _state = new TrainerState
        {
            MaxSteps = maxSteps, LoggingSteps = args.LoggingSteps, SaveSteps = args.SaveSteps, EvalSteps = args.EvalSteps ?? args.SaveSteps,
        };
        if (resume != null) TrainingCheckpoint.Restore(resume, _state, _optimizer, _backend);

        _runDir = RunDirectory.Create(args.OutputDir, args.AddVersion);
        AtomicFile.WriteAllText(Path.Combine(_runDir, "args.json"), ArgumentParser.ToJson(args));
        if (validationSamples != null) WriteValidationSet(validationSamples);
        _log = new JsonLog(Path.Combine(_runDir, "logging.jsonl"));
        _observer.Message($"run folder: {_runDir}");
        _observer.Message($"train rows: {trainRows.Count}, validation rows: {validationRows.Count}, trainable parameters: {_grads.ParameterCount:N0}, " +
                          $"steps: {maxSteps} ({_updatesPerEpoch} per epoch, batch {args.PerDeviceTrainBatchSize} x accumulation {_accumulation})");
    }

    public string RunDirectoryPath => _runDir;
    public TransformerModel Model => _model;

    public SftResult Train(CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var window = new LossStats();
        double windowNorm = 0;
        int windowSteps = 0;
        bool interrupted = false;
        while (_state.GlobalStep < _state.MaxSteps)
        {
            if (cancel.IsCancellationRequested)
            {
                interrupted = true;
                _observer.Message($"interrupted: saving checkpoint-{_state.GlobalStep}");
                break;
            }
            int step = _state.GlobalStep;
            var micro = MicroBatches(step);
            int labelTokens = micro.Sum(b => b.Batch.LabelCount);
            _grads.Zero();
            var stats = new LossStats();
            foreach (var (batch, index) in micro)
                stats += _step.ForwardBackward(batch, 1f / Math.Max(1, labelTokens), _grads, CounterRandom.Hash((ulong)_args.Seed, (ulong)index));
            double norm = _grads.Norm();
            if (_args.MaxGradNorm > 0 && norm > _args.MaxGradNorm) _grads.Scale((float)(_args.MaxGradNorm / (norm + 1e-6)));
            double lr = _schedule.At(step);
            _optimizer.Update(lr);
            _state.GlobalStep = step + 1;
            _state.Epoch = (double)_state.GlobalStep / _updatesPerEpoch;
            window += stats;
            windowNorm += norm;
            windowSteps++;

            JsonObject? log = null;
            bool last = _state.GlobalStep == _state.MaxSteps;
            if (_state.GlobalStep % _args.LoggingSteps == 0 || last || _state.GlobalStep == 1)
            {
                log = new JsonObject
                {
                    ["loss"] = Round(window.MeanLoss),
                    ["token_acc"] = Round(window.Accuracy),
                    ["grad_norm"] = Round(windowNorm / windowSteps),
                    ["learning_rate"] = lr,
                    ["epoch"] = Math.Round(_state.Epoch, 4),
                };
                WriteLog(log, clock.Elapsed.TotalSeconds);
                window = new LossStats();
                windowNorm = 0;
                windowSteps = 0;
            }
            _observer.Step(_state.GlobalStep, _state.MaxSteps, clock.Elapsed.TotalSeconds, log);
            bool newBest = _validation.Count > 0 && (_state.GlobalStep % _state.EvalSteps == 0 || last) && Evaluate(clock.Elapsed.TotalSeconds);
            // A new best is always saved, so best_model_checkpoint names a folder that exists.
            if (_state.GlobalStep % _args.SaveSteps == 0 || last || newBest) SaveCheckpoint();
        }
        if (interrupted) SaveCheckpoint();
        var final = new JsonObject
        {
            ["last_model_checkpoint"] = _checkpoints.LastOrDefault(),
            ["best_model_checkpoint"] = _state.BestModelCheckpoint,
            ["best_metric"] = _state.BestMetric,
            ["global_step"] = _state.GlobalStep,
            ["train_runtime"] = Math.Round(clock.Elapsed.TotalSeconds, 3),
            ["memory(GiB)"] = MemoryGiB(),
        };
        _log.Append(final);
        TrainingPlots.Write(_runDir, _state.LogHistory);
        return new SftResult(_runDir, _checkpoints.LastOrDefault(), _state.BestModelCheckpoint, _state, interrupted);
    }

    /// <summary>The micro-batches of optimizer step <paramref name="step"/>, with their global index (the dropout stream).</summary>
    List<(TrainingBatch Batch, long Index)> MicroBatches(int step)
    {
        int epoch = step / _updatesPerEpoch;
        int group = step % _updatesPerEpoch;
        int first = group * _accumulation;
        int count = Math.Min(_accumulation, _train.StepsPerEpoch - first);
        var result = new List<(TrainingBatch, long)>(count);
        int i = 0;
        foreach (var b in _train.Epoch(epoch, first).Take(count))
            result.Add((TrainingBatch.FromRows(b.InputIds, b.Labels, b.PositionIds), (long)epoch * _train.StepsPerEpoch + first + i++));
        return result;
    }

    /// <summary>Evaluates on the validation rows; true when the loss is the best so far.</summary>
    bool Evaluate(double elapsed)
    {
        var stats = new LossStats();
        int batch = Math.Max(1, _args.PerDeviceEvalBatchSize);
        for (int i = 0; i < _validation.Count; i += batch)
        {
            var rows = _validation.Skip(i).Take(batch).ToList();
            stats += _step.Evaluate(TrainingBatch.FromRows(rows.Select(r => r.InputIds).ToList(), rows.Select(r => r.Labels).ToList(),
                                                           rows.Select(r => r.PositionIds).ToList()));
        }
        var log = new JsonObject { ["eval_loss"] = Round(stats.MeanLoss), ["eval_token_acc"] = Round(stats.Accuracy), ["epoch"] = Math.Round(_state.Epoch, 4) };
        WriteLog(log, elapsed);
        var checkpointName = Path.Combine(_runDir, $"checkpoint-{_state.GlobalStep}");
        _observer.Message($"eval_loss {stats.MeanLoss:F4}, eval_token_acc {stats.Accuracy:F4}");
        if (_state.BestMetric != null && stats.MeanLoss >= _state.BestMetric) return false;
        _state.BestMetric = stats.MeanLoss;
        _state.BestModelCheckpoint = checkpointName;
        return true;
    }

    void WriteLog(JsonObject log, double elapsed)
    {
        int step = _state.GlobalStep;
        double perStep = elapsed / Math.Max(1, step);
        log["global_step/max_steps"] = $"{step}/{_state.MaxSteps}";
        log["percentage"] = $"{100.0 * step / _state.MaxSteps:F2}%";
        log["elapsed_time"] = FormatDuration(elapsed);
        log["remaining_time"] = FormatDuration(perStep * (_state.MaxSteps - step));
        log["memory(GiB)"] = MemoryGiB();
        log["train_speed(s/it)"] = Math.Round(perStep, 6);
        _log.Append(log);
        var history = (JsonObject)log.DeepClone();
        history["step"] = step;
        _state.LogHistory.Add(history);
    }

    void SaveCheckpoint()
    {
        var dir = Path.Combine(_runDir, $"checkpoint-{_state.GlobalStep}");
        TrainingCheckpoint.Save(dir, _args, _state, _adapter, _model, _sourceModelDir, _args.SaveOnlyModel ? null : _optimizer, _backend);
        if (!_checkpoints.Contains(dir)) _checkpoints.Add(dir);
        _observer.Message($"saved {dir}");
        if (_args.SaveTotalLimit is int limit)
        {
            // Prune the oldest, never the best nor the newest.
            while (_checkpoints.Count > limit)
            {
                var victim = _checkpoints.FirstOrDefault(c => c != _state.BestModelCheckpoint && c != dir);
                if (victim == null) break;
                Directory.Delete(victim, recursive: true);
                _checkpoints.Remove(victim);
            }
        }
    }

    (IReadOnlyList<SftRow> Train, IReadOnlyList<SftRow> Validation, IReadOnlyList<SftSample>? SplitValidation) LoadData()
    {
        int maxLength = _args.MaxLength ?? ModelConfigMaxLength();
        var encoder = new SftEncoder(_tokenizer, _template, new EncoderOptions
        {
            System = _args.System, LossScale = _args.LossScale, MaxLength = maxLength, TruncationStrategy = _args.TruncationStrategy,
        });
        var data = SftData.Prepare(new DatasetOptions
        {
            Datasets = _args.Dataset,
            ValDatasets = _args.ValDataset,
            SplitDatasetRatio = _args.SplitDatasetRatio,
            Seed = (ulong)_args.Seed,
            Strict = _args.Strict,
            DatasetShuffle = _args.DatasetShuffle,
            ModelName = _args.ModelName,
            ModelAuthor = _args.ModelAuthor,
        }, encoder, _args.Packing);
        if (data.SkippedRows > 0) _observer.Message($"skipped {data.SkippedRows} bad rows (--strict false)");
        foreach (var (what, stats) in new[] { ("train", data.TrainStats), ("validation", data.ValidationStats) })
            if (stats.DroppedTooLong + stats.DroppedNoLabels > 0)
                _observer.Message($"{what}: dropped {stats.DroppedTooLong} rows longer than --max_length {maxLength} and {stats.DroppedNoLabels} without an answer to train on");
        return (data.Train, data.Validation, _args.SplitDatasetRatio > 0 ? data.ValidationSamples : null);
    }

    int ModelConfigMaxLength() => Formats.ModelConfig.Load(_sourceModelDir).MaxPositionEmbeddings;

    void WriteValidationSet(IReadOnlyList<SftSample> samples)
    {
        var lines = samples.Select(s => new JsonObject
        {
            ["messages"] = new JsonArray(s.Messages.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray()),
        }.ToJsonString(JsonText.Compact));
        AtomicFile.WriteAllText(Path.Combine(_runDir, "val_dataset.jsonl"), string.Join("\n", lines) + "\n");
    }

    LoraAdapter CreateOrLoadAdapter(string? resume)
    {
        var source = resume ?? _args.Adapters.FirstOrDefault();
        if (_args.Adapters.Length > 1) throw new SharpTuneException("--adapters: training continues one adapter at a time");
        if (source != null) return LoraAdapter.Load(source, _model, 1f, "default");
        var config = new LoraConfig
        {
            Rank = _args.LoraRank,
            Alpha = _args.LoraAlpha,
            Dropout = _args.LoraDropout,
            UseRslora = _args.UseRslora,
            UseDora = _args.UseDora,
            TargetModules = _args.TargetModules,
            TargetIsRegex = _args.TargetModules.Length == 1 && (_args.TargetModules[0] == "all-linear" || _args.TargetModules[0].IndexOfAny(['*', '(', '|', '\\', '^', '$']) >= 0),
            ModulesToSave = _args.ModulesToSave.Length > 0 ? _args.ModulesToSave : null,
            BaseModelNameOrPath = Path.GetFullPath(_sourceModelDir),
            InitWeights = _args.InitWeights.ToLowerInvariant(),
        };
        return LoraAdapter.Create(_model, config, (ulong)_args.Seed);
    }

    static double Round(double v) => Math.Round(v, 8);
    static double MemoryGiB() => Math.Round(Process.GetCurrentProcess().PeakWorkingSet64 / (double)(1L << 30), 2);

    static string FormatDuration(double seconds)
    {
        var t = TimeSpan.FromSeconds(Math.Max(0, seconds));
        return t.TotalHours >= 1 ? $"{(int)t.TotalHours}h {t.Minutes}m {t.Seconds}s" : t.TotalMinutes >= 1 ? $"{t.Minutes}m {t.Seconds}s" : $"{t.Seconds}s";
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _grads.Dispose();
        _model.Dispose();
    }
}

/// <summary>logging.jsonl: one JSON object a line, appended and flushed as it comes.</summary>
internal sealed class JsonLog(string path)
{
    public void Append(JsonObject line) => File.AppendAllText(path, line.ToJsonString(JsonText.Compact) + "\n");
}
