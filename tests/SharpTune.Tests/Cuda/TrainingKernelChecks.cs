using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Cuda;

/// <summary>Elementwise kernels of the training step that the BF16 mode runs 8 elements wide, against the CPU on the same values.</summary>
public static class TrainingKernelChecks
{
    /// <summary>
    /// SwiGLU and its backward against the CPU on the same values: activation-precision tensors of a whole number of 16-byte
    /// words (the BF16 mode's 8-wide kernels) and of a count that is not (the scalar kernels).
    /// </summary>
    public static CudaCheckResult SwiGlu(IBackend gpu, double limit)
    {
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(23);
        var act = gpu.ActivationType;
        var worst = new WorstError();
        foreach (int count in new[] { 8 * 4099, 8 * 4099 + 3 })
        {
            var (gate, gateC) = Pair(gpu, cpu, random, act, count);
            var (up, upC) = Pair(gpu, cpu, random, act, count);
            var (dh, dhC) = Pair(gpu, cpu, random, act, count);
            Tensor h = gpu.Allocate(act, count), dGate = gpu.Allocate(act, count), dUp = gpu.Allocate(act, count);
            Tensor hC = cpu.Allocate(DType.F32, count), dGateC = cpu.Allocate(DType.F32, count), dUpC = cpu.Allocate(DType.F32, count);
            gpu.SwiGlu(gate, up, h);
            cpu.SwiGlu(gateC, upC, hC);
            gpu.SwiGluBackward(dh, gate, up, dGate, dUp);
            cpu.SwiGluBackward(dhC, gateC, upC, dGateC, dUpC);
            foreach (var (name, g, c) in new[] { ("h", h, hC), ("dGate", dGate, dGateC), ("dUp", dUp, dUpC) })
                worst.Add($"{name} of {count}", Host(gpu, g), Host(cpu, c));
            foreach (var t in new[] { gate, gateC, up, upC, dh, dhC, h, dGate, dUp, hC, dGateC, dUpC }) t.Dispose();
        }
        return new($"SwiGLU forward and backward {gpu.ActivationType} vs CPU", worst.Value, limit, $"worst: {worst.Case}");
    }

    /// <summary>
    /// lora.cu's fused down projections and their backward (masks regenerated, never written) against the CPU's composition
    /// of dropout and products (<see cref="LoraReference"/>) on the same values: groups of branches of ranks 8, 16 and 32,
    /// row counts that are not multiples of a block's rows, five branches (two launches), dropout 0 and not, dx written and
    /// accumulated. Fails when the CUDA backend would not take the operands to its fused kernels.
    /// </summary>
    public static CudaCheckResult LoraDown(IBackend gpu, double limit)
    {
        if (gpu is not SharpTune.Backends.Cuda.CudaBackend cuda || gpu.ActivationType != DType.BF16) throw new ArgumentException("needs the CUDA backend in BF16 mode");
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(29);
        var worst = new WorstError();
        foreach (var (rows, k, branches, rank, p, accumulate) in new[]
                 { (100, 256, 3, 8, 0.05f, true), (37, 96, 2, 16, 0.3f, false), (64, 512, 1, 32, 0f, true), (33, 3584, 5, 8, 0.1f, true) })
        {
            var owned = new List<Tensor>();
            (Tensor, Tensor) Make(params int[] shape) => OwnedPair(owned, gpu, cpu, random, shape);
            var (x, xC) = Make(rows, k);
            var (dx, dxC) = Make(rows, k);
            var downs = new LoraDownBranch[branches];
            var downsC = new LoraDownBranch[branches];
            var grads = new LoraDownGradient[branches];
            var gradsC = new LoraDownGradient[branches];
            for (int b = 0; b < branches; b++)
            {
                var (a, aC) = Make(rank, k);
                var (dt, dtC) = Make(rows, rank);
                var (dA, dAC) = (gpu.Zeros(DType.F32, rank, k), cpu.Zeros(DType.F32, rank, k));
                var (t, tC) = (gpu.Allocate(DType.BF16, rows, rank), cpu.Allocate(DType.F32, rows, rank));
                owned.AddRange([dA, dAC, t, tC]);
                ulong seed = 1000 + (ulong)b;
                downs[b] = new(a, p, seed, t);
                downsC[b] = new(aC, p, seed, tC);
                grads[b] = new(a, p, seed, dt, dA);
                gradsC[b] = new(aC, p, seed, dtC, dAC);
            }
            string name = $"{branches} x rank {rank}, {rows} x {k}, p {p}{(accumulate ? ", dx accumulated" : "")}";
            if (!cuda.FusedLoraOperands(x, downs.Select(d => (d.A, d.Dropout, d.Hidden)).ToArray(), out _, out _))
                return new($"fused LoRA down projections vs CPU", double.PositiveInfinity, limit, $"the fused kernels do not take {name}");
            gpu.LoraDownProject(x, downs);
            LoraReference.DownProject(cpu, xC, downsC);
            gpu.LoraDownBackward(x, grads, dx, accumulate);
            LoraReference.DownBackward(cpu, xC, gradsC, dxC, accumulate);
            var compared = new List<(string, Tensor, Tensor)> { ("dx", dx, dxC) };
            for (int b = 0; b < branches; b++)
            {
                compared.Add(($"t{b}", downs[b].Hidden, downsC[b].Hidden));
                compared.Add(($"dA{b}", grads[b].GradA!, gradsC[b].GradA!));
            }
            foreach (var (what, g, c) in compared) worst.Add($"{what} of {name}", Host(gpu, g), Host(cpu, c));
            foreach (var t in owned) t.Dispose();
        }
        return new("fused LoRA down projections and backward vs CPU", worst.Value, limit, $"worst: {worst.Case}");
    }

