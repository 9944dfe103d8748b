// Does an L2 prefetch of a decoding product's weight make it faster, apart from what the prefetch's own launch costs?
// Built with nvcc on the GPU machine:
//   nvcc -arch=sm_90 -std=c++17 -o /tmp/prefetch_test bench/cuda-harness/prefetch_test.cu && /tmp/prefetch_test
// On the 7B shapes, each product's time (events around it alone) after a 15 us spin on one SM (the small kernels between
// q/k/v and o), with and without the weight prefetched before the spin; and q/k/v after the gate/up and down products
// (411 MB streamed) with and without its weights prefetched before them. Weights 1 GB apart, fresh each call.
// H200, 2026-12-02 (docs/gpu-runs/2026-12-02/run19-prefetch.txt): o 12.7 -> 12.3 us, q/k/v 15.5 -> 14.9, while the
// prefetch kernel itself lasts ~5 us and slows gate/up + down by 6.4 us: the small products are not waiting on DRAM, and
// in the decoding step (run 18) prefetching o and the next q/k/v cost 6 % (222 against 237 tokens/s); not kept.
#include <cstdio>
#include <vector>
#include "../../src/SharpTune/Backends/Cuda/Kernels/common.cu"
#include "../../src/SharpTune/Backends/Cuda/Kernels/decode.cu"
#include "../../src/SharpTune/Backends/Cuda/Kernels/gemv.cu"

// Hopper's bulk prefetch into L2 of a byte range (16-byte aligned): each lane of the grid takes an even share in
// 16-byte units, in requests of at most 64 KiB. A hint: nothing waits for the bytes.
__global__ void prefetchL2(const char* p, i64 bytes)
{
    i64 lane = (i64)blockIdx.x * blockDim.x + threadIdx.x, lanes = (i64)gridDim.x * blockDim.x;
    i64 units = bytes / 16, lo = units * lane / lanes * 16, hi = units * (lane + 1) / lanes * 16;
    for (i64 at = lo; at < hi; at += 64 << 10)
    {
        unsigned n = (unsigned)min((i64)(64 << 10), hi - at);
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" :: "l"(p + at), "r"(n) : "memory");
    }
}

__global__ void spin(long long cycles)
{
    long long t0 = clock64();
    while (clock64() - t0 < cycles) { }
}

