// LoRA's down projections t = dropout(x)·Aᵀ and their backward, for the branches that read one bfloat16 input x [rows, k]
// (a layer's q/k/v, or its gate/up), without ever writing dropout(x): each branch's mask is regenerated from its seed
// wherever x is read, with common.cu's counter hash, so it is the mask elementwise.cu's dropout kernels draw. The
// dropout's 1/(1-p) multiplies the float32 sums, not each element. Up to 4 branches of one rank go in one launch; the
// branch arrays are passed as separate arguments (a0..a3, ...) and copied into local arrays that unrolling keeps in
// registers.
#define LORA_WARPS 16
#define LORA_BACK_THREADS 128
#define LORA_BACK_ROWS 32

__device__ __forceinline__ void loraMma(float* c, unsigned a0, unsigned a1, unsigned a2, unsigned a3, unsigned b0, unsigned b1)
{
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Zeroes the bfloat16 halves of w whose bits are set (bit 0: the low half, bit 1: the high half).
__device__ __forceinline__ unsigned dropHalves(unsigned w, unsigned bits)
{
    return w & ((bits & 1u ? 0u : 0xffffu) | (bits & 2u ? 0u : 0xffff0000u));
}

// 8 bfloat16 with the elements of mask (bit j: element j, as counterDropMask8) zeroed.
__device__ __forceinline__ uint4 dropped8(uint4 x, unsigned mask)
{
    x.x = dropHalves(x.x, mask);
    x.y = dropHalves(x.y, mask >> 2);
    x.z = dropHalves(x.z, mask >> 4);
    x.w = dropHalves(x.w, mask >> 6);
    return x;
}

__device__ __forceinline__ uint4 loadRow8(const bf16* row, int col, bool valid)
{
    return valid ? *(const uint4*)(row + col) : make_uint4(0u, 0u, 0u, 0u);
}

// t_b = keep·(mask_b ⊙ x)·A_bᵀ for NB branches of rank 8·RT (NB·RT ≤ 4). A block owns 16 rows; its warps split k in chunks
// of 32 columns and their partial sums are added in shared memory at the end. An mma's reduction order is free, so each
// thread gives it, as its 4 k-positions of two consecutive m16n8k16 products, the 8 consecutive columns it read with one
// 16-byte load, of x and of A alike; the same 8 columns are exactly one counterDropMask8 per row and branch.
template <int NB, int RT>
__device__ void loraDown(const bf16* x, int rows, int k, unsigned threshold, float keep, const bf16* const* a, const u64* seed,
                         bf16* const* t)
{
    constexpr int COLS = NB * RT * 8;
    __shared__ float partial[LORA_WARPS][16][COLS];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int row0 = blockIdx.x * 16, rowA = row0 + g, rowB = rowA + 8;
    bool validA = rowA < rows, validB = rowB < rows;
    const bf16* xA = x + (i64)(validA ? rowA : 0) * k;
    const bf16* xB = x + (i64)(validB ? rowB : 0) * k;
    float c[NB][RT][4];
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int r = 0; r < RT; r++) c[b][r][0] = c[b][r][1] = c[b][r][2] = c[b][r][3] = 0.f;
    int chunks = k / 32, chunk = warp;
    // The next chunk's x is loaded before this one's hashes and products, so a load is always in flight.
    uint4 nextA = loadRow8(xA, chunk * 32 + tq * 8, validA && chunk < chunks);
    uint4 nextB = loadRow8(xB, chunk * 32 + tq * 8, validB && chunk < chunks);
    for (; chunk < chunks; chunk += LORA_WARPS)
    {
        int col = chunk * 32 + tq * 8;
        uint4 vA = nextA, vB = nextB;
        bool more = chunk + LORA_WARPS < chunks;
        nextA = loadRow8(xA, col + LORA_WARPS * 32, validA && more);
        nextB = loadRow8(xB, col + LORA_WARPS * 32, validB && more);
        i64 wordA = ((i64)rowA * k + col) >> 3, wordB = ((i64)rowB * k + col) >> 3;
#pragma unroll
        for (int b = 0; b < NB; b++)
        {
            uint4 mA = dropped8(vA, counterDropMask8(seed[b], wordA, threshold));
            uint4 mB = dropped8(vB, counterDropMask8(seed[b], wordB, threshold));
#pragma unroll
            for (int r = 0; r < RT; r++)
            {
                uint4 w = *(const uint4*)(a[b] + (i64)(r * 8 + g) * k + col);
                loraMma(c[b][r], mA.x, mB.x, mA.y, mB.y, w.x, w.y);
                loraMma(c[b][r], mA.z, mB.z, mA.w, mB.w, w.z, w.w);
            }
        }
    }
    // C fragment of an 8-column tile: (row g, columns 2tq, 2tq+1) and (row g+8, the same columns).
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int r = 0; r < RT; r++)
        {
            int col = (b * RT + r) * 8 + 2 * tq;
            partial[warp][g][col] = c[b][r][0];
            partial[warp][g][col + 1] = c[b][r][1];
            partial[warp][g + 8][col] = c[b][r][2];
            partial[warp][g + 8][col + 1] = c[b][r][3];
        }
    __syncthreads();
    for (int i = threadIdx.x; i < 16 * COLS; i += LORA_WARPS * 32)
    {
        int r = i / COLS, col = i - r * COLS, row = row0 + r;
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < LORA_WARPS; w++) s += partial[w][r][col];
        int b = col / (RT * 8);
        if (row < rows) t[b][(i64)row * (RT * 8) + col - b * RT * 8] = f2bf(s * keep);
    }
}

