using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// A decoder-only transformer (Llama, Qwen2, Qwen3) on one backend: embeddings, decoder layers, final norm and output head
/// (tied to the embeddings or not). Inference runs through <see cref="Forward"/> with a KV cache; the trainer drives the
/// same layers for training.
/// </summary>
public sealed class TransformerModel : IDisposable
{
    readonly List<IDisposable> _resources = [];
    LayerActivations? _scratch;

    TransformerModel(ModelConfig config, IBackend backend, Tensor embedding, DecoderLayer[] layers, Tensor finalNorm, Linear lmHead)
    {
        Config = config;
        Backend = backend;
        Shape = TransformerShape.From(config);
        Embedding = embedding;
        Layers = layers;
        FinalNorm = finalNorm;
        LmHead = lmHead;
        Rope = new RotaryEmbedding(backend, config);
    }

    public ModelConfig Config { get; }
    public IBackend Backend { get; }
    public TransformerShape Shape { get; }
    public Tensor Embedding { get; set; }
    public DecoderLayer[] Layers { get; }
    public Tensor FinalNorm { get; set; }
    /// <summary>The output head; with tied embeddings its weight is the embedding tensor itself.</summary>
    public Linear LmHead { get; }
    public bool TiedEmbeddings => ReferenceEquals(LmHead.Weight, Embedding);
    public RotaryEmbedding Rope { get; }

    /// <summary>Every linear layer of the decoder (not the output head), in layer order.</summary>
    public IEnumerable<Linear> DecoderLinears => Layers.SelectMany(l => l.Linears);

