extern "C" __global__ void convert(const void* x, int tx, void* y, int ty, i64 n)
{
    GRID_STRIDE(i, n) st(y, ty, i, ld(x, tx, i));
}

extern "C" __global__ void fill(void* y, int ty, float value, i64 n)
{
    GRID_STRIDE(i, n) st(y, ty, i, value);
}

// y = beta·y + alpha·x (beta = 0 ignores y's contents).
extern "C" __global__ void axpby(const void* x, int tx, float alpha, void* y, int ty, float beta, i64 n)
{
    GRID_STRIDE(i, n)
    {
        float v = alpha * ld(x, tx, i);
        if (beta != 0.f) v += beta * ld(y, ty, i);
        st(y, ty, i, v);
    }
}

extern "C" __global__ void scale(void* x, int tx, float alpha, i64 n)
{
    GRID_STRIDE(i, n) st(x, tx, i, alpha * ld(x, tx, i));
}

// y = dropout(x), or y += dropout(x) when accumulate (the backward into an input gradient with other terms); keep = 1/(1-p).
extern "C" __global__ void dropout(const void* x, int tx, unsigned threshold, float keep, u64 seed, void* y, int ty, int accumulate, i64 n)
{
    GRID_STRIDE(i, n)
    {
        // __fmul_rn: the product is rounded before the addition (no fused multiply-add), as on the CPU.
        float v = counterDrops(counterHash(seed, (u64)i >> 2), (int)(i & 3), threshold) ? 0.f : __fmul_rn(ld(x, tx, i), keep);
        st(y, ty, i, accumulate ? ld(y, ty, i) + v : v);
    }
}

extern "C" __global__ void embedding(const void* table, int tt, const int* ids, void* out, int to, int dim, i64 n)
{
    GRID_STRIDE(i, n)
    {
        i64 row = i / dim;
        int col = (int)(i - row * dim);
        st(out, to, i, ld(table, tt, (i64)ids[row] * dim + col));
    }
}

extern "C" __global__ void embeddingBackward(const void* dOut, int td, const int* ids, float* dTable, int dim, i64 n)
{
    GRID_STRIDE(i, n)
    {
        i64 row = i / dim;
        int col = (int)(i - row * dim);
        atomicAdd(dTable + (i64)ids[row] * dim + col, ld(dOut, td, i));
    }
}

extern "C" __global__ void addBias(void* y, int ty, const float* bias, int dim, i64 n)
{
    GRID_STRIDE(i, n) st(y, ty, i, ld(y, ty, i) + bias[i % dim]);
}

// One thread per column: dBias[c] += Σ_r dy[r, c].
extern "C" __global__ void biasBackward(const void* dy, int td, float* dBias, int dim, int rows)
{
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= dim) return;
    float s = 0.f;
    for (int r = 0; r < rows; r++) s += ld(dy, td, (i64)r * dim + c);
    dBias[c] += s;
}

extern "C" __global__ void swiglu(const void* gate, const void* up, void* h, int t, i64 n)
{
    GRID_STRIDE(i, n)
    {
        float x = ld(gate, t, i);
        st(h, t, i, x / (1.f + expf(-x)) * ld(up, t, i));
    }
}

extern "C" __global__ void swigluBackward(const void* dh, const void* gate, const void* up, void* dGate, void* dUp, int t, i64 n)
{
    GRID_STRIDE(i, n)
    {
        float x = ld(gate, t, i), d = ld(dh, t, i);
        float sig = 1.f / (1.f + expf(-x));
        st(dUp, t, i, d * x * sig);
        st(dGate, t, i, d * ld(up, t, i) * sig * (1.f + x * (1.f - sig)));
    }
}

