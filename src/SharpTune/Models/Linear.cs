using SharpTune.Adapters;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// A linear layer y = x·Wᵀ + b with W [out, in] as stored in the checkpoint (F32, BF16 or F16), plus any LoRA branches.
/// </summary>
public sealed class Linear : IDisposable
{
    public Linear(string name, Tensor weight, Tensor? bias)
    {
        Name = name;
        Weight = weight;
        Bias = bias;
    }

    /// <summary>The module path in Hugging Face naming, e.g. <c>model.layers.0.self_attn.q_proj</c>.</summary>
    public string Name { get; }
    public Tensor Weight { get; set; }
    public Tensor? Bias { get; set; }
    public int InFeatures => Weight.RowLength;
    public int OutFeatures => Weight.Rows;
    public List<LoraBranch> Adapters { get; } = [];
    /// <summary>The weight in the backend's layout for products with a few rows (batched decoding), when the model was
    /// prepared with <see cref="TransformerModel.PackForFewRows"/>.</summary>
    public Tensor? PackedWeight { get; private set; }

    /// <summary>The short module name PEFT's target_modules match (<c>q_proj</c>, <c>down_proj</c>...).</summary>
    public string ShortName => Name[(Name.LastIndexOf('.') + 1)..];

    /// <summary>
    /// y = x·Wᵀ + Σ scale·(x·Aᵀ)·Bᵀ + b (no dropout: inference). The bias comes last because a DoRA branch rescales what
    /// precedes it without the bias (see <see cref="DoraPath.Forward"/>).
    /// </summary>
    public void Forward(IBackend backend, Tensor x, Tensor y) => Forward(backend, x, y, beta: 0f);

    /// <summary>y += this layer's output (a residual connection), folded into the product unless a DoRA branch rescales it.</summary>
    public void ForwardAccumulate(IBackend backend, Tensor x, Tensor y)
    {
        if (Adapters.Any(a => a.Magnitude != null))
        {
            using var t = backend.Allocate(y.DType, y.Shape);
            Forward(backend, x, t);
            backend.AddScaled(t, 1f, y);
        }
        else Forward(backend, x, y, beta: 1f);
    }

    /// <summary>
    /// Inference forward of layers that read the same RMSNorm of x (q, k, v; or the output head alone): when none has adapters,
    /// the norm and the products are one op (<see cref="IBackend.NormLinear"/>); otherwise the norm goes to
    /// <paramref name="normed"/> and each layer runs on it.
    /// </summary>
    public static void ForwardNormed(IBackend backend, Tensor x, Tensor normWeight, float eps, Tensor normed,
                                     params ReadOnlySpan<(Linear Layer, Tensor Output)> layers)
    {
        bool plain = true;
        foreach (var (layer, _) in layers) plain &= layer.Adapters.Count == 0;
        if (!plain)
        {
            backend.RmsNorm(x, normWeight, eps, normed, null);
            foreach (var (layer, output) in layers) layer.Forward(backend, normed, output);
            return;
        }
        Span<LinearOutput> outputs = new LinearOutput[layers.Length];
        for (int i = 0; i < layers.Length; i++) outputs[i] = new(layers[i].Layer.Weight, layers[i].Layer.Bias, layers[i].Output);
        backend.NormLinear(x, normWeight, eps, outputs);
    }

    void Forward(IBackend backend, Tensor x, Tensor y, float beta)
    {
        if (Adapters.Count == 0)
        {
            backend.Linear(x, Weight, Bias, y, beta);
            return;
        }
        backend.MatMul(x, false, Weight, true, y, 1f, beta);
        foreach (var lora in Adapters)
        {
            if (lora.Magnitude != null)
            {
                DoraPath.Forward(backend, this, lora, x, y);
                continue;
            }
            using var t = backend.Allocate(backend.ActivationType, x.Rows, lora.Rank);
            backend.MatMul(x, false, lora.A, true, t);
            backend.MatMul(t, false, lora.B, true, y, lora.Scale, 1f);
        }
        if (Bias != null) backend.AddBias(y, Bias);
    }

    /// <summary>
    /// Serving forward over a batch whose rows use different adapters: y = x·Wᵀ + b for every row in one multiply (the
    /// weight is read once), then each adapter's low-rank update on its own rows only; rows of no adapter get none.
    /// </summary>
    public void ForwardRows(IBackend backend, Tensor x, Tensor y, IReadOnlyList<AdapterRows> groups)
    {
        if (PackedWeight != null) backend.MatMulPacked(x, Weight, PackedWeight, y);
        else backend.MatMul(x, false, Weight, true, y);
        if (Bias != null) backend.AddBias(y, Bias);
        foreach (var group in groups)
        {
            if (group.Adapter == null) continue;
            var rowsIn = x.SliceRows(group.Start, group.Count);
            var rowsOut = y.SliceRows(group.Start, group.Count);
            foreach (var lora in Adapters)
            {
                if (lora.AdapterName != group.Adapter) continue;
                if (lora.Magnitude != null) throw new SharpTuneException($"{Name}: DoRA adapters are applied by merging; call MergeDora first");
                using var t = backend.Allocate(backend.ActivationType, group.Count, lora.Rank);
                backend.MatMul(rowsIn, false, lora.A, true, t);
                backend.MatMul(t, false, lora.B, true, rowsOut, lora.Scale, 1f);
            }
        }
    }

