using SharpTune.Serving;

namespace SharpTune.Cli;

/// <summary><c>sharptune deploy</c>: starts the OpenAI-compatible server and runs until Ctrl+C.</summary>
internal static class DeployCommand
{
    public static int Run(DeployArguments args, TextWriter output)
    {
        var server = DeployServer.StartAsync(args, SharpTune.Backends.DeviceSelection.Select(args.Device, args.TorchDtype)).GetAwaiter().GetResult();
        try
        {
            var adapters = server.Engine.Adapters.Count == 0 ? "" : $" (adapters: {string.Join(", ", server.Engine.Adapters.Select(a => a.Name))})";
            output.WriteLine($"serving {server.ServedModelName}{adapters} at {server.Address}v1 (Ctrl+C to stop)");
            output.Flush();
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return 0;
    }
}
