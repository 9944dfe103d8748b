using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>
/// Keys and values of many sequences in one pool of fixed-size blocks per layer ([blocks·blockSize, kvHeads·headDim] each).
/// A sequence owns a list of blocks (its block table); position p lives in block table[p / BlockSize] at row p % BlockSize.
/// Blocks come from one budget, so a full pool makes new sequences wait rather than fail mid-answer.
/// </summary>
public sealed class PagedKvCache : IDisposable
{
    readonly Stack<int> _free = new();
    readonly object _gate = new();

    public PagedKvCache(IBackend backend, TransformerShape shape, int blocks, int blockSize)
    {
        if (blocks <= 0 || blockSize <= 0) throw new SharpTuneException($"the KV cache needs at least one block (got {blocks} blocks of {blockSize})");
        BlockCount = blocks;
        BlockSize = blockSize;
        Keys = new Tensor[shape.Layers];
        Values = new Tensor[shape.Layers];
        for (int i = 0; i < shape.Layers; i++)
        {
            Keys[i] = backend.Allocate(backend.ActivationType, blocks * blockSize, shape.KvWidth);
            Values[i] = backend.Allocate(backend.ActivationType, blocks * blockSize, shape.KvWidth);
        }
        for (int b = blocks - 1; b >= 0; b--) _free.Push(b);
    }

    public int BlockCount { get; }
    public int BlockSize { get; }
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }

    public int FreeBlocks
    {
        get { lock (_gate) return _free.Count; }
    }

    /// <summary>Bytes one position takes over all layers (keys and values).</summary>
    public static long BytesPerPosition(TransformerShape shape, DType dtype) => 2L * shape.Layers * shape.KvWidth * dtype.SizeInBytes();

    public int BlocksFor(int positions) => (positions + BlockSize - 1) / BlockSize;

    /// <summary>Takes enough blocks for <paramref name="positions"/> positions, or returns null (taking none) when the pool is short.</summary>
    public int[]? TryAllocate(int positions)
    {
        int need = BlocksFor(positions);
        lock (_gate)
        {
            if (need > _free.Count) return null;
            var table = new int[need];
            for (int i = 0; i < need; i++) table[i] = _free.Pop();
            return table;
        }
    }

    public void Free(int[] table)
    {
        lock (_gate)
            foreach (var b in table) _free.Push(b);
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