// Stages the gradients of the branches' hiddens for rows [row0, row0 + LORA_BACK_ROWS) in shared memory as float32,
// [row][branch·R + j]; rows past the end are zeros.
template <int NB, int R>
__device__ __forceinline__ void stageHiddenGradients(float* dts, const bf16* const* dt, int row0, int rows)
{
    for (int i = threadIdx.x; i < LORA_BACK_ROWS * NB * R; i += LORA_BACK_THREADS)
    {
        int r = i / (NB * R), j = i - r * (NB * R), b = j / R, row = row0 + r;
        dts[i] = row < rows ? bf2f(dt[b][(i64)row * R + j - b * R]) : 0.f;
    }
}

__device__ __forceinline__ void unpack4(uint2 w, float* f)
{
    f[0] = __uint_as_float(w.x << 16);
    f[1] = __uint_as_float(w.x & 0xffff0000u);
    f[2] = __uint_as_float(w.y << 16);
    f[3] = __uint_as_float(w.y & 0xffff0000u);
}

// dA_b += keep·dt_bᵀ·(mask_b ⊙ x), float32 [R, k], for NB branches. A thread owns 4 consecutive columns (one counter hash
// per row and branch) over rowsPerBlock rows (blockIdx.y splits the rows; a multiple of LORA_BACK_ROWS, staged that many
// at a time) and adds its sums to dA with atomics, one set per block: long row ranges keep the atomics few.
template <int NB, int R>
__device__ void loraDownGradA(const bf16* x, int rows, int k, int rowsPerBlock, unsigned threshold, float keep, const u64* seed,
                              const bf16* const* dt, float* const* dA)
{
    __shared__ __align__(16) float dts[LORA_BACK_ROWS * NB * R];
    int first = blockIdx.y * rowsPerBlock, last = min(first + rowsPerBlock, rows);
    int col = (blockIdx.x * LORA_BACK_THREADS + threadIdx.x) * 4;
    bool owns = col < k;
    float acc[NB][R][4];
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int j = 0; j < R; j++) acc[b][j][0] = acc[b][j][1] = acc[b][j][2] = acc[b][j][3] = 0.f;
    for (int row0 = first; row0 < last; row0 += LORA_BACK_ROWS)
    {
        __syncthreads();
        stageHiddenGradients<NB, R>(dts, dt, row0, rows);
        __syncthreads();
        int count = min(LORA_BACK_ROWS, last - row0);
        for (int r = 0; owns && r < count; r++)
        {
            i64 element = (i64)(row0 + r) * k + col;
            float xv[4];
            unpack4(*(const uint2*)(x + element), xv);
            const float* d = dts + r * NB * R;
#pragma unroll
            for (int b = 0; b < NB; b++)
            {
                u64 bits = counterHash(seed[b], (u64)element >> 2);
                float kept[4];
#pragma unroll
                for (int e = 0; e < 4; e++) kept[e] = counterDrops(bits, e, threshold) ? 0.f : xv[e];
#pragma unroll
                for (int j = 0; j < R; j++)
                {
                    float g = d[b * R + j];
#pragma unroll
                    for (int e = 0; e < 4; e++) acc[b][j][e] += g * kept[e];
                }
            }
        }
    }
    if (!owns) return;
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int j = 0; j < R; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) atomicAdd(dA[b] + (i64)j * k + col + e, acc[b][j][e] * keep);
}

