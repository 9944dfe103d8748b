using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SharpTune.Backends.Cpu;

/// <summary>
/// Dot products of bfloat16 weight rows with one float32 vector, cheaper to widen than element by element: a 32-bit
/// lane holding two bfloat16 values gives the even one by a shift and the odd one by a mask, so 16 weights cost one
/// load and two ALU ops. The vector is reordered once per product to match (<see cref="Deinterleave"/>).
/// Needs AVX2 and FMA.
/// </summary>
internal static unsafe class BF16DotKernel
{
    /// <summary>Per block of 16: x[p], x[p+2].. x[p+14] then x[p+1], x[p+3].. x[p+15]; a tail under 16 is copied as is.</summary>
    public static void Deinterleave(float* x, int k, float* reordered)
    {
        int p = 0;
        for (; p + 16 <= k; p += 16)
            for (int l = 0; l < 8; l++)
            {
                reordered[p + l] = x[p + 2 * l];
                reordered[p + 8 + l] = x[p + 2 * l + 1];
            }
        for (; p < k; p++) reordered[p] = x[p];
    }

    /// <summary>
    /// Four rows of W (row stride <paramref name="ldw"/>) against the reordered vector. The software prefetch runs over
    /// the next four rows as one block, at four times the pace of the loads, so it has fetched them when they are
    /// reached: bfloat16 rows are short streams (896 weights are 1.75 KiB), too short for the hardware prefetchers and
    /// for a fixed distance ahead in each row (measured at Qwen2.5-0.5B's shape: 19.8 decode tokens/s against 15.8).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Dot4Rows(ushort* w0, int ldw, float* reordered, int k, float* sums)
    {
        ushort* w1 = w0 + ldw, w2 = w1 + ldw, w3 = w2 + ldw, next = w0 + 4L * ldw;
        var oddMask = Vector256.Create(unchecked((int)0xFFFF0000));
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        int p = 0;
        for (; p + 16 <= k; p += 16)
        {
            // The 64 weights this step reads in four rows are 128 bytes; fetch as much of the next four rows.
            Sse.Prefetch0(next + 4 * p);
            Sse.Prefetch0(next + 4 * p + 32);
            var xe = Avx.LoadVector256(reordered + p);
            var xo = Avx.LoadVector256(reordered + p + 8);
            var v0 = Avx.LoadVector256((int*)(w0 + p));
            var v1 = Avx.LoadVector256((int*)(w1 + p));
            var v2 = Avx.LoadVector256((int*)(w2 + p));
            var v3 = Avx.LoadVector256((int*)(w3 + p));
            a0 = Fma.MultiplyAdd(Avx2.ShiftLeftLogical(v0, 16).AsSingle(), xe, a0); b0 = Fma.MultiplyAdd(Avx2.And(v0, oddMask).AsSingle(), xo, b0);
            a1 = Fma.MultiplyAdd(Avx2.ShiftLeftLogical(v1, 16).AsSingle(), xe, a1); b1 = Fma.MultiplyAdd(Avx2.And(v1, oddMask).AsSingle(), xo, b1);
            a2 = Fma.MultiplyAdd(Avx2.ShiftLeftLogical(v2, 16).AsSingle(), xe, a2); b2 = Fma.MultiplyAdd(Avx2.And(v2, oddMask).AsSingle(), xo, b2);
            a3 = Fma.MultiplyAdd(Avx2.ShiftLeftLogical(v3, 16).AsSingle(), xe, a3); b3 = Fma.MultiplyAdd(Avx2.And(v3, oddMask).AsSingle(), xo, b3);
        }
        float r0 = Vector256.Sum(a0 + b0), r1 = Vector256.Sum(a1 + b1), r2 = Vector256.Sum(a2 + b2), r3 = Vector256.Sum(a3 + b3);
        for (; p < k; p++)
        {
            float x = reordered[p];
            r0 = MathF.FusedMultiplyAdd(BF16Loader.Scalar(w0 + p), x, r0); r1 = MathF.FusedMultiplyAdd(BF16Loader.Scalar(w1 + p), x, r1);
            r2 = MathF.FusedMultiplyAdd(BF16Loader.Scalar(w2 + p), x, r2); r3 = MathF.FusedMultiplyAdd(BF16Loader.Scalar(w3 + p), x, r3);
        }
        sums[0] = r0; sums[1] = r1; sums[2] = r2; sums[3] = r3;
    }
}
