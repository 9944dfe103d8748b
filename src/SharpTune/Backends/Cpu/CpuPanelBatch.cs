using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// y = x·Wᵀ for a few rows of x (batched decoding) with W stored once in a panel layout: panel p holds W rows
/// 16p..16p+15 as [k][16] (zero rows past the end), in W's own element type. That is the layout the GEMM's 6x16
/// register block reads its B operand in, so no weight is packed or widened per call: each task streams its panels
/// from memory once and runs every 6-row block of x (packed per call as [k][6], a few KiB) against them.
/// Each output is a sequential sum over k in one accumulator lane, so results do not depend on the thread count.
/// </summary>
internal static unsafe class CpuPanelBatch
{
    /// <summary>Row counts this kernel takes: from where the matrix-vector kernels stop, up to where the cache-blocked
    /// GEMM (which packs W itself) would win; measured faster than it up to 256 rows at Qwen2.5-0.5B shapes (a whole
    /// batched step of 48 rows 348 vs 447 ms, 128 rows 942 vs 1033 ms, 256 rows 1802 vs 1898 ms, 2 threads).</summary>
    public const int MinRows = CpuMatMul.SmallM + 1, MaxRows = 256;
    const int Panel = NR, Block = MR;
    /// <summary>Panels per task: enough work to amortise scheduling, few enough to balance two threads on short matrices.</summary>
    const int PanelsPerTask = 2;

    /// <summary>Elements of the packed form of an [n, k] matrix.</summary>
    public static long PackedLength(int n, int k) => (long)(n + Panel - 1) / Panel * Panel * k;

    /// <summary>Writes W [n, k] (row stride ldw) into <paramref name="panels"/> (length <see cref="PackedLength"/>).</summary>
    public static void Pack<T>(int n, int k, T* w, int ldw, T* panels, ParallelRunner runner) where T : unmanaged
    {
        var job = new PackJob<T> { N = n, K = k, W = w, Ldw = ldw, Panels = panels };
        runner.For((n + Panel - 1) / Panel, job, static (j, panel) => j.Run(panel));
    }

    struct PackJob<T> where T : unmanaged
    {
        public int N, K, Ldw;
        public T* W, Panels;

        public readonly void Run(int panel)
        {
            T* dst = Panels + (long)panel * Panel * K;
            for (int l = 0; l < Panel; l++)
            {
                int row = panel * Panel + l;
                T* src = W + (long)row * Ldw;
                for (int p = 0; p < K; p++) dst[(long)p * Panel + l] = row < N ? src[p] : default;
            }
        }
    }

    public static void RowsTimesPanels<T, TLoader>(int m, int n, int k, float* x, int ldx, T* panels, float* y, int ldy, ParallelRunner runner)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        int blocks = (m + Block - 1) / Block;
        float* packedX = PackedX.Get((long)blocks * Block * k);
        GemmPacking.PackA(false, x, ldx, 0, m, 0, k, packedX);
        var job = new Job<T, TLoader> { M = m, N = n, K = k, Blocks = blocks, X = packedX, Panels = panels, Y = y, Ldy = ldy };
        int panelCount = (n + Panel - 1) / Panel;
        runner.For((panelCount + PanelsPerTask - 1) / PanelsPerTask, job, static (j, task) => j.Run(task));
    }

    struct Job<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        public int M, N, K, Blocks, Ldy;
        public float* X, Y;
        public T* Panels;

        [SkipLocalsInit]
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Run(int task)
        {
            float* tile = stackalloc float[Block * Panel];
            int panelCount = (N + Panel - 1) / Panel;
            for (int panel = task * PanelsPerTask; panel < Math.Min(panelCount, (task + 1) * PanelsPerTask); panel++)
            {
                T* w = Panels + (long)panel * Panel * K;
                int cols = Math.Min(Panel, N - panel * Panel);
                for (int b = 0; b < Blocks; b++)
                {
                    int rows = Math.Min(Block, M - b * Block);
                    float* x = X + (long)b * Block * K, y = Y + (long)b * Block * Ldy + panel * Panel;
                    // A last block of up to 4 rows takes the 4x16 block: 16 rows are 6 + 6 + 4, not 18.
                    bool short4 = rows <= 4 && Vectorized;
                    if (cols == Panel && rows == (short4 ? 4 : Block))
                    {
                        if (short4) Tile4x16<T, TLoader>(K, x, w, y, Ldy, 1f, 0f);
                        else Tile<T, TLoader>(K, x, w, y, Ldy, 1f, 0f);
                    }
                    else
                    {
                        if (short4) Tile4x16<T, TLoader>(K, x, w, tile, Panel, 1f, 0f);
                        else Tile<T, TLoader>(K, x, w, tile, Panel, 1f, 0f);
                        for (int r = 0; r < rows; r++)
                        for (int c = 0; c < cols; c++) y[(long)r * Ldy + c] = tile[r * Panel + c];
                    }
                }
            }
        }
    }

    /// <summary>The calling thread's buffer for packed x, grown as needed and kept for the thread's life.</summary>
    static class PackedX
    {
        [ThreadStatic] static float* _buffer;
        [ThreadStatic] static long _length;

        public static float* Get(long floats)
        {
            if (floats > _length)
            {
                if (_buffer != null) NativeMemory.AlignedFree(_buffer);
                _buffer = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
                _length = floats;
            }
            return _buffer;
        }
    }
}
