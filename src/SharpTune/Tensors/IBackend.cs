namespace SharpTune.Tensors;

/// <summary>
/// Which keys each query row of an attention call may see: keys <c>KeyStart[i] .. KeyEnd[i]-1</c> of the key/value tensors.
/// One description covers causal training batches (a row's own sample up to itself), packed rows (positions restart per sample),
/// prefill and decode against a KV cache. Query rows are independent, so batches of sequences are one call.
/// </summary>
public sealed class AttentionSpans
{
    public AttentionSpans(int[] keyStart, int[] keyEnd)
    {
        if (keyStart.Length != keyEnd.Length) throw new ArgumentException("span arrays differ in length");
        KeyStart = keyStart;
        KeyEnd = keyEnd;
    }

    /// <summary>
    /// Spans whose values also live on a backend (int32 tensors of Count values): a recorded decoding step reads them there,
    /// and its owner rewrites tensors and arrays alike before each replay. Backends that keep spans on a device read the
    /// tensors; host backends the arrays.
    /// </summary>
    public AttentionSpans(int[] keyStart, int[] keyEnd, Tensor residentKeyStart, Tensor residentKeyEnd) : this(keyStart, keyEnd)
    {
        if (residentKeyStart.Count != Count || residentKeyEnd.Count != Count) throw new ArgumentException("resident spans differ in length");
        ResidentKeyStart = residentKeyStart;
        ResidentKeyEnd = residentKeyEnd;
    }

    public int[] KeyStart { get; }
    public int[] KeyEnd { get; }
    public Tensor? ResidentKeyStart { get; }
    public Tensor? ResidentKeyEnd { get; }
    public int Count => KeyStart.Length;

    /// <summary>Causal attention inside each sample of a flat batch, where a sample starts wherever <paramref name="positions"/> is 0.</summary>
    public static AttentionSpans CausalFromPositions(ReadOnlySpan<int> positions)
    {
        var start = new int[positions.Length];
        var end = new int[positions.Length];
        int sampleStart = 0;
        for (int i = 0; i < positions.Length; i++)
        {
            if (positions[i] == 0) sampleStart = i;
            start[i] = sampleStart;
            end[i] = i + 1;
        }
        return new AttentionSpans(start, end);
    }

    /// <summary><paramref name="count"/> new tokens appended at <paramref name="pastLength"/> to one sequence's KV cache that starts at key row <paramref name="cacheOffset"/>.</summary>
    public static AttentionSpans ForCache(int cacheOffset, int pastLength, int count)
    {
        var start = new int[count];
        var end = new int[count];
        for (int i = 0; i < count; i++)
        {
            start[i] = cacheOffset;
            end[i] = cacheOffset + pastLength + i + 1;
        }
        return new AttentionSpans(start, end);
    }
}

/// <summary>Device work recorded once by <see cref="IBackend.Record"/> (a CUDA graph) and replayed as one launch.</summary>
public interface IRecordedWork : IDisposable
{
    void Replay();
}

/// <summary>One linear layer of a grouped product (<see cref="IBackend.Linear(Tensor, ReadOnlySpan{LinearOutput})"/>): Output = x·Weightᵀ + Bias.</summary>
public readonly record struct LinearOutput(Tensor Weight, Tensor? Bias, Tensor Output);

/// <summary>
/// One LoRA branch of those that read the same input x (<see cref="IBackend.LoraDownProject"/>): its down matrix A [r, in] in
/// activation precision, its dropout probability and mask seed (as <see cref="IBackend.Dropout"/> draws it), and where its
/// hidden t = dropout(x)·Aᵀ [rows, r] goes.
/// </summary>
public readonly record struct LoraDownBranch(Tensor A, float Dropout, ulong Seed, Tensor Hidden);

/// <summary>
/// One branch's part of <see cref="IBackend.LoraDownBackward"/>: A, the dropout and seed of its forward, the gradient of its
/// hidden dt [rows, r], and the float32 gradient of A to add to (null when A is frozen).
/// </summary>
public readonly record struct LoraDownGradient(Tensor A, float Dropout, ulong Seed, Tensor HiddenGradient, Tensor? GradA);

