using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// The register-blocked microkernel: a 6x16 tile of C from a packed A panel (kc x 6, k-major) and a packed B panel
/// (kc x 16, k-major). Twelve 8-wide accumulators plus two B vectors and one A broadcast fit the 16 AVX registers.
/// Every C element is a plain sequential sum over k, so its value does not depend on where the tile sits; that is
/// what makes results independent of blocking and thread count.
/// The hot loops here and in the packing and matrix-vector code are marked AggressiveOptimization: each call runs
/// long, and tiered compilation would otherwise keep them in unoptimised code for the first hundreds of calls.
/// </summary>
internal static unsafe class GemmKernel
{
    public const int MR = 6, NR = 16;

    /// <summary>True where the AVX2+FMA kernels run; elsewhere the scalar ones (same packing, unfused arithmetic).</summary>
    public static readonly bool Vectorized = Fma.IsSupported && Avx2.IsSupported;

    /// <summary>C = alpha*acc + beta*C, with beta == 0 meaning C is not read (it may hold NaN).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Update(float acc, float* c, float alpha, float beta)
    {
        if (beta == 0) return acc * alpha;
        return Vectorized ? MathF.FusedMultiplyAdd(acc, alpha, *c * beta) : acc * alpha + *c * beta;
    }

    /// <summary>Computes a full 6x16 tile into <paramref name="c"/> (row stride <paramref name="ldc"/>).</summary>
    public static void Tile(int kc, float* a, float* b, float* c, int ldc, float alpha, float beta) =>
        Tile<float, F32Loader>(kc, a, b, c, ldc, alpha, beta);

    /// <summary>The 6x16 tile with a B panel stored as <typeparamref name="T"/> (the panel-packed weights of
    /// <see cref="CpuPanelBatch"/>), widened as it is read.</summary>
    public static void Tile<T, TLoader>(int kc, float* a, T* b, float* c, int ldc, float alpha, float beta)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        if (Vectorized) Tile6x16Fma<T, TLoader>(kc, a, b, c, ldc, alpha, beta);
        else TileScalar<T, TLoader>(kc, a, b, c, ldc, alpha, beta);
    }

    /// <summary>A tile cut by the matrix edge: compute the full tile into scratch, then update only the valid part,
    /// with the same arithmetic as <see cref="Tile"/> so edge elements round exactly like interior ones.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void EdgeTile(int kc, float* a, float* b, float* c, int ldc, int rows, int cols, float alpha, float beta)
    {
        float* acc = stackalloc float[MR * NR];
        Tile(kc, a, b, acc, NR, 1f, 0f);
        for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++)
            c[r * ldc + j] = Update(acc[r * NR + j], c + r * ldc + j, alpha, beta);
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile6x16Fma<T, TLoader>(int kc, float* a, T* b, float* c, int ldc, float alpha, float beta)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = TLoader.Load8(b);
            var b1 = TLoader.Load8(b + 8);
            var av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Avx.BroadcastScalarToVector256(a + 4);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Avx.BroadcastScalarToVector256(a + 5);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
            a += MR;
            b += NR;
        }
        StoreRow(c, c00, c01, alpha, beta);
        StoreRow(c + ldc, c10, c11, alpha, beta);
        StoreRow(c + 2 * ldc, c20, c21, alpha, beta);
        StoreRow(c + 3 * ldc, c30, c31, alpha, beta);
        StoreRow(c + 4 * ldc, c40, c41, alpha, beta);
        StoreRow(c + 5 * ldc, c50, c51, alpha, beta);
    }

    /// <summary>The first 4 rows of <see cref="Tile{T, TLoader}"/> (a last short block of rows), with the same
    /// arithmetic per element; AVX2+FMA only.</summary>
    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile4x16<T, TLoader>(int kc, float* a, T* b, float* c, int ldc, float alpha, float beta)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = TLoader.Load8(b);
            var b1 = TLoader.Load8(b + 8);
            var av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            a += MR;
            b += NR;
        }
        StoreRow(c, c00, c01, alpha, beta);
        StoreRow(c + ldc, c10, c11, alpha, beta);
        StoreRow(c + 2 * ldc, c20, c21, alpha, beta);
        StoreRow(c + 3 * ldc, c30, c31, alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void StoreRow(float* c, Vector256<float> lo, Vector256<float> hi, float alpha, float beta)
    {
        var va = Vector256.Create(alpha);
        if (beta == 0)
        {
            Avx.Store(c, Avx.Multiply(lo, va));
            Avx.Store(c + 8, Avx.Multiply(hi, va));
        }
        else
        {
            var vb = Vector256.Create(beta);
            Avx.Store(c, Fma.MultiplyAdd(lo, va, Avx.Multiply(Avx.LoadVector256(c), vb)));
            Avx.Store(c + 8, Fma.MultiplyAdd(hi, va, Avx.Multiply(Avx.LoadVector256(c + 8), vb)));
        }
    }

    [SkipLocalsInit]
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void TileScalar<T, TLoader>(int kc, float* a, T* b, float* c, int ldc, float alpha, float beta)
        where T : unmanaged where TLoader : struct, IElementLoader<T>
    {
        float* acc = stackalloc float[MR * NR];
        new Span<float>(acc, MR * NR).Clear();
        for (int p = 0; p < kc; p++, a += MR, b += NR)
        for (int r = 0; r < MR; r++)
        {
            float ar = a[r];
            for (int j = 0; j < NR; j++) acc[r * NR + j] += ar * TLoader.Scalar(b + j);
        }
        for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++)
            c[r * ldc + j] = Update(acc[r * NR + j], c + r * ldc + j, alpha, beta);
    }
}