int main()
{
    const size_t region = (size_t)1 << 30;
    const int calls = 12;
    void* big; cudaMalloc(&big, region * calls);
    void *xs, *ys; cudaMalloc(&xs, 18944 * 2); cudaMalloc(&ys, 37888 * 4);
    cudaMemset(xs, 0, 18944 * 2);
    float* gs; cudaMalloc(&gs, 18944 * 4); cudaMemset(gs, 0, 18944 * 4);
    cudaFuncSetAttribute(streamLinearx1, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 << 10);
    cudaFuncSetAttribute(streamSwiGlux1, cudaFuncAttributeMaxDynamicSharedMemorySize, 227 << 10);
    auto streamShared = [](int k) { return STREAM_WARPS * STREAM_STAGES * (STREAM_PIECE * 2 + 8) + k * 4 + 160; };
    int sms; cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
    std::vector<cudaEvent_t> ev(2 * calls);
    for (auto& e : ev) cudaEventCreate(&e);
    const char* base = (const char*)big;
    // Within region i: q/k/v (4608 x 3584) at 0, o (3584 x 3584) at 64 MB, gate/up (2 x 18944 x 3584) at 128 MB, down at 512 MB.
    auto qkv = [&](int i) {
        const bf16* w = (const bf16*)(base + i * region);
        linearBF16x1<<<1152, 64>>>(xs, 1, 1, 3584, 1.f, 0.f, 1, w, nullptr, ys, 3584, w + 3584 * 3584, nullptr, (bf16*)ys + 3584, 512,
                                   w + 4096 * 3584, nullptr, (bf16*)ys + 4096, 512, gs, 1e-6f, 1);
    };
    auto o = [&](int i) {
        const bf16* w = (const bf16*)(base + i * region + (64 << 20));
        linearBF16x1<<<1792, 64>>>(xs, 1, 1, 3584, 1.f, 0.f, 1, w, nullptr, ys, 3584, nullptr, nullptr, nullptr, 0,
                                   nullptr, nullptr, nullptr, 0, nullptr, 0.f, 0);
    };
    auto gateUpDown = [&](int i) {
        const bf16* g = (const bf16*)(base + i * region + (128 << 20));
        streamSwiGlux1<<<sms, 32 * STREAM_WARPS, streamShared(3584)>>>((const bf16*)xs, 1, 3584, g, g + 18944 * 3584, ys, 1, 18944, gs, 1e-6f);
        const bf16* d = (const bf16*)(base + i * region + (512 << 20));
        streamLinearx1<<<sms, 32 * STREAM_WARPS, streamShared(18944)>>>((const bf16*)xs, 1, 18944, 1.f, 0.f, 1, d, nullptr, ys, 3584,
            nullptr, nullptr, nullptr, 0, nullptr, nullptr, nullptr, 0, nullptr, 0.f);
    };
    auto prefetch = [&](int i, size_t offset, size_t bytes, int lanes = 32) {
        prefetchL2<<<sms, lanes>>>(base + i * region + offset, (i64)bytes);
    };
    // The mean of the calls' product times, where run(i) records ev[2i] and ev[2i+1] around the product.
    auto mean = [&](auto run) {
        for (int i = 0; i < calls; i++) run(i);
        cudaDeviceSynchronize();
        float total = 0;
        for (int i = 1; i < calls; i++) { float ms; cudaEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]); total += ms; }
        return total * 1000 / (calls - 1);
    };
    const long long spinCycles = 30000;   // ~15 us at 1.98 GHz
    for (int round = 0; round < 2; round++)
    {
        for (int fetch = 0; fetch < 3; fetch++)
        {
            float us = mean([&](int i) {
                if (fetch) prefetch(i, 64 << 20, (size_t)3584 * 3584 * 2, fetch == 1 ? 32 : 1);
                spin<<<1, 32>>>(spinCycles);
                cudaEventRecord(ev[2 * i]); o(i); cudaEventRecord(ev[2 * i + 1]);
            });
            printf("round %d  o      after spin, prefetched %d (2: one lane a block): %6.1f us (%s)\n", round, fetch, us, cudaGetErrorString(cudaGetLastError()));
        }
        for (int fetch = 0; fetch < 2; fetch++)
        {
            float us = mean([&](int i) {
                if (fetch) prefetch(i, 0, (size_t)4608 * 3584 * 2);
                spin<<<1, 32>>>(spinCycles);
                cudaEventRecord(ev[2 * i]); qkv(i); cudaEventRecord(ev[2 * i + 1]);
            });
            printf("round %d  q/k/v  after spin, prefetched %d: %6.1f us (%s)\n", round, fetch, us, cudaGetErrorString(cudaGetLastError()));
        }
        for (int fetch = 0; fetch < 2; fetch++)
        {
            float us = mean([&](int i) {
                if (fetch) prefetch(i, 0, (size_t)4608 * 3584 * 2);
                gateUpDown(i);
                cudaEventRecord(ev[2 * i]); qkv(i); cudaEventRecord(ev[2 * i + 1]);
            });
            printf("round %d  q/k/v  after gate/up + down, prefetched before them %d: %6.1f us (%s)\n", round, fetch, us,
                   cudaGetErrorString(cudaGetLastError()));
        }
        for (int fetch = 0; fetch < 2; fetch++)
        {
            float us = mean([&](int i) {
                cudaEventRecord(ev[2 * i]);
                if (fetch) prefetch(i, 0, (size_t)4608 * 3584 * 2);
                gateUpDown(i);
                cudaEventRecord(ev[2 * i + 1]);
            });
            printf("round %d  gate/up + down, with the q/k/v prefetch %d: %6.1f us\n", round, fetch, us);
        }
        for (int fetch = 0; fetch < 2; fetch++)
        {
            float us = mean([&](int i) {
                spin<<<1, 32>>>(spinCycles);
                cudaEventRecord(ev[2 * i]);
                if (fetch) prefetch(i, 64 << 20, (size_t)3584 * 3584 * 2);
                cudaEventRecord(ev[2 * i + 1]);
            });
            printf("round %d  the prefetch kernel alone %d: %6.1f us\n", round, fetch, us);
        }
    }
    return 0;
}
