using System.Diagnostics;
using SharpTune.Tensors;

namespace SharpTune.Bench;

/// <summary>
/// `sample`: the host's draw (TokenFilter.Pick: temperature, top-k, top-p, min-p, then the draw) on a 151,936-token row,
/// milliseconds a draw, for a flat row (random logits) and a peaked one (300 tokens 10 above the rest, as a trained model's).
/// The anchor is a copy of the row (the least a draw can cost: it reads the row).
/// </summary>
public static class SampleBench
{
    public static int Run(string[] args)
    {
        const int vocab = 151936;
        int draws = args.Length > 0 ? int.Parse(args[0]) : 50;
        var random = new Xoshiro256(9);
        var flat = new float[vocab];
        for (int i = 0; i < vocab; i++) flat[i] = (float)(4 * (random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5));
        var peaked = (float[])flat.Clone();
        for (int i = 0; i < 300; i++) peaked[i * 499 + 7] += 10f;
        var work = new float[vocab];
        double copy = Time(draws, () => flat.CopyTo(work, 0));
        Console.WriteLine($"sample: {vocab} logits, {draws} draws each, ms per draw (row copy {copy:F3} ms)");
        TokenFilter[] filters = [new(1f, 0, 1f, 0f), new(0.7f, 50, 1f, 0f), new(1f, 0, 0.9f, 0f), new(0.7f, 50, 0.9f, 0f), new(0.8f, 0, 0.95f, 0.05f)];
        foreach (var (name, row) in new[] { ("flat", flat), ("peaked", peaked) })
            foreach (var filter in filters)
            {
                double ms = Time(draws, () =>
                {
                    row.CopyTo(work, 0);
                    filter.Pick(work, random.NextDouble());
                });
                Console.WriteLine($"  {name,-6} T {filter.Temperature} top-k {filter.TopK} top-p {filter.TopP} min-p {filter.MinP}: {ms,8:F3} ms ({ms / copy:F0}x the copy)");
            }
        return 0;
    }

    static double Time(int repeats, Action action)
    {
        // Warm-up as long as the run: tiered compilation replaces the first code after 30 calls.
        for (int i = 0; i < Math.Max(repeats, 40); i++) action();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) action();
        return watch.Elapsed.TotalMilliseconds / repeats;
    }
}
