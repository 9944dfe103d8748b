namespace SharpTune.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("sharptune: commands are being built");
        return 1;
    }
}
