// LoRA's low-rank products on tensor cores, none of them through a general matrix product (whose tiles are made for
// large inner dimensions, not for r = 8): the down projections t = dropout(x)·Aᵀ and their backward, for the branches
// that read one bfloat16 input x [rows, k] (a layer's q/k/v, or its gate/up), without ever writing dropout(x): each
// branch's mask is regenerated from its seed wherever x is read, with common.cu's counter hash, so it is the mask
// elementwise.cu's dropout kernels draw; and the up projection y = s·t·Bᵀ with its backward. The dropout's 1/(1-p)
// multiplies the float32 sums, not each element. Up to 4 branches of one rank go in one launch; the branch arrays are
// passed as separate arguments (a0..a3, ...) and copied into local arrays that unrolling keeps in registers.
#define LORA_WARPS 16
#define LORA_CONTRACT_WARPS 4

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

// Two bfloat16 as one 32-bit fragment register, lo in the low half.
__device__ __forceinline__ unsigned pair16(bf16 lo, bf16 hi) { return (unsigned)lo | ((unsigned)hi << 16); }

// The transpose of an 8×8 bfloat16 matrix held as mma fragments (lane g·4+t: row g, columns 2t, 2t+1) in one register.
__device__ __forceinline__ unsigned transpose8x8(unsigned a)
{
    unsigned d;
    asm volatile("movmatrix.sync.aligned.m8n8.trans.b16 %0, %1;\n" : "=r"(d) : "r"(a));
    return d;
}

__device__ __forceinline__ unsigned word(uint4 v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }

// h[m, r] and h[m+1, r] of a bfloat16 [rows, R] as the k-pair of an mma operand; zeros past the rows or ranks.
template <int R>
__device__ __forceinline__ unsigned rowPair(const bf16* h, int m, int r, int rows)
{
    if (r >= R) return 0u;
    return pair16(m < rows ? h[(i64)m * R + r] : (bf16)0, m + 1 < rows ? h[(i64)(m + 1) * R + r] : (bf16)0);
}

