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
            backend.LoraUpProject(t, lora.B, lora.Scale, y, 1f);
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
                backend.LoraUpProject(t, lora.B, lora.Scale, rowsOut, 1f);
            }
        }
    }

    /// <summary>
    /// Training forward: as <see cref="Forward"/> but with LoRA dropout, keeping each branch's hidden t = dropout(x)·Aᵀ in
    /// <paramref name="pass"/> for backward.
    /// </summary>
    public void ForwardTrain(IBackend be, Tensor x, Tensor y, LoraPass pass) => ForwardTrainShared(be, x, pass, hiddensKept: false, (this, y));

    /// <summary>
    /// The training forward of layers that read the same x (a block's q/k/v, or its gate/up): the down projections of all
    /// their LoRA branches are one op (<see cref="IBackend.LoraDownProject"/>, one kernel on a GPU), then each layer's
    /// branches write its output first and the base product adds into them inside its matrix product (beta = 1), with the
    /// bias, instead of each branch reading and rewriting the whole output after it. With <paramref name="hiddensKept"/>
    /// (a recompute under gradient checkpointing), the branches' hiddens are those <paramref name="pass"/> kept from the
    /// forward, so the down projections are skipped: the same values, since the dropout masks come from the same seeds. Layers
    /// with a DoRA branch run their whole forward again (its norms and hidden are rewritten with the same values).
    /// </summary>
    public static void ForwardTrainShared(IBackend be, Tensor x, LoraPass pass, bool hiddensKept,
                                          params ReadOnlySpan<(Linear Layer, Tensor Output)> layers)
    {
        if (AnyDora(layers, out int branches))
        {
            foreach (var (layer, output) in layers) layer.ForwardTrainWithDora(be, x, output, pass);
            return;
        }
        if (branches > 0 && !hiddensKept)
        {
            var downs = new LoraDownBranch[branches];
            int i = 0;
            foreach (var (layer, _) in layers)
                foreach (var lora in layer.Adapters) downs[i++] = DownBranch(be, lora, x, pass);
            be.LoraDownProject(x, downs);
        }
        foreach (var (layer, y) in layers)
        {
            float beta = 0f;
            foreach (var lora in layer.Adapters)
            {
                be.LoraUpProject(pass.Hidden(be, lora, x.Rows, be.ActivationType), pass.Operand(be, lora.B), lora.Scale, y, beta);
                beta = 1f;
            }
            be.Linear(x, layer.Weight, layer.Bias, y, beta);
        }
    }

    /// <summary>
    /// A layer with a DoRA branch: the base product first, since the DoRA branch rescales it, then each branch adds its part.
    /// </summary>
    void ForwardTrainWithDora(IBackend be, Tensor x, Tensor y, LoraPass pass)
    {
        be.MatMul(x, false, Weight, true, y);
        if (Bias != null) be.AddBias(y, Bias);
        foreach (var lora in Adapters)
        {
            if (lora.Magnitude != null)
            {
                DoraPath.ForwardTrain(be, this, lora, x, y, pass);
                continue;
            }
            be.LoraDownProject(x, [DownBranch(be, lora, x, pass)]);
            be.LoraUpProject(pass.Hidden(be, lora, x.Rows, be.ActivationType), pass.Operand(be, lora.B), lora.Scale, y, 1f);
        }
    }

    static bool AnyDora<T>(ReadOnlySpan<(Linear Layer, T)> layers, out int branches)
    {
        bool dora = false;
        branches = 0;
        foreach (var (layer, _) in layers)
        {
            branches += layer.Adapters.Count;
            foreach (var lora in layer.Adapters) dora |= lora.Magnitude != null;
        }
        return dora;
    }

    /// <summary>A branch's down projection as the pass keeps it: its hidden in activation precision (as PEFT under autocast).</summary>
    static LoraDownBranch DownBranch(IBackend be, LoraBranch lora, Tensor x, LoraPass pass) =>
        new(pass.Operand(be, lora.A), lora.Dropout, pass.SeedFor(lora), pass.Hidden(be, lora, x.Rows, be.ActivationType));

    /// <summary>
    /// Backward of <see cref="ForwardTrain"/>: dx = dy·W (+ the LoRA path), written or accumulated; gradients of the weight,
    /// bias and LoRA matrices accumulated where <paramref name="grads"/> marks them trainable.
    /// </summary>
    public void Backward(IBackend be, Tensor x, Tensor dy, Tensor dx, bool accumulateDx, LoraPass pass, Training.GradientSet grads) =>
        BackwardShared(be, x, dx, accumulateDx, pass, grads, (this, dy));

    /// <summary>
    /// Backward of <see cref="ForwardTrainShared"/>: each layer's gradients from its dy, and dx, the gradient of the shared
    /// input, from all of them. As in the forward, the branches' parts of dx come first (one op for all the down projections,
    /// <see cref="IBackend.LoraDownBackward"/>) and each base dy·W adds into them.
    /// </summary>
    public static void BackwardShared(IBackend be, Tensor x, Tensor dx, bool accumulateDx, LoraPass pass, Training.GradientSet grads,
                                      params ReadOnlySpan<(Linear Layer, Tensor Dy)> layers)
    {
        if (AnyDora(layers, out int branches))
        {
            bool holds = accumulateDx;
            foreach (var (layer, dy) in layers)
            {
                layer.BackwardWithDora(be, x, dy, dx, holds, pass, grads);
                holds = true;
            }
            return;
        }
        var downs = new LoraDownGradient[branches];
        try
        {
            int i = 0;
            foreach (var (layer, dy) in layers)
            {
                layer.WeightGradients(be, x, dy, grads);
                foreach (var lora in layer.Adapters) downs[i++] = HiddenGradient(be, lora, x, dy, pass, grads);
            }
            if (branches > 0) be.LoraDownBackward(x, downs, dx, accumulateDx);
            bool dxHolds = accumulateDx || branches > 0;
            foreach (var (layer, dy) in layers)
            {
                be.MatMul(dy, false, layer.Weight, false, dx, 1f, dxHolds ? 1f : 0f);
                dxHolds = true;
            }
        }
        finally
        {
            foreach (var d in downs) d.HiddenGradient?.Dispose();
        }
    }

    void BackwardWithDora(IBackend be, Tensor x, Tensor dy, Tensor dx, bool accumulateDx, LoraPass pass, Training.GradientSet grads)
    {
        be.MatMul(dy, false, Weight, false, dx, 1f, accumulateDx ? 1f : 0f);
        WeightGradients(be, x, dy, grads);
        foreach (var lora in Adapters)
        {
            if (lora.Magnitude != null)
            {
                DoraPath.Backward(be, this, lora, x, dy, dx, pass, grads);
                continue;
            }
            var down = HiddenGradient(be, lora, x, dy, pass, grads);
            using var dt = down.HiddenGradient;
            be.LoraDownBackward(x, [down], dx, accumulateDx: true);
        }
    }

    /// <summary>The base weight's and the bias's gradients, where they are trainable.</summary>
    void WeightGradients(IBackend be, Tensor x, Tensor dy, Training.GradientSet grads)
    {
        if (grads.For(Weight) is { } dW) be.MatMul(dy, true, x, false, dW, 1f, 1f);
        if (Bias != null && grads.For(Bias) is { } dBias) be.BiasBackward(dy, dBias);
    }

    /// <summary>
    /// A branch's up-projection gradient dB += s·dyᵀ·t, and the gradient of its hidden dt = s·dy·B in a new tensor (the
    /// caller disposes it) for the down projection's backward (<see cref="IBackend.LoraUpBackward"/>: one read of dy).
    /// </summary>
    static LoraDownGradient HiddenGradient(IBackend be, LoraBranch lora, Tensor x, Tensor dy, LoraPass pass, Training.GradientSet grads)
    {
        var dt = be.Allocate(be.ActivationType, x.Rows, lora.Rank);
        be.LoraUpBackward(dy, pass.Hidden(be, lora, x.Rows, be.ActivationType), pass.Operand(be, lora.B), lora.Scale, dt, grads.For(lora.B));
        return new LoraDownGradient(pass.Operand(be, lora.A), lora.Dropout, pass.SeedFor(lora), dt, grads.For(lora.A));
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
