using System.Text.Json;
using SharpTune.Models;

namespace SharpTune.Tests;

/// <summary>Reads a fixture model's reference.json (made by Hugging Face transformers + PEFT).</summary>
public sealed class Reference
{
    public Reference(string modelName)
    {
        Dir = TestData.Model(modelName);
        Json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir, "reference.json"))).RootElement;
    }

    public string Dir { get; }
    public JsonElement Json { get; }

    public IEnumerable<JsonElement> Prompts => Json.GetProperty("prompts").EnumerateArray();
    public IEnumerable<JsonElement> Chats => Json.TryGetProperty("chats", out var c) ? c.EnumerateArray() : [];

    public static int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
    public static int[][] IntRows(JsonElement e) => e.EnumerateArray().Select(Ints).ToArray();
    public static double[] Doubles(JsonElement e) => e.EnumerateArray().Select(x => x.GetDouble()).ToArray();

    public float[] Floats(string relativeFile) => TestData.ReadF32(Path.Combine(Dir, relativeFile));

    /// <summary>‖a − b‖ / ‖b‖.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            diff += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return Math.Sqrt(diff / norm);
    }

    /// <summary>The logits of one fresh forward pass over <paramref name="ids"/>: the last position's, or every position's.</summary>
    public static float[] Logits(TransformerModel model, int[] ids, bool allPositions = false)
    {
        using var cache = model.NewCache(ids.Length);
        using var logits = model.Forward(ids, cache, allPositions ? ids.Length : 1);
        return logits.AsSpan().ToArray();
    }

    public static int[] TopK(ReadOnlySpan<float> values, int k)
    {
        var v = values.ToArray();
        return Enumerable.Range(0, v.Length).OrderByDescending(i => v[i]).ThenBy(i => i).Take(k).ToArray();
    }
}
