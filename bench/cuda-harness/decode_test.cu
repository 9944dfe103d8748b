// Stand-alone check of decode.cu's matrix-vector kernels, built with nvcc on the GPU machine (no .NET needed there):
//   nvcc -arch=sm_90 -std=c++17 -o /tmp/decode_test bench/cuda-harness/decode_test.cu && /tmp/decode_test
// It includes the embedded kernel sources as NVRTC sees them (common.cu first), compares one launch of linearBF16x1 (with
// and without the folded RMSNorm) and of gemv.cu's streamLinearx1 against a float64 loop on the host, and times both
// kernels on the 7B shapes (q/k/v, o, down, gate+up as one product) back to back, and decode.cu's kernel alone on q/k/v
// and o with and without the norm; stream_sweep.sh builds it for several shapes of gemv.cu's streaming, decode_sweep.sh for
// several of decode.cu's loads in flight and blocks an SM.
#include <cstdio>
#include <cmath>
#include <vector>
#include <cstdint>
#include "../../src/SharpTune/Backends/Cuda/Kernels/common.cu"
// DECODE_CU: another version of decode.cu to compare (-DDECODE_CU='"path"', relative to this file).
#ifndef DECODE_CU
#define DECODE_CU "../../src/SharpTune/Backends/Cuda/Kernels/decode.cu"
#endif
#include DECODE_CU
#include "../../src/SharpTune/Backends/Cuda/Kernels/gemv.cu"

static unsigned short toBf16(float f) { unsigned u; memcpy(&u, &f, 4); return (unsigned short)((u + 0x7fff + ((u >> 16) & 1)) >> 16); }
static float fromBf16(unsigned short h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }

