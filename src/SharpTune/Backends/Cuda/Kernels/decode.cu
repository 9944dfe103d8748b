// Decoding kernels. Products of a few activation rows (one per sequence) with a linear layer's weight W [n, k] cost the
// time it takes to read W once, so each warp streams whole rows of W with 16-byte loads (DECODE_LOADS per lane in flight, in
// rounds whose tail is predicated rather than serial) and multiplies them with the m <= M input rows, which stay in L1;
// accumulation is float32. W is bfloat16 or float32.

// DECODE_LOADS: the 16-byte weight loads a lane has in flight; DECODE_BLOCKS: the 2-warp blocks of a linear product an SM
// holds, which caps a thread at 65536 / (64 · DECODE_BLOCKS) registers. Measured on H200s (7B shapes): at 16 blocks (64
// registers) the kernel spilled; at 8 (128) bench/cuda-harness/decode_sweep.sh has q/k/v with its norm 13.8 -> 13.3 us
// and o (two features a warp) 11.1 -> 10.7, and the whole decoding step gained 5 % (cuda-decode 7b, same machine: 234.7 /
// 233.5 -> 246.5 / 245.6 tokens/s). 12 or more loads were slower at any block count; 6 blocks, or four features a warp
// for q/k/v, changed nothing (248-250 tokens/s each). CudaBackend.Decode.cs's resident warps must match DECODE_BLOCKS.
#ifndef DECODE_LOADS
#define DECODE_LOADS 8
#define DECODE_BLOCKS 8
#endif

// 16 bytes of a weight read once per token: not kept in L1, which holds x.
__device__ __forceinline__ uint4 loadStreaming(const void* p)
{
    uint4 u;
    asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(u.x), "=r"(u.y), "=r"(u.z), "=r"(u.w) : "l"(p));
    return u;
}

// The 16 bytes u as float32 values: 8 bfloat16 or 4 float32.
template <typename TW> __device__ __forceinline__ void unpack(uint4 u, float* f)
{
    if constexpr (sizeof(TW) == 2)
    {
        f[0] = __uint_as_float(u.x << 16); f[1] = __uint_as_float(u.x & 0xffff0000u);
        f[2] = __uint_as_float(u.y << 16); f[3] = __uint_as_float(u.y & 0xffff0000u);
        f[4] = __uint_as_float(u.z << 16); f[5] = __uint_as_float(u.z & 0xffff0000u);
        f[6] = __uint_as_float(u.w << 16); f[7] = __uint_as_float(u.w & 0xffff0000u);
    }
    else
    {
        f[0] = __uint_as_float(u.x); f[1] = __uint_as_float(u.y); f[2] = __uint_as_float(u.z); f[3] = __uint_as_float(u.w);
    }
}

// V consecutive values of x (float32 or bfloat16, code tx) from element i, a multiple of V, as float32.
template <int V> __device__ __forceinline__ void loadX(const void* x, int tx, i64 i, float* f)
{
    if (tx)
    {
        const bf16* p = (const bf16*)x + i;
        if constexpr (V == 8) unpack<bf16>(*(const uint4*)p, f);
        else
        {
            uint2 u = *(const uint2*)p;
            f[0] = __uint_as_float(u.x << 16); f[1] = __uint_as_float(u.x & 0xffff0000u);
            f[2] = __uint_as_float(u.y << 16); f[3] = __uint_as_float(u.y & 0xffff0000u);
        }
    }
    else
    {
        const float4* p = (const float4*)((const float*)x + i);
#pragma unroll
        for (int h = 0; h < V / 4; h++)
        {
            float4 q = p[h];
            f[4 * h] = q.x; f[4 * h + 1] = q.y; f[4 * h + 2] = q.z; f[4 * h + 3] = q.w;
        }
    }
}