// The contraction over rows of LoRA's backward, on tensor cores: G_b += scale·H_bᵀ·(mask_b ⊙ X) for a bfloat16 X [rows, cols]
// and NB bfloat16 H_b [rows, R], G_b float32 [R, cols] (or [cols, R] when TRANSPOSED). Used as dA = keep·dtᵀ·dropout(x)
// (NB branches of one x, masks regenerated from their seeds; threshold 0: no mask) and as dB = s·dyᵀ·t (TRANSPOSED, one
// branch), where DT also gives the other product of the same reads, dt = dy·W for W [cols, R], as float32 partial sums
// per block column (dtPartial [gridDim.x, rows, R]; loraHiddenReduce adds them).
// A warp reads 16-row tiles of a strip of 32·S columns: lane (g, t) holds rows g and g+8, columns 8t..8t+7 of each 32,
// one 16-byte load each, which are the A fragments of dt's products as they are (an mma's reduction order is free; W's
// fragments are taken in the same column order) and, each word transposed by movmatrix, the B fragments of G's, whose
// 8 columns are then 8(g/2) + 2i + g%2 of word i. The 4 warps of a block share the strip and split its rows, add their
// sums in shared memory at the end, and the block adds them to G with atomics (coalesced, one set per block).
template <int NB, int R, int S, bool DT, bool TRANSPOSED>
__device__ void loraContract(const bf16* x, int rows, int cols, int rowsPerBlock, unsigned threshold, float scale, const u64* seed,
                             const bf16* const* h, float* const* grad, const bf16* w, float* dtPartial)
{
    constexpr int MT = (R + 15) / 16, RT = R / 8, WIDTH = 32 * S, SUMS = NB * R * WIDTH;
    __shared__ float sums[LORA_CONTRACT_WARPS * SUMS];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int strip = blockIdx.x * WIDTH, first = blockIdx.y * rowsPerBlock, last = min(first + rowsPerBlock, rows);
    float acc[NB][S][4][MT][4];
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int s = 0; s < S; s++)
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int mt = 0; mt < MT; mt++) acc[b][s][i][mt][0] = acc[b][s][i][mt][1] = acc[b][s][i][mt][2] = acc[b][s][i][mt][3] = 0.f;
    // W's B fragments for dt (rank 8·rt + g; columns 8t + 2q, 8t + 2q + 1 of each 32), loaded once.
    unsigned wf[DT ? S : 1][DT ? RT : 1][4];
    if constexpr (DT)
    {
#pragma unroll
        for (int s = 0; s < S; s++)
#pragma unroll
            for (int rt = 0; rt < RT; rt++)
#pragma unroll
                for (int q = 0; q < 4; q++)
                {
                    int c = strip + 32 * s + 8 * t + 2 * q, r = 8 * rt + g;
                    wf[s][rt][q] = c < cols ? pair16(w[(i64)c * R + r], w[(i64)(c + 1) * R + r]) : 0u;
                }
    }
    for (int m0 = first + warp * 16; m0 < last; m0 += LORA_CONTRACT_WARPS * 16)
    {
        int rowA = m0 + g, rowB = rowA + 8;
        uint4 lo[S], hi[S];
#pragma unroll
        for (int s = 0; s < S; s++)
        {
            int c = strip + 32 * s + 8 * t;
            bool in = strip + 32 * s < cols;
            lo[s] = loadRow8(x + (i64)(rowA < rows ? rowA : 0) * cols, c, in && rowA < rows);
            hi[s] = loadRow8(x + (i64)(rowB < rows ? rowB : 0) * cols, c, in && rowB < rows);
        }
        if constexpr (DT)
        {
            float d[RT][4];
#pragma unroll
            for (int rt = 0; rt < RT; rt++)
            {
                d[rt][0] = d[rt][1] = d[rt][2] = d[rt][3] = 0.f;
#pragma unroll
                for (int s = 0; s < S; s++)
                {
                    loraMma(d[rt], lo[s].x, hi[s].x, lo[s].y, hi[s].y, wf[s][rt][0], wf[s][rt][1]);
                    loraMma(d[rt], lo[s].z, hi[s].z, lo[s].w, hi[s].w, wf[s][rt][2], wf[s][rt][3]);
                }
                float* p = dtPartial + ((i64)blockIdx.x * rows) * R + 8 * rt + 2 * t;
                if (rowA < rows) storePair(p + (i64)rowA * R, d[rt][0], d[rt][1]);
                if (rowB < rows) storePair(p + (i64)rowB * R, d[rt][2], d[rt][3]);
            }
        }
#pragma unroll
        for (int b = 0; b < NB; b++)
        {
            unsigned a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
            {
                int r = 16 * mt + g;
                a[mt][0] = rowPair<R>(h[b], m0 + 2 * t, r, rows);
                a[mt][1] = rowPair<R>(h[b], m0 + 2 * t, r + 8, rows);
                a[mt][2] = rowPair<R>(h[b], m0 + 2 * t + 8, r, rows);
                a[mt][3] = rowPair<R>(h[b], m0 + 2 * t + 8, r + 8, rows);
            }
#pragma unroll
            for (int s = 0; s < S; s++)
            {
                uint4 mLo = lo[s], mHi = hi[s];
                if (threshold != 0)
                {
                    i64 column = strip + 32 * s + 8 * t;
                    mLo = dropped8(mLo, counterDropMask8(seed[b], ((i64)rowA * cols + column) >> 3, threshold));
                    mHi = dropped8(mHi, counterDropMask8(seed[b], ((i64)rowB * cols + column) >> 3, threshold));
                }
#pragma unroll
                for (int i = 0; i < 4; i++)
                {
                    unsigned b0 = transpose8x8(word(mLo, i)), b1 = transpose8x8(word(mHi, i));
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) loraMma(acc[b][s][i][mt], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b0, b1);
                }
            }
        }
    }
    // C fragment (rank 16mt + g, +8 for e ≥ 2; strip column 32s + 8t + 2i + e%2) into this warp's sums, laid out as G is
    // (ranks or columns consecutive) so that the atomics below are coalesced.
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int s = 0; s < S; s++)
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int e = 0; e < 4; e++)
                    {
                        int r = 16 * mt + g + (e >= 2 ? 8 : 0), col = 32 * s + 8 * t + 2 * i + (e & 1);
                        int at = TRANSPOSED ? (b * WIDTH + col) * R + r : (b * R + r) * WIDTH + col;
                        if (r < R) sums[warp * SUMS + at] = acc[b][s][i][mt][e];
                    }
    __syncthreads();
    for (int j = threadIdx.x; j < SUMS; j += LORA_CONTRACT_WARPS * 32)
    {
        float v = 0.f;
#pragma unroll
        for (int wp = 0; wp < LORA_CONTRACT_WARPS; wp++) v += sums[wp * SUMS + j];
        int b, r, col;
        if constexpr (TRANSPOSED)
        {
            r = j % R;
            col = (j / R) % WIDTH;
        }
        else
        {
            col = j % WIDTH;
            r = (j / WIDTH) % R;
        }
        b = j / (R * WIDTH);
        int c = strip + col;
        if (c < cols) atomicAdd(grad[b] + (TRANSPOSED ? (i64)c * R + r : (i64)r * cols + c), v * scale);
    }
}