/// <summary>
/// The compute engine behind the model and the trainer: allocation, transfers and the small set of coarse ops
/// (each with its backward) a decoder-only transformer needs. Tensors of activations are 2-D [rows, features];
/// weights are [out, in] as in Hugging Face checkpoints. All float ops accumulate in float32.
/// </summary>
public interface IBackend : IDisposable
{
    string Name { get; }
    /// <summary>True when tensor addresses are host pointers (spans can be taken).</summary>
    bool IsHost { get; }
    /// <summary>The dtype of activations this backend computes in.</summary>
    DType ActivationType { get; }

    Tensor Allocate(DType dtype, params int[] shape);
    Tensor Zeros(DType dtype, params int[] shape);
    /// <summary>Copies host float32 values into a new tensor of <paramref name="dtype"/> (narrowing as needed).</summary>
    Tensor FromHost(ReadOnlySpan<float> values, DType dtype, params int[] shape);
    /// <summary>Copies raw little-endian bytes of <paramref name="dtype"/> into a new tensor.</summary>
    Tensor FromHostBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape);
    Tensor FromHost(ReadOnlySpan<int> values, params int[] shape);
    /// <summary>Widens a floating-point tensor into host float32 values.</summary>
    void ToHost(Tensor source, Span<float> destination);
    void Copy(Tensor source, Tensor destination);
    void Fill(Tensor tensor, float value);

    /// <summary>C = alpha·op(A)·op(B) + beta·C for 2-D tensors (B may be a BF16/F16 weight). beta = 0 ignores C's contents.</summary>
    void MatMul(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f);

    // Fused forms for inference. The defaults compose the ops above; a GPU backend runs each as one kernel when decoding.
    /// <summary>y = x·Wᵀ + bias + beta·y for a weight W [out, in] and an optional float32 bias [out] (beta = 0 ignores y's contents).</summary>
    void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor y, float beta = 0f)
    {
        MatMul(x, false, weight, true, y, 1f, beta);
        if (bias != null) AddBias(y, bias);
    }

    /// <summary>Several linear layers of the same input (a layer's q, k and v projections): each Output = x·Weightᵀ + Bias.</summary>
    void Linear(Tensor x, ReadOnlySpan<LinearOutput> outputs)
    {
        foreach (var o in outputs) Linear(x, o.Weight, o.Bias, o.Output);
    }

    /// <summary>h = silu(x·gateWeightᵀ) · (x·upWeightᵀ): a gated MLP's two projections and activation.</summary>
    void SwiGluLinear(Tensor x, Tensor gateWeight, Tensor upWeight, Tensor h)
    {
        using var gate = Allocate(h.DType, h.Shape);
        using var up = Allocate(h.DType, h.Shape);
        MatMul(x, false, gateWeight, true, gate);
        MatMul(x, false, upWeight, true, up);
        SwiGlu(gate, up, h);
    }

    /// <summary>
    /// Outputs = RmsNorm(x)·Weightᵀ + Bias for each output: a layer's norm and the products that read it (one kernel when a
    /// GPU decodes, which never stores the normed rows: each product scales its sums by the row's 1/rms at the end).
    /// </summary>
    void NormLinear(Tensor x, Tensor normWeight, float eps, ReadOnlySpan<LinearOutput> outputs)
    {
        using var normed = Allocate(ActivationType, x.Shape);
        RmsNorm(x, normWeight, eps, normed, null);
        Linear(normed, outputs);
    }

    /// <summary><see cref="SwiGluLinear"/> of RmsNorm(x): the MLP's norm, gate and up projections and activation.</summary>
    void NormSwiGluLinear(Tensor x, Tensor normWeight, float eps, Tensor gateWeight, Tensor upWeight, Tensor h)
    {
        using var normed = Allocate(ActivationType, x.Shape);
        RmsNorm(x, normWeight, eps, normed, null);
        SwiGluLinear(normed, gateWeight, upWeight, h);
    }

    /// <summary><see cref="Rope"/> on the queries and the keys of the same rows (one launch on a GPU).</summary>
    void RopeQueryKey(Tensor q, Tensor k, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse = false)
    {
        Rope(q, positions, invFreq, headDim, attentionScaling, inverse);
        Rope(k, positions, invFreq, headDim, attentionScaling, inverse);
    }

    /// <summary>
    /// Decoding's rope and cache append in one op: q and the new rows' keys k are rotated as <see cref="RopeQueryKey"/> does
    /// (q in place), and row r of the rotated k and of v is stored at row positions[r] of keyCache and valueCache (a cache
    /// indexed by position). The cache row comes from the backend's memory, so a recorded step appends where its position says.
    /// </summary>
    void RopeQueryKeyAppend(Tensor q, Tensor k, Tensor v, Tensor positions, Tensor invFreq, int headDim, float attentionScaling,
                            Tensor keyCache, Tensor valueCache)
    {
        if (!IsHost) throw new NotSupportedException($"{Name} has no RopeQueryKeyAppend");
        RopeQueryKey(q, k, positions, invFreq, headDim, attentionScaling);
        var rows = positions.AsIntSpan();
        for (int r = 0; r < rows.Length; r++)
        {
            Copy(k.SliceRows(r, 1), keyCache.SliceRows(rows[r], 1));
            Copy(v.SliceRows(r, 1), valueCache.SliceRows(rows[r], 1));
        }
    }

    /// <summary>
    /// Decoding's attention inputs in one op: the products of RmsNorm(x) with the q, k and v layers
    /// (<see cref="NormLinear"/>), then <see cref="RopeQueryKeyAppend"/> on them. Afterwards q's output holds the rotated
    /// queries and the caches the new rows; k's and v's outputs are scratch (a GPU backend may leave them unwritten).
    /// </summary>
    void NormLinearRopeAppend(Tensor x, Tensor normWeight, float eps, LinearOutput q, LinearOutput k, LinearOutput v, Tensor positions,
                              Tensor invFreq, int headDim, float attentionScaling, Tensor keyCache, Tensor valueCache)
    {
        NormLinear(x, normWeight, eps, [q, k, v]);
        RopeQueryKeyAppend(q.Output, k.Output, v.Output, positions, invFreq, headDim, attentionScaling, keyCache, valueCache);
    }

    /// <summary>
    /// <see cref="Attention"/> without the log-sum-exp, for decoding: a few query rows, each against a key span that may be
    /// long (a KV cache). A GPU backend runs a kernel made for that shape.
    /// </summary>
    void AttentionDecode(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output) =>
        Attention(q, k, v, spans, headDim, scale, output, null);

    /// <summary>
    /// The weight [out, in] rearranged for products with a few rows at a time (batched decoding), or null where this backend
    /// has no such layout. The caller keeps it beside the weight and passes both to <see cref="MatMulPacked"/>.
    /// </summary>
    Tensor? PackForFewRows(Tensor weight) => null;

    /// <summary>y = x·Wᵀ, from <paramref name="packed"/> (made by <see cref="PackForFewRows"/>) where the row count suits it.</summary>
    void MatMulPacked(Tensor x, Tensor weight, Tensor packed, Tensor y) => MatMul(x, false, weight, true, y);

    /// <summary>indices[r] = the first index of the largest value of row r of x [rows, cols] (a NaN counts as largest), on the host.</summary>
    void ArgMax(Tensor x, Span<int> indices);

    /// <summary>The same into an int32 tensor [rows] on the backend (a recorded decoding step picks its token on the device).</summary>
    void ArgMax(Tensor x, Tensor indices)
    {
        Span<int> picked = stackalloc int[x.Rows];
        ArgMax(x, picked);
        Upload(picked, indices);
    }

    /// <summary>
    /// picked[0] = the token <see cref="TokenFilter.Pick"/> draws from logits [1, vocab] (float32) with the uniform number
    /// whose 53 bits are the two int32 of <paramref name="uniformBits"/> (low word first). A GPU draws where the logits are,
    /// inside a recorded decoding step, by the same rules (its sums in another order).
    /// </summary>
    void Sample(Tensor logits, TokenFilter filter, Tensor uniformBits, Tensor picked)
    {
        if (!IsHost) throw new NotSupportedException($"{Name} has no Sample");
        if (logits.Rows != 1 || logits.DType != DType.F32) throw new ArgumentException($"sampling draws from one float32 row, not {logits}");
        var bits = uniformBits.AsIntSpan();
        var row = System.Buffers.ArrayPool<float>.Shared.Rent(logits.RowLength);
        logits.AsSpan().CopyTo(row);
        picked.AsIntSpan()[0] = filter.Pick(row.AsSpan(0, logits.RowLength), TokenFilter.Uniform(TokenFilter.FromBitWords(bits[0], bits[1])));
        System.Buffers.ArrayPool<float>.Shared.Return(row);
    }

    /// <summary>Overwrites an int32 tensor with host values (as stream-ordered work: earlier ops still see the old values).</summary>
    void Upload(ReadOnlySpan<int> values, Tensor destination)
    {
        if (!IsHost) throw new NotSupportedException($"{Name} has no Upload");
        values.CopyTo(destination.AsIntSpan());
    }

    /// <summary>Copies an int32 tensor to the host (waiting for the work that writes it).</summary>
    void ToHost(Tensor source, Span<int> destination)
    {
        if (!IsHost) throw new NotSupportedException($"{Name} has no ToHost");
        source.AsIntSpan().CopyTo(destination);
    }

    /// <summary>
    /// Records the device work <paramref name="enqueue"/> issues, without running it, for replays that repeat it exactly
    /// (same kernels, same addresses; values the work reads from the backend's memory may change between replays); null
    /// where the backend cannot record. Tensors allocated or freed while recording keep their memory for the recording's life.
    /// </summary>
    IRecordedWork? Record(Action enqueue) => null;

    /// <summary>output[i] = table[ids[i]].</summary>
    void Embedding(Tensor table, Tensor ids, Tensor output);
    /// <summary>dTable[ids[i]] += dOutput[i].</summary>
    void EmbeddingBackward(Tensor dOutput, Tensor ids, Tensor dTable);

    /// <summary>y = x / rms(x) * weight per row (rows of the weight's length); rstd (optional, [rows]) keeps 1/rms for backward.</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor y, Tensor? rstd);
    /// <summary>dx = (overwritten or accumulated) gradient of x; dWeight accumulated when given.</summary>
    void RmsNormBackward(Tensor dy, Tensor x, Tensor weight, Tensor rstd, Tensor dx, Tensor? dWeight, bool accumulateDx);

    /// <summary>y[r] += bias for every row.</summary>
    void AddBias(Tensor y, Tensor bias);
    /// <summary>dBias += sum over rows of dy.</summary>
    void BiasBackward(Tensor dy, Tensor dBias);

    /// <summary>Rotary embedding in place on x [rows, heads·headDim] (rotate-half layout) with per-row positions;
    /// inverse rotates back (the backward pass). invFreq has headDim/2 values, scaled by attentionScaling.</summary>
    void Rope(Tensor x, Tensor positions, Tensor invFreq, int headDim, float attentionScaling, bool inverse);

    /// <summary>
    /// Softmax attention of q [rows, heads·headDim] against k, v [keys, kvHeads·headDim] (grouped-query) over the key
    /// spans of each row; writes output [rows, heads·headDim] and, for backward, the log-sum-exp [rows, heads].
    /// </summary>
    void Attention(Tensor q, Tensor k, Tensor v, AttentionSpans spans, int headDim, float scale, Tensor output, Tensor? logSumExp);
    /// <summary>Backward of <see cref="Attention"/>: dq written, dk and dv accumulated.</summary>
    void AttentionBackward(Tensor dOutput, Tensor q, Tensor k, Tensor v, Tensor output, Tensor logSumExp, AttentionSpans spans,
                           int headDim, float scale, Tensor dq, Tensor dk, Tensor dv);

    /// <summary>h = silu(gate) · up.</summary>
    void SwiGlu(Tensor gate, Tensor up, Tensor h);
    void SwiGluBackward(Tensor dh, Tensor gate, Tensor up, Tensor dGate, Tensor dUp);

    /// <summary>y += alpha · x (same shapes).</summary>
    void AddScaled(Tensor x, float alpha, Tensor y);
    /// <summary>y = x (or y += x when <paramref name="accumulate"/>: the backward of a dropout whose input gradient has other
    /// terms) with elements zeroed with probability p and the rest scaled by 1/(1-p); the mask is a pure function of (seed, element index).</summary>
    void Dropout(Tensor x, float p, ulong seed, Tensor y, bool accumulate = false);

    /// <summary>
    /// LoRA's down projections of branches that read the same x: each Hidden = dropout(x)·Aᵀ with the branch's own mask.
    /// The default composes <see cref="Dropout"/> and <see cref="MatMul"/>; a GPU runs the branches in one kernel that
    /// regenerates the masks where it reads x and never writes dropout(x).
    /// </summary>
    void LoraDownProject(Tensor x, ReadOnlySpan<LoraDownBranch> branches) => LoraReference.DownProject(this, x, branches);

    /// <summary>
    /// Backward of <see cref="LoraDownProject"/>: GradA += dtᵀ·dropout(x) for each branch, and dx = Σ dropout(dt·A) (added to
    /// dx when <paramref name="accumulateDx"/>), each with the mask of its forward.
    /// </summary>
    void LoraDownBackward(Tensor x, ReadOnlySpan<LoraDownGradient> branches, Tensor dx, bool accumulateDx) =>
        LoraReference.DownBackward(this, x, branches, dx, accumulateDx);

    /// <summary>
    /// A LoRA branch's up projection y = scale·hidden·Bᵀ + beta·y, for hidden [rows, r] and B [out, r]. The default is the
    /// matrix product; a GPU runs it in a kernel made for an inner dimension of r.
    /// </summary>
    void LoraUpProject(Tensor hidden, Tensor b, float scale, Tensor y, float beta) => LoraReference.UpProject(this, hidden, b, scale, y, beta);

    /// <summary>
    /// Backward of <see cref="LoraUpProject"/>: hiddenGradient = scale·dy·B and, when B is trainable, gradB += scale·dyᵀ·hidden
    /// (float32). A GPU computes both from one read of dy.
    /// </summary>
    void LoraUpBackward(Tensor dy, Tensor hidden, Tensor b, float scale, Tensor hiddenGradient, Tensor? gradB) =>
        LoraReference.UpBackward(this, dy, hidden, b, scale, hiddenGradient, gradB);

    // Row and column scalings (DoRA: per-output-row norms and magnitudes).
    /// <summary>norms[r] = ‖x[r, :]‖₂ for float32 x [rows, cols]; norms has rows values.</summary>
    void RowNorms(Tensor x, Tensor norms);
    /// <summary>y = a / b element by element (float32, same counts; y may alias a or b).</summary>
    void Divide(Tensor a, Tensor b, Tensor y);
    /// <summary>x[r, c] *= scale[c] in place (scale has cols values).</summary>
    void ScaleColumns(Tensor x, Tensor scale);
    /// <summary>x[r, c] *= scale[r] in place (scale has rows values).</summary>
    void ScaleRows(Tensor x, Tensor scale);
    /// <summary>result[c] += Σ_r a[r, c]·b[r, c] (a and b the same shape).</summary>
    void ColumnDots(Tensor a, Tensor b, Tensor result);

    /// <summary>
    /// Softmax cross-entropy of logits [rows, vocab] against labels (-100 = ignored). Returns the summed loss and the count of
    /// label tokens; when <paramref name="dLogits"/> is given writes gradScale·(softmax − onehot) there (it may alias logits).
    /// Also counts rows whose argmax equals the label (for token accuracy).
    /// </summary>
    (double LossSum, int Count, int Correct) CrossEntropy(Tensor logits, Tensor labels, Tensor? dLogits, float gradScale);

    /// <summary>Σ x² in float64 (for global gradient norms).</summary>
    double SumOfSquares(Tensor x);
    /// <summary>Σ x² of each tensor (one pass over many small gradients; a GPU backend reads them all in one launch).</summary>
    void SumOfSquares(IReadOnlyList<Tensor> tensors, Span<double> sums)
    {
        for (int i = 0; i < tensors.Count; i++) sums[i] = SumOfSquares(tensors[i]);
    }
    void Scale(Tensor x, float alpha);

    /// <summary>Decoupled-weight-decay Adam step on a float32 parameter with its two moment tensors.</summary>
    void AdamW(Tensor param, Tensor grad, Tensor m, Tensor v, float lr, float beta1, float beta2, float eps, float weightDecay, int step);
    /// <summary><see cref="AdamW(Tensor, Tensor, Tensor, Tensor, float, float, float, float, float, int)"/> over many tensors
    /// with the same hyperparameters (a GPU backend updates them all in one launch).</summary>
    void AdamW(IReadOnlyList<AdamWTensor> tensors, float lr, float beta1, float beta2, float eps, int step)
    {
        foreach (var t in tensors) AdamW(t.Param, t.Grad, t.M, t.V, lr, beta1, beta2, eps, t.WeightDecay, step);
    }
}

/// <summary>One float32 parameter of a multi-tensor AdamW step: its gradient, two moments and its weight decay.</summary>
public readonly record struct AdamWTensor(Tensor Param, Tensor Grad, Tensor M, Tensor V, float WeightDecay);