// acc[i·M + r] += W_i[k0 .. k0+V) · x[r, k0 .. k0+V) for the NW weight pieces u[i] and the rows r < m: x (and g) are
// loaded once for all NW rows (bench/cuda-harness on an H200, the 7B q/k/v with its norm, two rows a warp: 15.0 -> 13.8 us,
// where reloading them per row kept the SM's load pipe busier than the weights did). With
// NORM, x is first multiplied by the RMSNorm weight g and ss[r] gathers Σx² (the caller scales the finished sums by each
// row's 1/rms).
template <int M, int NW, typename TW, bool NORM>
__device__ __forceinline__ void fmaRows(const void* x, int tx, int m, int k, int k0, const uint4* u, float* acc, const float* g, float* ss)
{
    constexpr int V = 16 / sizeof(TW);
    float wf[NW][V], gv[V];
#pragma unroll
    for (int i = 0; i < NW; i++) unpack<TW>(u[i], wf[i]);
    if constexpr (NORM) loadX<V>(g, 0, k0, gv);
#pragma unroll
    for (int r = 0; r < M; r++)
        if (r < m)
        {
            float xf[V];
            loadX<V>(x, tx, (i64)r * k + k0, xf);
            // Braces: a pragma right after an if's condition would end the if (nvcc takes it for the statement).
            if constexpr (NORM)
            {
#pragma unroll
                for (int v = 0; v < V; v++)
                {
                    ss[r] = fmaf(xf[v], xf[v], ss[r]);
                    xf[v] *= gv[v];
                }
            }
#pragma unroll
            for (int i = 0; i < NW; i++)
#pragma unroll
                for (int v = 0; v < V; v++) acc[i * M + r] = fmaf(wf[i][v], xf[v], acc[i * M + r]);
        }
}

// For each of the NW weight rows w[i] (k values each): acc[i·M + r] = w[i]·x[r] summed over the warp (every lane gets it);
// with NORM, x[r] is RmsNorm(x[r])·g: every warp sums Σx² of the rows it reads anyway and applies 1/rms to its sums, so the
// normed rows are never stored and no warp waits on a pass over x before its weight stream starts.
// A round issues all its loads (DECODE_LOADS per lane over the NW rows) before the first use; a lane's loads past k are skipped.
template <int M, int NW, typename TW, bool NORM>
__device__ __forceinline__ void dotRows(const void* x, int tx, int m, int k, const TW* const* w, int lane, float* acc,
                                        const float* g, float eps)
{
    constexpr int V = 16 / sizeof(TW), STEP = 32 * V, ROUND = DECODE_LOADS / NW;
    float ss[M];
#pragma unroll
    for (int i = 0; i < NW * M; i++) acc[i] = 0.f;
#pragma unroll
    for (int r = 0; r < M; r++) ss[r] = 0.f;
    for (int k0 = lane * V; k0 < k; k0 += ROUND * STEP)
    {
        uint4 u[NW][ROUND];
#pragma unroll
        for (int s = 0; s < ROUND; s++)
            if (k0 + s * STEP < k)
#pragma unroll
                for (int i = 0; i < NW; i++) u[i][s] = loadStreaming(w[i] + k0 + s * STEP);
#pragma unroll
        for (int s = 0; s < ROUND; s++)
            if (k0 + s * STEP < k)
            {
                uint4 piece[NW];
#pragma unroll
                for (int i = 0; i < NW; i++) piece[i] = u[i][s];
                fmaRows<M, NW, TW, NORM>(x, tx, m, k, k0 + s * STEP, piece, acc, g, ss);
            }
    }
#pragma unroll
    for (int i = 0; i < NW * M; i++) acc[i] = warpSum(acc[i]);
    if constexpr (NORM)
    {
#pragma unroll
        for (int r = 0; r < M; r++)
        {
            // As rmsNorm: 1/sqrt(mean of squares + eps), correctly rounded.
            float inv = 1.f / sqrtf(warpSum(ss[r]) / k + eps);
#pragma unroll
            for (int i = 0; i < NW; i++) acc[i * M + r] *= inv;
        }
    }
}