    /// <summary>
    /// lora.cu's up projection y = s·t·Bᵀ (written and added to y) and its backward (dt and dB from one read of dy) against
    /// the CPU's matrix products on the same values: ranks 8, 16 and 32, row counts that are not multiples of a tile's 16 or
    /// a block's 64, widths that are not multiples of a block's 128 columns, B trainable and frozen. Fails when the CUDA
    /// backend would not take the operands to its kernels.
    /// </summary>
    public static CudaCheckResult LoraUp(IBackend gpu, double limit)
    {
        if (gpu is not SharpTune.Backends.Cuda.CudaBackend cuda || gpu.ActivationType != DType.BF16) throw new ArgumentException("needs the CUDA backend in BF16 mode");
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(31);
        var worst = new WorstError();
        foreach (var (rows, width, rank, beta, trainable) in new[]
                 { (100, 224, 8, 1f, true), (37, 96, 16, 0f, true), (64, 512, 32, 1f, false), (2048, 3584, 8, 0f, true), (33, 18944, 8, 1f, true) })
        {
            var owned = new List<Tensor>();
            (Tensor, Tensor) Make(params int[] shape) => OwnedPair(owned, gpu, cpu, random, shape);
            var (t, tC) = Make(rows, rank);
            var (b, bC) = Make(width, rank);
            var (y, yC) = Make(rows, width);
            var (dy, dyC) = Make(rows, width);
            var (dB, dBC) = Make(width, rank);
            var (dBGpu, dBCpu) = (gpu.Allocate(DType.F32, width, rank), cpu.Allocate(DType.F32, width, rank));
            gpu.Copy(dB, dBGpu);
            cpu.Copy(dBC, dBCpu);
            var (dt, dtC) = (gpu.Allocate(DType.BF16, rows, rank), cpu.Allocate(DType.F32, rows, rank));
            owned.AddRange([dBGpu, dBCpu, dt, dtC]);
            string name = $"rank {rank}, {rows} x {width}, beta {beta}{(trainable ? "" : ", B frozen")}";
            if (!cuda.FusedUpOperands(t, b, y))
                return new("LoRA up projection and backward vs CPU", double.PositiveInfinity, limit, $"the kernels do not take {name}");
            const float scale = 4f;
            gpu.LoraUpProject(t, b, scale, y, beta);
            cpu.LoraUpProject(tC, bC, scale, yC, beta);
            gpu.LoraUpBackward(dy, t, b, scale, dt, trainable ? dBGpu : null);
            cpu.LoraUpBackward(dyC, tC, bC, scale, dtC, trainable ? dBCpu : null);
            foreach (var (what, g, c) in new[] { ("y", y, yC), ("dt", dt, dtC), ("dB", dBGpu, dBCpu) })
                worst.Add($"{what} of {name}", Host(gpu, g), Host(cpu, c));
            foreach (var tensor in owned) tensor.Dispose();
        }
        return new("LoRA up projection and backward vs CPU", worst.Value, limit, $"worst: {worst.Case}");
    }

