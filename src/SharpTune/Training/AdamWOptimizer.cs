using SharpTune.Tensors;

namespace SharpTune.Training;

/// <summary>
/// AdamW with decoupled weight decay over a <see cref="GradientSet"/>; no decay on biases and norm weights (transformers'
/// Trainer rule). Moments are float32 and saved with checkpoints so a resumed run continues exactly.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    readonly IBackend _backend;
    readonly GradientSet _grads;
    readonly Dictionary<Tensor, (Tensor M, Tensor V)> _moments = new(ReferenceEqualityComparer.Instance);

    public AdamWOptimizer(IBackend backend, GradientSet grads, double beta1, double beta2, double epsilon, double weightDecay)
    {
        _backend = backend;
        _grads = grads;
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
        WeightDecay = weightDecay;
        foreach (var (_, p) in grads.Parameters) _moments[p] = (backend.Zeros(DType.F32, p.Shape), backend.Zeros(DType.F32, p.Shape));
    }

    public double Beta1 { get; }
    public double Beta2 { get; }
    public double Epsilon { get; }
    public double WeightDecay { get; }
    /// <summary>Updates taken so far.</summary>
    public int Step { get; set; }

    public static bool Decays(string name) => !(name.Contains("bias") || name.Contains("norm"));

    public void Update(double learningRate)
    {
        Step++;
        var tensors = _grads.Parameters.Select(named =>
        {
            var (m, v) = _moments[named.Parameter];
            return new AdamWTensor(named.Parameter, _grads.GradientOf(named.Parameter), m, v, Decays(named.Name) ? (float)WeightDecay : 0f);
        }).ToArray();
        _backend.AdamW(tensors, (float)learningRate, (float)Beta1, (float)Beta2, (float)Epsilon, Step);
    }

    /// <summary>The moment tensors by parameter name, for checkpoints (keys <c>{name}.exp_avg</c> / <c>.exp_avg_sq</c>).</summary>
    public IEnumerable<(string Key, Tensor Tensor)> State()
    {
        foreach (var (name, p) in _grads.Parameters)
        {
            var (m, v) = _moments[p];
            yield return (name + ".exp_avg", m);
            yield return (name + ".exp_avg_sq", v);
        }
    }

    public void Dispose()
    {
        foreach (var (m, v) in _moments.Values)
        {
            m.Dispose();
            v.Dispose();
        }
    }
}
