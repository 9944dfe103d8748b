using System.Runtime.ExceptionServices;

namespace SharpTune;

/// <summary>
/// A fixed set of worker threads that runs the indices 0..count-1 of a loop body, the calling thread taking part.
/// Which thread runs an index depends on timing, so callers must make every index write its own outputs in a
/// fixed order: then results are bit-identical from run to run (and across thread counts when the split into
/// indices does not depend on the thread count). Workers spin briefly after each loop, then block, so back-to-back
/// loops (one per layer) start fast without burning a core while idle. A loop started while another is running
/// (nested, or from a second thread) runs serially on its caller.
/// </summary>
public sealed class ParallelRunner : IDisposable
{
    static readonly Lazy<ParallelRunner> LazyDefault = new(() => new ParallelRunner(Environment.ProcessorCount));

    /// <summary>Shared runner with one thread per processor.</summary>
    public static ParallelRunner Default => LazyDefault.Value;

    /// <summary>Spin iterations (each a short pause) a waiting thread polls before blocking; about 50 microseconds.</summary>
    const int SpinIterations = 100;

    readonly Thread[] _workers;
    readonly object _startGate = new(), _doneGate = new();
    long _generation;
    volatile Loop? _current;
    int _busy;
    volatile bool _disposed;

    public ParallelRunner(int threads)
    {
        if (threads < 1) throw new SharpTuneException($"ParallelRunner: thread count must be at least 1, got {threads}");
        ThreadCount = threads;
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"SharpTune worker {i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Threads that run a loop, the caller included.</summary>
    public int ThreadCount { get; }

    public void For(int count, Action<int> body) => For(count, body, static (b, i) => b(i));

    /// <summary>Runs <paramref name="body"/>(state, i) for i in 0..count-1; pass a static lambda to avoid allocating a closure.</summary>
    public void For<TState>(int count, TState state, Action<TState, int> body)
    {
        if (count <= 0) return;
        if (count == 1 || _workers.Length == 0 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int i = 0; i < count; i++) body(state, i);
            return;
        }
        try
        {
            // A fresh loop object per call: a worker that wakes late still holds the previous one, finds no index
            // left in it and touches nothing, so the caller never waits for sleeping workers to check in.
            var loop = new Loop<TState>(count, state, body);
            _current = loop;
            lock (_startGate)
            {
                _generation++;
                Monitor.PulseAll(_startGate);
            }
            RunIndices(loop);
            WaitUntilDone(loop);
            if (loop.Failure != null) ExceptionDispatchInfo.Capture(loop.Failure).Throw();
        }
        finally
        {
            _current = null;
            Volatile.Write(ref _busy, 0);
        }
    }

    void RunIndices(Loop loop)
    {
        int i;
        while ((i = Interlocked.Increment(ref loop.NextIndex) - 1) < loop.Count)
        {
            try { loop.Run(i); }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref loop.Failure, e, null);
            }
            if (Interlocked.Increment(ref loop.Done) == loop.Count)
                lock (_doneGate) Monitor.PulseAll(_doneGate);
        }
    }

    void WorkerLoop()
    {
        long seen = 0;
        while (true)
        {
            WaitForLoop(seen);
            if (_disposed) return;
            seen = Volatile.Read(ref _generation);
            if (_current is { } loop) RunIndices(loop);
        }
    }

    // Both waits poll for a short while, then sleep on a gate that the thread making the condition true
    // pulses while holding it, so no wake-up is lost.
    void WaitForLoop(long seen)
    {
        for (int spin = 0; spin < SpinIterations; spin++)
        {
            if (_disposed || Volatile.Read(ref _generation) != seen) return;
            Thread.SpinWait(20);
        }
        lock (_startGate)
            while (!_disposed && _generation == seen) Monitor.Wait(_startGate);
    }

    void WaitUntilDone(Loop loop)
    {
        for (int spin = 0; spin < SpinIterations; spin++)
        {
            if (Volatile.Read(ref loop.Done) == loop.Count) return;
            Thread.SpinWait(20);
        }
        lock (_doneGate)
            while (Volatile.Read(ref loop.Done) != loop.Count) Monitor.Wait(_doneGate);
    }

    public void Dispose()
    {
        _disposed = true;
        lock (_startGate) Monitor.PulseAll(_startGate);
    }

    abstract class Loop(int count)
    {
        public readonly int Count = count;
        public int NextIndex, Done;
        public Exception? Failure;
        public abstract void Run(int index);
    }

    sealed class Loop<TState>(int count, TState state, Action<TState, int> body) : Loop(count)
    {
        public override void Run(int index) => body(state, index);
    }
}
