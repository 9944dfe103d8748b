using System.Text.Json.Nodes;
using SharpTune.Formats;
using SharpTune.Tensors;

namespace SharpTune.Tests.Formats;

public class ModelConfigTests : IDisposable
{
    readonly string dir = TestData.TempDir();

    public void Dispose() => Directory.Delete(dir, true);

    /// <summary>A fixture's config.json, edited by <paramref name="edit"/>, written to a temp folder.</summary>
    string EditedConfig(string model, Action<JsonObject> edit)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Model(model), ModelConfig.FileName)))!.AsObject();
        edit(json);
        File.WriteAllText(Path.Combine(dir, ModelConfig.FileName), json.ToJsonString());
        return dir;
    }

    string LoadFails(string folder)
    {
        var e = Assert.Throws<SharpTuneException>(() => ModelConfig.Load(folder));
        Assert.Contains(Path.Combine(folder, ModelConfig.FileName), e.Message);
        return e.Message;
    }

    [SkippableFact]
    public void Stories260K()
    {
        var c = ModelConfig.Load(TestData.Model("stories260K"));
        Assert.Equal("llama", c.ModelType);
        Assert.Equal((64, 172, 5, 8, 4, 8), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal((512, 512, 1e-5), (c.VocabSize, c.MaxPositionEmbeddings, c.RmsNormEps));
        Assert.True(c.TieWordEmbeddings);
        Assert.False(c.QkvBias || c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Equal((int?)1, c.BosTokenId);
        Assert.Equal([2], c.EosTokenIds);
        Assert.Null(c.PadTokenId);
        Assert.Equal(DType.F32, c.TorchDType);
        Assert.Equal(new RopeParameters { RopeType = "default", Theta = 10000 }, c.Rope);
    }

    [SkippableFact]
    public void Qwen2TinyHasQkvBiasButNoOutputBias()
    {
        var c = ModelConfig.Load(TestData.Model("qwen2-tiny"));
        Assert.Equal("qwen2", c.ModelType);
        Assert.Equal((32, 96, 2, 4, 2, 8), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.Equal((151936, 1e-6), (c.VocabSize, c.RmsNormEps));
        Assert.True(c.TieWordEmbeddings);
        Assert.True(c.QkvBias);
        Assert.False(c.OutputBias || c.MlpBias || c.QkNorm);
        Assert.Equal([151645], c.EosTokenIds);
        Assert.Equal(DType.BF16, c.TorchDType);
        Assert.Equal(1_000_000.0, c.Rope.Theta);
        Assert.Equal("default", c.Rope.RopeType);
    }

    [SkippableFact]
    public void Llama3TinyHasLlama3RopeScaling()
    {
        var c = ModelConfig.Load(TestData.Model("llama3-tiny"));
        Assert.Equal((32, 80, 2, 4, 1, 8), (c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim));
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal((int?)128000, c.BosTokenId);
        Assert.Equal([128009], c.EosTokenIds);
        Assert.Equal(new RopeParameters { RopeType = "llama3", Theta = 500000, Factor = 8, LowFreqFactor = 1, HighFreqFactor = 4, OriginalMaxPositionEmbeddings = 8192 }, c.Rope);
    }

    [SkippableFact]
    public void Transformers5RopeParametersSpellingLoadsTheSame()
    {
        var legacy = ModelConfig.Load(TestData.Model("llama3-tiny"));
        var folder = EditedConfig("llama3-tiny", json =>
        {
            var parameters = json["rope_scaling"]!.DeepClone().AsObject();
            parameters["rope_theta"] = json["rope_theta"]!.DeepClone();
            json.Remove("rope_scaling");
            json.Remove("rope_theta");
            json["rope_parameters"] = parameters;
            json["dtype"] = json["torch_dtype"]!.DeepClone();
            json.Remove("torch_dtype");
        });
        var modern = ModelConfig.Load(folder);
        Assert.Equal(legacy.Rope, modern.Rope);
        Assert.Equal(DType.BF16, modern.TorchDType);
        Assert.Equal(RopeScaling.InverseFrequencies(legacy, 1), RopeScaling.InverseFrequencies(modern, 1));
    }

    [SkippableFact]
    public void LegacyTypeKeyAndListEosAreAccepted()
    {
        var c = ModelConfig.Load(EditedConfig("stories260K", json =>
        {
            json["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = 2.0 };
            json["eos_token_id"] = new JsonArray(2, 7);
            json["rope_theta"] = 10000; // an integer where a float is usual
        }));
        Assert.Equal("linear", c.Rope.RopeType);
        Assert.Equal(2.0, c.Rope.Factor);
        Assert.Equal([2, 7], c.EosTokenIds);
    }

    [SkippableFact]
    public void Qwen3HasExplicitHeadDimAndQkNorm()
    {
        var c = ModelConfig.Load(EditedConfig("qwen2-tiny", json =>
        {
            json["model_type"] = "qwen3";
            json["head_dim"] = 16; // Qwen3 decouples head_dim from hidden_size / heads (here 8)
            json["attention_bias"] = false;
        }));
        Assert.Equal(16, c.HeadDim);
        Assert.True(c.QkNorm);
        Assert.False(c.QkvBias || c.OutputBias);
        Assert.Equal(8, RopeScaling.InverseFrequencies(c, 1).Length);

        var withoutHeadDim = ModelConfig.Load(EditedConfig("qwen2-tiny", json => { json["model_type"] = "qwen3"; json["attention_bias"] = true; }));
        Assert.Equal(128, withoutHeadDim.HeadDim); // Qwen3Config's default
        Assert.True(withoutHeadDim.QkvBias && withoutHeadDim.OutputBias);
    }

    [SkippableFact]
    public void UnknownModelTypeListsSupportedOnes()
    {
        var message = LoadFails(EditedConfig("stories260K", json => json["model_type"] = "mistral"));
        Assert.Contains("'mistral'", message);
        Assert.Contains("llama, qwen2, qwen3", message);
    }

    [SkippableTheory]
    [InlineData("hidden_size", null, "is missing")]
    [InlineData("num_hidden_layers", "\"5\"", "must be an integer")]
    [InlineData("rms_norm_eps", "\"tiny\"", "must be a number")]
    [InlineData("tie_word_embeddings", "1", "must be true or false")]
    [InlineData("hidden_act", "\"gelu\"", "only 'silu'")]
    [InlineData("num_key_value_heads", "3", "does not divide")]
    [InlineData("torch_dtype", "\"int4\"", "expected float32")]
    [InlineData("eos_token_id", "[2, \"x\"]", "list of integers")]
    public void BadFieldIsNamed(string field, string? value, string expected)
    {
        var message = LoadFails(EditedConfig("stories260K", json =>
        {
            if (value == null) json.Remove(field);
            else json[field] = JsonNode.Parse(value);
        }));
        Assert.Contains($"'{field}'", message);
        Assert.Contains(expected, message);
    }

    [SkippableFact]
    public void Llama3ScalingMissingFieldIsNamedWithItsPath()
    {
        var message = LoadFails(EditedConfig("llama3-tiny", json => json["rope_scaling"]!.AsObject().Remove("low_freq_factor")));
        Assert.Contains("'rope_scaling.low_freq_factor' is missing", message);
        message = LoadFails(EditedConfig("llama3-tiny", json => json["rope_scaling"]!["rope_type"] = "longrope"));
        Assert.Contains("'longrope'", message);
    }

    [Fact]
    public void MissingConfigFileIsNamed()
    {
        var e = Assert.Throws<SharpTuneException>(() => ModelConfig.Load(dir));
        Assert.Contains(Path.Combine(dir, "config.json"), e.Message);
    }

    [SkippableFact]
    public void GenerationConfigFixtureAndOverrides()
    {
        var fixture = GenerationConfig.Load(TestData.Model("llama3-tiny"));
        Assert.Equal((int?)128000, fixture.BosTokenId);
        Assert.Equal([128009], fixture.EosTokenIds);
        Assert.Null(fixture.Temperature);

        Assert.Equal(new GenerationConfig().EosTokenIds, GenerationConfig.Load(dir).EosTokenIds); // absent file
        File.WriteAllText(Path.Combine(dir, GenerationConfig.FileName), """
            {"do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8, "min_p": 0.05, "repetition_penalty": 1.05,
             "max_new_tokens": 64, "eos_token_id": [151645, 151643], "pad_token_id": 151643, "bos_token_id": null}
            """);
        var g = GenerationConfig.Load(dir);
        Assert.Equal((true, 0.7, 20, 0.8, 0.05, 1.05, 64), (g.DoSample!.Value, g.Temperature!.Value, g.TopK!.Value, g.TopP!.Value, g.MinP!.Value, g.RepetitionPenalty!.Value, g.MaxNewTokens!.Value));
        Assert.Equal([151645, 151643], g.EosTokenIds);
        Assert.Equal((int?)151643, g.PadTokenId);
        Assert.Null(g.BosTokenId);

        File.WriteAllText(Path.Combine(dir, GenerationConfig.FileName), """{"top_p": 1.5}""");
        Assert.Contains("'top_p'", Assert.Throws<SharpTuneException>(() => GenerationConfig.Load(dir)).Message);
    }
}