// Up to three linear layers reading the same x [m, k] in one launch (the q, k and v projections), R consecutive output
// features per warp (R = 2 when one feature a warp would leave more warps than the SMs hold at once: a second, nearly empty
// wave would double the time): features [0, n0) are layer 0's, the next n1 layer 1's, the next n2 layer 2's (each a multiple
// of R). y = alpha·x·Wᵀ + b + beta·y (beta = 0 ignores y's contents; b may be null); with a norm weight g, x is RmsNorm(x)·g.
template <int M, typename TW, bool NORM, int R>
__device__ __forceinline__ void linearRows(const void* x, int tx, int m, int k, float alpha, float beta, int ty,
                                           const TW* w0, const float* b0, void* y0, int n0,
                                           const TW* w1, const float* b1, void* y1, int n1,
                                           const TW* w2, const float* b2, void* y2, int n2, const float* g, float eps)
{
    int lane = threadIdx.x & 31;
    int j = (blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5)) * R;
    const TW* w = nullptr;
    const float* b = nullptr;
    void* y = nullptr;
    int n = 0;
    if (j < n0) { w = w0; b = b0; y = y0; n = n0; }
    else if ((j -= n0) < n1) { w = w1; b = b1; y = y1; n = n1; }
    else if ((j -= n1) < n2) { w = w2; b = b2; y = y2; n = n2; }
    gridDependencyWait();
    gridDependencyRelease();
    if (!w) return;
    const TW* rows[R];
#pragma unroll
    for (int i = 0; i < R; i++) rows[i] = w + (i64)(j + i) * k;
    float acc[R * M];
    dotRows<M, R, TW, NORM>(x, tx, m, k, rows, lane, acc, g, eps);
#pragma unroll
    for (int i = 0; i < R; i++)
#pragma unroll
        for (int r = 0; r < M; r++)
            if (r < m && lane == i * M + r)
            {
                i64 o = (i64)r * n + j + i;
                float v = alpha * acc[i * M + r];
                if (b != 0) v += b[j + i];
                if (beta != 0.f) v += beta * ld(y, ty, o);
                st(y, ty, o, v);
            }
}

// h = silu(x·Wgᵀ)·(x·Wuᵀ) for x [m, k], Wg and Wu [n, k], h [m, n]: the gate and up projections and SwiGLU in one pass.
template <int M, typename TW, bool NORM>
__device__ __forceinline__ void swigluRows(const void* x, int tx, int m, int k, const TW* wg, const TW* wu, void* h, int th, int n,
                                           const float* g, float eps)
{
    int lane = threadIdx.x & 31;
    int j = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const TW* rows[2] = { wg + (i64)j * k, wu + (i64)j * k };
    gridDependencyWait();
    gridDependencyRelease();
    if (j >= n) return;
    float acc[2 * M];
    dotRows<M, 2, TW, NORM>(x, tx, m, k, rows, lane, acc, g, eps);
#pragma unroll
    for (int r = 0; r < M; r++)
        if (r < m && lane == r)
        {
            float gate = acc[r];
            st(h, th, (i64)r * n + j, gate / (1.f + expf(-gate)) * acc[M + r]);
        }
}

