using SharpTune.Arguments;

namespace SharpTune.Cli;

/// <summary>
/// <c>sharptune VERB --flag value ...</c>: parses arguments into the library's option classes and calls it.
/// User errors print one line (no stack trace unless --verbose) and exit 1.
/// </summary>
public static class Program
{
    public static int Main(string[] args) => Run(args, Console.In, Console.Out, Console.Error);

    public static int Run(string[] args, TextReader input, TextWriter output, TextWriter error)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            output.WriteLine(Usage);
            return args.Length == 0 ? 2 : 0;
        }
        string verb = args[0];
        var rest = args[1..];
        bool verbose = rest.Contains("--verbose");
        try
        {
            if (rest.Contains("--help") || rest.Contains("-h"))
            {
                output.WriteLine(HelpFor(verb));
                return 0;
            }
            return verb switch
            {
                "infer" => InferCommand.Run(ArgumentParser.Parse<Inference.InferArguments>(rest), input, output, error),
                _ => throw new SharpTuneException($"unknown command '{verb}' (expected one of: {string.Join(", ", Verbs)})"),
            };
        }
        catch (SharpTuneException e)
        {
            error.WriteLine($"error: {e.Message}");
            if (verbose) error.WriteLine(e);
            return 1;
        }
        catch (Exception e) when (!verbose)
        {
            error.WriteLine($"error: {e.GetType().Name}: {e.Message} (run with --verbose for details)");
            return 1;
        }
    }

    static readonly string[] Verbs = ["infer"];

    static string HelpFor(string verb) => verb switch
    {
        "infer" => ArgumentParser.Help<Inference.InferArguments>("infer"),
        _ => throw new SharpTuneException($"unknown command '{verb}'"),
    };

    const string Usage = """
        usage: sharptune <command> [--flag value ...]

        commands:
          infer     chat with a model, answer one --query, or a --val_dataset in batch
        
        sharptune <command> --help lists the flags of a command.
        """;
}
