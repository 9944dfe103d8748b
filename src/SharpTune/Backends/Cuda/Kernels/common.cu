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

// The reductions' operators: combine two partial results; identity is what a thread without a value contributes.
struct SumOp
{
    static __device__ __forceinline__ float combine(float a, float b) { return a + b; }
    static __device__ __forceinline__ float identity() { return 0.f; }
};

struct MaxOp
{
    static __device__ __forceinline__ float combine(float a, float b) { return fmaxf(a, b); }
    static __device__ __forceinline__ float identity() { return NEG_INF; }
};

// Over the 32 lanes of a warp; every lane gets the result.
template <typename Op> __device__ __forceinline__ float warpReduce(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = Op::combine(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Over a block of up to 1024 threads; every thread gets the result. scratch holds 32 floats.
template <typename Op> __device__ float blockReduce(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = warpReduce<Op>(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? scratch[lane] : Op::identity();
    return warpReduce<Op>(v);
}

__device__ __forceinline__ float warpSum(float v) { return warpReduce<SumOp>(v); }
__device__ __forceinline__ float warpMax(float v) { return warpReduce<MaxOp>(v); }
__device__ __forceinline__ float blockSum(float v, float* scratch) { return blockReduce<SumOp>(v, scratch); }
__device__ __forceinline__ float blockMax(float v, float* scratch) { return blockReduce<MaxOp>(v, scratch); }

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

// Two floats to 8 aligned bytes in one store.
__device__ __forceinline__ void storePair(float* p, float a, float b)
{
    float2 x;
    x.x = a;
    x.y = b;
    *(float2*)p = x;
}

#define COUNTER_GOLDEN 0x9E3779B97F4A7C15ull

// SplitMix64's finalizer over (seed, index), as CounterRandom.Hash on the CPU.
__device__ __forceinline__ u64 counterHash(u64 seed, u64 index)
{
    u64 z = seed + COUNTER_GOLDEN * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Uniform in [0, 1) from a hash's top 24 bits (the benchmarks' random weights).
__device__ __forceinline__ float counterUniform(u64 seed, u64 index)
{
    return (float)(unsigned)(counterHash(seed, index) >> 40) * (1.0f / 16777216.0f);
}

// Dropout's mask, as CounterRandom.Bits16 on the CPU: counterHash(seed, i / 4) holds the 16-bit numbers of elements
// 4·(i/4) .. 4·(i/4)+3, lowest bits first; element i is dropped when its number is below threshold = ⌈65536·p⌉.
__device__ __forceinline__ bool counterDrops(u64 bits, int lane, unsigned threshold)
{
    return ((unsigned)(bits >> (16 * lane)) & 0xffffu) < threshold;
}

// The 8 masks of elements 8v .. 8v+7 (two hashes), bit j set when element 8v+j is dropped.
__device__ __forceinline__ unsigned counterDropMask8(u64 seed, i64 v, unsigned threshold)
{
    u64 lo = counterHash(seed, 2 * (u64)v), hi = counterHash(seed, 2 * (u64)v + 1);
    unsigned mask = 0;
#pragma unroll
    for (int j = 0; j < 4; j++)
    {
        mask |= (unsigned)counterDrops(lo, j, threshold) << j;
        mask |= (unsigned)counterDrops(hi, j, threshold) << (j + 4);
    }
    return mask;
}

#define GRID_STRIDE(i, n) for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

// Programmatic dependent launch (sm_90 and later). A kernel launched with it may start while the kernel before it in the
// stream still runs: it calls gridDependencyWait before it reads what earlier work wrote or writes what earlier work reads
// (every thread that touches such memory, before any early return), and gridDependencyRelease to let the next such kernel
// start. Launched without it, or on older GPUs, both do nothing.
__device__ __forceinline__ void gridDependencyWait()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ __forceinline__ void gridDependencyRelease()
{
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}