    /// <summary>
    /// Training forward: as <see cref="Forward"/> but with LoRA dropout, keeping each branch's hidden t = dropout(x)·Aᵀ (and,
    /// when the pass asks, the dropped-out input) in <paramref name="pass"/> for backward.
    /// </summary>
    public void ForwardTrain(IBackend be, Tensor x, Tensor y, LoraPass pass)
    {
        if (BranchesFirst)
        {
            // The branches' products write y first and the base product adds into them inside its matrix product (beta = 1),
            // instead of each branch reading and rewriting the whole of y after it (a pass bound by memory, not math).
            float beta = 0f;
            foreach (var lora in Adapters)
            {
                be.MatMul(LoraHidden(be, lora, x, pass), false, pass.Operand(be, lora.B), true, y, lora.Scale, beta);
                beta = 1f;
            }
            be.MatMul(x, false, Weight, true, y, 1f, beta);
            if (Bias != null) be.AddBias(y, Bias);
            return;
        }
        be.MatMul(x, false, Weight, true, y);
        if (Bias != null) be.AddBias(y, Bias);
        foreach (var lora in Adapters)
        {
            if (lora.Magnitude != null)
            {
                DoraPath.ForwardTrain(be, this, lora, x, y, pass);
                continue;
            }
            be.MatMul(LoraHidden(be, lora, x, pass), false, pass.Operand(be, lora.B), true, y, lora.Scale, 1f);
        }
    }

    /// <summary>No DoRA branch: a DoRA branch rescales the base output, so the base product must come before it.</summary>
    bool BranchesFirst => Adapters.Count > 0 && Adapters.All(a => a.Magnitude == null);

    /// <summary>The branch's hidden t = dropout(x)·Aᵀ, kept in the pass (with the dropped-out input when it asks).</summary>
    static Tensor LoraHidden(IBackend be, LoraBranch lora, Tensor x, LoraPass pass)
    {
        var t = pass.Hidden(be, lora, x.Rows, be.ActivationType);
        if (lora.Dropout > 0f)
        {
            var dropped = pass.DroppedInput(be, lora, x.Rows, x.RowLength);
            be.Dropout(x, lora.Dropout, pass.SeedFor(lora), dropped);
            be.MatMul(dropped, false, pass.Operand(be, lora.A), true, t);
        }
        else be.MatMul(x, false, pass.Operand(be, lora.A), true, t);
        return t;
    }

    /// <summary>
    /// Backward of <see cref="ForwardTrain"/>: dx = dy·W (+ the LoRA path), written or accumulated; gradients of the weight,
    /// bias and LoRA matrices accumulated where <paramref name="grads"/> marks them trainable.
    /// </summary>
    public void Backward(IBackend be, Tensor x, Tensor dy, Tensor dx, bool accumulateDx, LoraPass pass, Training.GradientSet grads)
    {
        // As in the forward: without DoRA the branches' parts of dx come first and the base dy·W adds into them.
        bool branchesFirst = BranchesFirst;
        bool dxHolds = accumulateDx;
        if (!branchesFirst)
        {
            be.MatMul(dy, false, Weight, false, dx, 1f, dxHolds ? 1f : 0f);
            dxHolds = true;
        }
        if (grads.For(Weight) is { } dW) be.MatMul(dy, true, x, false, dW, 1f, 1f);
        if (Bias != null && grads.For(Bias) is { } dBias) be.BiasBackward(dy, dBias);
        foreach (var lora in Adapters)
        {
            if (lora.Magnitude != null)
            {
                DoraPath.Backward(be, this, lora, x, dy, dx, pass, grads);
                continue;
            }
            var t = pass.Hidden(be, lora, x.Rows, be.ActivationType);
            if (grads.For(lora.B) is { } dB) be.MatMul(dy, true, t, false, dB, lora.Scale, 1f);
            var dt = pass.Scratch(be, ScratchUse.HiddenGradient, x.Rows, lora.Rank);
            be.MatMul(dy, false, pass.Operand(be, lora.B), false, dt, lora.Scale, 0f);
            if (lora.Dropout <= 0f)
            {
                if (grads.For(lora.A) is { } dAUndropped) be.MatMul(dt, true, x, false, dAUndropped, 1f, 1f);
                be.MatMul(dt, false, pass.Operand(be, lora.A), false, dx, 1f, dxHolds ? 1f : 0f);
                dxHolds = true;
                continue;
            }
            using var kept = pass.TakeDroppedInput(lora);
            var dropped = kept ?? pass.Scratch(be, ScratchUse.DroppedInput, x.Rows, x.RowLength);
            if (kept == null) be.Dropout(x, lora.Dropout, pass.SeedFor(lora), dropped);
            if (grads.For(lora.A) is { } dA) be.MatMul(dt, true, dropped, false, dA, 1f, 1f);
            // Through the dropout: the same mask (same seed) applied to the gradient, written or added to dx in the same pass.
            be.MatMul(dt, false, pass.Operand(be, lora.A), false, dropped);
            be.Dropout(dropped, lora.Dropout, pass.SeedFor(lora), dx, accumulate: dxHolds);
            dxHolds = true;
        }
        if (branchesFirst) be.MatMul(dy, false, Weight, false, dx, 1f, dxHolds ? 1f : 0f);
    }

    /// <summary>Makes <see cref="PackedWeight"/> from the current weight (call again after the weight changes).</summary>
    public void PackForFewRows(IBackend backend)
    {
        DropPackedWeight();
        PackedWeight = backend.PackForFewRows(Weight);
    }

    public void DropPackedWeight()
    {
        PackedWeight?.Dispose();
        PackedWeight = null;
    }

    public void Dispose()
    {
        DropPackedWeight();
        Weight.Dispose();
        Bias?.Dispose();
        foreach (var a in Adapters) a.Dispose();
    }
}