// dt = bfloat16(scale·Σ over the column blocks of loraContract's partials), [rows, R] as count values.
extern "C" __global__ void loraHiddenReduce(const float* partial, int blocks, int count, float scale, bf16* dt)
{
    GRID_STRIDE(i, count)
    {
        float s = 0.f;
        for (int p = 0; p < blocks; p++) s += partial[(i64)p * count + i];
        dt[i] = f2bf(s * scale);
    }
}

// The expansion of a low-rank product on tensor cores: out = scale·Σ_b mask_b ⊙ (H_b·W_b) (accumulate: out += that),
// bfloat16 out [rows, cols], H_b [rows, R], W_b [R, cols] ([cols, R] when COLUMN_MAJOR). Used as LoRA's up projection
// y = s·t·Bᵀ (one branch, B [out, R]) and as dx = keep·Σ_b mask_b ⊙ (dt_b·A_b) of the down projections' backward.
// A warp owns 32 columns over 64 rows, in 16-row tiles of 4 n-tiles whose columns are permuted so that lane (g, t) ends
// holding columns 8t..8t+7 of rows g and g+8: one 16-byte store each, one counterDropMask8 per row and branch. W's
// fragments are loaded once.
template <int NB, int R, bool COLUMN_MAJOR>
__device__ void loraExpand(int rows, int cols, unsigned threshold, float scale, const u64* seed, const bf16* const* h,
                           const bf16* const* w, bf16* out, int accumulate)
{
    constexpr int KS = (R + 15) / 16;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    int c0 = (blockIdx.x * LORA_CONTRACT_WARPS + warp) * 32;
    if (c0 >= cols) return;
    // n-tile j's column for position n = g: 8(g/2) + 4(g%2) + j, so that C's (g, 2t) and (g, 2t+1) are columns 8t + j, 8t + 4 + j.
    unsigned wf[NB][4][KS][2];
#pragma unroll
    for (int b = 0; b < NB; b++)
#pragma unroll
        for (int j = 0; j < 4; j++)
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
#pragma unroll
                for (int half = 0; half < 2; half++)
                {
                    int c = c0 + 8 * (g >> 1) + 4 * (g & 1) + j, r = 16 * ks + 2 * t + 8 * half;
                    unsigned f = 0u;
                    if (r < R)
                        f = COLUMN_MAJOR ? *(const unsigned*)(w[b] + (i64)c * R + r)
                                         : pair16(w[b][(i64)r * cols + c], w[b][(i64)(r + 1) * cols + c]);
                    wf[b][j][ks][half] = f;
                }
    int first = blockIdx.y * 64, last = min(first + 64, rows);
    for (int m0 = first; m0 < last; m0 += 16)
    {
        int rowA = m0 + g, rowB = rowA + 8;
        float v[2][8];
#pragma unroll
        for (int e = 0; e < 8; e++) v[0][e] = v[1][e] = 0.f;
#pragma unroll
        for (int b = 0; b < NB; b++)
        {
            float c[4][4];
#pragma unroll
            for (int j = 0; j < 4; j++) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.f;
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
            {
                int r = 16 * ks + 2 * t;
                unsigned a0 = rowA < rows ? *(const unsigned*)(h[b] + (i64)rowA * R + r) : 0u;
                unsigned a1 = rowB < rows ? *(const unsigned*)(h[b] + (i64)rowB * R + r) : 0u;
                unsigned a2 = r + 8 < R && rowA < rows ? *(const unsigned*)(h[b] + (i64)rowA * R + r + 8) : 0u;
                unsigned a3 = r + 8 < R && rowB < rows ? *(const unsigned*)(h[b] + (i64)rowB * R + r + 8) : 0u;
#pragma unroll
                for (int j = 0; j < 4; j++) loraMma(c[j], a0, a1, a2, a3, wf[b][j][ks][0], wf[b][j][ks][1]);
            }
            unsigned maskA = 0u, maskB = 0u;
            if (threshold != 0)
            {
                maskA = counterDropMask8(seed[b], ((i64)rowA * cols + c0 + 8 * t) >> 3, threshold);
                maskB = counterDropMask8(seed[b], ((i64)rowB * cols + c0 + 8 * t) >> 3, threshold);
            }
#pragma unroll
            for (int j = 0; j < 4; j++)
            {
                v[0][j] += maskA >> j & 1u ? 0.f : c[j][0];
                v[0][4 + j] += maskA >> (4 + j) & 1u ? 0.f : c[j][1];
                v[1][j] += maskB >> j & 1u ? 0.f : c[j][2];
                v[1][4 + j] += maskB >> (4 + j) & 1u ? 0.f : c[j][3];
            }
        }
#pragma unroll
        for (int half = 0; half < 2; half++)
        {
            int row = half == 0 ? rowA : rowB;
            if (row >= rows) continue;
            uint4* target = (uint4*)(out + (i64)row * cols + c0 + 8 * t);
            float o[8];
            if (accumulate) unpackBF16x8(*target, o);
            else
            {
#pragma unroll
                for (int e = 0; e < 8; e++) o[e] = 0.f;
            }
#pragma unroll
            for (int e = 0; e < 8; e++) o[e] += v[half][e] * scale;
            *target = packBF16x8(o);
        }
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
    extern "C" __global__ void __launch_bounds__(LORA_CONTRACT_WARPS * 32) loraDownGradA##NB##x##R(                                 \
        const bf16* x, int rows, int k, int rowsPerBlock, unsigned threshold, float keep, u64 s0, u64 s1, u64 s2, u64 s3,           \
        const bf16* d0, const bf16* d1, const bf16* d2, const bf16* d3, float* g0, float* g1, float* g2, float* g3)                 \
    {                                                                                                                                \
        const u64 seed[4] = {s0, s1, s2, s3};                                                                                        \
        const bf16* dt[4] = {d0, d1, d2, d3};                                                                                        \
        float* dA[4] = {g0, g1, g2, g3};                                                                                             \
        loraContract<NB, R, 1, false, false>(x, rows, k, rowsPerBlock, threshold, keep, seed, dt, dA, 0, 0);                         \
    }                                                                                                                                \
    extern "C" __global__ void __launch_bounds__(LORA_CONTRACT_WARPS * 32) loraDownGradX##NB##x##R(                                 \
        int rows, int k, unsigned threshold, float keep, const bf16* a0, const bf16* a1, const bf16* a2, const bf16* a3, u64 s0,    \
        u64 s1, u64 s2, u64 s3, const bf16* d0, const bf16* d1, const bf16* d2, const bf16* d3, bf16* dx, int accumulate)          \
    {                                                                                                                                \
        LORA_BRANCH_ARRAYS                                                                                                           \
        const bf16* dt[4] = {d0, d1, d2, d3};                                                                                        \
        loraExpand<NB, R, false>(rows, k, threshold, keep, seed, dt, a, dx, accumulate);                                             \
    }

