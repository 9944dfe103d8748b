namespace SharpTune.Tests;

/// <summary>Runs the sharptune command line in-process with captured input and output.</summary>
public static class CliRunner
{
    public static (int ExitCode, string Output, string Error) RunWithInput(string input, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = SharpTune.Cli.Program.Run(args, new StringReader(input), output, error);
        return (code, output.ToString(), error.ToString());
    }

    public static (int ExitCode, string Output, string Error) Run(params string[] args) => RunWithInput("", args);
}