// dx = keep·Σ_b mask_b ⊙ (dt_b·A_b) (accumulate: dx += that), bfloat16 [rows, k]. A thread owns 4 consecutive columns, keeps
// the branches' A columns in registers and runs over LORA_BACK_ROWS rows; x itself is not read.
template <int NB, int R>
__device__ void loraDownGradX(int rows, int k, unsigned threshold, float keep, const bf16* const* a, const u64* seed,
                              const bf16* const* dt, bf16* dx, int accumulate)
{
    __shared__ __align__(16) float dts[LORA_BACK_ROWS * NB * R];
    int row0 = blockIdx.y * LORA_BACK_ROWS, count = min(LORA_BACK_ROWS, rows - row0);
    stageHiddenGradients<NB, R>(dts, dt, row0, rows);
    __syncthreads();
    int col = (blockIdx.x * LORA_BACK_THREADS + threadIdx.x) * 4;
    if (col >= k) return;
    float av[NB][R][4];
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int j = 0; j < R; j++) unpack4(*(const uint2*)(a[b] + (i64)j * k + col), av[b][j]);
    for (int r = 0; r < count; r++)
    {
        i64 element = (i64)(row0 + r) * k + col;
        const float* d = dts + r * NB * R;
        float out[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int b = 0; b < NB; b++)
        {
            float s[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int j = 0; j < R; j++)
            {
                float g = d[b * R + j];
#pragma unroll
                for (int e = 0; e < 4; e++) s[e] += g * av[b][j][e];
            }
            u64 bits = counterHash(seed[b], (u64)element >> 2);
#pragma unroll
            for (int e = 0; e < 4; e++) out[e] += counterDrops(bits, e, threshold) ? 0.f : s[e];
        }
        uint2* target = (uint2*)(dx + element);
        float old[4] = {0.f, 0.f, 0.f, 0.f};
        if (accumulate) unpack4(*target, old);
        uint2 w;
        w.x = (unsigned)f2bf(old[0] + out[0] * keep) | ((unsigned)f2bf(old[1] + out[1] * keep) << 16);
        w.y = (unsigned)f2bf(old[2] + out[2] * keep) | ((unsigned)f2bf(old[3] + out[3] * keep) << 16);
        *target = w;
    }
}

#define LORA_BRANCH_ARRAYS                                                                                                           \
    const bf16* a[4] = {a0, a1, a2, a3};                                                                                             \
    const u64 seed[4] = {s0, s1, s2, s3};

#define LORA_KERNELS(NB, R)                                                                                                          \
    extern "C" __global__ void __launch_bounds__(LORA_WARPS * 32) loraDown##NB##x##R(                                               \
        const bf16* x, int rows, int k, unsigned threshold, float keep, const bf16* a0, const bf16* a1, const bf16* a2,             \
        const bf16* a3, u64 s0, u64 s1, u64 s2, u64 s3, bf16* t0, bf16* t1, bf16* t2, bf16* t3)                                     \
    {                                                                                                                                \
        LORA_BRANCH_ARRAYS                                                                                                           \
        bf16* t[4] = {t0, t1, t2, t3};                                                                                               \
        loraDown<NB, R / 8>(x, rows, k, threshold, keep, a, seed, t);                                                                \
    }                                                                                                                                \
    extern "C" __global__ void __launch_bounds__(LORA_BACK_THREADS) loraDownGradA##NB##x##R(                                        \
        const bf16* x, int rows, int k, int rowsPerBlock, unsigned threshold, float keep, u64 s0, u64 s1, u64 s2, u64 s3, const bf16* d0,             \
        const bf16* d1, const bf16* d2, const bf16* d3, float* g0, float* g1, float* g2, float* g3)                                 \
    {                                                                                                                                \
        const u64 seed[4] = {s0, s1, s2, s3};                                                                                        \
        const bf16* dt[4] = {d0, d1, d2, d3};                                                                                        \
        float* dA[4] = {g0, g1, g2, g3};                                                                                             \
        loraDownGradA<NB, R>(x, rows, k, rowsPerBlock, threshold, keep, seed, dt, dA);                                                             \
    }                                                                                                                                \
    extern "C" __global__ void __launch_bounds__(LORA_BACK_THREADS) loraDownGradX##NB##x##R(                                        \
        int rows, int k, unsigned threshold, float keep, const bf16* a0, const bf16* a1, const bf16* a2, const bf16* a3, u64 s0,    \
        u64 s1, u64 s2, u64 s3, const bf16* d0, const bf16* d1, const bf16* d2, const bf16* d3, bf16* dx, int accumulate)          \
    {                                                                                                                                \
        LORA_BRANCH_ARRAYS                                                                                                           \
        const bf16* dt[4] = {d0, d1, d2, d3};                                                                                        \
        loraDownGradX<NB, R>(rows, k, threshold, keep, a, seed, dt, dx, accumulate);                                                 \
    }

// Branch counts × ranks with NB·R ≤ 32: rank 8 in groups of up to 4 (q/k/v, gate/up, o, down), ranks 16 and 32 fewer at once.
LORA_KERNELS(1, 8)
LORA_KERNELS(2, 8)
LORA_KERNELS(3, 8)
LORA_KERNELS(4, 8)
LORA_KERNELS(1, 16)
LORA_KERNELS(2, 16)
LORA_KERNELS(1, 32)
