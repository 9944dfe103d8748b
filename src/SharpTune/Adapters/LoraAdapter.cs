using System.Runtime.InteropServices;
using SharpTune.Formats;
using SharpTune.Models;
using SharpTune.Tensors;

namespace SharpTune.Adapters;

/// <summary>
/// A named set of LoRA (or DoRA) branches on a model's linear layers, plus any modules_to_save, read from and written to
/// PEFT's format: adapter_config.json + adapter_model.safetensors with keys <c>base_model.model.{module}.lora_A.weight</c>,
/// <c>.lora_B.weight</c>, DoRA's <c>.lora_magnitude_vector</c> (PEFT saves it without a <c>.weight</c> suffix; both spellings
/// load) and the saved modules' own tensors (see <see cref="ModulesToSave"/>).
/// </summary>
public sealed class LoraAdapter
{
    const string KeyPrefix = "base_model.model.";

    LoraAdapter(string name, LoraConfig config, List<(Linear Module, LoraBranch Branch)> branches, ModulesToSave? saved)
    {
        Name = name;
        Config = config;
        Branches = branches;
        SavedModules = saved;
    }

    public string Name { get; }
    public LoraConfig Config { get; }
    public IReadOnlyList<(Linear Module, LoraBranch Branch)> Branches { get; }
    /// <summary>The fully trained modules (PEFT's modules_to_save), or null.</summary>
    public ModulesToSave? SavedModules { get; }

    /// <summary>DoRA's magnitude key as PEFT saves it (get_peft_model_state_dict strips the DoraLinearLayer's ".weight").</summary>
    public static string MagnitudeKey(string module) => $"{KeyPrefix}{module}.lora_magnitude_vector";

    /// <summary>
    /// Loads a PEFT adapter folder onto <paramref name="model"/>; <paramref name="weight"/> multiplies its scaling
    /// (several adapters may be stacked). Every tensor in the file must land on a module of the model.
    /// </summary>
    public static LoraAdapter Load(string dir, TransformerModel model, float weight = 1f, string? name = null)
    {
        if (!Directory.Exists(dir)) throw new SharpTuneException($"{dir}: adapter folder not found");
        var configPath = Path.Combine(dir, "adapter_config.json");
        if (!File.Exists(configPath)) throw new SharpTuneException($"{dir}: no adapter_config.json (not a PEFT adapter folder)");
        var config = LoraConfig.Load(configPath);
        var weightsPath = Path.Combine(dir, "adapter_model.safetensors");
        if (!File.Exists(weightsPath)) throw new SharpTuneException($"{dir}: no adapter_model.safetensors");
        using var file = Checkpoint.Open(weightsPath);
        name ??= Path.GetFileName(Path.GetFullPath(dir).TrimEnd('/'));
        var unused = new HashSet<string>(file.Names);
        var branches = new List<(Linear, LoraBranch)>();
        var be = model.Backend;
        foreach (var module in AllLinears(model))
        {
            string a = $"{KeyPrefix}{module.Name}.lora_A.weight", b = $"{KeyPrefix}{module.Name}.lora_B.weight";
            if (!file.Contains(a) && !file.Contains(b)) continue;
            if (!file.Contains(a) || !file.Contains(b)) throw new SharpTuneException($"{weightsPath}: {module.Name} has only one of lora_A / lora_B");
            var ea = file.Entry(a);
            var eb = file.Entry(b);
            int rank = (int)ea.Shape[0];
            if (ea.Shape.Length != 2 || eb.Shape.Length != 2 || ea.Shape[1] != module.InFeatures || eb.Shape[0] != module.OutFeatures || eb.Shape[1] != rank)
                throw new SharpTuneException($"{weightsPath}: {module.Name}: lora_A [{string.Join(",", ea.Shape)}] / lora_B [{string.Join(",", eb.Shape)}] do not fit a [{module.OutFeatures},{module.InFeatures}] layer");
            var branch = new LoraBranch(name,
                be.FromHost(file.ReadFloat32(a), DType.F32, rank, module.InFeatures),
                be.FromHost(file.ReadFloat32(b), DType.F32, module.OutFeatures, rank),
                config.ScaleFor(module.Name) * weight, (float)config.Dropout,
                config.UseDora ? ReadMagnitude(file, weightsPath, module, unused, be) : null)
            { StreamId = StreamIdOf(module.Name, name) };
            module.Adapters.Add(branch);
            branches.Add((module, branch));
            unused.Remove(a);
            unused.Remove(b);
        }
        var saved = AttachSavedModules(model, config, branches, configPath);
        saved?.Load(file, weightsPath, unused, be);
        if (unused.Count > 0) throw new SharpTuneException($"{weightsPath}: tensor '{unused.Order().First()}' matches no module of the model");
        if (branches.Count == 0) throw new SharpTuneException($"{weightsPath}: no LoRA weights found");
        return new LoraAdapter(name, config, branches, saved);
    }