// Rotate-half RoPE in place; one thread per (row, head, pair). Angles as transformers: a float32 product, cos/sin in double.
extern "C" __global__ void rope(void* x, int tx, const int* positions, const float* invFreq, int rows, int width, int headDim,
                                float scaling, int inverse)
{
    int half = headDim / 2;
    i64 pairs = (i64)rows * (width / 2);
    GRID_STRIDE(i, pairs)
    {
        int row = (int)(i / (width / 2));
        int rest = (int)(i - (i64)row * (width / 2));
        int head = rest / half, j = rest - head * half;
        float angle = (float)positions[row] * invFreq[j];
        float c = (float)cos((double)angle) * scaling;
        float s = (float)sin((double)angle) * scaling;
        if (inverse) s = -s;
        i64 base = (i64)row * width + head * headDim;
        float a = ld(x, tx, base + j), b = ld(x, tx, base + j + half);
        st(x, tx, base + j, a * c - b * s);
        st(x, tx, base + j + half, b * c + a * s);
    }
}

// A work item of ropeQueryKeyRows: `width` consecutive pairs, from j0, of one row's group of 4 heads of q or of k, and each
// pair's cos and sin (computed in double, as the CPU; sin negated for the inverse rotation), which serve the 4 heads.
template <int W> struct RopeItem
{
    void* x;
    i64 base; // the first pair's first element in the group's first head
    int heads, head0;
    float c[W], s[W];
};

template <int W>
__device__ __forceinline__ RopeItem<W> ropeItem(i64 i, void* q, void* k, const int* positions, const float* invFreq, int qHeads,
                                                int kHeads, int headDim, float scaling, int inverse)
{
    int runs = headDim / 2 / W, qGroups = (qHeads + 3) / 4, groups = qGroups + (kHeads + 3) / 4;
    int j0 = (int)(i % runs) * W;
    i64 rest = i / runs;
    int group = (int)(rest % groups), row = (int)(rest / groups);
    bool query = group < qGroups;
    RopeItem<W> item;
    item.x = query ? q : k;
    item.heads = query ? qHeads : kHeads;
    item.head0 = (query ? group : group - qGroups) * 4;
    item.base = (i64)row * item.heads * headDim + (i64)item.head0 * headDim + j0;
#pragma unroll
    for (int e = 0; e < W; e++)
    {
        float angle = (float)positions[row] * invFreq[j0 + e];
        item.c[e] = (float)cos((double)angle) * scaling;
        item.s[e] = (float)sin((double)angle) * scaling;
        if (inverse) item.s[e] = -item.s[e];
    }
    return item;
}

// rope on the queries and keys of the same rows (training's shapes): a thread per item (above), whose loads for its 4
// heads are all issued before any store. bfloat16 rows with 16-byte runs take items of 8 pairs, every load and store
// 16 bytes wide; others one pair. The launch counts a thread per pair; the grid-stride loops cover fewer items whatever the grid.
extern "C" __global__ void ropeQueryKeyRows(void* q, void* k, int t, const int* positions, const float* invFreq, int rows, int qHeads,
                                            int kHeads, int headDim, float scaling, int inverse)
{
    int half = headDim / 2;
    i64 groupRows = (i64)rows * ((qHeads + 3) / 4 + (kHeads + 3) / 4);
    if (t == 1 && half % 8 == 0 && ((u64)q | (u64)k) % 16 == 0)
    {
        GRID_STRIDE(i, groupRows * (half / 8))
        {
            auto item = ropeItem<8>(i, q, k, positions, invFreq, qHeads, kHeads, headDim, scaling, inverse);
            bf16* x = (bf16*)item.x + item.base;
            uint4 a[4], b[4];
#pragma unroll
            for (int h = 0; h < 4; h++)
            {
                if (item.head0 + h < item.heads)
                {
                    a[h] = *(const uint4*)(x + h * headDim);
                    b[h] = *(const uint4*)(x + h * headDim + half);
                }
            }
#pragma unroll
            for (int h = 0; h < 4; h++)
            {
                if (item.head0 + h < item.heads)
                {
                    float fa[8], fb[8], oa[8], ob[8];
                    unpackBF16x8(a[h], fa);
                    unpackBF16x8(b[h], fb);
#pragma unroll
                    for (int e = 0; e < 8; e++)
                    {
                        oa[e] = fa[e] * item.c[e] - fb[e] * item.s[e];
                        ob[e] = fb[e] * item.c[e] + fa[e] * item.s[e];
                    }
                    *(uint4*)(x + h * headDim) = packBF16x8(oa);
                    *(uint4*)(x + h * headDim + half) = packBF16x8(ob);
                }
            }
        }
        return;
    }
    GRID_STRIDE(i, groupRows * half)
    {
        auto item = ropeItem<1>(i, q, k, positions, invFreq, qHeads, kHeads, headDim, scaling, inverse);
        float a[4], b[4];
#pragma unroll
        for (int h = 0; h < 4; h++)
        {
            if (item.head0 + h < item.heads)
            {
                a[h] = ld(item.x, t, item.base + h * headDim);
                b[h] = ld(item.x, t, item.base + h * headDim + half);
            }
        }
#pragma unroll
        for (int h = 0; h < 4; h++)
        {
            if (item.head0 + h < item.heads)
            {
                st(item.x, t, item.base + h * headDim, a[h] * item.c[0] - b[h] * item.s[0]);
                st(item.x, t, item.base + h * headDim + half, b[h] * item.c[0] + a[h] * item.s[0]);
            }
        }
    }
}

