using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// Float32 matrix multiply on row-major matrices with leading dimensions: C = alpha*op(A)*op(B) + beta*C, where
/// op(X) is X or its transpose. beta == 0 means C is only written (it may hold NaN). B may be bfloat16 (weights),
/// widened on the fly. Up to four rows of A that are not transposed go to the streaming matrix-vector kernels
/// (<see cref="CpuMatVec"/>); everything else to a packed, cache-blocked, register-blocked kernel.
/// Results are bit-identical from run to run and for any thread count: each C element is summed over k in the
/// same order (blocks of <see cref="KC"/>, sequential inside) whatever the tiling. (m ≤ 4 takes a different
/// summation order than m > 4, so a row's result can depend on how many rows are multiplied with it.)
/// Without AVX2+FMA the same code runs scalar, unfused arithmetic; run the tests with DOTNET_EnableAVX2=0 to check it.
/// </summary>
public static unsafe class CpuMatMul
{
    /// <summary>Depth of one packed block; fixed, since it sets the summation order.</summary>
    internal const int KC = 256;
    /// <summary>Largest row block (multiple of MR; its packed A, MCMax*KC floats, stays in L2).</summary>
    const int MCMax = 192;
    /// <summary>Largest column block (multiple of NR; its packed B streams from L3, one 16-column panel at a time in L1).</summary>
    const int NCMax = 512;
    /// <summary>Largest chunk of C whose op(A) rows and op(B) columns are packed together (1.1 MiB and 4 MiB per depth block).</summary>
    const int MChunkMax = 1152, NChunkMax = 4096;
    /// <summary>Rows of A handled by the matrix-vector kernels instead of packing.</summary>
    internal const int SmallM = 4;

