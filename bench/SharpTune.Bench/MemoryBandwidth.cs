using System.Diagnostics;
using System.Runtime.Intrinsics;

namespace SharpTune.Bench;

/// <summary>
/// The machine's streaming read bandwidth: every thread sums its share of a buffer far larger than the caches,
/// best of several passes. This is the physical limit for decoding (matrix-vector products read each weight once).
/// </summary>
internal static unsafe class MemoryBandwidth
{
    const int ChunkFloats = 1 << 18;

    public static double MeasureReadGBps(long bytes = 1L << 30, int runs = 5, ParallelRunner? runner = null)
    {
        runner ??= ParallelRunner.Default;
        using var buffer = new NativeBuffer<float>(bytes / sizeof(float), 1, x => x);
        int chunks = (int)(buffer.Length / ChunkFloats);
        var sums = new float[chunks];
        double best = 0;
        for (int run = 0; run < runs; run++)
        {
            var watch = Stopwatch.StartNew();
            runner.For(chunks, (buffer, sums), static (s, chunk) => s.sums[chunk] = Sum(s.buffer.Pointer + (long)chunk * ChunkFloats, ChunkFloats));
            double seconds = watch.Elapsed.TotalSeconds;
            best = Math.Max(best, chunks * (double)ChunkFloats * sizeof(float) / seconds / 1e9);
        }
        if (float.IsNaN(sums.Sum())) Console.WriteLine("(unexpected NaN)");
        return best;
    }

    /// <summary>Four independent accumulators, the same access pattern as the matrix-vector kernel.</summary>
    static float Sum(float* p, int count)
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        for (int i = 0; i < count; i += 32)
        {
            s0 += Vector256.Load(p + i);
            s1 += Vector256.Load(p + i + 8);
            s2 += Vector256.Load(p + i + 16);
            s3 += Vector256.Load(p + i + 24);
        }
        return Vector256.Sum((s0 + s1) + (s2 + s3));
    }
}
