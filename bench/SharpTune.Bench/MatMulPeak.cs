using System.Diagnostics;
using System.Runtime.InteropServices;
using SharpTune.Backends.Cpu;

namespace SharpTune.Bench;

/// <summary>
/// The FLOP rate of the GEMM microkernel on operands that stay in L1 (one packed A panel, one packed B panel, one
/// C tile per task), on all threads of the runner: the compute ceiling that GEMM efficiency is reported against.
/// </summary>
internal static unsafe class MatMulPeak
{
    const int Depth = 256, CallsPerTask = 2000;

    public static double MeasureGflops(int runs = 10, ParallelRunner? runner = null)
    {
        runner ??= ParallelRunner.Default;
        int tasks = runner.ThreadCount * 8;
        double flopsPerRun = (double)tasks * CallsPerTask * 2.0 * GemmKernel.MR * GemmKernel.NR * Depth;
        double best = 0;
        for (int run = 0; run < runs; run++)
        {
            var watch = Stopwatch.StartNew();
            runner.For(tasks, 0, static (_, _) => RunTask());
            best = Math.Max(best, flopsPerRun / watch.Elapsed.TotalSeconds / 1e9);
        }
        return best;
    }

    static void RunTask()
    {
        float* a = Allocate(GemmKernel.MR * Depth), b = Allocate(GemmKernel.NR * Depth), c = Allocate(GemmKernel.MR * GemmKernel.NR);
        for (int i = 0; i < GemmKernel.MR * Depth; i++) a[i] = 1e-3f * (i % 7);
        for (int i = 0; i < GemmKernel.NR * Depth; i++) b[i] = 1e-3f * (i % 5);
        for (int i = 0; i < GemmKernel.MR * GemmKernel.NR; i++) c[i] = 0;
        for (int call = 0; call < CallsPerTask; call++) GemmKernel.Tile(Depth, a, b, c, GemmKernel.NR, 1f, 1f);
        NativeMemory.AlignedFree(a);
        NativeMemory.AlignedFree(b);
        NativeMemory.AlignedFree(c);
    }

    static float* Allocate(int floats) => (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
}
