using SharpTune.Tensors;

namespace SharpTune.Tests.Inference;

public class TokenFilterTests
{
    /// <summary>
    /// transformers' processors written plainly in float64: divide, top-k by a full sort, top-p by the ascending cumulative
    /// softmax (remove while it stays at or below 1 - p, keep the last), min-p, then the draw in index order.
    /// </summary>
    static int Reference(float[] row, TokenFilter f, double uniform)
    {
        var v = row.Select(x => (double)(x / f.Temperature)).ToArray();
        if (f.TopK > 0 && f.TopK < v.Length)
        {
            double kth = v.OrderByDescending(x => x).ElementAt(f.TopK - 1);
            for (int i = 0; i < v.Length; i++) if (v[i] < kth) v[i] = double.NegativeInfinity;
        }
        if (f.TopP < 1f)
        {
            double max = v.Max(), total = v.Sum(x => Math.Exp(x - max)), cumulative = 0;
            var ascending = Enumerable.Range(0, v.Length).OrderBy(i => v[i]).ToArray();
            for (int j = 0; j < ascending.Length - 1; j++)
            {
                cumulative += Math.Exp(v[ascending[j]] - max) / total;
                if (cumulative > 1 - f.TopP) break;
                v[ascending[j]] = double.NegativeInfinity;
            }
        }
        if (f.MinP > 0f)
        {
            double bound = v.Max() + Math.Log(f.MinP);
            for (int i = 0; i < v.Length; i++) if (v[i] < bound) v[i] = double.NegativeInfinity;
        }
        double top = v.Max(), all = v.Sum(x => Math.Exp(x - top)), target = uniform * all, running = 0;
        int last = 0;
        for (int i = 0; i < v.Length; i++)
        {
            if (double.IsNegativeInfinity(v[i])) continue;
            last = i;
            running += Math.Exp(v[i] - top);
            if (running > target) return i;
        }
        return last;
    }

    [Fact]
    public void PicksWhatTheTransformersProcessorsPickOnRowsWithoutTies()
    {
        var random = new Xoshiro256(3);
        // A flat row and a peaked one (60 tokens well above the rest), 6000 tokens each.
        var flat = Enumerable.Range(0, 6000).Select(_ => (float)(4 * (random.NextDouble() + random.NextDouble() - 1))).ToArray();
        var peaked = (float[])flat.Clone();
        for (int i = 0; i < 60; i++) peaked[i * 97 + 5] += 9f;
        TokenFilter[] filters = [new(1f, 0, 1f, 0f), new(0.7f, 20, 1f, 0f), new(1f, 0, 0.9f, 0f), new(0.6f, 0, 0.5f, 0f),
                                 new(1.2f, 100, 0.8f, 0.05f), new(0.5f, 0, 1f, 0.1f), new(0.8f, 0, 0.95f, 0.01f)];
        int compared = 0;
        foreach (var row in new[] { flat, peaked })
            foreach (var filter in filters)
                for (int d = 0; d < 40; d++, compared++)
                {
                    double u = random.NextDouble();
                    int got = filter.Pick((float[])row.Clone(), u);
                    Assert.True(got == Reference(row, filter, u), $"{filter} draw {d} (u = {u}): picked {got}, the reference {Reference(row, filter, u)}");
                }
        Assert.Equal(2 * filters.Length * 40, compared);
    }

    [Fact]
    public void TopPKeepsEveryTokenTiedWithTheLastOneKept()
    {
        // Four tokens of equal probability hold 0.97 of the mass: top_p 0.3 is reached inside the tie, and all four stay
        // (a sort would keep an arbitrary two of them), the fifth goes.
        float[] row = [1f, 1f, 1f, 1f, -1.5f];
        var filter = new TokenFilter(1f, 0, 0.3f, 0f);
        var drawn = new HashSet<int>();
        var random = new Xoshiro256(4);
        for (int i = 0; i < 400; i++) drawn.Add(filter.Pick((float[])row.Clone(), random.NextDouble()));
        Assert.Equal([0, 1, 2, 3], drawn.Order());
    }

    [Fact]
    public void TopKOnARowWithNaNsKeepsTheNumbers()
    {
        float[] row = [float.NaN, 1f, float.NaN, 2f];
        var random = new Xoshiro256(5);
        for (int i = 0; i < 50; i++) Assert.Contains(new TokenFilter(1f, 3, 1f, 0f).Pick((float[])row.Clone(), random.NextDouble()), new[] { 1, 3 });
    }
}