    public static void Gemm(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        float* b, int ldb, float beta, float* c, int ldc, ParallelRunner? runner = null)
        => Run<float, F32Loader>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, runner ?? ParallelRunner.Default);

    /// <summary><see cref="Gemm"/> with B stored as bfloat16.</summary>
    public static void GemmBF16B(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        ushort* b, int ldb, float beta, float* c, int ldc, ParallelRunner? runner = null)
        => Run<ushort, BF16Loader>(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, runner ?? ParallelRunner.Default);

    /// <summary>y[n] = W[n,k]·x[k] (W row-major with row stride <paramref name="ldw"/>).</summary>
    public static void MatVec(int n, int k, float* w, int ldw, float* x, float* y, ParallelRunner? runner = null)
        => Run<float, F32Loader>(false, true, 1, n, k, 1f, x, Math.Max(1, k), w, ldw, 0f, y, Math.Max(1, n), runner ?? ParallelRunner.Default);

    /// <summary>y[n] = W[n,k]·x[k] with W stored as bfloat16.</summary>
    public static void MatVec(int n, int k, ushort* w, int ldw, float* x, float* y, ParallelRunner? runner = null)
        => Run<ushort, BF16Loader>(false, true, 1, n, k, 1f, x, Math.Max(1, k), w, ldw, 0f, y, Math.Max(1, n), runner ?? ParallelRunner.Default);

    static void Run<T, TLoader>(bool transA, bool transB, int m, int n, int k, float alpha, float* a, int lda,
        T* b, int ldb, float beta, float* c, int ldc, ParallelRunner runner)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        Validate(transA, transB, m, n, k, lda, ldb, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(long)i * ldc + j] = Update(0f, c + (long)i * ldc + j, alpha, beta);
            return;
        }
        if (m <= SmallM && !transA)
        {
            if (transB) CpuMatVec.RowsDotW<T, TLoader>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, runner);
            else CpuMatVec.RowsTimesW<T, TLoader>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, runner);
            return;
        }
        if (m <= CpuSmallBatch.MaxRows && !transA && transB)
        {
            CpuSmallBatch.RowsDotW<T, TLoader>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, runner);
            return;
        }
        var job = new BlockedJob<T, TLoader>
        {
            TransA = transA, TransB = transB, K = k, Alpha = alpha, Beta = beta,
            A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc, PackedA = Scratch.A, PackedB = Scratch.B,
        };
        int rowChunk = EvenSplit(m, MChunkMax, MR), colChunk = EvenSplit(n, NChunkMax, NR);
        for (int i0 = 0; i0 < m; i0 += rowChunk)
        for (int j0 = 0; j0 < n; j0 += colChunk)
        {
            job.SetChunk(i0, Math.Min(rowChunk, m - i0), j0, Math.Min(colChunk, n - j0), runner.ThreadCount);
            for (int p0 = 0; p0 < k; p0 += KC)
            {
                job.P0 = p0;
                job.Kc = Math.Min(KC, k - p0);
                runner.For(job.PackTasks, job, static (j, task) => j.Pack(task));
                runner.For(job.RowBlocks * job.ColBlocks, job, static (j, task) => j.Compute(task));
            }
        }
    }

    static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new SharpTuneException($"Gemm: negative size m={m} n={n} k={k}");
        if (lda < Math.Max(1, transA ? m : k)) throw new SharpTuneException($"Gemm: lda={lda} is smaller than the row length of A ({(transA ? m : k)})");
        if (ldb < Math.Max(1, transB ? k : n)) throw new SharpTuneException($"Gemm: ldb={ldb} is smaller than the row length of B ({(transB ? k : n)})");
        if (ldc < Math.Max(1, n)) throw new SharpTuneException($"Gemm: ldc={ldc} is smaller than the row length of C ({n})");
    }

    /// <summary>
    /// One chunk of C (up to MChunkMax x NChunkMax) at a time: for each depth block, all threads pack the chunk's
    /// rows of op(A) and columns of op(B) once into shared buffers, then compute its C blocks. Inside a block the
    /// 16-column B panel is the outer loop so it stays in L1 while the block's A panels stream from L2.
    /// </summary>
    struct BlockedJob<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        const int APanelsPerPackTask = 8, BPanelsPerPackTask = 4;

        public bool TransA, TransB;
        public int K, Lda, Ldb, Ldc, P0, Kc;
        public int I0, Rows, J0, Cols, RowBlock, ColBlock, RowBlocks, ColBlocks, APackTasks, PackTasks;
        public float Alpha, Beta;
        public float* A, C, PackedA, PackedB;
        public T* B;

        /// <summary>Splits the chunk into balanced blocks, at least two per thread and, while there are few, a multiple
        /// of the thread count so no thread idles at the end; the split changes speed only, never results.</summary>
        public void SetChunk(int i0, int rows, int j0, int cols, int threads)
        {
            (I0, Rows, J0, Cols) = (i0, rows, j0, cols);
            RowBlocks = CeilDiv(rows, MCMax);
            ColBlocks = CeilDiv(cols, NCMax);
            while (RowBlocks * ColBlocks < 2 * threads || (RowBlocks * ColBlocks % threads != 0 && RowBlocks * ColBlocks < 8 * threads))
            {
                int blockRows = CeilDiv(rows, RowBlocks), blockCols = CeilDiv(cols, ColBlocks);
                if (blockCols >= blockRows && blockCols > NR) ColBlocks++;
                else if (blockRows > MR) RowBlocks++;
                else break;
            }
            RowBlock = RoundUp(CeilDiv(rows, RowBlocks), MR);
            ColBlock = RoundUp(CeilDiv(cols, ColBlocks), NR);
            RowBlocks = CeilDiv(rows, RowBlock);
            ColBlocks = CeilDiv(cols, ColBlock);
            APackTasks = CeilDiv(rows, MR * APanelsPerPackTask);
            PackTasks = APackTasks + CeilDiv(cols, NR * BPanelsPerPackTask);
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Pack(int task)
        {
            if (task < APackTasks)
            {
                int r0 = task * MR * APanelsPerPackTask;
                GemmPacking.PackA(TransA, A, Lda, I0 + r0, Math.Min(MR * APanelsPerPackTask, Rows - r0), P0, Kc, PackedA + r0 * Kc);
            }
            else
            {
                int c0 = (task - APackTasks) * NR * BPanelsPerPackTask;
                GemmPacking.PackB<T, TLoader>(TransB, B, Ldb, J0 + c0, Math.Min(NR * BPanelsPerPackTask, Cols - c0), P0, Kc, PackedB + c0 * Kc);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Compute(int task)
        {
            int r0 = task / ColBlocks * RowBlock, c0 = task % ColBlocks * ColBlock;
            int rows = Math.Min(RowBlock, Rows - r0), cols = Math.Min(ColBlock, Cols - c0);
            float beta = P0 == 0 ? Beta : 1f;
            for (int jr = 0; jr < cols; jr += NR)
            for (int ir = 0; ir < rows; ir += MR)
            {
                float* tile = C + (long)(I0 + r0 + ir) * Ldc + J0 + c0 + jr;
                float* pa = PackedA + (r0 + ir) * Kc, pb = PackedB + (c0 + jr) * Kc;
                int tileRows = Math.Min(MR, rows - ir), tileCols = Math.Min(NR, cols - jr);
                if (tileRows == MR && tileCols == NR) Tile(Kc, pa, pb, tile, Ldc, Alpha, beta);
                else EdgeTile(Kc, pa, pb, tile, Ldc, tileRows, tileCols, Alpha, beta);
            }
        }
    }

    /// <summary>Packing buffers of the calling thread, 64-byte aligned, allocated once at the largest chunk size
    /// (about 5 MiB) and kept for the thread's life.</summary>
    static class Scratch
    {
        [ThreadStatic] static float* _a, _b;
        public static float* A => _a != null ? _a : _a = Allocate(MChunkMax * KC);
        public static float* B => _b != null ? _b : _b = Allocate(NChunkMax * KC);
        static float* Allocate(int floats) => (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
    }

    /// <summary>Size of the pieces when <paramref name="total"/> is cut into equal parts of at most
    /// <paramref name="max"/>, rounded up to a multiple of <paramref name="multiple"/> (max is one too).</summary>
    static int EvenSplit(int total, int max, int multiple) => RoundUp(CeilDiv(total, CeilDiv(total, max)), multiple);

    static int CeilDiv(int x, int y) => (x + y - 1) / y;
    static int RoundUp(int x, int multiple) => CeilDiv(x, multiple) * multiple;
}
