using System.Text.Json.Nodes;
using Spectre.Console;
using SharpTune.Training;

namespace SharpTune.Cli;

/// <summary>
/// Shows training progress: a live bar with loss, speed and ETA on a terminal; one plain line per log when output is piped.
/// </summary>
internal sealed class TrainingConsole(TextWriter output, bool interactive) : ITrainingObserver
{
    ProgressTask? _task;
    string _last = "";

    public static bool IsTerminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="train"/> inside a live progress display when interactive.</summary>
    public T Run<T>(Func<T> train)
    {
        if (!interactive) return train();
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                _task = ctx.AddTask("training", maxValue: 1);
                result = train();
            });
        return result;
    }

    public void Message(string line)
    {
        if (_task != null) AnsiConsole.MarkupLine(Markup.Escape(line));
        else output.WriteLine(line);
    }

    public void Step(int globalStep, int maxSteps, double elapsedSeconds, JsonObject? log)
    {
        if (log != null) _last = $"loss {log["loss"]}, acc {log["token_acc"]}, lr {log["learning_rate"]:G3}";
        if (_task != null)
        {
            _task.MaxValue = maxSteps;
            _task.Value = globalStep;
            _task.Description = Markup.Escape($"{globalStep}/{maxSteps} {_last} {elapsedSeconds / Math.Max(1, globalStep):F2}s/it");
        }
        else if (log != null) output.WriteLine(log.ToJsonString(JsonText.Compact));
    }
}
