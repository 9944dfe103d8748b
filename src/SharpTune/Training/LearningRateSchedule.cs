namespace SharpTune.Training;

public enum SchedulerType { Cosine, Linear, Constant, ConstantWithWarmup }

/// <summary>
/// transformers' get_scheduler lambdas: the multiplier of the base learning rate after <c>step</c> optimizer steps
/// (the first update uses step 0, so with warmup it has learning rate 0, exactly as in transformers).
/// </summary>
public sealed record LearningRateSchedule(SchedulerType Type, double BaseLearningRate, int WarmupSteps, int TotalSteps)
{
    public double At(int step)
    {
        if (Type == SchedulerType.Constant) return BaseLearningRate;
        if (step < WarmupSteps) return BaseLearningRate * step / Math.Max(1, WarmupSteps);
        if (Type == SchedulerType.ConstantWithWarmup) return BaseLearningRate;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Type switch
        {
            SchedulerType.Cosine => BaseLearningRate * Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * progress))),
            SchedulerType.Linear => BaseLearningRate * Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            _ => throw new ArgumentOutOfRangeException(nameof(Type)),
        };
    }

    /// <summary>--warmup_steps wins when positive, else ceil(warmup_ratio · total), as transformers' get_warmup_steps.</summary>
    public static int WarmupFrom(int warmupSteps, double warmupRatio, int totalSteps) =>
        warmupSteps > 0 ? warmupSteps : (int)Math.Ceiling(warmupRatio * totalSteps);
}