// Decoding's q/k/v products with rope and the KV-cache append folded in, for models without per-head q/k norms: a warp
// takes the two features j and j + headDim/2 of one head that rope rotates together (features [0, nq) are q's, the next
// nkv k's, the next nkv v's), so it holds both sums: q's pair goes rotated to q's row, k's rotated to row positions[r] of
// keyCache, v's as they are to the same row of valueCache. x is RmsNorm(x)·g. Each sum is rounded to the activation type
// before it rotates, as when ropeQueryKeyAppend reads the stored product. Measured on H200s (docs/gpu-runs/2026-12-03
// run14): the 7B step +1.1 % against the product and ropeQueryKeyAppend as two kernels, the 0.5B +3 %.
template <int M, typename TW>
__device__ __forceinline__ void qkvRopeRows(const void* x, int tx, int m, int k, const float* g, float eps,
                                            const TW* wq, const float* bq, void* q, int nq,
                                            const TW* wk, const float* bk, const TW* wv, const float* bv, int nkv,
                                            int t, const int* positions, const float* invFreq, int headDim, float scaling,
                                            void* keyCache, void* valueCache)
{
    int lane = threadIdx.x & 31, half = headDim >> 1;
    int p = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    const TW* w = nullptr;
    const float* b = nullptr;
    void* y = nullptr;
    int n = 0;
    if (p < nq / 2) { w = wq; b = bq; y = q; n = nq; }
    else if ((p -= nq / 2) < nkv / 2) { w = wk; b = bk; y = keyCache; n = nkv; }
    else if ((p -= nkv / 2) < nkv / 2) { w = wv; b = bv; y = valueCache; n = nkv; }
    gridDependencyWait();
    gridDependencyRelease();
    if (!w) return;
    int head = p / half, i = p - head * half, j = head * headDim + i;
    // Loaded before the weight stream, so their latency hides behind it.
    int position = lane < m ? positions[lane] : 0;
    float freq = invFreq[i];
    const TW* rows[2] = { w + (i64)j * k, w + (i64)(j + half) * k };
    float acc[2 * M];
    dotRows<M, 2, TW, true>(x, tx, m, k, rows, lane, acc, g, eps);
#pragma unroll
    for (int r = 0; r < M; r++)
        if (r < m && lane == r)
        {
            float lo = acc[r], hi = acc[M + r];
            if (b != 0) { lo += b[j]; hi += b[j + half]; }
            if (t) { lo = bf2f(f2bf(lo)); hi = bf2f(f2bf(hi)); }
            i64 at = (y == q ? (i64)r : (i64)position) * n + j;
            if (y != valueCache)
            {
                // As ropeQueryKeyAppend: the angle in float32, its cosine and sine in float64.
                float angle = (float)position * freq;
                float c = (float)cos((double)angle) * scaling, s = (float)sin((double)angle) * scaling;
                float a = lo;
                lo = a * c - hi * s;
                hi = hi * c + a * s;
            }
            st(y, t, at, lo);
            st(y, t, at + half, hi);
        }
}

// Blocks of 64 threads (2 warps), DECODE_BLOCKS of them an SM for the linear products, 16 (64 registers a thread) for
// SwiGLU's of one or two rows, whose features come one a warp (fewer blocks an SM would add waves). Measured on an H200
// against 8-warp blocks, together with the two-features-a-warp q/k/v: q/k/v with its norm 21.8 -> 15.3 us, o and down
// unchanged, the 152k-row output head 258 -> 272 us.
#define SWIGLU_BLOCKS(M) ((M) <= 2 ? 16 : 8)

// g (the RMSNorm weight, float32 [k]) may be null: the products of x itself. pairs: two output features a warp.
#define LINEAR_ENTRY(NAME, M, TW)                                                                                         \
    extern "C" __global__ void __launch_bounds__(64, DECODE_BLOCKS) NAME(const void* x, int tx, int m, int k,            \
        float alpha, float beta, int ty, const TW* w0, const float* b0, void* y0, int n0, const TW* w1, const float* b1,   \
        void* y1, int n1, const TW* w2, const float* b2, void* y2, int n2, const float* g, float eps, int pairs)           \
    {                                                                                                                      \
        if (g && pairs) linearRows<M, TW, true, 2>(x, tx, m, k, alpha, beta, ty, w0, b0, y0, n0, w1, b1, y1, n1, w2, b2, y2, n2, g, eps); \
        else if (g) linearRows<M, TW, true, 1>(x, tx, m, k, alpha, beta, ty, w0, b0, y0, n0, w1, b1, y1, n1, w2, b2, y2, n2, g, eps); \
        else if (pairs) linearRows<M, TW, false, 2>(x, tx, m, k, alpha, beta, ty, w0, b0, y0, n0, w1, b1, y1, n1, w2, b2, y2, n2, g, eps); \
        else linearRows<M, TW, false, 1>(x, tx, m, k, alpha, beta, ty, w0, b0, y0, n0, w1, b1, y1, n1, w2, b2, y2, n2, g, eps); \
    }

#define SWIGLU_ENTRY(NAME, M, TW)                                                                                         \
    extern "C" __global__ void __launch_bounds__(64, SWIGLU_BLOCKS(M)) NAME(const void* x, int tx, int m, int k,         \
        const TW* wg, const TW* wu, void* h, int th, int n, const float* g, float eps)                                     \
    {                                                                                                                      \
        if (g) swigluRows<M, TW, true>(x, tx, m, k, wg, wu, h, th, n, g, eps);                                            \
        else swigluRows<M, TW, false>(x, tx, m, k, wg, wu, h, th, n, g, eps);                                             \
    }

