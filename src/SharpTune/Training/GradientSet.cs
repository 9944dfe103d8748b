using SharpTune.Tensors;

namespace SharpTune.Training;

/// <summary>
/// The trainable tensors and their float32 gradients, keyed by the parameter tensor itself: a tensor without an entry is
/// frozen. Tied weights are one tensor, so their gradients meet in one buffer.
/// </summary>
public sealed class GradientSet : IDisposable
{
    readonly Dictionary<Tensor, Tensor> _grads = new(ReferenceEqualityComparer.Instance);
    readonly List<(string Name, Tensor Parameter)> _order = [];
    readonly IBackend _backend;

    public GradientSet(IBackend backend) => _backend = backend;

    /// <summary>Marks <paramref name="parameter"/> (float32) trainable under <paramref name="name"/> (its checkpoint key).</summary>
    public void Add(string name, Tensor parameter)
    {
        if (parameter.DType != DType.F32) throw new ArgumentException($"{name}: trainable tensors are float32");
        if (_grads.ContainsKey(parameter)) return;
        _grads[parameter] = _backend.Zeros(DType.F32, parameter.Shape);
        _order.Add((name, parameter));
    }

    /// <summary>The gradient buffer of a trainable tensor, or null when it is frozen.</summary>
    public Tensor? For(Tensor parameter) => _grads.GetValueOrDefault(parameter);

    public IReadOnlyList<(string Name, Tensor Parameter)> Parameters => _order;
    public Tensor GradientOf(Tensor parameter) => _grads[parameter];

    public void Zero()
    {
        foreach (var g in _grads.Values) _backend.Fill(g, 0f);
    }

    /// <summary>The global L2 norm of all gradients (summed in a fixed order).</summary>
    public double Norm()
    {
        var sums = new double[_order.Count];
        _backend.SumOfSquares(_order.Select(p => _grads[p.Parameter]).ToArray(), sums);
        double sum = 0;
        foreach (var s in sums) sum += s;
        return Math.Sqrt(sum);
    }

    public void Scale(float factor)
    {
        foreach (var g in _grads.Values) _backend.Scale(g, factor);
    }

    public long ParameterCount => _order.Sum(p => p.Parameter.Count);

    public void Dispose()
    {
        foreach (var g in _grads.Values) g.Dispose();
    }
}
