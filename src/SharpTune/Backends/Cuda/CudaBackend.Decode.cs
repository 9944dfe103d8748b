using System.Runtime.InteropServices;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

/// <summary>
/// Decoding: products of up to <see cref="SmallBatchRows"/> activation rows with a linear layer's weight run as
/// bandwidth-bound matrix-vector kernels instead of cuBLAS (decode.cu's, and on Hopper gemv.cu's for the large weights,
/// streamed through shared memory by the copy engine, and for small ones whose every block's rows fit in shared memory,
/// copied there whole before the wait on the kernel before), with the RMSNorm before them, the bias, a residual add, the q/k/v
/// grouping or the SwiGLU of the gate and up projections folded in, rope and the KV-cache append folded into the q/k/v
/// product's epilogue, so a decoder layer is five launches (eight with Qwen3's per-head q/k norms), each a programmatic
/// dependent of the one before; and the next token picked on the GPU (greedy, or drawn after temperature, top-k, top-p and
/// min-p), so a step sends back 4 bytes, not the logits.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    const int SmallBatchRows = 8, WarpsPerBlock = 2, DecodeBlocksPerSm = 8;
    /// <summary>sample.cu's SAMPLE_THREADS.</summary>
    const int SampleThreads = 512;
    static readonly string[] LinearBF16 = ["linearBF16x1", "linearBF16x2", "linearBF16x4", "linearBF16x8"];
    static readonly string[] LinearF32 = ["linearF32x1", "linearF32x2", "linearF32x4", "linearF32x8"];
    static readonly string[] SwiGluBF16 = ["swigluLinearBF16x1", "swigluLinearBF16x2", "swigluLinearBF16x4", "swigluLinearBF16x8"];
    static readonly string[] SwiGluF32 = ["swigluLinearF32x1", "swigluLinearF32x2", "swigluLinearF32x4", "swigluLinearF32x8"];
    static readonly string[] QkvRopeBF16 = ["qkvRopeBF16x1", "qkvRopeBF16x2", "qkvRopeBF16x4", "qkvRopeBF16x8"];
    static readonly string[] QkvRopeF32 = ["qkvRopeF32x1", "qkvRopeF32x2", "qkvRopeF32x4", "qkvRopeF32x8"];

    /// <summary>
    /// y = x·Wᵀ + bias + beta·y: a matrix-vector kernel for a few rows; otherwise a product whose cuBLASLt epilogue adds
    /// the bias (<see cref="TryMatMulBias"/>), or, where that declines or SHARPTUNE_CUDA_EPILOGUE=0, the product and then
    /// the bias in a separate kernel.
    /// </summary>
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor y, float beta = 0f)
    {
        if (TryLinearRows(x, [new LinearOutput(weight, bias, y)], 1f, beta, null, 0f)) return;
        if (bias != null && TryMatMulBias(x, weight, bias, y, beta)) return;
        MatMul(x, false, weight, true, y, 1f, beta);
        if (bias != null) AddBias(y, bias);
    }

    public void Linear(Tensor x, ReadOnlySpan<LinearOutput> outputs)
    {
        if (TryLinearRows(x, outputs, 1f, 0f, null, 0f)) return;
        foreach (var o in outputs) Linear(x, o.Weight, o.Bias, o.Output);
    }

    public void NormLinear(Tensor x, Tensor normWeight, float eps, ReadOnlySpan<LinearOutput> outputs)
    {
        if (TryLinearRows(x, outputs, 1f, 0f, normWeight, eps)) return;
        using var normed = Allocate(ActivationType, x.Shape);
        RmsNorm(x, normWeight, eps, normed, null);
        Linear(normed, outputs);
    }

    public void SwiGluLinear(Tensor x, Tensor gateWeight, Tensor upWeight, Tensor h)
    {
        if (TrySwiGluRows(x, gateWeight, upWeight, h, null, 0f)) return;
        using var gate = Allocate(h.DType, h.Shape);
        using var up = Allocate(h.DType, h.Shape);
        MatMul(x, false, gateWeight, true, gate);
        MatMul(x, false, upWeight, true, up);
        SwiGlu(gate, up, h);
    }

    public void NormSwiGluLinear(Tensor x, Tensor normWeight, float eps, Tensor gateWeight, Tensor upWeight, Tensor h)
    {
        if (TrySwiGluRows(x, gateWeight, upWeight, h, normWeight, eps)) return;
        using var normed = Allocate(ActivationType, x.Shape);
        RmsNorm(x, normWeight, eps, normed, null);
        SwiGluLinear(normed, gateWeight, upWeight, h);
    }

    bool TrySwiGluRows(Tensor x, Tensor gateWeight, Tensor upWeight, Tensor h, Tensor? norm, float eps)
    {
        Own(x);
        Own(gateWeight);
        Own(upWeight);
        Own(h);
        if (gateWeight.DType != upWeight.DType || gateWeight.Rows != upWeight.Rows || h.Rows != x.Rows || h.RowLength != gateWeight.Rows
            || upWeight.RowLength != x.RowLength || !SmallBatch(x, gateWeight) || !Aligned(upWeight) || !IsFloat(h) || !NormSuits(norm, x))
            return false;
        int n = gateWeight.Rows;
        if (gateWeight.DType == DType.BF16 && StreamSuits(x, 2 * gateWeight.ByteLength))
        {
            LaunchDependent("gemv", StreamSwiGlu[KernelRows(x.Rows)], StreamBlocks(n), 1, 32 * StreamWarps, StreamShared(x),
                   x.Address, x.Rows, x.RowLength, gateWeight.Address, upWeight.Address, h.Address, Code(h), n, AddressOf(norm), eps);
            return true;
        }
        var names = gateWeight.DType == DType.BF16 ? SwiGluBF16 : SwiGluF32;
        LaunchDependent("decode", names[KernelRows(x.Rows)], (uint)((n + WarpsPerBlock - 1) / WarpsPerBlock), 1, 32 * WarpsPerBlock, 0,
               x.Address, Code(x), x.Rows, x.RowLength, gateWeight.Address, upWeight.Address, h.Address, Code(h), n, AddressOf(norm), eps);
        return true;
    }

    /// <summary>No norm, or a float32 norm weight of x's row length whose loads the kernels can make 16 bytes wide.</summary>
    bool NormSuits(Tensor? norm, Tensor x)
    {
        if (norm == null) return true;
        Own(norm);
        return norm.DType == DType.F32 && norm.Count == x.RowLength && Aligned(norm);
    }

    public void RopeQueryKey(Tensor q, Tensor k, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse = false)
    {
        RequireF32(invFreq);
        Own(q);
        Own(k);
        Own(positions);
        int rows = (int)positions.Count;
        if (q.Rows != rows || k.Rows != rows || q.RowLength % headDim != 0 || k.RowLength % headDim != 0)
            throw new ArgumentException($"rope of {q} and {k} at {rows} positions with head dim {headDim}");
        int qHeads = q.RowLength / headDim, kHeads = k.RowLength / headDim;
        Elementwise("ropeQueryKeyRows", (long)rows * ((qHeads + 3) / 4 + (kHeads + 3) / 4) * (headDim / 2), q.Address, k.Address, SameType(q, k),
                    positions.Address, invFreq.Address, rows, qHeads, kHeads, headDim, attentionScaling, inverse ? 1 : 0);
    }

    public void RopeQueryKeyAppend(Tensor q, Tensor k, Tensor v, Tensor positions, Tensor invFreq, int headDim, float attentionScaling,
                                   Tensor keyCache, Tensor valueCache)
    {
        RequireF32(invFreq);
        int t = SameType(q, k, v, keyCache, valueCache);
        int rows = (int)positions.Count;
        if (k.RowLength != v.RowLength || keyCache.RowLength != k.RowLength || valueCache.RowLength != v.RowLength || k.Rows != rows || v.Rows != rows)
            throw new ArgumentException($"rope append of {k} and {v} into {keyCache} / {valueCache} at {rows} positions");
        // decode.cu's ropeQueryKeyAppend: one item per pair of q and of k, then one per element of v.
        long work = (long)rows * (q.RowLength / 2 + k.RowLength / 2 + v.RowLength);
        if (work == 0) return;
        const int block = 256;
        long blocks = Math.Min((work + block - 1) / block, (long)_multiprocessors * 32);
        LaunchDependent("decode", "ropeQueryKeyAppend", (uint)blocks, 1, block, 0, q.Address, k.Address, v.Address, t, positions.Address,
                        invFreq.Address, rows, q.RowLength, k.RowLength, headDim, attentionScaling, keyCache.Address, valueCache.Address);
    }

    public void NormLinearRopeAppend(Tensor x, Tensor normWeight, float eps, LinearOutput q, LinearOutput k, LinearOutput v, Tensor positions,
                                     Tensor invFreq, int headDim, float attentionScaling, Tensor keyCache, Tensor valueCache)
    {
        if (TryQkvRopeRows(x, normWeight, eps, q, k, v, positions, invFreq, headDim, attentionScaling, keyCache, valueCache)) return;
        NormLinear(x, normWeight, eps, [q, k, v]);
        RopeQueryKeyAppend(q.Output, k.Output, v.Output, positions, invFreq, headDim, attentionScaling, keyCache, valueCache);
    }

    /// <summary>
    /// decode.cu's qkvRope: the q/k/v products with rope and the cache append in their epilogue, one launch instead of two,
    /// where the products would run on decode.cu's kernel anyway (two features a warp, so as many warps as its pairs form);
    /// false (nothing done) where an operand does not suit it.
    /// </summary>
    bool TryQkvRopeRows(Tensor x, Tensor norm, float eps, LinearOutput q, LinearOutput k, LinearOutput v, Tensor positions,
                        Tensor invFreq, int headDim, float scaling, Tensor keyCache, Tensor valueCache)
    {
        Own(positions);
        Own(invFreq);
        Own(keyCache);
        Own(valueCache);
        if (!NormSuits(norm, x) || positions.DType != DType.I32 || positions.Count != x.Rows || invFreq.DType != DType.F32
            || headDim % 2 != 0 || invFreq.Count < headDim / 2)
            return false;
        var weightType = q.Weight.DType;
        foreach (var (weight, bias, _) in (ReadOnlySpan<LinearOutput>)[q, k, v])
            if (!RowsWeightSuits(x, weight, bias, weightType)) return false;
        Own(q.Output);
        int nq = q.Weight.Rows, nkv = k.Weight.Rows;
        var output = q.Output;
        if (v.Weight.Rows != nkv || nq % headDim != 0 || nkv % headDim != 0 || output.Rows != x.Rows || output.RowLength != nq
            || keyCache.RowLength != nkv || valueCache.RowLength != nkv || !IsFloat(output)
            || output.DType != keyCache.DType || output.DType != valueCache.DType)
            return false;
        long warps = (nq + 2L * nkv) / 2;
        if (weightType == DType.BF16 && StreamSuits(x, 2 * warps * 2 * x.RowLength)) return false;
        var names = weightType == DType.BF16 ? QkvRopeBF16 : QkvRopeF32;
        LaunchDependent("decode", names[KernelRows(x.Rows)], (uint)((warps + WarpsPerBlock - 1) / WarpsPerBlock), 1, 32 * WarpsPerBlock, 0,
               x.Address, Code(x), x.Rows, x.RowLength, norm.Address, eps,
               q.Weight.Address, AddressOf(q.Bias), output.Address, nq,
               k.Weight.Address, AddressOf(k.Bias), v.Weight.Address, AddressOf(v.Bias), nkv,
               Code(output), positions.Address, invFreq.Address, headDim, scaling, keyCache.Address, valueCache.Address);
        return true;
    }

    public void AttentionDecode(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output)
    {
        int t = SameType(q, k, v, output);
        int heads = q.RowLength / headDim, kvHeads = k.RowLength / headDim;
        // The kernel's limits: 16-byte key loads, one shared row of q (≤ 128 dims), 1024 threads of ≥ 8 dimension groups.
        if (spans.Count is 0 or > SmallBatchRows || headDim % 8 != 0 || headDim > 128 || !Aligned(k) || kvHeads == 0 || heads % kvHeads != 0)
        {
            Attention(q, k, v, spans, headDim, scale, output, null);
            return;
        }
        var (start, end) = Spans(spans);
        LaunchDependent("decode", "attentionDecode", (uint)spans.Count, (uint)heads, 1024, 0, q.Address, k.Address, v.Address, t,
               start.Address, end.Address, heads, kvHeads, headDim, scale, output.Address);
    }

    public void ArgMax(Tensor x, Span<int> indices)
    {
        if (indices.Length != x.Rows) throw new ArgumentException($"argmax of {x.Rows} rows into {indices.Length} indices");
        if (x.Rows == 0) return;
        using var result = Allocate(DType.I32, x.Rows);
        ArgMax(x, result);
        Download(result, MemoryMarshal.AsBytes(indices));
    }

    public void ArgMax(Tensor x, Tensor indices)
    {
        Own(x);
        Own(indices);
        if (indices.DType != DType.I32 || indices.Count != x.Rows) throw new ArgumentException($"argmax of {x.Rows} rows into {indices}");
        LaunchDependent("decode", "argmaxRows", (uint)x.Rows, 1, 1024, 0, x.Address, Code(x), x.RowLength, indices.Address);
    }

    public void Sample(Tensor logits, TokenFilter filter, Tensor uniformBits, Tensor picked)
    {
        Own(logits);
        Own(uniformBits);
        Own(picked);
        if (logits.Rows != 1 || logits.DType != DType.F32) throw new ArgumentException($"sampling draws from one float32 row, not {logits}");
        if (uniformBits.DType != DType.I32 || uniformBits.Count != 2 || picked.DType != DType.I32 || picked.Count != 1)
            throw new ArgumentException($"sampling takes int32 [2] random bits and an int32 [1] result, not {uniformBits} and {picked}");
        if (!(filter.Temperature > 0f)) throw new ArgumentException($"sampling needs a temperature above 0, not {filter.Temperature}");
        LaunchDependent("sample", "sampleRow", 1, 1, SampleThreads, 0, logits.Address, logits.RowLength, filter.Temperature, filter.TopK,
                        filter.TopP, filter.MinP, uniformBits.Address, picked.Address);
    }

    /// <summary>
    /// One launch of the matrix-vector kernel for up to three weights of one dtype read against the same small x, when every
    /// operand suits its 16-byte loads; false (nothing done) otherwise, and the caller takes the general path.
    /// </summary>
    bool TryLinearRows(Tensor x, ReadOnlySpan<LinearOutput> outputs, float alpha, float beta, Tensor? norm, float eps)
    {
        if (outputs.Length is 0 or > 3 || !NormSuits(norm, x)) return false;
        Own(x);
        var weightType = outputs[0].Weight.DType;
        var outputType = outputs[0].Output.DType;
        long warps = 0;
        foreach (var (weight, bias, y) in outputs)
        {
            Own(y);
            if (!RowsWeightSuits(x, weight, bias, weightType) || y.DType != outputType || !IsFloat(y) || y.Rows != x.Rows || y.RowLength != weight.Rows)
                return false;
            warps += weight.Rows;
        }
        if (warps == 0 || warps > int.MaxValue) return false;
        var s0 = outputs[0];
        var s1 = outputs.Length > 1 ? outputs[1] : default;
        var s2 = outputs.Length > 2 ? outputs[2] : default;
        if (norm == null && weightType == DType.BF16 && ResidentSuits(x, warps))
        {
            LaunchDependent("gemv", ResidentLinear[KernelRows(x.Rows)], ResidentBlocks(warps), 1, 32 * ResidentWarps, ResidentSharedBytes(x, warps),
                   x.Address, x.Rows, x.RowLength, alpha, beta, Code(s0.Output),
                   s0.Weight.Address, AddressOf(s0.Bias), s0.Output.Address, s0.Weight.Rows,
                   AddressOf(s1.Weight), AddressOf(s1.Bias), AddressOf(s1.Output), s1.Weight?.Rows ?? 0,
                   AddressOf(s2.Weight), AddressOf(s2.Bias), AddressOf(s2.Output), s2.Weight?.Rows ?? 0);
            return true;
        }
        if (weightType == DType.BF16 && StreamSuits(x, warps * x.RowLength * 2))
        {
            LaunchDependent("gemv", StreamLinear[KernelRows(x.Rows)], StreamBlocks(warps), 1, 32 * StreamWarps, StreamShared(x),
                   x.Address, x.Rows, x.RowLength, alpha, beta, Code(s0.Output),
                   s0.Weight.Address, AddressOf(s0.Bias), s0.Output.Address, s0.Weight.Rows,
                   AddressOf(s1.Weight), AddressOf(s1.Bias), AddressOf(s1.Output), s1.Weight?.Rows ?? 0,
                   AddressOf(s2.Weight), AddressOf(s2.Bias), AddressOf(s2.Output), s2.Weight?.Rows ?? 0, AddressOf(norm), eps);
            return true;
        }
        // Two output features a warp when one would leave more warps than the SMs hold at once (decode.cu's DECODE_BLOCKS).
        long resident = (long)_multiprocessors * DecodeBlocksPerSm * WarpsPerBlock;
        bool pairs = warps > resident;
        foreach (var o in outputs) pairs &= o.Weight.Rows % 2 == 0;
        if (pairs) warps /= 2;
        var names = weightType == DType.BF16 ? LinearBF16 : LinearF32;
        LaunchDependent("decode", names[KernelRows(x.Rows)], (uint)((warps + WarpsPerBlock - 1) / WarpsPerBlock), 1, 32 * WarpsPerBlock, 0,
               x.Address, Code(x), x.Rows, x.RowLength, alpha, beta, Code(s0.Output),
               s0.Weight.Address, AddressOf(s0.Bias), s0.Output.Address, s0.Weight.Rows,
               AddressOf(s1.Weight), AddressOf(s1.Bias), AddressOf(s1.Output), s1.Weight?.Rows ?? 0,
               AddressOf(s2.Weight), AddressOf(s2.Bias), AddressOf(s2.Output), s2.Weight?.Rows ?? 0, AddressOf(norm), eps, pairs ? 1 : 0);
        return true;
    }

    /// <summary>
    /// A layer's weight of <paramref name="weightType"/> that decode.cu's products take against x (<see cref="SmallBatch"/>),
    /// with no bias or a float32 one of the weight's rows.
    /// </summary>
    bool RowsWeightSuits(Tensor x, Tensor weight, Tensor? bias, DType weightType)
    {
        Own(weight);
        if (bias != null) Own(bias);
        return weight.DType == weightType && SmallBatch(x, weight) && (bias == null || bias.DType == DType.F32 && bias.Count == weight.Rows);
    }

    /// <summary>x [1..8, k] against W [n, k] of bfloat16 or float32, both 16-byte aligned with k a whole number of 16-byte loads.</summary>
    static bool SmallBatch(Tensor x, Tensor weight)
    {
        if (x.Rows is < 1 or > SmallBatchRows || !IsFloat(x) || weight.DType is not (DType.BF16 or DType.F32)) return false;
        int perLoad = 16 / weight.DType.SizeInBytes();
        return x.RowLength == weight.RowLength && x.RowLength % perLoad == 0 && Aligned(x) && Aligned(weight);
    }

    // gemv.cu's streamed products (Hopper's bulk copies): STREAM_WARPS warps a block, each with a ring of STREAM_STAGES
    // pieces of STREAM_PIECE bfloat16 weights, one block an SM; for weights of StreamMinimumBytes or more (gemv.cu has the
    // measurements: the 7B down, gate/up and head gain, its q/k/v and o lose).
    const int StreamWarps = 16, StreamStages = 2, StreamPiece = 2048, StreamSharedLimit = 227 << 10;
    const long StreamMinimumBytes = 64L << 20;
    static readonly string[] StreamLinear = ["streamLinearx1", "streamLinearx2", "streamLinearx4", "streamLinearx8"];
    static readonly string[] StreamSwiGlu = ["streamSwiGlux1", "streamSwiGlux2", "streamSwiGlux4", "streamSwiGlux8"];

    /// <summary>Hopper or later, x bfloat16, weights large enough to gain, and x's staged rows within shared memory.</summary>
    bool StreamSuits(Tensor x, long weightBytes) =>
        _device.Major >= 9 && x.DType == DType.BF16 && weightBytes >= StreamMinimumBytes && StreamSharedBytes(x) <= StreamSharedLimit;

    /// <summary>gemv.cu's layout: the rings, their 8-byte barriers, x [m, k] as float32, 1/rms [8], scratch [32].</summary>
    static long StreamSharedBytes(Tensor x) =>
        StreamWarps * StreamStages * (StreamPiece * 2 + 8) + (long)x.Rows * x.RowLength * 4 + 40 * 4;

    static uint StreamShared(Tensor x) => (uint)StreamSharedBytes(x);

    /// <summary>One block per STREAM_WARPS features, at most one an SM (each warp then streams several features).</summary>
    uint StreamBlocks(long features) => (uint)Math.Min((features + StreamWarps - 1) / StreamWarps, _multiprocessors);

    // gemv.cu's resident products: RESIDENT_WARPS warps a block, one block an SM, each block's rows of W in shared memory
    // whole, asked for before the wait on the kernel before (SHARPTUNE_CUDA_RESIDENT=0: not used, for measuring them).
    // Only for shares up to ResidentLimit: measured on H200s (docs/PERFORMANCE.md, runs 27-29), the 0.5B decode, whose o
    // and down shares are 13 and 68 KiB a block, gained 6-7 %; the 7B, whose o share is 196 KiB, lost 1-2 %.
    const int ResidentWarps = 8, ResidentLimit = 96 << 10;
    static readonly string[] ResidentLinear = ["residentLinearx1", "residentLinearx2", "residentLinearx4", "residentLinearx8"];
    readonly bool _residentProducts = Environment.GetEnvironmentVariable("SHARPTUNE_CUDA_RESIDENT") != "0";

    /// <summary>Hopper or later, x bfloat16, and the largest block's rows of the <paramref name="features"/> within ResidentLimit.</summary>
    bool ResidentSuits(Tensor x, long features) =>
        _residentProducts && _device.Major >= 9 && x.DType == DType.BF16
        && ResidentSharedBytes(x, features) <= ResidentLimit;

    /// <summary>One block an SM, or one a feature when there are fewer.</summary>
    uint ResidentBlocks(long features) => (uint)Math.Min(features, _multiprocessors);

    /// <summary>gemv.cu's layout: a block's most rows, ⌈features / blocks⌉, each with an 8-byte barrier (rounded up to 128 bytes).</summary>
    uint ResidentSharedBytes(Tensor x, long features)
    {
        long blocks = ResidentBlocks(features), rows = (features + blocks - 1) / blocks;
        return (uint)Math.Min((rows * 8 + 127) / 128 * 128 + rows * x.RowLength * 2, uint.MaxValue);
    }

    static nint AddressOf(Tensor? t) => t?.Address ?? 0;

    static bool Aligned(Tensor t) => t.Address % 16 == 0;

    static bool IsFloat(Tensor t) => t.DType is DType.F32 or DType.BF16;

    /// <summary>The kernel variant's row count (1, 2, 4 or 8) as an index into the name tables.</summary>
    static int KernelRows(int rows) => rows switch { 1 => 0, 2 => 1, <= 4 => 2, _ => 3 };
}