    /// <summary>DoRA's magnitude [out] of one module, under PEFT's key with or without the ".weight" suffix.</summary>
    static Tensor ReadMagnitude(Checkpoint file, string path, Linear module, ISet<string> unused, IBackend be)
    {
        string key = MagnitudeKey(module.Name);
        if (!file.Contains(key)) key += ".weight";
        if (!file.Contains(key)) throw new SharpTuneException($"{path}: use_dora is set but {module.Name} has no lora_magnitude_vector");
        var shape = file.Entry(key).Shape;
        if (shape.Length != 1 || shape[0] != module.OutFeatures)
            throw new SharpTuneException($"{path}: {key} has shape [{string.Join(",", shape)}], expected [{module.OutFeatures}]");
        unused.Remove(key);
        return be.FromHost(file.ReadFloat32(key), DType.F32, module.OutFeatures);
    }

    /// <summary>
    /// Adds fresh branches to every targeted module: A Kaiming-uniform (PEFT's default, bound 1/√in) or Gaussian (std 1/r),
    /// B zero, so the model starts unchanged; with DoRA the magnitude starts at the row norms ‖W + s·B·A‖, so it starts
    /// unchanged too. Then gives the modules_to_save their trainable copies. Initialization is a pure function of <paramref name="seed"/>.
    /// </summary>
    public static LoraAdapter Create(TransformerModel model, LoraConfig config, ulong seed, string name = "default")
    {
        var be = model.Backend;
        var branches = new List<(Linear, LoraBranch)>();
        foreach (var module in AllLinears(model))
        {
            if (!config.Targets(module.Name)) continue;
            if (module.Name == "lm_head") throw new SharpTuneException("LoRA on lm_head is not supported; use --modules_to_save lm_head for full training of the head");
            int rank = config.RankFor(module.Name);
            ulong stream = StreamIdOf(module.Name, name);
            var a = new float[rank * module.InFeatures];
            var b = new float[module.OutFeatures * rank];
            var random = new Xoshiro256(CounterRandom.Hash(seed, stream));
            switch (config.InitWeights)
            {
                case "gaussian":
                    for (int i = 0; i < a.Length; i++) a[i] = (float)(Gaussian(random) / rank);
                    break;
                case "true":
                case "false":
                    float bound = 1f / MathF.Sqrt(module.InFeatures);
                    for (int i = 0; i < a.Length; i++) a[i] = (float)((random.NextDouble() * 2 - 1) * bound);
                    if (config.InitWeights == "false")
                    {
                        float boundB = 1f / MathF.Sqrt(rank);
                        for (int i = 0; i < b.Length; i++) b[i] = (float)((random.NextDouble() * 2 - 1) * boundB);
                    }
                    break;
                default:
                    throw new SharpTuneException($"--init_weights '{config.InitWeights}' is not supported (true, false, gaussian)");
            }
            var tensorA = be.FromHost(a, DType.F32, rank, module.InFeatures);
            var tensorB = be.FromHost(b, DType.F32, module.OutFeatures, rank);
            float scale = config.ScaleFor(module.Name);
            Tensor? magnitude = null;
            if (config.UseDora)
            {
                magnitude = be.Allocate(DType.F32, module.OutFeatures);
                DoraPath.WeightNorms(be, module.Weight, tensorA, tensorB, scale, magnitude);
            }
            var branch = new LoraBranch(name, tensorA, tensorB, scale, (float)config.Dropout, magnitude) { StreamId = stream };
            module.Adapters.Add(branch);
            branches.Add((module, branch));
        }
        if (branches.Count == 0) throw new SharpTuneException($"--target_modules {string.Join(" ", config.TargetModules)} matches no linear layer of the model");
        return new LoraAdapter(name, config, branches, AttachSavedModules(model, config, branches, "--modules_to_save"));
    }