// Decoupled-weight-decay Adam in torch.optim.AdamW's operation order.
__device__ __forceinline__ void adamwElement(float* p, const float* g, float* m, float* v, i64 i, float beta1, float beta2,
                                             float eps, float decay, float stepSize, float bias2Sqrt)
{
    float gi = g[i];
    float pi = p[i] * decay;
    float mi = m[i] + (gi - m[i]) * (1.f - beta1);
    float vi = v[i] * beta2 + (1.f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi - stepSize * mi / (sqrtf(vi) / bias2Sqrt + eps);
}

extern "C" __global__ void adamw(float* p, const float* g, float* m, float* v, float lr, float beta1, float beta2, float eps,
                                 float decay, float stepSize, float bias2Sqrt, i64 n)
{
    GRID_STRIDE(i, n) adamwElement(p, g, m, v, i, beta1, beta2, eps, decay, stepSize, bias2Sqrt);
}

// One tensor of a multi-tensor launch (the layout of CudaBackend's AdamWSlot): blockIdx.y picks the tensor.
struct AdamWSlot { float* p; const float* g; float* m; float* v; i64 n; float decay; float unused; };

extern "C" __global__ void adamwMany(const AdamWSlot* slots, float beta1, float beta2, float eps, float stepSize, float bias2Sqrt)
{
    AdamWSlot s = slots[blockIdx.y];
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < s.n; i += (i64)gridDim.x * blockDim.x)
        adamwElement(s.p, s.g, s.m, s.v, i, beta1, beta2, eps, s.decay, stepSize, bias2Sqrt);
}

// Σ x² into a float64 total (blocks of float32 partial sums, as the CPU does).
extern "C" __global__ void sumOfSquares(const void* x, int tx, i64 n, double* total)
{
    __shared__ float scratch[32];
    float s = 0.f;
    GRID_STRIDE(i, n) { float v = ld(x, tx, i); s += v * v; }
    s = blockSum(s, scratch);
    if (threadIdx.x == 0) atomicAdd(total, (double)s);
}

// The layout of CudaBackend's TensorSlot: a tensor's address, element count and dtype code.
struct TensorSlot { const void* x; i64 n; i64 type; };

// sums[blockIdx.y] += Σ x² of tensor blockIdx.y (sums zeroed by the caller).
extern "C" __global__ void sumOfSquaresMany(const TensorSlot* slots, double* sums)
{
    __shared__ float scratch[32];
    TensorSlot t = slots[blockIdx.y];
    float s = 0.f;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < t.n; i += (i64)gridDim.x * blockDim.x)
    {
        float v = ld(t.x, (int)t.type, i);
        s += v * v;
    }
    s = blockSum(s, scratch);
    if (threadIdx.x == 0) atomicAdd(&sums[blockIdx.y], (double)s);
}

// Normal(0, std) values (Box-Muller over the counter stream) for benchmarks' random weights.
extern "C" __global__ void randomNormal(void* y, int ty, float std, u64 seed, i64 n)
{
    GRID_STRIDE(i, n)
    {
        float u1 = fmaxf(counterUniform(seed, 2 * (u64)i), 1e-7f), u2 = counterUniform(seed, 2 * (u64)i + 1);
        st(y, ty, i, std * sqrtf(-2.f * logf(u1)) * cospif(2.f * u2));
    }
}

