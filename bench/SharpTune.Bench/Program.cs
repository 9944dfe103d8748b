namespace SharpTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "tokenizer": return TokenizerBench.Run(args[1..]);
            default:
                Console.Error.WriteLine("usage: SharpTune.Bench <benchmark> [options]\nbenchmarks: tokenizer [tokenizer.json]");
                return 1;
        }
    }
}