    /// <summary>The modules_to_save copies; when a name is bad the branches just added come off again, leaving the model as it was.</summary>
    static ModulesToSave? AttachSavedModules(TransformerModel model, LoraConfig config, List<(Linear Module, LoraBranch Branch)> branches, string where)
    {
        if (config.ModulesToSave is not { Count: > 0 } names) return null;
        try
        {
            return ModulesToSave.Attach(model, names, where);
        }
        catch (SharpTuneException)
        {
            foreach (var (module, branch) in branches)
            {
                module.Adapters.Remove(branch);
                branch.Dispose();
            }
            throw;
        }
    }

    /// <summary>Writes adapter_config.json and adapter_model.safetensors (float32) into <paramref name="dir"/>.</summary>
    public void Save(string dir, IBackend backend)
    {
        Directory.CreateDirectory(dir);
        var tensors = new List<TensorToWrite>();
        foreach (var (module, branch) in Branches)
        {
            tensors.Add(ToWrite($"{KeyPrefix}{module.Name}.lora_A.weight", branch.A, backend));
            tensors.Add(ToWrite($"{KeyPrefix}{module.Name}.lora_B.weight", branch.B, backend));
            if (branch.Magnitude != null) tensors.Add(ToWrite(MagnitudeKey(module.Name), branch.Magnitude, backend));
        }
        if (SavedModules != null) tensors.AddRange(SavedModules.Parameters.Select(p => ToWrite(p.Key, p.Tensor, backend)));
        SafeTensorsWriter.Write(Path.Combine(dir, "adapter_model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        AtomicFile.WriteAllText(Path.Combine(dir, "adapter_config.json"), Config.ToPeftJson(Branches.Select(b => b.Module.Name)));
    }

    /// <summary>
    /// Computes each DoRA branch's magnitude scale once, for inference: valid while the base weights and this adapter's
    /// tensors stay as they are (a trainer must not call it).
    /// </summary>
    public void FreezeForInference(IBackend backend)
    {
        foreach (var (module, branch) in Branches)
            if (branch.Magnitude != null && branch.FrozenMagnitudeScale == null)
                branch.FrozenMagnitudeScale = DoraPath.MagnitudeScale(backend, module, branch);
    }

    /// <summary>Removes this adapter's branches from the model and gives the saved modules their original tensors back.</summary>
    public void Detach()
    {
        foreach (var (module, branch) in Branches)
        {
            module.Adapters.Remove(branch);
            branch.Dispose();
        }
        SavedModules?.Restore();
    }

    internal static TensorToWrite ToWrite(string name, Tensor t, IBackend backend)
    {
        var values = new float[t.Count];
        backend.ToHost(t, values);
        return new TensorToWrite(name, DType.F32, t.Shape.Select(d => (long)d).ToArray(), MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
    }

    static IEnumerable<Linear> AllLinears(TransformerModel model) => model.DecoderLinears.Append(model.LmHead);

    /// <summary>FNV-1a of "module/adapter": a stable id for the branch's random streams.</summary>
    static ulong StreamIdOf(string module, string adapter)
    {
        ulong h = 14695981039346656037UL;
        foreach (char c in module + "/" + adapter) h = (h ^ c) * 1099511628211UL;
        return h;
    }

    static double Gaussian(Xoshiro256 random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
