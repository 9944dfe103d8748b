// Shared helpers, prepended to every kernel module. Tensors arrive as untyped pointers plus a dtype code
// (0 = float32, 1 = bfloat16) so one kernel serves the mixed-precision combinations the model uses; all math is float32.
typedef unsigned short bf16;
typedef long long i64;
typedef unsigned long long u64;
#define NEG_INF __int_as_float(0xff800000)

__device__ __forceinline__ float bf2f(bf16 x) { return __uint_as_float(((unsigned)x) << 16); }

// Round to nearest even, NaN kept quiet (as torch's float->bfloat16).
__device__ __forceinline__ bf16 f2bf(float f)
{
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

__device__ __forceinline__ float ld(const void* p, int t, i64 i)
{
    return t ? bf2f(((const bf16*)p)[i]) : ((const float*)p)[i];
}

__device__ __forceinline__ void st(void* p, int t, i64 i, float v)
{
    if (t) ((bf16*)p)[i] = f2bf(v); else ((float*)p)[i] = v;
}

__device__ __forceinline__ float warpSum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warpMax(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over a block of up to 1024 threads; every thread gets the result. scratch holds 32 floats.
__device__ float blockSum(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warpSum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? scratch[lane] : 0.f;
    return warpSum(v);
}

// 8 bfloat16 of a 16-byte word to float32, and back (round to nearest even).
__device__ __forceinline__ void unpackBF16x8(uint4 w, float* f)
{
    unsigned u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        f[2 * i] = __uint_as_float(u[i] << 16);
        f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ uint4 packBF16x8(const float* f)
{
    uint4 w;
    w.x = (unsigned)f2bf(f[0]) | ((unsigned)f2bf(f[1]) << 16);
    w.y = (unsigned)f2bf(f[2]) | ((unsigned)f2bf(f[3]) << 16);
    w.z = (unsigned)f2bf(f[4]) | ((unsigned)f2bf(f[5]) << 16);
    w.w = (unsigned)f2bf(f[6]) | ((unsigned)f2bf(f[7]) << 16);
    return w;
}

#define COUNTER_GOLDEN 0x9E3779B97F4A7C15ull

// SplitMix64's finalizer from its first step z = seed + golden·(index + 1), so a loop over indices can advance z by an
// addition instead of a 64-bit multiply per element.
__device__ __forceinline__ float counterUniformFrom(u64 z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    // The finalizer's last step, z ^= z >> 31, leaves the top 24 bits (the ones kept) as they are; they fit a 32-bit
    // conversion, which is cheaper than a 64-bit one and exact.
    return (float)(unsigned)(z >> 40) * (1.0f / 16777216.0f);
}

// SplitMix64's finalizer over (seed, index): the same stream as CounterRandom on the CPU.
__device__ __forceinline__ float counterUniform(u64 seed, u64 index)
{
    return counterUniformFrom(seed + COUNTER_GOLDEN * (index + 1));
}

#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)
