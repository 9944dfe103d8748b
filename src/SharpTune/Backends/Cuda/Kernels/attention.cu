// Softmax attention, flash-attention style on CUDA cores: online softmax over shared-memory tiles of keys (no rows×keys
// matrix in memory), grouped-query, an arbitrary key span per query row (causal, packed samples, KV cache).
// A block takes ROWS query rows of one head (or, for dk/dv, ROWS keys of one KV head); each of its 4 warps takes every
// 4th of them and works on its PER_WARP rows together, so each value read from shared memory feeds several rows.
// In the score loops a lane stands for one key (or one query row) of a 32-wide tile and reads 4 dimensions at a time;
// in the accumulations a lane holds dimensions lane, lane+32, ... (head dim ≤ 128, a multiple of 4). Tile rows are
// padded by 4 floats, which keeps both access patterns free of bank conflicts.
#define TILE 32
#define ROWS 16
#define WARPS 4
#define PER_WARP (ROWS / WARPS)
#define MAX_PER_LANE 4

// Loads rows [first, first+count) of one head of a [n, width] tensor into shared rows of `stride` floats (zeros past n).
__device__ void loadTile(float* dst, int stride, const void* src, int t, int first, int count, int n, int width, int column, int headDim)
{
    for (int i = threadIdx.x; i < count * headDim; i += blockDim.x)
    {
        int r = i / headDim, d = i - r * headDim, row = first + r;
        dst[r * stride + d] = row < n ? ld(src, t, (i64)row * width + column + d) : 0.f;
    }
}

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// acc[i][e] += Σ_j weights[i] of lane j · tile[j][lane + 32e] over a 32-row tile: the P·V, dS·K, dSᵀ·Q and Pᵀ·dO
// accumulations of a warp's PER_WARP rows (lane j holds the weight of tile row j).
__device__ __forceinline__ void accumulateTile(float (&acc)[PER_WARP][MAX_PER_LANE], const float (&weights)[PER_WARP],
                                               const float* tile, int stride, int lane, int headDim)
{
    for (int j = 0; j < TILE; j++)
    {
        float wj[PER_WARP];
        for (int i = 0; i < PER_WARP; i++) wj[i] = __shfl_sync(0xffffffffu, weights[i], j);
        for (int e = 0; e < MAX_PER_LANE; e++)
        {
            int d = lane + 32 * e;
            if (d >= headDim) break;
            float x = tile[j * stride + d];
            for (int i = 0; i < PER_WARP; i++) acc[i][e] += wj[i] * x;
        }
    }
}

