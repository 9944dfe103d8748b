using System.Text.Json.Nodes;
using SharpTune.Formats;

namespace SharpTune.Tests.Formats;

/// <summary>Inverse frequencies against the transformers formulas evaluated independently in float64.</summary>
public class RopeScalingTests : IDisposable
{
    readonly string dir = TestData.TempDir();

    public void Dispose() => Directory.Delete(dir, true);

    static double[] DefaultInvFreq(double theta, int dim) =>
        Enumerable.Range(0, dim / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / dim)).ToArray();

    static void AssertClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * Math.Abs(expected[i]), $"[{i}] expected {expected[i]:R}, got {actual[i]:R}");
    }

    ModelConfig StoriesWith(JsonObject? ropeScaling, int maxPositions = 512)
    {
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(TestData.Model("stories260K"), "config.json")))!.AsObject();
        json["rope_scaling"] = ropeScaling;
        json["max_position_embeddings"] = maxPositions;
        File.WriteAllText(Path.Combine(dir, "config.json"), json.ToJsonString());
        return ModelConfig.Load(dir);
    }

    [SkippableFact]
    public void Llama3ScalingCoversAllThreeBands()
    {
        var c = ModelConfig.Load(TestData.Model("llama3-tiny"));
        var inv = RopeScaling.InverseFrequencies(c, seqLen: 16);

        // head_dim 8, theta 5e5: wavelengths 2*pi/inv are about 6.3, 167, 4443, 118000 against the band edges
        // 8192/4 = 2048 and 8192/1 = 8192, so dims 0-1 are kept, dim 2 is smoothed and dim 3 is divided by 8.
        var plain = DefaultInvFreq(500000, 8);
        var expected = new double[4];
        for (int i = 0; i < 4; i++)
        {
            double wavelen = 2 * Math.PI / plain[i];
            if (wavelen < 8192 / 4.0) expected[i] = plain[i];
            else if (wavelen > 8192 / 1.0) expected[i] = plain[i] / 8;
            else
            {
                double smooth = (8192 / wavelen - 1) / (4 - 1);
                expected[i] = (1 - smooth) * plain[i] / 8 + smooth * plain[i];
            }
        }
        AssertClose(expected, inv);
        Assert.Equal((float)plain[1], inv[1], 1e-9f);
        AssertClose([plain[3] / 8], [inv[3]]);
        // Hand-evaluated middle band: inv = 5e5^-0.5 = 0.0014142135624, smooth = (8192 / (2*pi/inv) - 1) / 3 = 0.2812826052.
        AssertClose([0.0014142135624 * ((1 - 0.2812826052) / 8 + 0.2812826052)], [inv[2]]);
        Assert.Equal(1f, RopeScaling.AttentionScaling(c));
    }

    [SkippableFact]
    public void DefaultAndLinear()
    {
        var plain = StoriesWith(null);
        AssertClose([1, 0.1, 0.01, 0.001], RopeScaling.InverseFrequencies(plain, 1));
        var linear = StoriesWith(new JsonObject { ["rope_type"] = "linear", ["factor"] = 4.0 });
        AssertClose([0.25, 0.025, 0.0025, 0.00025], RopeScaling.InverseFrequencies(linear, 1));
    }

    [SkippableFact]
    public void DynamicGrowsTheBaseOnlyPastTheTrainedLength()
    {
        var c = StoriesWith(new JsonObject { ["rope_type"] = "dynamic", ["factor"] = 2.0 }, maxPositions: 512);
        AssertClose(DefaultInvFreq(10000, 8), RopeScaling.InverseFrequencies(c, 300));
        // seq 1024 = 2x trained: base * (2 * 1024 / 512 - 1)^(8 / 6)
        AssertClose(DefaultInvFreq(10000 * Math.Pow(3, 8.0 / 6), 8), RopeScaling.InverseFrequencies(c, 1024));
    }

    [SkippableFact]
    public void YarnBlendsInterpolationAndExtrapolation()
    {
        var c = StoriesWith(new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0, ["original_max_position_embeddings"] = 128 });
        var inv = RopeScaling.InverseFrequencies(c, 1);
        var plain = DefaultInvFreq(10000, 8);
        // Correction range: dim * ln(128 / (beta * 2 pi)) / (2 ln 10000) for beta 32 and 1 -> floor(-0.196) clamped to 0 .. ceil(1.309) = 2.
        double[] ramp = [0, 0.5, 1, 1];
        AssertClose(plain.Select((p, i) => p / 4 * ramp[i] + p * (1 - ramp[i])).ToArray(), inv);
        Assert.Equal((float)(0.1 * Math.Log(4) + 1), RopeScaling.AttentionScaling(c), 1e-6f);
    }
}
