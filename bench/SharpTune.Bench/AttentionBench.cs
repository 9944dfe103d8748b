using System.Diagnostics;
using SharpTune.Backends.Cuda;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// `cuda-attention [seq]`: one causal sequence (default 2048) through attention forward and forward + backward at the
/// Qwen2.5 0.5B and 7B head layouts, tensor-core kernels (flash.cu) against the CUDA-core ones (attention.cu), in
/// TFLOP/s of the causal products (forward 2 products × 2·T²/2·hd·heads; backward 2.5× that) against the bf16 matrix rate
/// measured in the same run.
/// </summary>
public static class AttentionBench
{
    public static int Run(string[] args)
    {
        int sequence = int.Parse(args.ElementAtOrDefault(0) ?? "2048");
        using var be = CudaBackend.Create();
        double peak = CudaBench.MatrixRate(be);
        Console.WriteLine($"cuda-attention on {be.DeviceName}: causal seq {sequence}, bf16, bf16 matrix rate {peak / 1e12:F0} TFLOP/s");
        foreach (var (name, heads, kvHeads, headDim) in new[] { ("0.5b", 14, 2, 64), ("7b", 28, 4, 128) })
        {
            double forwardFlops = 2.0 * 2 * sequence * (double)sequence / 2 * headDim * heads;
            foreach (bool tensorCores in new[] { false, true })
            {
                be.TensorCoreAttention = tensorCores;
                var (forward, both) = Time(be, sequence, heads, kvHeads, headDim);
                Console.WriteLine($"  {name} ({heads}/{kvHeads} heads of {headDim}) {(tensorCores ? "tensor cores" : "CUDA cores  ")}: " +
                                  $"forward {forward * 1e3:F2} ms {forwardFlops / forward / 1e12:F1} TFLOP/s ({forwardFlops / forward / peak:P1}), " +
                                  $"forward+backward {both * 1e3:F2} ms {3.5 * forwardFlops / both / 1e12:F1} TFLOP/s ({3.5 * forwardFlops / both / peak:P1})");
            }
            Console.WriteLine("    flash.cu kernels, registers / spilled bytes per thread: " + string.Join(", ",
                new[] { "flashForward", "flashBackwardQuery", "flashBackwardKey" }.Select(k =>
                {
                    var (registers, local) = be.KernelResources("flash", $"{k}{headDim}");
                    return $"{k}{headDim} {registers} / {local}";
                })));
        }
        be.TensorCoreAttention = true;
        return 0;
    }

    /// <summary>Best-of-5 seconds of one forward (with log-sum-exp) and of one forward + backward.</summary>
    static (double Forward, double Both) Time(CudaBackend be, int sequence, int heads, int kvHeads, int headDim)
    {
        int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
        var spans = AttentionSpans.CausalFromPositions([.. Enumerable.Range(0, sequence)]);
        using Tensor q = be.Allocate(DType.BF16, sequence, qWidth), k = be.Allocate(DType.BF16, sequence, kvWidth), v = be.Allocate(DType.BF16, sequence, kvWidth);
        using Tensor dOut = be.Allocate(DType.BF16, sequence, qWidth), output = be.Allocate(DType.BF16, sequence, qWidth), dq = be.Allocate(DType.BF16, sequence, qWidth);
        using Tensor dk = be.Zeros(DType.BF16, sequence, kvWidth), dv = be.Zeros(DType.BF16, sequence, kvWidth), lse = be.Allocate(DType.F32, sequence, heads);
        be.FillNormal(q, 1f, 1);
        be.FillNormal(k, 1f, 2);
        be.FillNormal(v, 1f, 3);
        be.FillNormal(dOut, 1f, 4);
        float scale = 1f / MathF.Sqrt(headDim);
        void Forward() => be.Attention(q, k, v, spans, headDim, scale, output, lse);
        void Both()
        {
            Forward();
            be.AttentionBackward(dOut, q, k, v, output, lse, spans, headDim, scale, dq, dk, dv);
        }
        return (Best(be, Forward), Best(be, Both));
    }

    static double Best(CudaBackend be, Action work)
    {
        work();
        double best = double.MaxValue;
        for (int r = 0; r < 5; r++)
        {
            be.Synchronize();
            var watch = Stopwatch.StartNew();
            work();
            be.Synchronize();
            best = Math.Min(best, watch.Elapsed.TotalSeconds);
        }
        return best;
    }
}