extern "C" __global__ void attentionForward(const void* q, const void* k, const void* v, int t, const int* keyStart, const int* keyEnd,
                                            int rows, int keyRows, int heads, int kvHeads, int headDim, float scale, void* out, float* lse)
{
    extern __shared__ float4 smem4[];
    float* smem = (float*)smem4;
    int stride = headDim + 4;
    float* ks = smem;
    float* vs = ks + TILE * stride;
    float* qs = vs + TILE * stride;
    __shared__ int lo, hi;
    int h = blockIdx.y, row0 = blockIdx.x * ROWS, kvh = h / (heads / kvHeads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, quads = headDim / 4;
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    loadTile(qs, headDim, q, t, row0, ROWS, rows, qWidth, h * headDim, headDim);
    if (threadIdx.x == 0)
    {
        lo = 0x7fffffff; hi = 0;
        for (int r = row0; r < min(row0 + ROWS, rows); r++) { lo = min(lo, keyStart[r]); hi = max(hi, keyEnd[r]); }
    }
    float m[PER_WARP], l[PER_WARP], acc[PER_WARP][MAX_PER_LANE];
    int start[PER_WARP], end[PER_WARP];
    for (int i = 0; i < PER_WARP; i++)
    {
        int row = row0 + warp + WARPS * i;
        start[i] = row < rows ? keyStart[row] : 0;
        end[i] = row < rows ? keyEnd[row] : 0;
        m[i] = NEG_INF; l[i] = 0.f;
        for (int e = 0; e < MAX_PER_LANE; e++) acc[i][e] = 0.f;
    }
    __syncthreads();
    for (int k0 = lo; k0 < hi; k0 += TILE)
    {
        __syncthreads();
        loadTile(ks, stride, k, t, k0, TILE, keyRows, kvWidth, kvh * headDim, headDim);
        loadTile(vs, stride, v, t, k0, TILE, keyRows, kvWidth, kvh * headDim, headDim);
        __syncthreads();
        bool active[PER_WARP], any = false;
        for (int i = 0; i < PER_WARP; i++) { active[i] = k0 < end[i] && k0 + TILE > start[i]; any |= active[i]; }
        if (!any) continue;
        float s[PER_WARP];
        for (int i = 0; i < PER_WARP; i++) s[i] = 0.f;
        const float4* kr = (const float4*)(ks + lane * stride);
        for (int d4 = 0; d4 < quads; d4++)
        {
            float4 kv = kr[d4];
            for (int i = 0; i < PER_WARP; i++) s[i] += dot4(((const float4*)(qs + (warp + WARPS * i) * headDim))[d4], kv);
        }
        float p[PER_WARP];
        int key = k0 + lane;
        for (int i = 0; i < PER_WARP; i++)
        {
            p[i] = 0.f;
            if (!active[i]) continue;
            bool valid = key >= start[i] && key < end[i];
            float si = valid ? s[i] * scale : NEG_INF;
            float mNew = fmaxf(m[i], warpMax(si));
            float correction = expf(m[i] - mNew);
            p[i] = valid ? expf(si - mNew) : 0.f;
            l[i] = l[i] * correction + warpSum(p[i]);
            for (int e = 0; e < MAX_PER_LANE; e++) acc[i][e] *= correction;
            m[i] = mNew;
        }
        accumulateTile(acc, p, vs, stride, lane, headDim);
    }
    for (int i = 0; i < PER_WARP; i++)
    {
        int row = row0 + warp + WARPS * i;
        if (row >= rows) continue;
        float inv = 1.f / l[i];
        i64 base = (i64)row * qWidth + h * headDim;
        for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) st(out, t, base + d, acc[i][e] * inv); }
        if (lse != 0 && lane == 0) lse[(i64)row * heads + h] = m[i] + logf(l[i]);
    }
}

