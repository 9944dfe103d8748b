using System.Collections.Concurrent;
using SharpTune.Inference;
using SharpTune.Models;

namespace SharpTune.Serving;

/// <summary>Limits of the continuous-batching scheduler (vLLM's names).</summary>
public sealed record SchedulerLimits(int MaxNumSeqs, int MaxNumBatchedTokens, int MaxQueue);

/// <summary>
/// Continuous batching on one thread: each step runs one token of every decoding sequence plus prefill chunks of newly
/// admitted ones (up to the step's token budget, so running streams never stall behind a long prompt) through one
/// <see cref="BatchedForward"/>, samples each sequence's next token, and retires finished or cancelled sequences, freeing
/// their blocks at once. A waiting sequence is admitted when a slot and the blocks for its prompt plus its whole budget
/// are free (so a running sequence never runs out of cache); beyond <see cref="SchedulerLimits.MaxQueue"/> waiting ones,
/// <see cref="TrySubmit"/> refuses.
/// </summary>
public sealed class Scheduler : IDisposable
{
    readonly BatchedForward _forward;
    readonly SchedulerLimits _limits;
    readonly ConcurrentQueue<ServingSequence> _incoming = new();
    readonly LinkedList<ServingSequence> _waiting = new();
    readonly List<ServingSequence> _running = [];
    readonly SemaphoreSlim _wake = new(0);
    readonly Thread _thread;
    readonly float[] _logits;
    int _queued;
    volatile bool _stopping;

    public Scheduler(BatchedForward forward, SchedulerLimits limits)
    {
        _forward = forward;
        _limits = limits;
        _logits = new float[forward.Model.Shape.Vocab];
        _thread = new Thread(Loop) { IsBackground = true, Name = "sharptune-scheduler" };
        _thread.Start();
    }

    public PagedKvCache Cache => _forward.Cache;
    /// <summary>Sequences admitted or waiting (for /health and tests).</summary>
    public int Pending => Volatile.Read(ref _queued);

    /// <summary>Whether a sequence of this many positions could ever be admitted (the whole pool would hold it).</summary>
    public bool Fits(int positions) => Cache.BlocksFor(positions) <= Cache.BlockCount;

    /// <summary>Queues the sequences (all or none); false when the waiting queue is full.</summary>
    public bool TrySubmit(IReadOnlyList<ServingSequence> sequences)
    {
        if (Interlocked.Add(ref _queued, sequences.Count) > _limits.MaxQueue + _limits.MaxNumSeqs)
        {
            Interlocked.Add(ref _queued, -sequences.Count);
            return false;
        }
        foreach (var s in sequences) _incoming.Enqueue(s);
        _wake.Release();
        return true;
    }

    /// <summary>Wakes the loop so a cancelled sequence is retired now rather than at the next step.</summary>
    public void Poke() => _wake.Release();

    void Loop()
    {
        var segments = new List<(ServingSequence Sequence, BatchSegment Segment)>();
        while (!_stopping)
        {
            while (_incoming.TryDequeue(out var s)) _waiting.AddLast(s);
            RetireCancelled();
            Admit();
            if (_running.Count == 0)
            {
                _wake.Wait();
                continue;
            }
            segments.Clear();
            Plan(segments);
            try
            {
                Step(segments);
            }
            catch (Exception e)
            {
                foreach (var (s, _) in segments) Retire(s, new SequenceEvent("", null, Error: e));
            }
        }
    }

    void RetireCancelled()
    {
        for (var node = _waiting.First; node != null;)
        {
            var next = node.Next;
            if (node.Value.Cancelled)
            {
                _waiting.Remove(node);
                Finish(node.Value, null);
            }
            node = next;
        }
        foreach (var s in _running.Where(s => s.Cancelled).ToList()) Retire(s, null);
    }

    void Admit()
    {
        while (_waiting.First is { } node && _running.Count < _limits.MaxNumSeqs)
        {
            var s = node.Value;
            var blocks = Cache.TryAllocate(s.MaxPositions);
            if (blocks == null) return;          // first come, first served: later ones wait behind it
            s.Blocks = blocks;
            _waiting.RemoveFirst();
            _running.Add(s);
        }
    }

    /// <summary>One decode token per running sequence, then prefill chunks in arrival order within the token budget; grouped by adapter.</summary>
    void Plan(List<(ServingSequence, BatchSegment)> segments)
    {
        int budget = _limits.MaxNumBatchedTokens;
        foreach (var s in _running.Where(s => !s.Prefilling))
        {
            segments.Add((s, new BatchSegment([s.Stream.LastToken], s.Computed, s.Blocks!, s.Adapter, WantLogits: true)));
            budget--;
        }
        foreach (var s in _running.Where(s => s.Prefilling))
        {
            int chunk = Math.Min(s.Prompt.Length - s.Computed, budget);
            if (chunk <= 0) break;
            bool last = s.Computed + chunk == s.Prompt.Length;
            segments.Add((s, new BatchSegment(s.Prompt[s.Computed..(s.Computed + chunk)], s.Computed, s.Blocks!, s.Adapter, WantLogits: last)));
            budget -= chunk;
        }
        var ordered = segments.OrderBy(x => x.Item2.Adapter ?? "", StringComparer.Ordinal).ToList();
        segments.Clear();
        segments.AddRange(ordered);
    }

    void Step(List<(ServingSequence Sequence, BatchSegment Segment)> segments)
    {
        using var logits = _forward.Run(segments.Select(x => x.Segment).ToList());
        foreach (var (s, segment) in segments) s.Computed += segment.Tokens.Length;
        if (logits == null) return;
        // Greedy and plain draws are picked where the logits are (one download for all rows); the rest bring their row here.
        var wanting = segments.Where(x => x.Segment.WantLogits).Select(x => x.Sequence).ToList();
        var be = _forward.Model.Backend;
        var picks = BackendPicks.Pick(be, logits, wanting.Select(s => s.Stream).ToList());
        for (int row = 0; row < wanting.Count; row++)
        {
            var s = wanting[row];
            if (picks[row] == null) be.ToHost(logits.SliceRows(row, 1), _logits);
            var (text, token) = picks[row] is int id ? BackendPicks.Accept(s.Stream, id) : s.Stream.Accept(_logits);
            if (text.Length > 0 || token != null) s.Emit(new SequenceEvent(text, token));
            if (s.Stream.Finished) Retire(s, null);
        }
    }

    void Retire(ServingSequence s, SequenceEvent? error)
    {
        _running.Remove(s);
        if (s.Blocks != null) Cache.Free(s.Blocks);
        s.Blocks = null;
        Finish(s, error);
    }

    void Finish(ServingSequence s, SequenceEvent? error)
    {
        if (error != null) s.Emit(error);
        else
        {
            var (rest, result) = s.Stream.Complete();
            s.Emit(new SequenceEvent(rest, null, result));
        }
        s.Close();
        Interlocked.Decrement(ref _queued);
    }

    public void Dispose()
    {
        _stopping = true;
        _wake.Release();
        _thread.Join();
        while (_incoming.TryDequeue(out var s)) _waiting.AddLast(s);
        foreach (var s in _waiting) Finish(s, new SequenceEvent("", null, Error: new OperationCanceledException("the server is shutting down")));
        foreach (var s in _running.ToList()) Retire(s, new SequenceEvent("", null, Error: new OperationCanceledException("the server is shutting down")));
        _wake.Dispose();
    }
}