int main()
{
    const int k = 2056, n = 200;
    std::vector<unsigned short> w(n * k), x(k);
    std::vector<float> g(k);
    unsigned s = 1;
    auto rnd = [&] { s = s * 1664525u + 1013904223u; return (float)((s >> 8) & 0xffff) / 32768.f - 1.f; };
    for (auto& v : w) v = toBf16(rnd());
    for (auto& v : x) v = toBf16(rnd());
    for (auto& v : g) v = rnd();
    void *dw, *dx, *dy; float* dg;
    cudaMalloc(&dw, w.size() * 2); cudaMalloc(&dx, x.size() * 2); cudaMalloc(&dy, n * 4); cudaMalloc(&dg, k * 4);
    cudaMemcpy(dw, w.data(), w.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice);
    cudaMemcpy(dg, g.data(), k * 4, cudaMemcpyHostToDevice);
    // gemv.cu's layout (CudaBackend.Decode.cs's StreamSharedBytes).
    auto streamShared = [](int m, int k, bool) { return STREAM_WARPS * STREAM_STAGES * (STREAM_PIECE * 2 + 8) + m * k * 4 + 160; };
    cudaFuncSetAttribute(streamLinearx1, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 << 10);
    for (int variant = 0; variant < 6; variant++)
    {
        int norm = variant & 1, pairs = (variant >> 1) & 1, stream = variant >> 2;
        cudaMemset(dy, 0, n * 4);
        int warps = pairs ? n / 2 : n;
        if (stream)
            streamLinearx1<<<(n + STREAM_WARPS - 1) / STREAM_WARPS, 32 * STREAM_WARPS, streamShared(1, k, norm)>>>((const bf16*)dx, 1, k, 1.f, 0.f, 0,
                (const bf16*)dw, nullptr, dy, n - 16, (const bf16*)dw + (n - 16) * k, nullptr, (float*)dy + n - 16, 16, nullptr, nullptr, nullptr, 0,
                norm ? dg : nullptr, 1e-6f);
        else
            linearBF16x1<<<(warps + 1) / 2, 64>>>(dx, 1, 1, k, 1.f, 0.f, 0, (const bf16*)dw, nullptr, dy, n, nullptr, nullptr, nullptr, 0,
                                                  nullptr, nullptr, nullptr, 0, norm ? dg : nullptr, 1e-6f, pairs);
        cudaError_t e = cudaDeviceSynchronize();
        std::vector<float> y(n);
        cudaMemcpy(y.data(), dy, n * 4, cudaMemcpyDeviceToHost);
        double ss = 0;
        for (int i = 0; i < k; i++) ss += (double)fromBf16(x[i]) * fromBf16(x[i]);
        double inv = norm ? 1 / std::sqrt(ss / k + 1e-6) : 1, num = 0, den = 0;
        for (int j = 0; j < n; j++)
        {
            double r = 0;
            for (int i = 0; i < k; i++) r += (double)fromBf16(w[j * k + i]) * fromBf16(x[i]) * (norm ? g[i] * inv : 1);
            num += (y[j] - r) * (y[j] - r);
            den += r * r;
        }
        printf("%s norm=%d pairs=%d: %s, relative error %.3g (y[0] %g)\n", stream ? "streamLinearx1" : "linearBF16x1", norm, pairs, cudaGetErrorString(e), std::sqrt(num / den), y[0]);
    }
    // Timing on the 7B shapes: 20 launches back to back after a warm-up, weights 1 GB apart so L2 holds none of them.
    struct Shape { const char* name; int n, k; } shapes[] = {{"q/k/v", 4608, 3584}, {"o", 3584, 3584}, {"down", 3584, 18944}, {"gate+up", 37888, 3584}};
    void* big; size_t bigBytes = (size_t)20 << 30;
    cudaMalloc(&big, bigBytes);
    void* xs; void* ys; cudaMalloc(&xs, 18944 * 2); cudaMalloc(&ys, 37888 * 4);
    cudaMemset(xs, 0, 18944 * 2);
    cudaEvent_t e0, e1; cudaEventCreate(&e0); cudaEventCreate(&e1);
    // Microseconds per call of launch(i) over 20 calls after 3 of warm-up.
    auto timeCalls = [&](auto launch) {
        for (int i = 0; i < 3; i++) launch(i);
        cudaEventRecord(e0);
        for (int i = 0; i < 20; i++) launch(i);
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms; cudaEventElapsedTime(&ms, e0, e1);
        return ms * 1000 / 20;
    };
    for (auto sh : shapes)
        for (int stream = 0; stream < 2; stream++)
        {
            size_t bytes = (size_t)sh.n * sh.k * 2;
            int copies = (int)(bigBytes / bytes) < 20 ? (int)(bigBytes / bytes) : 20;
            auto launch = [&](int i) {
                const bf16* w = (const bf16*)((char*)big + (size_t)i % copies * bytes);
                if (stream) streamLinearx1<<<132, 32 * STREAM_WARPS, streamShared(1, sh.k, false)>>>((const bf16*)xs, 1, sh.k, 1.f, 0.f, 0, w, nullptr, ys, sh.n,
                                                                    nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0, nullptr, 0.f);
                else
                {
                    int pairs = sh.n > 132 * 32, warps = pairs ? sh.n / 2 : sh.n;
                    linearBF16x1<<<(warps + 1) / 2, 64>>>(xs, 1, 1, sh.k, 1.f, 0.f, 0, w, nullptr, ys, sh.n, nullptr, nullptr, nullptr, 0,
                                                          nullptr, nullptr, nullptr, 0, nullptr, 0.f, pairs);
                }
            };
            float us = timeCalls(launch);
            printf("%-8s %-14s %7.1f us/call %6.0f GB/s (%s)\n", sh.name, stream ? "streamLinearx1" : "linearBF16x1", us,
                   bytes / (us * 1e-6) / 1e9, cudaGetErrorString(cudaGetLastError()));
        }
    // decode.cu's kernel alone on the small products: q/k/v (three weights, two features a warp) and o (one and two), with
    // and without the norm.
    float* gs; cudaMalloc(&gs, 3584 * 4); cudaMemset(gs, 0, 3584 * 4);
    for (int shape = 0; shape < 3; shape++)
        for (int norm = 0; norm < 2; norm++)
        {
            int pairs = shape != 1;
            int n0 = 3584, n1 = shape == 0 ? 512 : 0, kk = 3584, total = n0 + 2 * n1;   // shape 2: o in pairs
            size_t bytes = (size_t)total * kk * 2;
            int copies = 20, warps = pairs ? total / 2 : total;
            auto launch = [&](int i) {
                const bf16* w = (const bf16*)((char*)big + (size_t)i % copies * bytes);
                linearBF16x1<<<(warps + 1) / 2, 64>>>(xs, 1, 1, kk, 1.f, 0.f, 1, w, nullptr, ys, n0, n1 ? w + (size_t)n0 * kk : nullptr, nullptr,
                    (bf16*)ys + n0, n1, n1 ? w + (size_t)(n0 + n1) * kk : nullptr, nullptr, (bf16*)ys + n0 + n1, n1, norm ? gs : nullptr, 1e-6f,
                    pairs);
            };
            float us = timeCalls(launch);
            printf("%-6s norm=%d pairs=%d  %7.1f us/call %6.0f GB/s (%s)\n", shape == 0 ? "q/k/v" : "o", norm, pairs, us,
                   bytes / (us * 1e-6) / 1e9, cudaGetErrorString(cudaGetLastError()));
        }
    return 0;
}