    /// <summary>
    /// RMSNorm forward and backward, and training's rope of queries and keys, against the CPU on the same values at the
    /// model's sizes: rows of 3584 and 8192 values (norm.cu's 16-byte path, several chunks a thread) and of 8200 and 36 (the
    /// plain loops), dx written and accumulated with the weight's gradient; rope at head dims 128 and 64 (16-byte runs,
    /// the last group of heads partial) and 8 (one pair a thread), forward and inverse, at positions up to 4095.
    /// </summary>
    public static CudaCheckResult NormsAndRope(IBackend gpu, double limit)
    {
        IBackend cpu = CpuBackend.Instance;
        var random = new Xoshiro256(37);
        var act = gpu.ActivationType;
        var worst = new WorstError();
        foreach (var (dim, accumulate) in new[] { (3584, true), (8192, false), (8200, true), (36, false) })
        {
            const int rows = 5;
            var owned = new List<Tensor>();
            (Tensor, Tensor) Make(DType dtype, params int[] shape)
            {
                var pair = Pair(gpu, cpu, random, dtype, shape);
                owned.AddRange([pair.Gpu, pair.Cpu]);
                return pair;
            }
            var (x, xC) = Make(act, rows, dim);
            var (w, wC) = Make(DType.F32, dim);
            var (dy, dyC) = Make(act, rows, dim);
            var (dx, dxC) = Make(act, rows, dim);
            var (y, yC) = (gpu.Allocate(act, rows, dim), cpu.Allocate(DType.F32, rows, dim));
            var (rstd, rstdC) = (gpu.Allocate(DType.F32, rows), cpu.Allocate(DType.F32, rows));
            var (dW, dWC) = (gpu.Zeros(DType.F32, dim), cpu.Zeros(DType.F32, dim));
            owned.AddRange([y, yC, rstd, rstdC, dW, dWC]);
            gpu.RmsNorm(x, w, 1e-6f, y, rstd);
            cpu.RmsNorm(xC, wC, 1e-6f, yC, rstdC);
            gpu.RmsNormBackward(dy, x, w, rstd, dx, dW, accumulate);
            cpu.RmsNormBackward(dyC, xC, wC, rstdC, dxC, dWC, accumulate);
            string name = $"rows of {dim}{(accumulate ? ", dx accumulated" : "")}";
            foreach (var (what, g, c) in new[] { ("y", y, yC), ("rstd", rstd, rstdC), ("dx", dx, dxC), ("dWeight", dW, dWC) })
                worst.Add($"norm {what} of {name}", Host(gpu, g), Host(cpu, c));
            foreach (var t in owned) t.Dispose();
        }
        foreach (var (headDim, qHeads, kHeads) in new[] { (128, 28, 4), (64, 14, 2), (8, 6, 2) })
        foreach (bool inverse in new[] { false, true })
        {
            const int rows = 9;
            var (q, qC) = Pair(gpu, cpu, random, act, rows, qHeads * headDim);
            var (k, kC) = Pair(gpu, cpu, random, act, rows, kHeads * headDim);
            var positionValues = Enumerable.Range(0, rows).Select(r => r == 0 ? 4095 : (int)(random.NextDouble() * 4096)).ToArray();
            var frequencies = Enumerable.Range(0, headDim / 2).Select(j => (float)Math.Pow(10000, -2.0 * j / headDim)).ToArray();
            using var positions = gpu.FromHost(positionValues, rows);
            using var positionsC = cpu.FromHost(positionValues, rows);
            using var invFreq = gpu.FromHost(frequencies, DType.F32, headDim / 2);
            using var invFreqC = cpu.FromHost(frequencies, DType.F32, headDim / 2);
            gpu.RopeQueryKey(q, k, positions, invFreq, headDim, 1f, inverse);
            cpu.RopeQueryKey(qC, kC, positionsC, invFreqC, headDim, 1f, inverse);
            string name = $"head dim {headDim}, {qHeads}/{kHeads} heads{(inverse ? ", inverse" : "")}";
            foreach (var (what, g, c) in new[] { ("q", q, qC), ("k", k, kC) }) worst.Add($"rope {what} of {name}", Host(gpu, g), Host(cpu, c));
            foreach (var t in new[] { q, qC, k, kC }) t.Dispose();
        }
        return new($"RMSNorm and rope {act} vs CPU", worst.Value, limit, $"worst: {worst.Case}");
    }

    /// <summary>The worst relative error of several GPU-vs-CPU comparisons and which one it was; NaN counts as infinitely wrong.</summary>
    internal sealed class WorstError
    {
        public double Value { get; private set; }
        public string Case { get; private set; } = "";

        /// <summary>Compares one pair and returns its relative error.</summary>
        public double Add(string what, ReadOnlySpan<float> gpu, ReadOnlySpan<float> cpu)
        {
            double e = CudaChecks.RelativeError(gpu, cpu);
            Record(what, e);
            return e;
        }

        public void Record(string what, double error)
        {
            if (error > Value || double.IsNaN(error)) (Value, Case) = (double.IsNaN(error) ? double.PositiveInfinity : error, what);
        }
    }

    /// <summary>A bfloat16 <see cref="Pair"/> whose two tensors go to <paramref name="owned"/> for disposal.</summary>
    static (Tensor Gpu, Tensor Cpu) OwnedPair(List<Tensor> owned, IBackend gpu, IBackend cpu, Xoshiro256 random, int[] shape)
    {
        var pair = Pair(gpu, cpu, random, DType.BF16, shape);
        owned.Add(pair.Gpu);
        owned.Add(pair.Cpu);
        return pair;
    }

    /// <summary>A tensor on each backend holding the same values as the GPU stores them (the CPU's in float32).</summary>
    static (Tensor Gpu, Tensor Cpu) Pair(IBackend gpu, IBackend cpu, Xoshiro256 random, DType dtype, params int[] shape)
    {
        var values = new float[shape.Aggregate(1, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        var g = gpu.FromHost(values, dtype, shape);
        return (g, cpu.FromHost(Host(gpu, g), DType.F32, shape));
    }

    static float[] Host(IBackend be, Tensor t)
    {
        var values = new float[t.Count];
        be.ToHost(t, values);
        return values;
    }
}
