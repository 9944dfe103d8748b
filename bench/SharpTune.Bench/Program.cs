namespace SharpTune.Bench;

public static class Program
{
    public static int Main(string[] args)
    {
        switch (args.FirstOrDefault())
        {
            case "gemm": GemmBench.Run(); return 0;
            case "matvec": MatVecBench.Run(); return 0;
            case "batch-step": return BatchStepBench.Run(args[1..]);
            case "bandwidth":
                Console.WriteLine($"threads {ParallelRunner.Default.ThreadCount}, streaming read bandwidth {MemoryBandwidth.MeasureReadGBps():F1} GB/s");
                return 0;
            case "tokenizer": return TokenizerBench.Run(args[1..]);
            case "sample": return SampleBench.Run(args[1..]);
            case "dora": DoraBench.Run(); return 0;
            case "train": return TrainingBench.Run(args[1..]);
            case "infer": return InferenceBench.Run(args[1..]);
            case "serve": return ServeBench.Run(args[1..]);
            case "cuda-check": return CudaCheck.Run(args[1..]);
            case "cuda-train": return CudaBench.Train(args[1..]);
            case "cuda-decode": return CudaBench.Decode(args[1..]);
            case "cuda-decode-kernels": return DecodeKernelBench.Run(args[1..]);
            case "cuda-attention": return AttentionBench.Run(args[1..]);
            case "cuda-transfer": return CudaBench.Transfer(args[1..]);
            default:
                Console.Error.WriteLine("usage: SharpTune.Bench <gemm|matvec|bandwidth|tokenizer [tokenizer.json]|dora|train [--mode lora|full] [--seq 512] [--steps N] [--checkpointing true|false]" +
                                        "|infer [--dtype f32|bf16] [--threads N] [--profile]|serve [--clients 16] [--model DIR]|cuda-check [testdata]|cuda-train [7b|0.5b] [steps] [keep-attention]|cuda-decode [7b|0.5b] [tokens]|cuda-decode-kernels [7b|0.5b]|cuda-attention [seq]|cuda-transfer [MiB]>");
                return 1;
        }
    }
}
