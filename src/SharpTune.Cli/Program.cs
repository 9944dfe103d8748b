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
                "deploy" => DeployCommand.Run(ArgumentParser.Parse<Serving.DeployArguments>(rest), output),
                "sft" => SftCommand.Run(ArgumentParser.Parse<Training.SftArguments>(rest), output),
                "export" or "merge-lora" => Export(ArgumentParser.Parse<Export.ExportArguments>(verb == "merge-lora" ? [.. rest, "--merge_lora", "true"] : rest), output),
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

    static readonly string[] Verbs = ["infer", "deploy", "sft", "export", "merge-lora"];

    static int Export(Export.ExportArguments args, TextWriter output)
    {
        var dir = SharpTune.Export.ModelExport.MergeLora(args, SharpTune.Backends.DeviceSelection.Select(args.Device));
        output.WriteLine($"merged checkpoint written to {dir}");
        return 0;
    }

    static string HelpFor(string verb) => verb switch
    {
        "infer" => ArgumentParser.Help<Inference.InferArguments>("infer"),
        "deploy" => ArgumentParser.Help<Serving.DeployArguments>("deploy"),
        "sft" => ArgumentParser.Help<Training.SftArguments>("sft"),
        "export" or "merge-lora" => ArgumentParser.Help<Export.ExportArguments>(verb),
        _ => throw new SharpTuneException($"unknown command '{verb}'"),
    };

    const string Usage = """
        usage: sharptune <command> [--flag value ...]

        commands:
          sft       fine-tune with LoRA or all parameters (ms-swift's arguments)
          infer     chat with a model, answer one --query, or a --val_dataset in batch
          deploy    serve the model and its LoRA adapters behind an OpenAI-compatible API
          export    --merge_lora true: bake adapters into a standalone checkpoint (merge-lora is the same)
        
        sharptune <command> --help lists the flags of a command.
        """;
}
