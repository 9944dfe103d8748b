using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// Generation's one-token step against one KV cache, with every value that changes from step to step (the token, its
/// position, the attention span) in a small tensor on the backend, rewritten before each step. Its device work is then the
/// same every step, so a backend that records work (CUDA graphs) issues the whole step as one replay instead of hundreds of
/// launches. The first step runs directly (it loads the kernels); the second records the work, and later ones replay it.
/// The step owns its activations, hidden state and logits: a recording holds their addresses.
/// </summary>
public sealed class DecodeStep : IDisposable
{
    readonly TransformerModel _model;
    readonly KvCache _cache;
    readonly bool _argMax;
    readonly TokenFilter? _draw;
    // int32 [6]: token, position, key start, key end, and the next draw's 53 random bits (low word first).
    readonly Tensor _state, _token, _position, _keyStart, _keyEnd, _drawBits;
    readonly int[] _spanStart = [0], _spanEnd = [1];
    readonly AttentionSpans _spans;
    readonly LayerActivations _activations;
    readonly Tensor _hidden, _picked;
    IRecordedWork? _recorded;
    Tensor? _recordedFrequencies;
    bool _ranOnce;

    internal DecodeStep(TransformerModel model, KvCache cache, bool argMax, TokenFilter? draw = null)
    {
        if (argMax && draw != null) throw new ArgumentException("a step picks its token by argmax or by a draw, not both");
        _model = model;
        _cache = cache;
        _argMax = argMax;
        _draw = draw;
        var be = model.Backend;
        _state = be.Zeros(DType.I32, 6);
        _token = _state.SliceRows(0, 1);
        _position = _state.SliceRows(1, 1);
        _keyStart = _state.SliceRows(2, 1);
        _keyEnd = _state.SliceRows(3, 1);
        _drawBits = _state.SliceRows(4, 2);
        _spans = new AttentionSpans(_spanStart, _spanEnd, _keyStart, _keyEnd);
        _activations = new LayerActivations(be, model.Shape, 1);
        _hidden = be.Allocate(be.ActivationType, 1, model.Shape.Hidden);
        Logits = be.Allocate(DType.F32, 1, model.Shape.Vocab);
        _picked = be.Allocate(DType.I32, 1);
    }

    /// <summary>True once the step replays a recording of its work.</summary>
    public bool IsRecorded => _recorded != null;

    /// <summary>The logits [1, vocab] (float32, on the backend) of the last step; rewritten by the next.</summary>
    public Tensor Logits { get; }

    /// <summary>Runs <paramref name="token"/> at position cache.Length and appends its keys and values; the logits are in <see cref="Logits"/>.</summary>
    public void Run(int token) => Run(token, 0);

    void Run(int token, ulong drawBits)
    {
        var be = _model.Backend;
        int position = _cache.Length;
        if (position + 1 > _cache.Capacity) throw new SharpTuneException($"the sequence is longer than the KV cache ({_cache.Capacity} positions); raise --max_length");
        _model.Rope.EnsureLength(position + 1);
        _spanStart[0] = 0;
        _spanEnd[0] = position + 1;
        var (low, high) = TokenFilter.BitWords(drawBits);
        be.Upload([token, position, 0, position + 1, low, high], _state);
        if (_recorded != null && !ReferenceEquals(_recordedFrequencies, _model.Rope.Frequencies))
        {
            // Dynamic rope scaling rebuilt its frequencies: the recording reads the old tensor.
            _recorded.Dispose();
            _recorded = null;
        }
        if (_recorded == null && _ranOnce)
        {
            _recorded = be.Record(Enqueue);
            _recordedFrequencies = _model.Rope.Frequencies;
        }
        if (_recorded != null) _recorded.Replay();
        else Enqueue();
        _cache.Length = position + 1;
        _ranOnce = true;
    }

    /// <summary>Runs <paramref name="token"/> and returns the greedy next token (picked on the backend; 4 bytes come back).</summary>
    public int RunArgMax(int token)
    {
        if (!_argMax) throw new InvalidOperationException("this step was made without argmax");
        Run(token);
        return Picked();
    }

    /// <summary>
    /// Runs <paramref name="token"/> and returns the next token drawn on the backend by the step's filter with the random
    /// <paramref name="drawBits"/> (53 bits, <see cref="TokenFilter.Uniform"/>); 4 bytes come back.
    /// </summary>
    public int RunDraw(int token, ulong drawBits)
    {
        if (_draw == null) throw new InvalidOperationException("this step was made without a draw");
        Run(token, drawBits);
        return Picked();
    }

    int Picked()
    {
        Span<int> picked = stackalloc int[1];
        _model.Backend.ToHost(_picked, picked);
        return picked[0];
    }

    void Enqueue()
    {
        var be = _model.Backend;
        be.Embedding(_model.Embedding, _token, _hidden);
        foreach (var layer in _model.Layers)
            layer.Forward(be, _model.Shape, _hidden, _position, _spans, _activations, _cache, _model.Rope);
        _model.Head(_hidden, Logits);
        if (_argMax) be.ArgMax(Logits, _picked);
        else if (_draw is TokenFilter draw) be.Sample(Logits, draw, _drawBits, _picked);
    }

    public void Dispose()
    {
        _recorded?.Dispose();
        _activations.Dispose();
        _hidden.Dispose();
        Logits.Dispose();
        _picked.Dispose();
        _state.Dispose();
    }
}
