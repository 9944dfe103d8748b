namespace SharpTune.Tests.Backends;

public class ParallelRunnerTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1000)]
    [InlineData(4, 7)]
    public void For_RunsEveryIndexExactlyOnce(int threads, int count)
    {
        using var runner = new ParallelRunner(threads);
        for (int repeat = 0; repeat < 50; repeat++)
        {
            var hits = new int[count];
            runner.For(count, hits, static (h, i) => Interlocked.Increment(ref h[i]));
            Assert.All(hits, h => Assert.Equal(1, h));
        }
    }

    [Fact]
    public void NestedAndConcurrentLoops_RunSeriallyAndComplete()
    {
        using var runner = new ParallelRunner(2);
        var hits = new int[8 * 8];
        runner.For(8, i => runner.For(8, j => Interlocked.Increment(ref hits[i * 8 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));

        var concurrent = new int[2 * 500];
        Parallel.For(0, 2, t => runner.For(500, i => Interlocked.Increment(ref concurrent[t * 500 + i])));
        Assert.All(concurrent, h => Assert.Equal(1, h));
    }

    [Fact]
    public void LoopInsideAnotherRunnersLoop_WithTheSameStateType_Completes()
    {
        using var outer = new ParallelRunner(2);
        using var inner = new ParallelRunner(2);
        var hits = new int[16 * 16];
        outer.For(16, (hits, inner, row: 0), static (s, i) =>
            s.inner.For(16, (s.hits, s.inner, row: i), static (t, j) => Interlocked.Increment(ref t.hits[t.row * 16 + j])));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ExceptionInBody_ReachesCallerAndRunnerStaysUsable()
    {
        using var runner = new ParallelRunner(2);
        var ex = Assert.Throws<InvalidOperationException>(() => runner.For(100, i => { if (i == 37) throw new InvalidOperationException("index 37"); }));
        Assert.Equal("index 37", ex.Message);
        int sum = 0;
        runner.For(10, i => Interlocked.Add(ref sum, i));
        Assert.Equal(45, sum);
    }

    [Fact]
    public void ZeroThreads_IsRejected() => Assert.Throws<SharpTuneException>(() => new ParallelRunner(0));
}