#define QKV_ROPE_ENTRY(NAME, M, TW)                                                                                       \
    extern "C" __global__ void __launch_bounds__(64, DECODE_BLOCKS) NAME(const void* x, int tx, int m, int k,            \
        const float* g, float eps, const TW* wq, const float* bq, void* q, int nq, const TW* wk, const float* bk,        \
        const TW* wv, const float* bv, int nkv, int t, const int* positions, const float* invFreq, int headDim,            \
        float scaling, void* keyCache, void* valueCache)                                                                   \
    {                                                                                                                      \
        qkvRopeRows<M, TW>(x, tx, m, k, g, eps, wq, bq, q, nq, wk, bk, wv, bv, nkv, t, positions, invFreq, headDim,      \
                           scaling, keyCache, valueCache);                                                                 \
    }

LINEAR_ENTRY(linearBF16x1, 1, bf16)
LINEAR_ENTRY(linearBF16x2, 2, bf16)
LINEAR_ENTRY(linearBF16x4, 4, bf16)
LINEAR_ENTRY(linearBF16x8, 8, bf16)
LINEAR_ENTRY(linearF32x1, 1, float)
LINEAR_ENTRY(linearF32x2, 2, float)
LINEAR_ENTRY(linearF32x4, 4, float)
LINEAR_ENTRY(linearF32x8, 8, float)
QKV_ROPE_ENTRY(qkvRopeBF16x1, 1, bf16)
QKV_ROPE_ENTRY(qkvRopeBF16x2, 2, bf16)
QKV_ROPE_ENTRY(qkvRopeBF16x4, 4, bf16)
QKV_ROPE_ENTRY(qkvRopeBF16x8, 8, bf16)
QKV_ROPE_ENTRY(qkvRopeF32x1, 1, float)
QKV_ROPE_ENTRY(qkvRopeF32x2, 2, float)
QKV_ROPE_ENTRY(qkvRopeF32x4, 4, float)
QKV_ROPE_ENTRY(qkvRopeF32x8, 8, float)
SWIGLU_ENTRY(swigluLinearBF16x1, 1, bf16)
SWIGLU_ENTRY(swigluLinearBF16x2, 2, bf16)
SWIGLU_ENTRY(swigluLinearBF16x4, 4, bf16)
SWIGLU_ENTRY(swigluLinearBF16x8, 8, bf16)
SWIGLU_ENTRY(swigluLinearF32x1, 1, float)
SWIGLU_ENTRY(swigluLinearF32x2, 2, float)
SWIGLU_ENTRY(swigluLinearF32x4, 4, float)
SWIGLU_ENTRY(swigluLinearF32x8, 8, float)

// (v, i) beats (bv, bi) when it is larger or equally large at a smaller index; a NaN counts as the largest value and
// bi < 0 means no candidate yet (so each row's first index of its maximum, as TensorPrimitives.IndexOfMax).
__device__ __forceinline__ bool beats(float v, int i, float bv, int bi)
{
    if (bi < 0) return i >= 0;
    if (i < 0) return false;
    bool vn = isnan(v), bn = isnan(bv);
    if (vn || bn) return vn && (!bn || i < bi);
    return v > bv || (v == bv && i < bi);
}

// One block per row of x [rows, cols]: out[row] = the index of the row's largest value.
extern "C" __global__ void argmaxRows(const void* x, int tx, int cols, int* out)
{
    __shared__ float values[32];
    __shared__ int indices[32];
    gridDependencyWait();
    gridDependencyRelease();
    i64 base = (i64)blockIdx.x * cols;
    float best = 0.f;
    int at = -1;
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
    {
        float v = ld(x, tx, base + j);
        if (beats(v, j, best, at)) { best = v; at = j; }
    }
    for (int o = 16; o > 0; o >>= 1)
    {
        float v = __shfl_xor_sync(0xffffffffu, best, o);
        int i = __shfl_xor_sync(0xffffffffu, at, o);
        if (beats(v, i, best, at)) { best = v; at = i; }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) { values[warp] = best; indices[warp] = at; }
    __syncthreads();
    if (warp != 0) return;
    int warps = (blockDim.x + 31) >> 5;
    best = lane < warps ? values[lane] : 0.f;
    at = lane < warps ? indices[lane] : -1;
    for (int o = 16; o > 0; o >>= 1)
    {
        float v = __shfl_xor_sync(0xffffffffu, best, o);
        int i = __shfl_xor_sync(0xffffffffu, at, o);
        if (beats(v, i, best, at)) { best = v; at = i; }
    }
    if (lane == 0) out[blockIdx.x] = at;
}