// Row and column scalings for DoRA (per-output-row weight norms and magnitudes).
extern "C" __global__ void divide(const void* a, int ta, const void* b, int tb, void* y, int ty, i64 n)
{
    GRID_STRIDE(i, n) st(y, ty, i, ld(a, ta, i) / ld(b, tb, i));
}

extern "C" __global__ void scaleColumns(void* x, int tx, const void* s, int ts, i64 cols, i64 n)
{
    GRID_STRIDE(i, n) st(x, tx, i, ld(x, tx, i) * ld(s, ts, i % cols));
}

extern "C" __global__ void scaleRows(void* x, int tx, const void* s, int ts, i64 cols, i64 n)
{
    GRID_STRIDE(i, n) st(x, tx, i, ld(x, tx, i) * ld(s, ts, i / cols));
}

// result[c] += Σ_r a[r, c]·b[r, c]: one thread per column, rows in order (deterministic).
extern "C" __global__ void columnDots(const void* a, int ta, const void* b, int tb, float* result, i64 rows, i64 cols)
{
    GRID_STRIDE(c, cols)
    {
        float s = 0.f;
        for (i64 r = 0; r < rows; r++) s += ld(a, ta, r * cols + c) * ld(b, tb, r * cols + c);
        result[c] += s;
    }
}

// norms[r] = ‖x[r, :]‖₂: one block per row.
extern "C" __global__ void rowNorms(const void* x, int tx, float* norms, i64 cols)
{
    __shared__ float scratch[32];
    i64 r = blockIdx.x;
    float s = 0.f;
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x)
    {
        float v = ld(x, tx, r * cols + c);
        s += v * v;
    }
    s = blockSum(s, scratch);
    if (threadIdx.x == 0) norms[r] = sqrtf(s);
}

// The 8-wide kernels below: bfloat16 tensors of a whole number of 16-byte words, read and written with 16-byte accesses
// (the scalar kernels' 2-byte ones leave them far from the memory bandwidth), the same arithmetic element by element.
// n8 = elements / 8.

// dropout of bfloat16 x into bfloat16 y: the same mask stream as dropout.
extern "C" __global__ void dropoutBF16x8(const uint4* x, unsigned threshold, float keep, u64 seed, uint4* y, int accumulate, i64 n8)
{
    GRID_STRIDE(v, n8)
    {
        float xv[8], yv[8], out[8];
        unpackBF16x8(x[v], xv);
        if (accumulate) unpackBF16x8(y[v], yv);
        unsigned dropped = counterDropMask8(seed, v, threshold);
#pragma unroll
        for (int j = 0; j < 8; j++)
        {
            float d = (dropped >> j) & 1 ? 0.f : __fmul_rn(xv[j], keep);
            out[j] = accumulate ? yv[j] + d : d;
        }
        y[v] = packBF16x8(out);
    }
}

extern "C" __global__ void swigluBF16x8(const uint4* gate, const uint4* up, uint4* h, i64 n8)
{
    GRID_STRIDE(v, n8)
    {
        float g[8], u[8], out[8];
        unpackBF16x8(gate[v], g);
        unpackBF16x8(up[v], u);
#pragma unroll
        for (int j = 0; j < 8; j++) out[j] = g[j] / (1.f + expf(-g[j])) * u[j];
        h[v] = packBF16x8(out);
    }
}

extern "C" __global__ void swigluBackwardBF16x8(const uint4* dh, const uint4* gate, const uint4* up, uint4* dGate, uint4* dUp, i64 n8)
{
    GRID_STRIDE(v, n8)
    {
        float d[8], g[8], u[8], dg[8], du[8];
        unpackBF16x8(dh[v], d);
        unpackBF16x8(gate[v], g);
        unpackBF16x8(up[v], u);
#pragma unroll
        for (int j = 0; j < 8; j++)
        {
            float sig = 1.f / (1.f + expf(-g[j]));
            du[j] = d[j] * g[j] * sig;
            dg[j] = d[j] * u[j] * sig * (1.f + g[j] * (1.f - sig));
        }
        dUp[v] = packBF16x8(du);
        dGate[v] = packBF16x8(dg);
    }
}