// dq (written) and delta = dO·O per (row, head), kept for the key-side kernel.
extern "C" __global__ void attentionBackwardQuery(const void* dOut, const void* q, const void* k, const void* v, const void* out, int t,
                                                  const float* lse, const int* keyStart, const int* keyEnd, int rows, int keyRows,
                                                  int heads, int kvHeads, int headDim, float scale, void* dq, float* delta)
{
    extern __shared__ float4 smem4[];
    float* smem = (float*)smem4;
    int stride = headDim + 4;
    float* ks = smem;
    float* vs = ks + TILE * stride;
    float* qs = vs + TILE * stride;
    float* dos = qs + ROWS * headDim;
    __shared__ int lo, hi;
    int h = blockIdx.y, row0 = blockIdx.x * ROWS, kvh = h / (heads / kvHeads);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, quads = headDim / 4;
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    loadTile(qs, headDim, q, t, row0, ROWS, rows, qWidth, h * headDim, headDim);
    loadTile(dos, headDim, dOut, t, row0, ROWS, rows, qWidth, h * headDim, headDim);
    if (threadIdx.x == 0)
    {
        lo = 0x7fffffff; hi = 0;
        for (int r = row0; r < min(row0 + ROWS, rows); r++) { lo = min(lo, keyStart[r]); hi = max(hi, keyEnd[r]); }
    }
    __syncthreads();
    float dlt[PER_WARP], rowLse[PER_WARP], acc[PER_WARP][MAX_PER_LANE];
    int start[PER_WARP], end[PER_WARP];
    for (int i = 0; i < PER_WARP; i++)
    {
        int r = warp + WARPS * i, row = row0 + r;
        start[i] = row < rows ? keyStart[row] : 0;
        end[i] = row < rows ? keyEnd[row] : 0;
        float s = 0.f;
        for (int d = lane; d < headDim; d += 32) s += dos[r * headDim + d] * (row < rows ? ld(out, t, (i64)row * qWidth + h * headDim + d) : 0.f);
        dlt[i] = warpSum(s);
        rowLse[i] = row < rows ? lse[(i64)row * heads + h] : 0.f;
        for (int e = 0; e < MAX_PER_LANE; e++) acc[i][e] = 0.f;
    }
    for (int k0 = lo; k0 < hi; k0 += TILE)
    {
        __syncthreads();
        loadTile(ks, stride, k, t, k0, TILE, keyRows, kvWidth, kvh * headDim, headDim);
        loadTile(vs, stride, v, t, k0, TILE, keyRows, kvWidth, kvh * headDim, headDim);
        __syncthreads();
        bool any = false;
        for (int i = 0; i < PER_WARP; i++) any |= k0 < end[i] && k0 + TILE > start[i];
        if (!any) continue;
        float s[PER_WARP], dp[PER_WARP];
        for (int i = 0; i < PER_WARP; i++) { s[i] = 0.f; dp[i] = 0.f; }
        const float4* kr = (const float4*)(ks + lane * stride);
        const float4* vr = (const float4*)(vs + lane * stride);
        for (int d4 = 0; d4 < quads; d4++)
        {
            float4 kv = kr[d4], vv = vr[d4];
            for (int i = 0; i < PER_WARP; i++)
            {
                int r = warp + WARPS * i;
                s[i] += dot4(((const float4*)(qs + r * headDim))[d4], kv);
                dp[i] += dot4(((const float4*)(dos + r * headDim))[d4], vv);
            }
        }
        float ds[PER_WARP];
        int key = k0 + lane;
        for (int i = 0; i < PER_WARP; i++)
        {
            bool valid = key >= start[i] && key < end[i];
            float p = valid ? expf(scale * s[i] - rowLse[i]) : 0.f;
            ds[i] = p * (dp[i] - dlt[i]) * scale;
        }
        accumulateTile(acc, ds, ks, stride, lane, headDim);
    }
    for (int i = 0; i < PER_WARP; i++)
    {
        int row = row0 + warp + WARPS * i;
        if (row >= rows) continue;
        i64 base = (i64)row * qWidth + h * headDim;
        for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) st(dq, t, base + d, acc[i][e]); }
        if (lane == 0) delta[(i64)row * heads + h] = dlt[i];
    }
}

