// Flash attention on tensor cores for bfloat16 tensors and head dims 64 and 128 (FlashAttention-2's scheme): warp-level
// mma.sync m16n8k16 (bf16 in, f32 accumulate), operands staged in shared memory by cp.async and read with ldmatrix.
// Same contract as attention.cu: q [rows, heads·HD], k/v [keyRows, kvHeads·HD], grouped-query heads, each query row r
// attending keys [keyStart[r], keyEnd[r]). Blocks are 4 warps; a warp owns 16 query rows (or 16 keys in the dk/dv kernel).
// Shared rows are padded by 8 values (16 bytes), which keeps the 8 row addresses of an ldmatrix on distinct banks.
// Fragment layouts (PTX ISA, mma.m16n8k16): g = lane/4, t = lane%4; C holds (row g, cols 2t, 2t+1) and (row g+8, same);
// the C fragments of two adjacent 8-column tiles are exactly the A fragment of a 16-deep product, so P never leaves registers.
#define FLASH_THREADS 128
#define FLASH_ROWS 64
#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

__device__ __forceinline__ unsigned sharedAddress(const void* p)
{
    unsigned long long a;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(a) : "l"(p));
    return (unsigned)a;
}

// 16 bytes global -> shared without a register round trip; an invalid row is zero-filled (nothing is read).
__device__ __forceinline__ void cpAsync16(void* dst, const void* src, bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(sharedAddress(dst)), "l"(src), "r"(valid ? 16 : 0) : "memory");
}
__device__ __forceinline__ void cpCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void cpWait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory"); }

__device__ __forceinline__ void ldmatrix4(unsigned* r, const bf16* p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(sharedAddress(p)) : "memory");
}
__device__ __forceinline__ void ldmatrix4T(unsigned* r, const bf16* p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(sharedAddress(p)) : "memory");
}