// Branch counts × ranks with NB·R ≤ 32: rank 8 in groups of up to 4 (q/k/v, gate/up, o, down), ranks 16 and 32 fewer at once.
LORA_KERNELS(1, 8)
LORA_KERNELS(2, 8)
LORA_KERNELS(3, 8)
LORA_KERNELS(4, 8)
LORA_KERNELS(1, 16)
LORA_KERNELS(2, 16)
LORA_KERNELS(1, 32)

// The up projection y = s·t·Bᵀ (accumulate: y += that) and its backward, dt = s·dy·B with dB += s·dyᵀ·t from one read of
// dy, in strips of 32·S columns (S = 32 / R: the accumulators of wider ranks take the registers of more columns).
#define LORA_UP_KERNELS(R)                                                                                                           \
    extern "C" __global__ void __launch_bounds__(LORA_CONTRACT_WARPS * 32) loraUp##R(                                               \
        int rows, int cols, float scale, const bf16* t, const bf16* b, bf16* y, int accumulate)                                     \
    {                                                                                                                                \
        const bf16* h[1] = {t};                                                                                                      \
        const bf16* w[1] = {b};                                                                                                      \
        const u64 seed[1] = {0};                                                                                                     \
        loraExpand<1, R, true>(rows, cols, 0u, scale, seed, h, w, y, accumulate);                                                    \
    }                                                                                                                                \
    extern "C" __global__ void __launch_bounds__(LORA_CONTRACT_WARPS * 32) loraUpBackward##R(                                       \
        const bf16* dy, int rows, int cols, int rowsPerBlock, float scale, const bf16* t, const bf16* b, float* dB, float* dtPartial) \
    {                                                                                                                                \
        const bf16* h[1] = {t};                                                                                                      \
        float* grad[1] = {dB};                                                                                                       \
        const u64 seed[1] = {0};                                                                                                     \
        loraContract<1, R, 32 / R, true, true>(dy, rows, cols, rowsPerBlock, 0u, scale, seed, h, grad, b, dtPartial);                \
    }

LORA_UP_KERNELS(8)
LORA_UP_KERNELS(16)
LORA_UP_KERNELS(32)
