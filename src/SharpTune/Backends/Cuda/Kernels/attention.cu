// Softmax attention with online softmax (no rows×keys matrix in memory), grouped-query, arbitrary key span per query row.
// One warp per (query row, head); lane l holds dimensions l, l+32, ... of the head (head dim ≤ 256).
#define MAX_PER_LANE 8

__device__ __forceinline__ void loadHead(const void* p, int t, i64 base, int headDim, float* r)
{
    int lane = threadIdx.x & 31;
    for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; r[e] = d < headDim ? ld(p, t, base + d) : 0.f; }
}

__device__ __forceinline__ float dotHead(const float* r, const void* p, int t, i64 base, int headDim)
{
    int lane = threadIdx.x & 31;
    float s = 0.f;
    for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) s += r[e] * ld(p, t, base + d); }
    return warpSum(s);
}

extern "C" __global__ void attentionForward(const void* q, const void* k, const void* v, int t, const int* keyStart, const int* keyEnd,
                                            int rows, int heads, int kvHeads, int headDim, float scale, void* out, float* lse)
{
    int task = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (task >= rows * heads) return;
    int lane = threadIdx.x & 31;
    int row = task / heads, h = task - row * heads;
    int kvh = h / (heads / kvHeads);
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    i64 qBase = (i64)row * qWidth + h * headDim;
    float qr[MAX_PER_LANE], acc[MAX_PER_LANE];
    loadHead(q, t, qBase, headDim, qr);
    for (int e = 0; e < MAX_PER_LANE; e++) acc[e] = 0.f;
    float m = NEG_INF, l = 0.f;
    for (int j = keyStart[row]; j < keyEnd[row]; j++)
    {
        i64 kb = (i64)j * kvWidth + kvh * headDim;
        float s = scale * dotHead(qr, k, t, kb, headDim);
        float mNew = fmaxf(m, s);
        float correction = expf(m - mNew), p = expf(s - mNew);
        l = l * correction + p;
        for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) acc[e] = acc[e] * correction + p * ld(v, t, kb + d); }
        m = mNew;
    }
    float inv = 1.f / l;
    for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) st(out, t, qBase + d, acc[e] * inv); }
    if (lse != 0 && lane == 0) lse[(i64)row * heads + h] = m + logf(l);
}

// dq (written) and delta = dO·O per (row, head), kept for the key-side kernel.
extern "C" __global__ void attentionBackwardQuery(const void* dOut, const void* q, const void* k, const void* v, const void* out, int t,
                                                  const float* lse, const int* keyStart, const int* keyEnd, int rows, int heads,
                                                  int kvHeads, int headDim, float scale, void* dq, float* delta)
{
    int task = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (task >= rows * heads) return;
    int lane = threadIdx.x & 31;
    int row = task / heads, h = task - row * heads;
    int kvh = h / (heads / kvHeads);
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    i64 qBase = (i64)row * qWidth + h * headDim;
    float qr[MAX_PER_LANE], dor[MAX_PER_LANE], acc[MAX_PER_LANE];
    loadHead(q, t, qBase, headDim, qr);
    loadHead(dOut, t, qBase, headDim, dor);
    for (int e = 0; e < MAX_PER_LANE; e++) acc[e] = 0.f;
    float dlt = dotHead(dor, out, t, qBase, headDim);
    float l = lse[(i64)row * heads + h];
    for (int j = keyStart[row]; j < keyEnd[row]; j++)
    {
        i64 kb = (i64)j * kvWidth + kvh * headDim;
        float p = expf(scale * dotHead(qr, k, t, kb, headDim) - l);
        float dp = dotHead(dor, v, t, kb, headDim);
        float ds = p * (dp - dlt) * scale;
        for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) acc[e] += ds * ld(k, t, kb + d); }
    }
    for (int e = 0; e < MAX_PER_LANE; e++) { int d = lane + 32 * e; if (d < headDim) st(dq, t, qBase + d, acc[e]); }
    if (lane == 0) delta[(i64)row * heads + h] = dlt;
}

// dk and dv (accumulated) per (key row, KV head): sums over every query row whose span holds the key and every head of
// the group. No atomics, so results are the same run to run.
extern "C" __global__ void attentionBackwardKey(const void* dOut, const void* q, const void* k, const void* v, int t,
                                                const float* lse, const float* delta, const int* keyStart, const int* keyEnd,
                                                int rows, int keyRows, int heads, int kvHeads, int headDim, float scale,
                                                void* dk, void* dv)
{
    int task = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (task >= keyRows * kvHeads) return;
    int lane = threadIdx.x & 31;
    int key = task / kvHeads, kvh = task - key * kvHeads;
    int group = heads / kvHeads;
    int qWidth = heads * headDim, kvWidth = kvHeads * headDim;
    i64 kb = (i64)key * kvWidth + kvh * headDim;
    float kr[MAX_PER_LANE], vr[MAX_PER_LANE], dkAcc[MAX_PER_LANE], dvAcc[MAX_PER_LANE];
    loadHead(k, t, kb, headDim, kr);
    loadHead(v, t, kb, headDim, vr);
    for (int e = 0; e < MAX_PER_LANE; e++) { dkAcc[e] = 0.f; dvAcc[e] = 0.f; }
    for (int row = 0; row < rows; row++)
    {
        if (key < keyStart[row] || key >= keyEnd[row]) continue;
        for (int h = kvh * group; h < (kvh + 1) * group; h++)
        {
            i64 qBase = (i64)row * qWidth + h * headDim;
            float qr[MAX_PER_LANE], dor[MAX_PER_LANE];
            loadHead(q, t, qBase, headDim, qr);
            loadHead(dOut, t, qBase, headDim, dor);
            float s = 0.f, dp = 0.f;
            for (int e = 0; e < MAX_PER_LANE; e++) { s += qr[e] * kr[e]; dp += dor[e] * vr[e]; }
            s = warpSum(s);
            dp = warpSum(dp);
            i64 stat = (i64)row * heads + h;
            float p = expf(scale * s - lse[stat]);
            float ds = p * (dp - delta[stat]) * scale;
            for (int e = 0; e < MAX_PER_LANE; e++) { dkAcc[e] += ds * qr[e]; dvAcc[e] += p * dor[e]; }
        }
    }
    for (int e = 0; e < MAX_PER_LANE; e++)
    {
        int d = lane + 32 * e;
        if (d >= headDim) continue;
        st(dk, t, kb + d, ld(dk, t, kb + d) + dkAcc[e]);
        st(dv, t, kb + d, ld(dv, t, kb + d) + dvAcc[e]);
    }
}
