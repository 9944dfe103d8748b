using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using SharpTune.Adapters;
using SharpTune.Backends.Cpu;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;
using SharpTune.Training;

namespace SharpTune.Tests.Adapters;

/// <summary>
/// DoRA against PEFT's formula (DoraLinearLayer / DoraLinearVariant) computed here in float64 from the weights: forward with
/// and without dropout, layer gradients against finite differences, merging, and the adapter file round trip in PEFT's keys.
/// No PEFT run is available here (no Python), so the reference is the formula read from PEFT's source.
/// </summary>
public class DoraTests
{
    static readonly CpuBackend Be = CpuBackend.Instance;

    [Fact]
    public void InferenceForwardMatchesFloat64Reference()
    {
        using var model = LoadOwned(TinyModel.Create("qwen2"));
        var adapter = CreateDora(model, dropout: 0);
        // q_proj has a bias in Qwen2: DoRA must not rescale it.
        var (linear, branch) = adapter.Branches.First(b => b.Module.Bias != null);
        var x = RandomValues(5 * linear.InFeatures, 21);
        using var xt = Be.FromHost(x, DType.F32, 5, linear.InFeatures);
        using var y = Be.Allocate(DType.F32, 5, linear.OutFeatures);
        linear.Forward(Be, xt, y);
        var expected = ReferenceForward(linear, branch, x, x, 5);
        AssertClose(expected, y.AsSpan(), 1e-5);

        // Frozen for inference: the same scale, computed once.
        adapter.FreezeForInference(Be);
        Assert.NotNull(branch.FrozenMagnitudeScale);
        var computed = y.AsSpan().ToArray();
        linear.Forward(Be, xt, y);
        Assert.Equal(computed, y.AsSpan().ToArray());
        branch.Scale *= 2;
        Assert.Null(branch.FrozenMagnitudeScale);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    public void TrainingForwardMatchesFloat64Reference(double dropout)
    {
        using var model = LoadOwned(TinyModel.Create("qwen2"));
        var adapter = CreateDora(model, dropout);
        var (linear, branch) = adapter.Branches.First(b => b.Module.Bias != null);
        int rows = 6;
        var x = RandomValues(rows * linear.InFeatures, 22);
        using var xt = Be.FromHost(x, DType.F32, rows, linear.InFeatures);
        using var y = Be.Allocate(DType.F32, rows, linear.OutFeatures);
        using var pass = new LoraPass(99);
        linear.ForwardTrain(Be, xt, y, pass);
        // PEFT with active dropout: base(x) + bias + (g − 1)⊙(x_d·Wᵀ) + g⊙s·x_d·Aᵀ·Bᵀ, x_d with the branch's own mask.
        using var dropped = Be.Allocate(DType.F32, rows, linear.InFeatures);
        Be.Dropout(xt, branch.Dropout, pass.SeedFor(branch), dropped);
        var xd = dropped.AsSpan().ToArray();
        Assert.Equal(dropout > 0, xd.Contains(0f));
        AssertClose(ReferenceForward(linear, branch, x, xd, rows), y.AsSpan(), 1e-5);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    public void LayerGradientsMatchFiniteDifferences(double dropout)
    {
        using var model = LoadOwned(TinyModel.Create("qwen2"));
        var adapter = CreateDora(model, dropout);
        var (linear, branch) = adapter.Branches.First(b => b.Module.Bias != null);
        int rows = 4;
        using var x = Be.FromHost(RandomValues(rows * linear.InFeatures, 23), DType.F32, rows, linear.InFeatures);
        var weights = RandomValues(rows * linear.OutFeatures, 24);
        using var dy = Be.FromHost(weights, DType.F32, rows, linear.OutFeatures);
        using var y = Be.Allocate(DType.F32, rows, linear.OutFeatures);
        using var pass = new LoraPass(7);
        double Objective()
        {
            linear.ForwardTrain(Be, x, y, pass);
            var ys = y.AsSpan();
            double sum = 0;
            for (int i = 0; i < ys.Length; i++) sum += (double)ys[i] * weights[i];
            return sum;
        }
        using var grads = new GradientSet(Be);
        grads.Add("A", branch.A);
        grads.Add("B", branch.B);
        grads.Add("m", branch.Magnitude!);
        using var dx = Be.Allocate(DType.F32, rows, linear.InFeatures);
        Objective();
        linear.Backward(Be, x, dy, dx, accumulateDx: false, pass, grads);
        var hold = new NormHolder(adapter);
        var random = new Xoshiro256(31);
        foreach (var (name, tensor, gradient) in grads.Parameters.Select(p => (p.Name, p.Parameter, grads.GradientOf(p.Parameter))).Append(("x", x, dx)))
            CheckDirection(name, tensor, gradient.AsSpan().ToArray(), Objective, () => hold.Apply(tensor), random, 1e-3);
    }

    [Fact]
    public void MergedWeightsGiveTheUnmergedLogits()
    {
        using var model = LoadOwned(TinyModel.Create("qwen2"));
        CreateDora(model, dropout: 0);
        int[] tokens = [3, 17, 9, 22, 5, 31];
        var before = Reference.Logits(model, tokens, allPositions: true);
        Assert.Equal(14, LoraMerge.MergeAll(model));
        var after = Reference.Logits(model, tokens, allPositions: true);
        double scale = before.Max(Math.Abs);
        for (int i = 0; i < before.Length; i++) Assert.True(Math.Abs(after[i] - before[i]) <= 1e-5 * scale, $"logit {i}: {after[i]} vs {before[i]}");
    }

    [Fact]
    public void AdapterFileUsesPeftKeysAndRoundTrips()
    {
        var modelDir = TinyModel.Create("llama");
        int[] tokens = [4, 8, 15, 16, 23];
        var dir = TestData.TempDir("dora-adapter");
        float[] expected;
        using (var model = TransformerModel.Load(modelDir, Be))
        {
            var adapter = CreateDora(model, dropout: 0.1);
            adapter.Save(dir, Be);
            expected = Reference.Logits(model, tokens, allPositions: true);
        }
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!;
        Assert.True(config["use_dora"]!.GetValue<bool>());
        var weightsPath = Path.Combine(dir, "adapter_model.safetensors");
        using (var file = Checkpoint.Open(weightsPath))
        {
            const string q = "base_model.model.model.layers.0.self_attn.q_proj";
            Assert.True(file.Contains($"{q}.lora_magnitude_vector"));
            Assert.False(file.Contains($"{q}.lora_magnitude_vector.weight"));
            Assert.Equal([16L], file.Entry($"{q}.lora_magnitude_vector").Shape);
            Assert.Equal(14 * 3, file.Names.Count());
        }
        Assert.Equal(expected, LogitsWithAdapter(modelDir, dir, tokens));

        // The in-memory spelling with ".weight" (older PEFT files) loads the same.
        var renamed = TestData.TempDir("dora-renamed");
        File.Copy(Path.Combine(dir, "adapter_config.json"), Path.Combine(renamed, "adapter_config.json"));
        using (var file = Checkpoint.Open(weightsPath))
        {
            var tensors = file.Names.Select(n => new TensorToWrite(n.EndsWith("lora_magnitude_vector") ? n + ".weight" : n, DType.F32,
                file.Entry(n).Shape, MemoryMarshal.AsBytes(file.ReadFloat32(n).AsSpan()).ToArray())).ToList();
            SafeTensorsWriter.Write(Path.Combine(renamed, "adapter_model.safetensors"), tensors);
        }
        Assert.Equal(expected, LogitsWithAdapter(modelDir, renamed, tokens));
    }

    [Fact]
    public void MissingMagnitudeIsAnErrorNamingTheModule()
    {
        var modelDir = TinyModel.Create("llama");
        var dir = TestData.TempDir("dora-missing");
        using (var model = TransformerModel.Load(modelDir, Be))
            LoraAdapter.Create(model, new LoraConfig { Rank = 2, Alpha = 4, InitWeights = "false", TargetModules = ["q_proj"] }, seed: 1).Save(dir, Be);
        var configPath = Path.Combine(dir, "adapter_config.json");
        File.WriteAllText(configPath, File.ReadAllText(configPath).Replace("\"use_dora\": false", "\"use_dora\": true"));
        using var fresh = TransformerModel.Load(modelDir, Be);
        var e = Assert.Throws<SharpTuneException>(() => LoraAdapter.Load(dir, fresh));
        Assert.Contains("model.layers.0.self_attn.q_proj", e.Message);
        Assert.Contains("lora_magnitude_vector", e.Message);
    }

    /// <summary>A DoRA adapter on every linear layer with random B and magnitudes moved off their initial norms, so every term matters.</summary>
    internal static LoraAdapter CreateDora(TransformerModel model, double dropout)
    {
        var adapter = LoraAdapter.Create(model, new LoraConfig { Rank = 4, Alpha = 8, Dropout = dropout, UseDora = true, InitWeights = "false" }, seed: 5);
        var random = new Xoshiro256(17);
        foreach (var (module, branch) in adapter.Branches)
        {
            var m = branch.Magnitude!.AsSpan();
            var norms = RowNorms(module, branch);
            // Created at the norms of W + s·B·A (PEFT's initialization).
            for (int o = 0; o < m.Length; o++) Assert.True(Math.Abs(m[o] - norms[o]) <= 1e-5 * norms[o], $"{module.Name}: magnitude {m[o]} vs norm {norms[o]}");
            for (int o = 0; o < m.Length; o++) m[o] *= (float)(1 + 0.5 * (random.NextDouble() * 2 - 1));
        }
        return adapter;
    }

    /// <summary>‖W + s·B·A‖ per output row in float64.</summary>
    internal static double[] RowNorms(Linear linear, LoraBranch branch)
    {
        var w = linear.Weight.AsSpan();
        var a = branch.A.AsSpan();
        var b = branch.B.AsSpan();
        int outF = linear.OutFeatures, inF = linear.InFeatures, r = branch.Rank;
        var norms = new double[outF];
        for (int o = 0; o < outF; o++)
        {
            double sum = 0;
            for (int i = 0; i < inF; i++)
            {
                double v = w[o * inF + i];
                for (int k = 0; k < r; k++) v += branch.Scale * (double)b[o * r + k] * a[k * inF + i];
                sum += v * v;
            }
            norms[o] = Math.Sqrt(sum);
        }
        return norms;
    }

    /// <summary>PEFT's DoRA layer in float64: x·Wᵀ + b + (g − 1)⊙(x_d·Wᵀ) + g⊙s·(x_d·Aᵀ)·Bᵀ.</summary>
    static double[] ReferenceForward(Linear linear, LoraBranch branch, float[] x, float[] xd, int rows)
    {
        var w = linear.Weight.AsSpan();
        var a = branch.A.AsSpan();
        var b = branch.B.AsSpan();
        var m = branch.Magnitude!.AsSpan();
        var bias = linear.Bias?.AsSpan().ToArray();
        var norms = RowNorms(linear, branch);
        int outF = linear.OutFeatures, inF = linear.InFeatures, r = branch.Rank;
        var y = new double[rows * outF];
        for (int n = 0; n < rows; n++)
        {
            var t = new double[r];
            for (int k = 0; k < r; k++)
                for (int i = 0; i < inF; i++) t[k] += (double)xd[n * inF + i] * a[k * inF + i];
            for (int o = 0; o < outF; o++)
            {
                double baseX = 0, baseXd = 0, lora = 0;
                for (int i = 0; i < inF; i++)
                {
                    baseX += (double)x[n * inF + i] * w[o * inF + i];
                    baseXd += (double)xd[n * inF + i] * w[o * inF + i];
                }
                for (int k = 0; k < r; k++) lora += t[k] * b[o * r + k];
                double g = m[o] / norms[o];
                y[n * outF + o] = baseX + (bias?[o] ?? 0) + (g - 1) * baseXd + g * branch.Scale * lora;
            }
        }
        return y;
    }

    /// <summary>
    /// Keeps g = m / ‖W + s·B·A‖ fixed while a test moves A or B: PEFT detaches the norm, so the gradient of A and B is the
    /// derivative with the norm held constant, which is what a finite difference measures when m moves with the norm.
    /// </summary>
    internal sealed class NormHolder
    {
        readonly List<(Linear Module, LoraBranch Branch, float[] Magnitude, double[] Norms)> _branches;

        public NormHolder(LoraAdapter adapter) =>
            _branches = adapter.Branches.Select(b => (b.Module, b.Branch, b.Branch.Magnitude!.AsSpan().ToArray(), RowNorms(b.Module, b.Branch))).ToList();

        /// <summary>Call after changing <paramref name="changed"/>; a no-op unless it is some branch's A or B.</summary>
        public void Apply(Tensor changed)
        {
            foreach (var (module, branch, magnitude, norms) in _branches)
            {
                if (!ReferenceEquals(changed, branch.A) && !ReferenceEquals(changed, branch.B)) continue;
                var now = RowNorms(module, branch);
                var m = branch.Magnitude!.AsSpan();
                for (int o = 0; o < m.Length; o++) m[o] = (float)(magnitude[o] * (now[o] / norms[o]));
            }
        }
    }

    /// <summary>Central difference of <paramref name="objective"/> along a random unit direction against the analytic gradient.</summary>
    static void CheckDirection(string name, Tensor parameter, float[] gradient, Func<double> objective, Action afterChange, Xoshiro256 random, double tolerance)
    {
        var original = parameter.AsSpan().ToArray();
        var direction = new double[original.Length];
        for (int i = 0; i < direction.Length; i++) direction[i] = random.NextDouble() * 2 - 1;
        double length = Math.Sqrt(direction.Sum(d => d * d));
        double analytic = 0;
        for (int i = 0; i < direction.Length; i++) analytic += gradient[i] * (direction[i] /= length);
        const double eps = 1e-2;
        double At(double sign)
        {
            var values = parameter.AsSpan();
            for (int i = 0; i < values.Length; i++) values[i] = (float)(original[i] + sign * eps * direction[i]);
            afterChange();
            return objective();
        }
        double numeric = (At(1) - At(-1)) / (2 * eps);
        original.CopyTo(parameter.AsSpan());
        afterChange();
        double error = Math.Abs(numeric - analytic) / Math.Max(1e-3, Math.Abs(numeric));
        Assert.True(error < tolerance, $"{name}: analytic {analytic}, numeric {numeric}");
    }

    static float[] LogitsWithAdapter(string modelDir, string adapterDir, int[] tokens)
    {
        using var model = TransformerModel.Load(modelDir, Be);
        LoraAdapter.Load(adapterDir, model);
        return Reference.Logits(model, tokens, allPositions: true);
    }

    static float[] RandomValues(int count, ulong seed)
    {
        var random = new Xoshiro256(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return values;
    }

    static void AssertClose(double[] expected, ReadOnlySpan<float> actual, double relative)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(Math.Abs);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= relative * scale, $"[{i}]: {actual[i]} vs {expected[i]}");
    }

    internal static TransformerModel LoadOwned(string dir)
    {
        var model = TransformerModel.Load(dir, Be);
        model.MakeWeightsWritable();
        return model;
    }
}
