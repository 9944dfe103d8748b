// Stand-alone check of decode.cu's matrix-vector kernels, built with nvcc on the GPU machine (no .NET needed there):
//   nvcc -arch=sm_90 -std=c++17 -o /tmp/decode_test bench/cuda-harness/decode_test.cu && /tmp/decode_test
// It includes the embedded kernel sources as NVRTC sees them (common.cu first) and compares one launch of
// linearBF16x1 (with and without the folded RMSNorm) against a float64 loop on the host.
#include <cstdio>
#include <cmath>
#include <vector>
#include <cstdint>
#include "../../src/SharpTune/Backends/Cuda/Kernels/common.cu"
#include "../../src/SharpTune/Backends/Cuda/Kernels/decode.cu"

static unsigned short toBf16(float f) { unsigned u; memcpy(&u, &f, 4); return (unsigned short)((u + 0x7fff + ((u >> 16) & 1)) >> 16); }
static float fromBf16(unsigned short h) { unsigned u = (unsigned)h << 16; float f; memcpy(&f, &u, 4); return f; }

int main()
{
    const int k = 264, n = 200;
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
    for (int variant = 0; variant < 4; variant++)
    {
        int norm = variant & 1, pairs = variant >> 1;
        cudaMemset(dy, 0, n * 4);
        int warps = pairs ? n / 2 : n;
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
        printf("linearBF16x1 norm=%d pairs=%d: %s, relative error %.3g (y[0] %g)\n", norm, pairs, cudaGetErrorString(e), std::sqrt(num / den), y[0]);
    }
    return 0;
}
