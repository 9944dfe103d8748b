using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

/// <summary>
/// Every trainable kind of tensor (embedding, norms, q/k norms, biases, linear weights, output head, LoRA A/B) checked against
/// central finite differences of the loss along a random direction, on small random Llama, Qwen2 and Qwen3 models.
/// </summary>
public class FiniteDifferenceTests
{
    [Theory]
    [InlineData("llama", false)]
    [InlineData("qwen2", true)]
    [InlineData("qwen3", false)]
    public void FullFineTuningGradientsMatchFiniteDifferences(string modelType, bool tied)
    {
        using var model = LoadOwned(TinyModel.Create(modelType, tied: tied));
        using var grads = new GradientSet(CpuBackend.Instance);
        grads.Add("embed", model.Embedding);
        grads.Add("norm", model.FinalNorm);
        if (!model.TiedEmbeddings) grads.Add("lm_head", model.LmHead.Weight);
        foreach (var layer in model.Layers)
        {
            grads.Add($"{layer.Index}.in_norm", layer.InputNorm);
            grads.Add($"{layer.Index}.post_norm", layer.PostAttentionNorm);
            if (layer.QNorm != null) grads.Add($"{layer.Index}.q_norm", layer.QNorm);
            if (layer.KNorm != null) grads.Add($"{layer.Index}.k_norm", layer.KNorm);
            foreach (var linear in layer.Linears)
            {
                grads.Add(linear.Name, linear.Weight);
                if (linear.Bias != null) grads.Add(linear.Name + ".bias", linear.Bias);
            }
        }
        CheckAll(model, grads);
    }

    [Fact]
    public void LoraGradientsMatchFiniteDifferences()
    {
        using var model = LoadOwned(TinyModel.Create("qwen2"));
        var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0, InitWeights = "false" }, seed: 3);
        using var grads = new GradientSet(CpuBackend.Instance);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add(module.Name + ".A", branch.A);
            grads.Add(module.Name + ".B", branch.B);
        }
        CheckAll(model, grads);
    }

    [Fact]
    public void DoraGradientsMatchFiniteDifferences()
    {
        using var model = LoadOwned(TinyModel.Create("qwen2"));
        var adapter = SharpTune.Tests.Adapters.DoraTests.CreateDora(model, dropout: 0);
        using var grads = new GradientSet(CpuBackend.Instance);
        foreach (var (module, branch) in adapter.Branches)
        {
            grads.Add(module.Name + ".A", branch.A);
            grads.Add(module.Name + ".B", branch.B);
            grads.Add(module.Name + ".m", branch.Magnitude!);
        }
        // A smaller step than the other checks: v_proj.B's directional derivative here is ~1e-5, below the O(eps²) truncation of a 1e-2 step.
        CheckAll(model, grads, new SharpTune.Tests.Adapters.DoraTests.NormHolder(adapter).Apply, eps: 3e-3f);
    }

    /// <summary>
    /// Checks every parameter's gradient along a random direction; <paramref name="afterChange"/> runs whenever a parameter's
    /// values were changed (DoRA uses it to hold its detached norms constant).
    /// </summary>
    static void CheckAll(TransformerModel model, GradientSet grads, Action<Tensor>? afterChange = null, float eps = 1e-2f)
    {
        // Two samples packed in one row plus a second row: exercises attention spans and the shifted labels.
        var batch = TrainingBatch.FromRows(
            [[5, 9, 3, 17, 22, 8, 1, 30, 12], [4, 4, 19, 33, 7]],
            [[-100, 9, 3, 17, -100, 8, 1, 30, 12], [-100, 4, 19, 33, 7]],
            [[0, 1, 2, 3, 0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]);
        var step = new CausalLmStep(model, gradientCheckpointing: true);
        float scale = 1f / batch.LabelCount;
        step.ForwardBackward(batch, scale, grads, dropoutSeed: 0);
        var random = new Xoshiro256(11);
        foreach (var (name, parameter) in grads.Parameters)
        {
            var original = parameter.AsSpan().ToArray();
            var g = grads.GradientOf(parameter).AsSpan();
            // A random unit direction, tilted halfway towards the analytic gradient: a purely random one projects a small
            // gradient to below the resolution of float32 finite differences, while the tilt keeps the projection large and a
            // wrong gradient (sign, scale or direction) still changes the numeric derivative. A unit step keeps the O(eps²)
            // truncation error negligible whatever the tensor's size.
            var direction = new float[original.Length];
            for (int i = 0; i < direction.Length; i++) direction[i] = (float)(random.NextDouble() * 2 - 1);
            Normalize(direction);
            float gradientNorm = MathF.Sqrt(TensorPrimitivesSumOfSquares(g));
            if (gradientNorm > 0)
                for (int i = 0; i < direction.Length; i++) direction[i] += g[i] / gradientNorm;
            Normalize(direction);
            double analytic = 0;
            for (int i = 0; i < g.Length; i++) analytic += g[i] * (double)direction[i];
                        double Loss(float sign)
            {
                var values = parameter.AsSpan();
                for (int i = 0; i < values.Length; i++) values[i] = original[i] + sign * eps * direction[i];
                afterChange?.Invoke(parameter);
                return step.Evaluate(batch).LossSum * scale;
            }
            double numeric = (Loss(1) - Loss(-1)) / (2 * eps);
            original.CopyTo(parameter.AsSpan());
            afterChange?.Invoke(parameter);
            double error = Math.Abs(numeric - analytic) / Math.Max(1e-3, Math.Abs(numeric));
            Assert.True(error < 2e-2, $"{name}: analytic {analytic}, numeric {numeric}");
        }
    }

    static void Normalize(float[] v)
    {
        float length = MathF.Sqrt(v.Sum(d => d * d));
        for (int i = 0; i < v.Length; i++) v[i] /= length;
    }

    static float TensorPrimitivesSumOfSquares(ReadOnlySpan<float> x) => System.Numerics.Tensors.TensorPrimitives.SumOfSquares(x);

    /// <summary>Loads with every weight in owned float32 memory (the memory map is read-only).</summary>
    static TransformerModel LoadOwned(string dir)
    {
        var model = TransformerModel.Load(dir, CpuBackend.Instance);
        model.MakeWeightsWritable();
        return model;
    }
}
