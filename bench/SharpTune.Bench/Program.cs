namespace SharpTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "gemm": GemmBench.Run(); return 0;
            case "matvec": MatVecBench.Run(); return 0;
            case "bandwidth":
                Console.WriteLine($"threads {ParallelRunner.Default.ThreadCount}, streaming read bandwidth {MemoryBandwidth.MeasureReadGBps():F1} GB/s");
                return 0;
            case "tokenizer": return TokenizerBench.Run(args[1..]);
            case "serve": return ServeBench.Run(args[1..]);
            default:
                Console.Error.WriteLine("usage: SharpTune.Bench <gemm|matvec|bandwidth|tokenizer [tokenizer.json]|serve [--clients 16] [--model DIR]>");
                return 1;
        }
    }
}