// dk and dv (accumulated) for ROWS keys of one KV head: sums over every query row whose span holds the key and every head
// of the group, query rows in shared-memory tiles. No atomics, so results are the same run to run.
extern "C" __global__ void attentionBackwardKey(const void* dOut, const void* q, const void* k, const void* v, int t,
                                                const float* lse, const float* delta, const int* keyStart, const int* keyEnd,
                                                int rows, int keyRows, int heads, int kvHeads, int headDim, float scale,
                                                void* dk, void* dv)
{
    extern __shared__ float4 smem4[];
    float* smem = (float*)smem4;
    int stride = headDim + 4;
    float* qs = smem;
    float* dos = qs + TILE * stride;
    float* ks = dos + TILE * stride;
    float* vs = ks + ROWS * headDim;
    __shared__ float tileLse[TILE], tileDelta[TILE];
    __shared__ int tileStart[TILE], tileEnd[TILE];
    int kvh = blockIdx.y, key0 = blockIdx.x * ROWS, group = heads / kvHeads;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, quads = headDim / 4;
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    int keyHi = min(key0 + ROWS, keyRows);
    loadTile(ks, headDim, k, t, key0, ROWS, keyRows, kvWidth, kvh * headDim, headDim);
    loadTile(vs, headDim, v, t, key0, ROWS, keyRows, kvWidth, kvh * headDim, headDim);
    float dkAcc[PER_WARP][MAX_PER_LANE], dvAcc[PER_WARP][MAX_PER_LANE];
    for (int i = 0; i < PER_WARP; i++)
        for (int e = 0; e < MAX_PER_LANE; e++) { dkAcc[i][e] = 0.f; dvAcc[i][e] = 0.f; }
    for (int q0 = 0; q0 < rows; q0 += TILE)
    {
        __syncthreads();
        bool covers = false;
        if (threadIdx.x < TILE)
        {
            int row = q0 + threadIdx.x;
            tileStart[threadIdx.x] = row < rows ? keyStart[row] : 0;
            tileEnd[threadIdx.x] = row < rows ? keyEnd[row] : 0;
            covers = row < rows && keyStart[row] < keyHi && keyEnd[row] > key0;
        }
        if (!__syncthreads_or(covers)) continue;
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
        {
            __syncthreads();
            loadTile(qs, stride, q, t, q0, TILE, rows, qWidth, h * headDim, headDim);
            loadTile(dos, stride, dOut, t, q0, TILE, rows, qWidth, h * headDim, headDim);
            if (threadIdx.x < TILE)
            {
                int row = q0 + threadIdx.x;
                tileLse[threadIdx.x] = row < rows ? lse[(i64)row * heads + h] : 0.f;
                tileDelta[threadIdx.x] = row < rows ? delta[(i64)row * heads + h] : 0.f;
            }
            __syncthreads();
            bool valid[PER_WARP], any = false;
            for (int i = 0; i < PER_WARP; i++)
            {
                int key = key0 + warp + WARPS * i;
                valid[i] = key < keyRows && key >= tileStart[lane] && key < tileEnd[lane];
                any |= valid[i];
            }
            if (!__any_sync(0xffffffffu, any)) continue;
            float s[PER_WARP], dp[PER_WARP];
            for (int i = 0; i < PER_WARP; i++) { s[i] = 0.f; dp[i] = 0.f; }
            const float4* qr = (const float4*)(qs + lane * stride);
            const float4* dor = (const float4*)(dos + lane * stride);
            for (int d4 = 0; d4 < quads; d4++)
            {
                float4 qv = qr[d4], ov = dor[d4];
                for (int i = 0; i < PER_WARP; i++)
                {
                    int kr = warp + WARPS * i;
                    s[i] += dot4(qv, ((const float4*)(ks + kr * headDim))[d4]);
                    dp[i] += dot4(ov, ((const float4*)(vs + kr * headDim))[d4]);
                }
            }
            float p[PER_WARP], ds[PER_WARP];
            for (int i = 0; i < PER_WARP; i++)
            {
                p[i] = valid[i] ? expf(scale * s[i] - tileLse[lane]) : 0.f;
                ds[i] = p[i] * (dp[i] - tileDelta[lane]) * scale;
            }
            accumulateTile(dkAcc, ds, qs, stride, lane, headDim);
            accumulateTile(dvAcc, p, dos, stride, lane, headDim);
        }
    }
    for (int i = 0; i < PER_WARP; i++)
    {
        int key = key0 + warp + WARPS * i;
        if (key >= keyRows) continue;
        i64 base = (i64)key * kvWidth + kvh * headDim;
        for (int e = 0; e < MAX_PER_LANE; e++)
        {
            int d = lane + 32 * e;
            if (d >= headDim) continue;
            st(dk, t, base + d, ld(dk, t, base + d) + dkAcc[i][e]);
            st(dv, t, base + d, ld(dv, t, base + d) + dvAcc[i][e]);
        }
    }
}