    /// <summary>Loads config.json and the safetensors weights of a Hugging Face model folder.</summary>
    public static TransformerModel Load(string modelDir, IBackend backend)
    {
        var config = ModelConfig.Load(modelDir);
        var checkpoint = Checkpoint.Open(modelDir);
        var loader = new WeightLoader(checkpoint, backend, modelDir);
        try
        {
            var model = Build(config, backend, loader);
            model._resources.Add(checkpoint);
            return model;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>A model whose weights come from <paramref name="weights"/> (benchmarks build random models this way).</summary>
    internal static TransformerModel Create(ModelConfig config, IBackend backend, IWeightSource weights) => Build(config, backend, weights);

    static TransformerModel Build(ModelConfig c, IBackend be, IWeightSource w)
    {
        var s = TransformerShape.From(c);
        var embedding = w.Matrix("model.embed_tokens.weight", s.Vocab, s.Hidden);
        var layers = new DecoderLayer[s.Layers];
        for (int i = 0; i < s.Layers; i++)
        {
            string p = $"model.layers.{i}.";
            Linear L(string name, int outF, int inF, bool bias) =>
                new(p + name, w.Matrix(p + name + ".weight", outF, inF), bias ? w.Vector(p + name + ".bias", outF) : null);
            layers[i] = new DecoderLayer
            {
                Index = i,
                InputNorm = w.Vector(p + "input_layernorm.weight", s.Hidden),
                PostAttentionNorm = w.Vector(p + "post_attention_layernorm.weight", s.Hidden),
                QNorm = s.QkNorm ? w.Vector(p + "self_attn.q_norm.weight", s.HeadDim) : null,
                KNorm = s.QkNorm ? w.Vector(p + "self_attn.k_norm.weight", s.HeadDim) : null,
                QProj = L("self_attn.q_proj", s.QWidth, s.Hidden, c.QkvBias),
                KProj = L("self_attn.k_proj", s.KvWidth, s.Hidden, c.QkvBias),
                VProj = L("self_attn.v_proj", s.KvWidth, s.Hidden, c.QkvBias),
                OProj = L("self_attn.o_proj", s.Hidden, s.QWidth, c.OutputBias),
                GateProj = L("mlp.gate_proj", s.Intermediate, s.Hidden, c.MlpBias),
                UpProj = L("mlp.up_proj", s.Intermediate, s.Hidden, c.MlpBias),
                DownProj = L("mlp.down_proj", s.Hidden, s.Intermediate, c.MlpBias),
            };
        }
        var norm = w.Vector("model.norm.weight", s.Hidden);
        var head = c.TieWordEmbeddings
            ? new Linear("lm_head", embedding, null)
            : new Linear("lm_head", w.Matrix("lm_head.weight", s.Vocab, s.Hidden), null);
        return new TransformerModel(c, be, embedding, layers, norm, head);
    }

    /// <summary>
    /// Runs <paramref name="tokens"/> at positions cache.Length.. through the model, appends their keys/values to the cache,
    /// and returns logits [k, vocab] for the last <paramref name="logitRows"/> positions (float32 on the model's backend).
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> tokens, KvCache cache, int logitRows = 1)
    {
        var be = Backend;
        int n = tokens.Length;
        if (n == 0) throw new ArgumentException("no tokens to run");
        var positionValues = new int[n];
        for (int i = 0; i < n; i++) positionValues[i] = cache.Length + i;
        Rope.EnsureLength(cache.Length + n);
        using var ids = be.FromHost(tokens, n);
        using var positions = be.FromHost(positionValues, n);
        var spans = AttentionSpans.ForCache(0, cache.Length, n);
        using var x = be.Allocate(be.ActivationType, n, Shape.Hidden);
        be.Embedding(Embedding, ids, x);
        var a = Scratch(n);
        foreach (var layer in Layers) layer.Forward(be, Shape, x, positions, spans, a, cache, Rope);
        cache.Length += n;
        return Head(x.SliceRows(n - logitRows, logitRows));
    }

    /// <summary>Final norm and output head over hidden states [rows, hidden] → logits [rows, vocab] in float32.</summary>
    public Tensor Head(Tensor hidden)
    {
        var logits = Backend.Allocate(DType.F32, hidden.Rows, Shape.Vocab);
        Head(hidden, logits);
        return logits;
    }

    /// <summary><see cref="Head(Tensor)"/> into a logits tensor the caller keeps (a recorded step writes the same one each time).</summary>
    public void Head(Tensor hidden, Tensor logits)
    {
        var be = Backend;
        using var normed = be.Allocate(be.ActivationType, hidden.Rows, Shape.Hidden);
        Linear.ForwardNormed(be, hidden, FinalNorm, Shape.RmsNormEps, normed, (LmHead, logits));
    }

    /// <summary>A one-token step against <paramref name="cache"/> (see <see cref="DecodeStep"/>); with <paramref name="argMax"/>
    /// the step also picks the greedy token on the backend.</summary>
    public DecodeStep NewDecodeStep(KvCache cache, bool argMax) => new(this, cache, argMax);

    /// <summary>A decoding step that draws its next token on the backend with <paramref name="draw"/>.</summary>
    public DecodeStep NewDecodeStep(KvCache cache, TokenFilter draw) => new(this, cache, false, draw);

    /// <summary>
    /// Replaces every weight with an owned float32 copy (full fine-tuning updates weights in place, and checkpoints may be
    /// BF16 or read-only memory maps). Tied embeddings stay one tensor.
    /// </summary>
    public void MakeWeightsWritable()
    {
        var be = Backend;
        Tensor Own(Tensor t)
        {
            var copy = be.Allocate(DType.F32, t.Shape);
            be.Copy(t, copy);
            t.Dispose();
            return copy;
        }
        bool tied = TiedEmbeddings;
        Embedding = Own(Embedding);
        FinalNorm = Own(FinalNorm);
        LmHead.Weight = tied ? Embedding : Own(LmHead.Weight);
        foreach (var layer in Layers)
        {
            layer.InputNorm = Own(layer.InputNorm);
            layer.PostAttentionNorm = Own(layer.PostAttentionNorm);
            if (layer.QNorm != null) layer.QNorm = Own(layer.QNorm);
            if (layer.KNorm != null) layer.KNorm = Own(layer.KNorm);
            foreach (var linear in layer.Linears)
            {
                linear.Weight = Own(linear.Weight);
                if (linear.Bias != null) linear.Bias = Own(linear.Bias);
            }
        }
    }

    public KvCache NewCache(int capacity) => new(Backend, Shape.Layers, capacity, Shape.KvWidth);

    LayerActivations Scratch(int rows)
    {
        if (_scratch?.Rows != rows)
        {
            _scratch?.Dispose();
            _scratch = new LayerActivations(Backend, Shape, rows);
        }
        return _scratch;
    }

    /// <summary>
    /// Keeps a copy of every matrix in the backend's layout for products with a few rows (the batched decoding of a
    /// server), where the backend has one: it doubles the memory the weights take.
    /// </summary>
    public void PackForFewRows()
    {
        foreach (var linear in DecoderLinears) linear.PackForFewRows(Backend);
        LmHead.PackForFewRows(Backend);
    }

    public void Dispose()
    {
        _scratch?.Dispose();
        Rope.Dispose();
        foreach (var l in Layers) l.Dispose();
        if (!TiedEmbeddings) LmHead.Dispose();
        else LmHead.DropPackedWeight();
        Embedding.Dispose();
        FinalNorm.Dispose();
        foreach (var r in _resources) r.Dispose();
    }
}
