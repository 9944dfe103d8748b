using SharpTune.Backends.Cpu;
using SharpTune.Tensors;

namespace SharpTune.Tests.Backends;

/// <summary>CpuMatMul against a float64 reference: every transpose mode, odd sizes, padded leading dimensions,
/// alpha/beta, bfloat16 B, the small-m (matrix-vector) paths, and bit-identical results across runs and thread counts.
/// The scalar fallback (no AVX2/FMA) is exercised by running these tests with DOTNET_EnableAVX2=0.</summary>
public unsafe class CpuMatMulTests
{
    public static TheoryData<bool, bool, int, int, int> Shapes()
    {
        var data = new TheoryData<bool, bool, int, int, int>();
        int[][] sizes = [[1, 1, 1], [3, 17, 65], [17, 3, 257], [65, 257, 17], [7, 33, 300], [2, 65, 257], [4, 17, 3], [5, 16, 256], [200, 530, 513], [9, 4200, 20], [1200, 7, 30], [6, 5, 0], [32, 13, 600], [24, 7, 513]];
        foreach (var s in sizes)
        foreach (bool ta in new[] { false, true })
        foreach (bool tb in new[] { false, true })
            data.Add(ta, tb, s[0], s[1], s[2]);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Gemm_MatchesFloat64Reference(bool transA, bool transB, int m, int n, int k)
    {
        foreach (var (alpha, beta) in new[] { (1f, 0f), (-0.75f, 1f), (1.5f, 0.5f) })
        {
            var p = Problem.Random(transA, transB, m, n, k, seed: m * 7919 + n * 31 + k, padding: 3);
            fixed (float* a = p.A, b = p.B, c = p.C)
                CpuMatMul.Gemm(transA, transB, m, n, k, alpha, a, p.Lda, b, p.Ldb, beta, c, p.Ldc);
            p.AssertMatchesReference(alpha, beta, p.B.Select(x => (double)x).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void GemmBF16B_MatchesReferenceOnWidenedWeights(bool transA, bool transB, int m, int n, int k)
    {
        var p = Problem.Random(transA, transB, m, n, k, seed: k * 7919 + n * 31 + m, padding: 5);
        var bf16 = p.B.Select(FloatConversions.F32ToBF16).ToArray();
        fixed (float* a = p.A, c = p.C)
        fixed (ushort* b = bf16)
            CpuMatMul.GemmBF16B(transA, transB, m, n, k, 0.5f, a, p.Lda, b, p.Ldb, 1f, c, p.Ldc);
        p.AssertMatchesReference(0.5f, 1f, bf16.Select(x => (double)FloatConversions.BF16ToF32(x)).ToArray());
    }

    [Theory]
    [InlineData(5, 0)]
    [InlineData(1, 1)]
    [InlineData(17, 3)]
    [InlineData(896, 33)]
    [InlineData(65, 896)]
    [InlineData(1000, 4864)]
    public void MatVec_MatchesReference(int n, int k)
    {
        var rng = new Random(n * 13 + k);
        int ldw = k + 7;
        var w = RandomArray(rng, n * ldw);
        var wBF16 = w.Select(FloatConversions.F32ToBF16).ToArray();
        var x = RandomArray(rng, k);
        var y = new float[n];
        var yBF16 = new float[n];
        fixed (float* pw = w, px = x, py = y, pyb = yBF16)
        fixed (ushort* pwb = wBF16)
        {
            CpuMatMul.MatVec(n, k, pw, ldw, px, py);
            CpuMatMul.MatVec(n, k, pwb, ldw, px, pyb);
        }
        for (int j = 0; j < n; j++)
        {
            double exact = 0, exactBF16 = 0, magnitude = 0;
            for (int p = 0; p < k; p++)
            {
                exact += (double)w[j * ldw + p] * x[p];
                exactBF16 += (double)FloatConversions.BF16ToF32(wBF16[j * ldw + p]) * x[p];
                magnitude += Math.Abs((double)w[j * ldw + p] * x[p]);
            }
            double tolerance = Tolerance(k) * magnitude + 1e-30;
            Assert.True(Math.Abs(y[j] - exact) <= tolerance, $"row {j}: {y[j]} vs {exact}");
            Assert.True(Math.Abs(yBF16[j] - exactBF16) <= tolerance, $"bf16 row {j}: {yBF16[j]} vs {exactBF16}");
        }
    }

    [Fact]
    public void BetaZero_IgnoresNaNInC()
    {
        foreach (int m in new[] { 1, 9 })
        {
            var p = Problem.Random(false, true, m, 20, 30, seed: 5, padding: 0);
            Array.Fill(p.C, float.NaN);
            fixed (float* a = p.A, b = p.B, c = p.C)
                CpuMatMul.Gemm(false, true, m, 20, 30, 1f, a, p.Lda, b, p.Ldb, 0f, c, p.Ldc);
            Assert.DoesNotContain(p.C, float.IsNaN);
        }
    }

    [Fact]
    public void PaddingColumnsOfC_AreNotWritten()
    {
        var p = Problem.Random(false, false, 13, 19, 40, seed: 9, padding: 4);
        var before = (float[])p.C.Clone();
        fixed (float* a = p.A, b = p.B, c = p.C)
            CpuMatMul.Gemm(false, false, 13, 19, 40, 1f, a, p.Lda, b, p.Ldb, 0f, c, p.Ldc);
        for (int i = 0; i < 13; i++)
        for (int j = 19; j < p.Ldc; j++)
            Assert.Equal(before[i * p.Ldc + j], p.C[i * p.Ldc + j]);
    }

    [Theory]
    [InlineData(false, true, 130, 300, 600)]
    [InlineData(false, false, 77, 520, 300)]
    [InlineData(true, false, 200, 64, 700)]
    [InlineData(false, true, 1, 3000, 896)]
    [InlineData(false, false, 3, 1000, 500)]
    public void Results_AreBitIdenticalAcrossRunsAndThreadCounts(bool transA, bool transB, int m, int n, int k)
    {
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3, 2 })
        {
            using var runner = new ParallelRunner(threads);
            var p = Problem.Random(transA, transB, m, n, k, seed: 42, padding: 1);
            var bf16 = p.B.Select(FloatConversions.F32ToBF16).ToArray();
            var c2 = (float[])p.C.Clone();
            fixed (float* a = p.A, b = p.B, c = p.C, cb = c2)
            fixed (ushort* pb = bf16)
            {
                CpuMatMul.Gemm(transA, transB, m, n, k, 1f, a, p.Lda, b, p.Ldb, 1f, c, p.Ldc, runner);
                CpuMatMul.GemmBF16B(transA, transB, m, n, k, 1f, a, p.Lda, pb, p.Ldb, 1f, cb, p.Ldc, runner);
            }
            var result = p.C.Concat(c2).ToArray();
            if (first == null) first = result;
            else Assert.Equal(first.Select(BitConverter.SingleToInt32Bits), result.Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void BadLeadingDimension_Throws()
    {
        var ex = Assert.Throws<SharpTuneException>(() =>
        {
            fixed (float* a = new float[16], b = new float[16], c = new float[16])
                CpuMatMul.Gemm(false, false, 2, 2, 4, 1f, a, 3, b, 2, 0f, c, 2);
        });
        Assert.Contains("lda", ex.Message);
    }

    /// <summary>Float32 accumulation error grows like sqrt(k) times the size of the summed terms.</summary>
    static double Tolerance(int k) => 1e-5 * Math.Sqrt(k);

    static float[] RandomArray(Random rng, int length)
    {
        var result = new float[length];
        for (int i = 0; i < length; i++) result[i] = (float)(rng.NextDouble() * 2 - 1);
        return result;
    }

    sealed class Problem
    {
        public required bool TransA, TransB;
        public required int M, N, K, Lda, Ldb, Ldc;
        public required float[] A, B, C, C0;

        /// <summary>Random operands stored with <paramref name="padding"/> extra (random) columns in every row.</summary>
        public static Problem Random(bool transA, bool transB, int m, int n, int k, int seed, int padding)
        {
            var rng = new Random(seed);
            int lda = (transA ? m : k) + padding, ldb = (transB ? k : n) + padding, ldc = n + padding;
            var c = RandomArray(rng, m * ldc);
            return new Problem
            {
                TransA = transA, TransB = transB, M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = ldc,
                A = RandomArray(rng, (transA ? k : m) * lda), B = RandomArray(rng, (transB ? n : k) * ldb), C = c, C0 = (float[])c.Clone(),
            };
        }

        /// <summary>Each element within Tolerance(k) of the sum of the magnitudes of its terms.</summary>
        public void AssertMatchesReference(float alpha, float beta, double[] b)
        {
            for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
            {
                double dot = 0, magnitude = 0;
                for (int p = 0; p < K; p++)
                {
                    double term = A[TransA ? p * Lda + i : i * Lda + p] * b[TransB ? j * Ldb + p : p * Ldb + j];
                    dot += term;
                    magnitude += Math.Abs(term);
                }
                double c0 = C0[i * Ldc + j];
                double expected = alpha * dot + (beta == 0 ? 0 : beta * c0);
                double tolerance = Tolerance(K) * (Math.Abs(alpha) * magnitude + Math.Abs(beta * c0)) + 1e-30;
                float actual = C[i * Ldc + j];
                Assert.True(Math.Abs(actual - expected) <= tolerance,
                    $"C[{i},{j}] = {actual}, expected {expected} (tolerance {tolerance}, transA={TransA} transB={TransB} m={M} n={N} k={K})");
            }
        }
    }
}
