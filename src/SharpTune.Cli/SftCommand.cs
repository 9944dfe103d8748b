using SharpTune.Backends;
using SharpTune.Training;

namespace SharpTune.Cli;

/// <summary><c>sharptune sft</c>: trains, printing progress; Ctrl-C saves a checkpoint and exits.</summary>
internal static class SftCommand
{
    public static int Run(SftArguments args, TextWriter output)
    {
        var console = new TrainingConsole(output, TrainingConsole.IsTerminal(output));
        using var trainer = new SftTrainer(args, DeviceSelection.Select(args.Device, args.TorchDtype), console);
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl-C asks for a checkpoint at the end of the current step; a second one kills the process.
            if (cancel.IsCancellationRequested) return;
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var result = console.Run(() => trainer.Train(cancel.Token));
            output.WriteLine($"last_model_checkpoint: {result.LastCheckpoint}");
            if (result.BestCheckpoint != null) output.WriteLine($"best_model_checkpoint: {result.BestCheckpoint}");
            return result.Interrupted ? 130 : 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }
}