#define DECODE_KEYS 2048
#define DECODE_VALUE_UNROLL 8

// Attention of a few query rows (decoding) against their key spans, one block of 1024 threads per (row, head), for head
// dimensions that are multiples of 8 up to 128: a few threads per key compute its score, one 16-byte load each, then
// groups of headDim threads (one per dimension) sum the values of every groups-th key; keys go in chunks of DECODE_KEYS with
// the online-softmax rescaling between chunks. The same result as attentionForward without the log-sum-exp.
extern "C" __global__ void __launch_bounds__(1024) attentionDecode(const void* q, const void* k, const void* v, int t,
    const int* keyStart, const int* keyEnd, int heads, int kvHeads, int headDim, float scale, void* out)
{
    __shared__ float qs[128];
    __shared__ float p[DECODE_KEYS];
    __shared__ float partial[1024];
    __shared__ float scratch[32];
    gridDependencyWait();
    gridDependencyRelease();
    int row = blockIdx.x, h = blockIdx.y, kvh = h / (heads / kvHeads);
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    // Zeros past headDim, so that the idle lanes of a key (C above its chunks) never multiply stale shared memory.
    for (int d = threadIdx.x; d < 128; d += blockDim.x) qs[d] = d < headDim ? ld(q, t, (i64)row * qWidth + h * headDim + d) : 0.f;
    __syncthreads();
    int start = keyStart[row], end = keyEnd[row];
    int groups = blockDim.x / headDim, g = threadIdx.x / headDim, d = threadIdx.x - g * headDim;
    i64 column = (i64)kvh * headDim;
    int size = t ? 2 : 4, chunks = headDim * size / 16, C = 1;
    while (C < chunks) C <<= 1;
    int perPass = blockDim.x / C, chunk = threadIdx.x % C, slot = threadIdx.x / C;
    i64 rowChunks = (i64)kvWidth * size / 16;
    // The score of the 16-byte chunk u of a key row against its part of q: bf16 in order, float32 from the chunk's end.
    auto chunkScore = [&](uint4 u)
    {
        float f[8], s = 0.f;
        if (t)
        {
            unpack<bf16>(u, f);
#pragma unroll
            for (int e = 0; e < 8; e++) s = fmaf(f[e], qs[8 * chunk + e], s);
        }
        else
        {
            unpack<float>(u, f);
#pragma unroll
            for (int e = 3; e >= 0; e--) s = fmaf(f[e], qs[4 * chunk + e], s);
        }
        return s;
    };
    float m = NEG_INF, l = 0.f, acc = 0.f;
    for (int c0 = start; c0 < end; c0 += DECODE_KEYS)
    {
        int n = min(DECODE_KEYS, end - c0);
        float localMax = NEG_INF;
        // C threads a key (the power of two ≥ a key row's 16-byte chunks), each one load, summed over the C lanes by
        // shuffles: 1024 / C keys a pass and two passes' loads in flight. A thread a key, as before, made its headDim / 8
        // loads in rounds of four, one round trip after another: H200, 64 keys, 5.9 -> 4.9 µs a call, the 7B step +1.5 %
        // (run18).
        for (int j0 = 0; j0 < n; j0 += 2 * perPass)
        {
            int ja = j0 + slot, jb = ja + perPass;
            bool va = chunk < chunks && ja < n, vb = chunk < chunks && jb < n;
            uint4 ua = make_uint4(0, 0, 0, 0), ub = ua;
            const uint4* kr = (const uint4*)((const char*)k + ((i64)c0 * kvWidth + column) * size) + chunk;
            if (va) ua = kr[ja * rowChunks];
            if (vb) ub = kr[jb * rowChunks];
            float sa = chunkScore(ua), sb = chunkScore(ub);
            for (int o = C >> 1; o > 0; o >>= 1)
            {
                sa += __shfl_xor_sync(0xffffffffu, sa, o);
                sb += __shfl_xor_sync(0xffffffffu, sb, o);
            }
            if (chunk == 0)
            {
                if (ja < n) { p[ja] = sa * scale; localMax = fmaxf(localMax, sa * scale); }
                if (jb < n) { p[jb] = sb * scale; localMax = fmaxf(localMax, sb * scale); }
            }
        }
        float mNew = fmaxf(m, blockMax(localMax, scratch));
        float localSum = 0.f;
        for (int j = threadIdx.x; j < n; j += blockDim.x)
        {
            float e = expf(p[j] - mNew);
            p[j] = e;
            localSum += e;
        }
        float correction = expf(m - mNew);
        l = l * correction + blockSum(localSum, scratch);   // its barriers also publish p
        acc *= correction;
        m = mNew;
        if (g < groups)
        {
            const i64 stride = (i64)groups * kvWidth;
            i64 at = (i64)(c0 + g) * kvWidth + column + d;
            int j = g;
            for (; j + (DECODE_VALUE_UNROLL - 1) * groups < n; j += DECODE_VALUE_UNROLL * groups)
            {
                float vv[DECODE_VALUE_UNROLL];
#pragma unroll
                for (int u = 0; u < DECODE_VALUE_UNROLL; u++) vv[u] = ld(v, t, at + u * stride);
#pragma unroll
                for (int u = 0; u < DECODE_VALUE_UNROLL; u++) acc = fmaf(p[j + u * groups], vv[u], acc);
                at += DECODE_VALUE_UNROLL * stride;
            }
            for (; j < n; j += groups, at += stride) acc = fmaf(p[j], ld(v, t, at), acc);
        }
        __syncthreads();                                      // p is rewritten by the next chunk
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.x < headDim)
    {
        float s = 0.f;
        for (int i = 0; i < groups; i++) s += partial[i * headDim + threadIdx.x];
        st(out, t, (i64)row * qWidth + h * headDim + threadIdx.x, s / l);
    }
}

