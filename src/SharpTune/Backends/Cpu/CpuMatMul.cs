using System.Runtime.InteropServices;
using static SharpTune.Backends.Cpu.GemmKernel;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// Float32 matrix multiply on row-major matrices with leading dimensions: C = alpha*op(A)*op(B) + beta*C, where
/// op(X) is X or its transpose. beta == 0 means C is only written (it may hold NaN). B may be bfloat16 (weights),
/// widened on the fly. Up to four rows of A that are not transposed go to the streaming matrix-vector kernels
/// (<see cref="CpuMatVec"/>); everything else to a packed, cache-blocked, register-blocked kernel.
/// Results are bit-identical from run to run and for any thread count: each C element is summed over k in the
/// same order (blocks of <see cref="KC"/>, sequential inside) whatever the tiling.
/// </summary>
public static unsafe class CpuMatMul
{
    /// <summary>Depth of one packed block; fixed, since it sets the summation order.</summary>
    internal const int KC = 256;
    /// <summary>Largest row block (multiple of MR; its packed A, MCMax*KC floats, stays in L2).</summary>
    const int MCMax = 192;
    /// <summary>Largest column block (multiple of NR; its packed B streams from L3, one 16-column panel at a time in L1).</summary>
    const int NCMax = 512;
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
        => Run<float, F32Loader>(false, true, 1, n, k, 1f, x, k, w, ldw, 0f, y, n, runner ?? ParallelRunner.Default);

    /// <summary>y[n] = W[n,k]·x[k] with W stored as bfloat16.</summary>
    public static void MatVec(int n, int k, ushort* w, int ldw, float* x, float* y, ParallelRunner? runner = null)
        => Run<ushort, BF16Loader>(false, true, 1, n, k, 1f, x, k, w, ldw, 0f, y, n, runner ?? ParallelRunner.Default);

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
        var job = new BlockedJob<T, TLoader>
        {
            TransA = transA, TransB = transB, M = m, N = n, K = k, Alpha = alpha, Beta = beta,
            A = a, Lda = lda, B = b, Ldb = ldb, C = c, Ldc = ldc,
        };
        job.ChooseBlocks(runner.ThreadCount);
        runner.For(job.RowBlocks * job.ColBlocks, job, static (j, task) => j.RunBlock(task));
    }

    static void Validate(bool transA, bool transB, int m, int n, int k, int lda, int ldb, int ldc)
    {
        if (m < 0 || n < 0 || k < 0) throw new SharpTuneException($"Gemm: negative size m={m} n={n} k={k}");
        if (lda < Math.Max(1, transA ? m : k)) throw new SharpTuneException($"Gemm: lda={lda} is smaller than the row length of A ({(transA ? m : k)})");
        if (ldb < Math.Max(1, transB ? k : n)) throw new SharpTuneException($"Gemm: ldb={ldb} is smaller than the row length of B ({(transB ? k : n)})");
        if (ldc < Math.Max(1, n)) throw new SharpTuneException($"Gemm: ldc={ldc} is smaller than the row length of C ({n})");
    }

    /// <summary>One C block per task: for each depth block, pack its A rows and B columns into thread-local scratch and
    /// sweep the tiles, 16-column B panel outermost so it stays in L1 while the A block streams from L2.</summary>
    struct BlockedJob<T, TLoader> where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        public bool TransA, TransB;
        public int M, N, K, Lda, Ldb, Ldc, RowBlock, ColBlock, RowBlocks, ColBlocks;
        public float Alpha, Beta;
        public float* A, C;
        public T* B;

        /// <summary>Splits C into at least two tasks per thread (balanced sizes) so dynamic scheduling evens out;
        /// the split changes speed only, never results.</summary>
        public void ChooseBlocks(int threads)
        {
            RowBlocks = CeilDiv(M, MCMax);
            ColBlocks = CeilDiv(N, NCMax);
            while (RowBlocks * ColBlocks < 2 * threads)
            {
                int rows = CeilDiv(M, RowBlocks), cols = CeilDiv(N, ColBlocks);
                if (cols >= rows && cols > NR) ColBlocks++;
                else if (rows > MR) RowBlocks++;
                else break;
            }
            RowBlock = RoundUp(CeilDiv(M, RowBlocks), MR);
            ColBlock = RoundUp(CeilDiv(N, ColBlocks), NR);
            RowBlocks = CeilDiv(M, RowBlock);
            ColBlocks = CeilDiv(N, ColBlock);
        }

        public readonly void RunBlock(int task)
        {
            int i0 = task / ColBlocks * RowBlock, j0 = task % ColBlocks * ColBlock;
            int rows = Math.Min(RowBlock, M - i0), cols = Math.Min(ColBlock, N - j0);
            float* packedA = Scratch.A, packedB = Scratch.B;
            for (int p0 = 0; p0 < K; p0 += KC)
            {
                int kc = Math.Min(KC, K - p0);
                GemmPacking.PackA(TransA, A, Lda, i0, rows, p0, kc, packedA);
                GemmPacking.PackB<T, TLoader>(TransB, B, Ldb, j0, cols, p0, kc, packedB);
                float beta = p0 == 0 ? Beta : 1f;
                for (int jr = 0; jr < cols; jr += NR)
                for (int ir = 0; ir < rows; ir += MR)
                {
                    float* tile = C + (long)(i0 + ir) * Ldc + j0 + jr;
                    float* pa = packedA + ir * kc, pb = packedB + jr * kc;
                    int tileRows = Math.Min(MR, rows - ir), tileCols = Math.Min(NR, cols - jr);
                    if (tileRows == MR && tileCols == NR) Tile(kc, pa, pb, tile, Ldc, Alpha, beta);
                    else EdgeTile(kc, pa, pb, tile, Ldc, tileRows, tileCols, Alpha, beta);
                }
            }
        }
    }

    /// <summary>Per-thread packing buffers, 64-byte aligned, allocated once per thread at the largest block size
    /// (about 1 MiB) and kept for the thread's life: the runner's threads are long-lived, so this never grows.</summary>
    static class Scratch
    {
        [ThreadStatic] static float* _a, _b;
        public static float* A => _a != null ? _a : _a = Allocate(MCMax * KC);
        public static float* B => _b != null ? _b : _b = Allocate(NCMax * KC);
        static float* Allocate(int floats) => (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
    }

    static int CeilDiv(int x, int y) => (x + y - 1) / y;
    static int RoundUp(int x, int multiple) => CeilDiv(x, multiple) * multiple;
}