// c += a·b for a 16×16 A (4 registers), a 16×8 B (2 registers) and a 16×8 f32 C.
__device__ __forceinline__ void mma(float* c, const unsigned* a, unsigned b0, unsigned b1)
{
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3]) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as bf16x2 (round to nearest even), lo in the low half.
__device__ __forceinline__ unsigned pack(float lo, float hi)
{
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// The A fragment of a 16-deep product from the C fragments of 8-column tiles j and j+1.
__device__ __forceinline__ void toA(unsigned* a, const float* c0, const float* c1)
{
    a[0] = pack(c0[0], c0[1]);
    a[1] = pack(c0[2], c0[3]);
    a[2] = pack(c1[0], c1[1]);
    a[3] = pack(c1[2], c1[3]);
}

// Rows [first, first+count) of one head (HD values at `column`) of a [n, width] bf16 tensor into shared rows of HD+8.
template <int HD>
__device__ __forceinline__ void loadRows(bf16* dst, const bf16* src, int first, int count, int n, int width, int column)
{
    constexpr int chunks = HD / 8;
    for (int i = threadIdx.x; i < count * chunks; i += FLASH_THREADS)
    {
        int r = i / chunks, c = i - r * chunks, row = first + r;
        bool valid = row >= 0 && row < n;
        cpAsync16(dst + r * (HD + 8) + c * 8, valid ? src + (i64)row * width + column + c * 8 : src, valid);
    }
}

__device__ __forceinline__ int warpMinInt(int v)
{
    for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ int warpMaxInt(int v)
{
    for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
__device__ __forceinline__ float quadMax(float v)
{
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
    return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}
__device__ __forceinline__ float quadSum(float v)
{
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

// The key range of a block of query rows: [lo, hi) covers every row's span, and keys in [maxStart, minEnd) are in all of
// them (a tile inside it needs no mask). Written by thread 0 into bounds[4].
__device__ __forceinline__ void blockBounds(int* bounds, const int* keyStart, const int* keyEnd, int row0, int blockRows, int rows)
{
    if (threadIdx.x != 0) return;
    int lo = 0x7fffffff, hi = 0, maxStart = 0, minEnd = 0x7fffffff;
    for (int r = row0; r < min(row0 + blockRows, rows); r++)
    {
        lo = min(lo, keyStart[r]); hi = max(hi, keyEnd[r]);
        maxStart = max(maxStart, keyStart[r]); minEnd = min(minEnd, keyEnd[r]);
    }
    bounds[0] = lo; bounds[1] = hi; bounds[2] = maxStart; bounds[3] = minEnd;
}

// S = Q·Kᵀ for the warp's 16 rows against a 64-key tile: s[j] is the C fragment of keys 8j..8j+7.
template <int HD>
__device__ __forceinline__ void scoreTile(float (*s)[4], const unsigned (*qf)[4], const bf16* ks, int lane)
{
    for (int j = 0; j < 8; j++) for (int e = 0; e < 4; e++) s[j][e] = 0.f;
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++)
#pragma unroll
        for (int np = 0; np < 4; np++)
        {
            unsigned b[4];
            ldmatrix4(b, ks + (np * 16 + (lane & 7) + (lane >> 4) * 8) * (HD + 8) + kk * 16 + ((lane >> 3) & 1) * 8);
            mma(s[2 * np], qf[kk], b[0], b[1]);
            mma(s[2 * np + 1], qf[kk], b[2], b[3]);
        }
}

// acc[HD/8] += A (16×16·chunks, as C fragments p[2c], p[2c+1]) · rows [16c, 16c+16) of a shared [*, HD] tile.
template <int HD, int CHUNKS>
__device__ __forceinline__ void accumulateProduct(float (*acc)[4], const float (*p)[4], const bf16* tile, int lane)
{
#pragma unroll
    for (int c = 0; c < CHUNKS; c++)
    {
        unsigned a[4];
        toA(a, p[2 * c], p[2 * c + 1]);
#pragma unroll
        for (int dp = 0; dp < HD / 16; dp++)
        {
            unsigned b[4];
            ldmatrix4T(b, tile + (c * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * (HD + 8) + dp * 16 + (lane >> 4) * 8);
            mma(acc[2 * dp], a, b[0], b[1]);
            mma(acc[2 * dp + 1], a, b[2], b[3]);
        }
    }
}

// The A fragments of the warp's 16 rows of a shared [*, HD] tile, all head dims.
template <int HD>
__device__ __forceinline__ void loadA(unsigned (*f)[4], const bf16* tile, int firstRow, int lane)
{
#pragma unroll
    for (int kk = 0; kk < HD / 16; kk++)
        ldmatrix4(f[kk], tile + (firstRow + (lane & 7) + ((lane >> 3) & 1) * 8) * (HD + 8) + kk * 16 + (lane >> 4) * 8);
}

template <int HD>
__device__ void flashForward(const bf16* q, const bf16* k, const bf16* v, const int* keyStart, const int* keyEnd, int rows, int keyRows,
                             int heads, int kvHeads, float scale, bf16* out, float* lse)
{
    constexpr int S = HD + 8, DT = HD / 8;
    extern __shared__ __align__(16) unsigned char smemBytes[];
    bf16* qs = (bf16*)smemBytes;
    bf16* ks = qs + FLASH_ROWS * S;
    bf16* vs = ks + 64 * S;
    __shared__ int bounds[4];
    // Later row blocks have longer causal spans: start them first.
    // Blocks start in launch order (x fastest): all heads' longest rows (the last ones, causal) first, the shortest last.
    int order = blockIdx.x + blockIdx.y * gridDim.x;
    int h = order % gridDim.y, row0 = (gridDim.x - 1 - order / gridDim.y) * FLASH_ROWS, kvh = h / (heads / kvHeads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int qWidth = heads * HD, kvWidth = kvHeads * HD;
    loadRows<HD>(qs, q, row0, FLASH_ROWS, rows, qWidth, h * HD);
    cpCommit();
    blockBounds(bounds, keyStart, keyEnd, row0, FLASH_ROWS, rows);
    int rowA = row0 + warp * 16 + g, rowB = rowA + 8;
    int startA = rowA < rows ? keyStart[rowA] : 0x7fffffff, endA = rowA < rows ? keyEnd[rowA] : 0;
    int startB = rowB < rows ? keyStart[rowB] : 0x7fffffff, endB = rowB < rows ? keyEnd[rowB] : 0;
    int warpLo = warpMinInt(min(startA, startB)), warpHi = warpMaxInt(max(endA, endB));
    cpWait<0>();
    __syncthreads();
    unsigned qf[HD / 16][4];
    loadA<HD>(qf, qs, warp * 16, lane);
    float o[DT][4];
    for (int d = 0; d < DT; d++) for (int e = 0; e < 4; e++) o[d][e] = 0.f;
    float mA = NEG_INF, mB = NEG_INF, lA = 0.f, lB = 0.f, scale2 = scale * LOG2E;
    int lo = bounds[0], hi = bounds[1], maxStart = bounds[2], minEnd = bounds[3];
    for (int k0 = lo; k0 < hi; k0 += 64)
    {
        __syncthreads();
        loadRows<HD>(ks, k, k0, 64, keyRows, kvWidth, kvh * HD);
        cpCommit();
        loadRows<HD>(vs, v, k0, 64, keyRows, kvWidth, kvh * HD);
        cpCommit();
        cpWait<1>();
        __syncthreads();
        bool active = k0 < warpHi && k0 + 64 > warpLo;
        float s[8][4];
        if (active)
        {
            scoreTile<HD>(s, qf, ks, lane);
            bool full = k0 >= maxStart && k0 + 64 <= minEnd;
            float mxA = NEG_INF, mxB = NEG_INF;
#pragma unroll
            for (int j = 0; j < 8; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                {
                    int key = k0 + j * 8 + 2 * tq + (e & 1);
                    bool valid = full || (e < 2 ? key >= startA && key < endA : key >= startB && key < endB);
                    float x = valid ? s[j][e] * scale2 : NEG_INF;
                    s[j][e] = x;
                    if (e < 2) mxA = fmaxf(mxA, x); else mxB = fmaxf(mxB, x);
                }
            float newA = fmaxf(mA, quadMax(mxA)), newB = fmaxf(mB, quadMax(mxB));
            // A row with no valid key yet keeps m = -inf; exponentiate against 0 so that it stays 0 instead of NaN.
            float baseA = newA == NEG_INF ? 0.f : newA, baseB = newB == NEG_INF ? 0.f : newB;
            float corrA = exp2f(mA - baseA), corrB = exp2f(mB - baseB), sumA = 0.f, sumB = 0.f;
#pragma unroll
            for (int j = 0; j < 8; j++)
            {
                s[j][0] = exp2f(s[j][0] - baseA); s[j][1] = exp2f(s[j][1] - baseA);
                s[j][2] = exp2f(s[j][2] - baseB); s[j][3] = exp2f(s[j][3] - baseB);
                sumA += s[j][0] + s[j][1];
                sumB += s[j][2] + s[j][3];
            }
            // l stays a per-thread partial sum (the quad's 4 partials are added at the end); m is the quad's.
            lA = lA * corrA + sumA; lB = lB * corrB + sumB;
            mA = newA; mB = newB;
            for (int d = 0; d < DT; d++) { o[d][0] *= corrA; o[d][1] *= corrA; o[d][2] *= corrB; o[d][3] *= corrB; }
        }
        cpWait<0>();
        __syncthreads();
        if (active) accumulateProduct<HD, 4>(o, s, vs, lane);
    }
    lA = quadSum(lA); lB = quadSum(lB);
    float invA = lA > 0.f ? 1.f / lA : 0.f, invB = lB > 0.f ? 1.f / lB : 0.f;
    for (int d = 0; d < DT; d++)
    {
        int col = h * HD + d * 8 + 2 * tq;
        if (rowA < rows) *(unsigned*)(out + (i64)rowA * qWidth + col) = pack(o[d][0] * invA, o[d][1] * invA);
        if (rowB < rows) *(unsigned*)(out + (i64)rowB * qWidth + col) = pack(o[d][2] * invB, o[d][3] * invB);
    }
    if (lse != 0 && tq == 0)
    {
        if (rowA < rows) lse[(i64)rowA * heads + h] = lA > 0.f ? (mA + log2f(lA)) * LN2 : NEG_INF;
        if (rowB < rows) lse[(i64)rowB * heads + h] = lB > 0.f ? (mB + log2f(lB)) * LN2 : NEG_INF;
    }
}

// delta = rowsum(dO ∘ O) per (row, head), one warp each; the [rows, heads·hd] layout makes (row, head) i the i-th hd run.
extern "C" __global__ void flashDelta(const bf16* dOut, const bf16* out, int count, int headDim, float* delta)
{
    int i = blockIdx.x * (FLASH_THREADS / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
    if (i >= count) return;
    const unsigned* a = (const unsigned*)(dOut + (i64)i * headDim);
    const unsigned* b = (const unsigned*)(out + (i64)i * headDim);
    float s = 0.f;
    for (int d = lane; d < headDim / 2; d += 32)
    {
        unsigned x = a[d], y = b[d];
        s += bf2f((bf16)(x & 0xffff)) * bf2f((bf16)(y & 0xffff)) + bf2f((bf16)(x >> 16)) * bf2f((bf16)(y >> 16));
    }
    s = warpSum(s);
    if (lane == 0) delta[i] = s;
}

// dq for 64 query rows of one head: over 64-key tiles, P from the log-sum-exp, dS = P∘(dO·Vᵀ − delta), dq = scale·dS·K.
template <int HD>
__device__ void flashBackwardQuery(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta,
                                   const int* keyStart, const int* keyEnd, int rows, int keyRows, int heads, int kvHeads, float scale, bf16* dq)
{
    constexpr int S = HD + 8, DT = HD / 8;
    extern __shared__ __align__(16) unsigned char smemBytes[];
    bf16* qs = (bf16*)smemBytes;
    bf16* dos = qs + FLASH_ROWS * S;
    bf16* ks = dos + FLASH_ROWS * S; // two buffers of K and V: the next tile loads while this one is used
    bf16* vs = ks + 2 * 64 * S;
    __shared__ int bounds[4];
    // Blocks start in launch order (x fastest): all heads' longest rows (the last ones, causal) first, the shortest last.
    int order = blockIdx.x + blockIdx.y * gridDim.x;
    int h = order % gridDim.y, row0 = (gridDim.x - 1 - order / gridDim.y) * FLASH_ROWS, kvh = h / (heads / kvHeads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int qWidth = heads * HD, kvWidth = kvHeads * HD;
    loadRows<HD>(qs, q, row0, FLASH_ROWS, rows, qWidth, h * HD);
    loadRows<HD>(dos, dOut, row0, FLASH_ROWS, rows, qWidth, h * HD);
    cpCommit();
    blockBounds(bounds, keyStart, keyEnd, row0, FLASH_ROWS, rows);
    int rowA = row0 + warp * 16 + g, rowB = rowA + 8;
    int startA = rowA < rows ? keyStart[rowA] : 0x7fffffff, endA = rowA < rows ? keyEnd[rowA] : 0;
    int startB = rowB < rows ? keyStart[rowB] : 0x7fffffff, endB = rowB < rows ? keyEnd[rowB] : 0;
    float lseA = rowA < rows ? lse[(i64)rowA * heads + h] * LOG2E : 0.f, lseB = rowB < rows ? lse[(i64)rowB * heads + h] * LOG2E : 0.f;
    float deltaA = rowA < rows ? delta[(i64)rowA * heads + h] : 0.f, deltaB = rowB < rows ? delta[(i64)rowB * heads + h] : 0.f;
    int warpLo = warpMinInt(min(startA, startB)), warpHi = warpMaxInt(max(endA, endB));
    float acc[DT][4];
    for (int d = 0; d < DT; d++) for (int e = 0; e < 4; e++) acc[d][e] = 0.f;
    float scale2 = scale * LOG2E;
    __syncthreads();
    int lo = bounds[0], hi = bounds[1], maxStart = bounds[2], minEnd = bounds[3];
    if (lo < hi)
    {
        loadRows<HD>(ks, k, lo, 64, keyRows, kvWidth, kvh * HD);
        loadRows<HD>(vs, v, lo, 64, keyRows, kvWidth, kvh * HD);
    }
    cpCommit();
    for (int k0 = lo, buffer = 0; k0 < hi; k0 += 64, buffer ^= 1)
    {
        __syncthreads(); // every warp is done with the other buffer (the previous tile)
        if (k0 + 64 < hi)
        {
            loadRows<HD>(ks + (buffer ^ 1) * 64 * S, k, k0 + 64, 64, keyRows, kvWidth, kvh * HD);
            loadRows<HD>(vs + (buffer ^ 1) * 64 * S, v, k0 + 64, 64, keyRows, kvWidth, kvh * HD);
        }
        cpCommit();
        cpWait<1>(); // this tile (and q, dO)
        __syncthreads();
        if (!(k0 < warpHi && k0 + 64 > warpLo)) continue;
        const bf16* kt = ks + buffer * 64 * S;
        const bf16* vt = vs + buffer * 64 * S;
        float s[8][4], dp[8][4];
        {
            unsigned qf[HD / 16][4];
            loadA<HD>(qf, qs, warp * 16, lane);
            scoreTile<HD>(s, qf, kt, lane);
            loadA<HD>(qf, dos, warp * 16, lane);
            scoreTile<HD>(dp, qf, vt, lane);
        }
        bool full = k0 >= maxStart && k0 + 64 <= minEnd;
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
            {
                int key = k0 + j * 8 + 2 * tq + (e & 1);
                bool valid = full || (e < 2 ? key >= startA && key < endA : key >= startB && key < endB);
                float p = valid ? exp2f(s[j][e] * scale2 - (e < 2 ? lseA : lseB)) : 0.f;
                dp[j][e] = p * (dp[j][e] - (e < 2 ? deltaA : deltaB));
            }
        accumulateProduct<HD, 4>(acc, dp, kt, lane);
    }
    for (int d = 0; d < DT; d++)
    {
        int col = h * HD + d * 8 + 2 * tq;
        if (rowA < rows) *(unsigned*)(dq + (i64)rowA * qWidth + col) = pack(acc[d][0] * scale, acc[d][1] * scale);
        if (rowB < rows) *(unsigned*)(dq + (i64)rowB * qWidth + col) = pack(acc[d][2] * scale, acc[d][3] * scale);
    }
}

// A query tile of the dk/dv kernel into one of its buffers: BR rows of q and dO (cp.async, not waited for) and the rows'
// spans, log-sum-exps (in log2 units) and deltas.
template <int HD, int BR>
__device__ __forceinline__ void stageQueryTile(bf16* qs, bf16* dos, int* spanStart, int* spanEnd, float* rowLse, float* rowDelta,
                                               const bf16* q, const bf16* dOut, const float* lse, const float* delta,
                                               const int* keyStart, const int* keyEnd, int q0, int rows, int heads, int h)
{
    loadRows<HD>(qs, q, q0, BR, rows, heads * HD, h * HD);
    loadRows<HD>(dos, dOut, q0, BR, rows, heads * HD, h * HD);
    if (threadIdx.x < BR)
    {
        int row = q0 + threadIdx.x;
        bool in = row < rows;
        spanStart[threadIdx.x] = in ? keyStart[row] : 0;
        spanEnd[threadIdx.x] = in ? keyEnd[row] : 0;
        rowLse[threadIdx.x] = in ? lse[(i64)row * heads + h] * LOG2E : 0.f;
        rowDelta[threadIdx.x] = in ? delta[(i64)row * heads + h] : 0.f;
    }
}

// dk and dv of 64 keys from one query head (blockIdx.y), over tiles of BR query rows: transposed scores Sᵀ = K·Qᵀ and
// dPᵀ = V·dOᵀ, then dv += Pᵀ·dO and dk += scale·dSᵀ·Q. Each head's share goes to f32 partials [keyRows, heads·HD];
// flashReduceKeys adds a group's heads in a fixed order, so the result is the same run to run (no atomics).
template <int HD, int BR>
__device__ void flashBackwardKey(const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta,
                                 const int* keyStart, const int* keyEnd, int rows, int keyRows, int heads, int kvHeads, float scale,
                                 float* dkPart, float* dvPart)
{
    constexpr int S = HD + 8, DT = HD / 8, RT = BR / 8;
    extern __shared__ __align__(16) unsigned char smemBytes[];
    // K and V of the block's keys; two buffers of each query tile's q, dO and rows' spans, lse and delta, so that the
    // next tile loads while this one is used.
    bf16* ks = (bf16*)smemBytes;
    bf16* vs = ks + 64 * S;
    bf16* qs = vs + 64 * S;
    bf16* dos = qs + 2 * BR * S;
    float* tileLse = (float*)(dos + 2 * BR * S);
    float* tileDelta = tileLse + 2 * BR;
    int* tileStart = (int*)(tileDelta + 2 * BR);
    int* tileEnd = tileStart + 2 * BR;
    __shared__ int rowRange[2];
    // All heads' first keys (seen by the most rows, causal) first.
    int order = blockIdx.x + blockIdx.y * gridDim.x;
    int h = order % gridDim.y, key0 = order / gridDim.y * 64, kvh = h / (heads / kvHeads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tq = lane & 3;
    int qWidth = heads * HD, kvWidth = kvHeads * HD;
    int keyHi = min(key0 + 64, keyRows), warpKey0 = key0 + warp * 16, keyA = warpKey0 + g, keyB = keyA + 8;
    loadRows<HD>(ks, k, key0, 64, keyRows, kvWidth, kvh * HD);
    loadRows<HD>(vs, v, key0, 64, keyRows, kvWidth, kvh * HD);
    cpCommit();
    // The query rows whose spans meet these keys lie in [rowRange[0], rowRange[1]); only their tiles are visited.
    if (threadIdx.x == 0)
    {
        rowRange[0] = 0x7fffffff;
        rowRange[1] = 0;
    }
    __syncthreads();
    int firstRow = 0x7fffffff, lastRow = 0;
#pragma unroll 4
    for (int row = threadIdx.x; row < rows; row += FLASH_THREADS)
        if (keyStart[row] < keyHi && keyEnd[row] > key0)
        {
            firstRow = min(firstRow, row);
            lastRow = row + 1;
        }
    atomicMin(&rowRange[0], firstRow);
    atomicMax(&rowRange[1], lastRow);
    __syncthreads();
    int rowHi = rowRange[1], rowLo = rowHi > 0 ? rowRange[0] / BR * BR : 0;
    float dk[DT][4], dv[DT][4];
    for (int d = 0; d < DT; d++) for (int e = 0; e < 4; e++) { dk[d][e] = 0.f; dv[d][e] = 0.f; }
    float scale2 = scale * LOG2E;
    if (rowLo < rowHi) stageQueryTile<HD, BR>(qs, dos, tileStart, tileEnd, tileLse, tileDelta, q, dOut, lse, delta, keyStart, keyEnd, rowLo, rows, heads, h);
    cpCommit();
    for (int q0 = rowLo, buffer = 0; q0 < rowHi; q0 += BR, buffer ^= 1)
    {
        __syncthreads(); // every warp is done with the other buffers (the previous tile)
        int next = (buffer ^ 1) * BR;
        if (q0 + BR < rowHi)
            stageQueryTile<HD, BR>(qs + next * S, dos + next * S, tileStart + next, tileEnd + next, tileLse + next, tileDelta + next,
                                   q, dOut, lse, delta, keyStart, keyEnd, q0 + BR, rows, heads, h);
        cpCommit();
        cpWait<1>(); // this tile
        __syncthreads();
        int at = buffer * BR;
        const bf16* qt = qs + at * S;
        const bf16* dot = dos + at * S;
        const int* spanStart = tileStart + at;
        const int* spanEnd = tileEnd + at;
        const float* rowLse = tileLse + at;
        const float* rowDelta = tileDelta + at;
        // Does any row of the tile see one of this warp's keys, and do all of them see all 16?
        bool warpAny = false, warpAll = true;
        for (int r = lane; r < BR; r += 32)
        {
            int start = spanStart[r], end = spanEnd[r];
            warpAny |= start < warpKey0 + 16 && end > warpKey0;
            warpAll &= start <= warpKey0 && end >= warpKey0 + 16;
        }
        warpAny = __any_sync(0xffffffffu, warpAny);
        warpAll = __all_sync(0xffffffffu, warpAll);
        if (!warpAny) continue;
        float s[RT][4], dp[RT][4];
        for (int j = 0; j < RT; j++) for (int e = 0; e < 4; e++) { s[j][e] = 0.f; dp[j][e] = 0.f; }
#pragma unroll
        for (int kk = 0; kk < HD / 16; kk++)
        {
            unsigned kf[4], vf[4];
            ldmatrix4(kf, ks + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S + kk * 16 + (lane >> 4) * 8);
            ldmatrix4(vf, vs + (warp * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * S + kk * 16 + (lane >> 4) * 8);
#pragma unroll
            for (int np = 0; np < BR / 16; np++)
            {
                unsigned b[4];
                int offset = (np * 16 + (lane & 7) + (lane >> 4) * 8) * S + kk * 16 + ((lane >> 3) & 1) * 8;
                ldmatrix4(b, qt + offset);
                mma(s[2 * np], kf, b[0], b[1]);
                mma(s[2 * np + 1], kf, b[2], b[3]);
                ldmatrix4(b, dot + offset);
                mma(dp[2 * np], vf, b[0], b[1]);
                mma(dp[2 * np + 1], vf, b[2], b[3]);
            }
        }
#pragma unroll
        for (int j = 0; j < RT; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
            {
                int r = j * 8 + 2 * tq + (e & 1), key = e < 2 ? keyA : keyB;
                bool valid = warpAll || (key >= spanStart[r] && key < spanEnd[r]);
                float p = valid ? exp2f(s[j][e] * scale2 - rowLse[r]) : 0.f;
                s[j][e] = p;
                dp[j][e] = p * (dp[j][e] - rowDelta[r]);
            }
        accumulateProduct<HD, BR / 16>(dv, s, dot, lane);
        accumulateProduct<HD, BR / 16>(dk, dp, qt, lane);
    }
    cpWait<0>(); // when no tile covered these keys, the k/v loads are still in flight (and the last, empty, group)
    for (int d = 0; d < DT; d++)
    {
        int col = h * HD + d * 8 + 2 * tq;
        if (keyA < keyRows)
        {
            storePair(dkPart + (i64)keyA * qWidth + col, dk[d][0] * scale, dk[d][1] * scale);
            storePair(dvPart + (i64)keyA * qWidth + col, dv[d][0], dv[d][1]);
        }
        if (keyB < keyRows)
        {
            storePair(dkPart + (i64)keyB * qWidth + col, dk[d][2] * scale, dk[d][3] * scale);
            storePair(dvPart + (i64)keyB * qWidth + col, dv[d][2], dv[d][3]);
        }
    }
}

// dk, dv [keyRows, kvHeads·hd] += the sum over each KV head's group of query heads of the partials, heads in order.
extern "C" __global__ void flashReduceKeys(const float* dkPart, const float* dvPart, int keyRows, int heads, int kvHeads, int headDim,
                                           bf16* dk, bf16* dv)
{
    int group = heads / kvHeads, kvWidth = kvHeads * headDim;
    GRID_STRIDE(i, (i64)keyRows * kvWidth)
    {
        i64 key = i / kvWidth;
        int column = (int)(i - key * kvWidth), kvh = column / headDim, d = column - kvh * headDim;
        float sk = 0.f, sv = 0.f;
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
        {
            i64 p = key * heads * headDim + h * headDim + d;
            sk += dkPart[p];
            sv += dvPart[p];
        }
        dk[i] = f2bf(bf2f(dk[i]) + sk);
        dv[i] = f2bf(bf2f(dv[i]) + sv);
    }
}

#define FLASH_KERNELS(HD, BR)                                                                                                        \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS) flashForward##HD(                                                   \
        const bf16* q, const bf16* k, const bf16* v, const int* keyStart, const int* keyEnd, int rows, int keyRows, int heads,       \
        int kvHeads, float scale, bf16* out, float* lse)                                                                             \
    {                                                                                                                                \
        flashForward<HD>(q, k, v, keyStart, keyEnd, rows, keyRows, heads, kvHeads, scale, out, lse);                                 \
    }                                                                                                                                \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS) flashBackwardQuery##HD(                                             \
        const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, const int* keyStart,    \
        const int* keyEnd, int rows, int keyRows, int heads, int kvHeads, float scale, bf16* dq)                                     \
    {                                                                                                                                \
        flashBackwardQuery<HD>(dOut, q, k, v, lse, delta, keyStart, keyEnd, rows, keyRows, heads, kvHeads, scale, dq);               \
    }                                                                                                                                \
    extern "C" __global__ void __launch_bounds__(FLASH_THREADS) flashBackwardKey##HD(                                               \
        const bf16* dOut, const bf16* q, const bf16* k, const bf16* v, const float* lse, const float* delta, const int* keyStart,    \
        const int* keyEnd, int rows, int keyRows, int heads, int kvHeads, float scale, float* dkPart, float* dvPart)                 \
    {                                                                                                                                \
        flashBackwardKey<HD, BR>(dOut, q, k, v, lse, delta, keyStart, keyEnd, rows, keyRows, heads, kvHeads, scale, dkPart, dvPart); \
    }

// Query rows per tile of the dk/dv kernel: 64 at head dim 64; 32 at 128, where the dk and dv accumulators take 128 registers.
FLASH_KERNELS(64, 64)
FLASH_KERNELS(128, 32)
