using SharpTune.Tensors;

namespace SharpTune.Models;

/// <summary>Keys and values of one sequence for every layer: [capacity, kvHeads·headDim] each, filled front to back.</summary>
public sealed class KvCache : IDisposable
{
    public KvCache(IBackend backend, int layers, int capacity, int kvWidth)
    {
        Capacity = capacity;
        Keys = new Tensor[layers];
        Values = new Tensor[layers];
        for (int i = 0; i < layers; i++)
        {
            Keys[i] = backend.Allocate(backend.ActivationType, capacity, kvWidth);
            Values[i] = backend.Allocate(backend.ActivationType, capacity, kvWidth);
        }
    }

    public int Capacity { get; }
    /// <summary>Number of positions already stored.</summary>
    public int Length { get; set; }
    public Tensor[] Keys { get; }
    public Tensor[] Values { get; }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
