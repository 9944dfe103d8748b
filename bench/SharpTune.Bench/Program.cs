namespace SharpTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("usage: SharpTune.Bench <benchmark> [options]");
        return 1;
    }
}