// Rope (elementwise.cu's, forward) on the queries and keys of the same rows in one launch, and decoding's KV-cache append:
// the pairs of q's rows are rotated in place, those of k's rows into row positions[row] of keyCache, and v's rows copied
// into row positions[row] of valueCache (work items in that order). Without caches (null) k is rotated in place and v is
// not read.
extern "C" __global__ void ropeQueryKeyAppend(void* q, const void* k, const void* v, int t, const int* positions, const float* invFreq,
                                              int rows, int qWidth, int kWidth, int headDim, float scaling, void* keyCache, void* valueCache)
{
    gridDependencyWait();
    gridDependencyRelease();
    int half = headDim / 2;
    i64 qPairs = (i64)rows * (qWidth / 2), pairs = qPairs + (i64)rows * (kWidth / 2);
    i64 work = pairs + (i64)rows * kWidth;
    GRID_STRIDE(i, work)
    {
        if (i >= pairs)
        {
            i64 e = i - pairs;
            int row = (int)(e / kWidth), c = (int)(e - (i64)row * kWidth);
            st(valueCache, t, (i64)positions[row] * kWidth + c, ld(v, t, e));
            continue;
        }
        bool query = i < qPairs;
        int width = query ? qWidth : kWidth;
        i64 pair = query ? i : i - qPairs;
        int row = (int)(pair / (width / 2));
        int rest = (int)(pair - (i64)row * (width / 2));
        int head = rest / half, j = rest - head * half;
        float angle = (float)positions[row] * invFreq[j];
        float c = (float)cos((double)angle) * scaling;
        float s = (float)sin((double)angle) * scaling;
        i64 from = (i64)row * width + head * headDim;
        // q rotates in place; k goes, rotated, to its position's row of the cache.
        i64 to = query ? from : (i64)positions[row] * width + head * headDim;
        const void* src = query ? (const void*)q : k;
        void* dst = query ? q : keyCache;
        float a = ld(src, t, from + j), b = ld(src, t, from + j + half);
        st(dst, t, to + j, a * c - b * s);
        st(dst, t, to + j + half, b * c + a * s);
    }
}
