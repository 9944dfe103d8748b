// One block per row. Rows of bfloat16 whose length is a multiple of 8 and at most NORM_CHUNKS·8·blockDim take the
// vectorized path: each thread holds its 16-byte chunks of the row in registers, so the row is read from memory once and
// every load is 16 bytes (the element-wise loops below are latency-bound on 2-byte loads). Other rows take the plain loops.
#define NORM_CHUNKS 4

__device__ __forceinline__ bool normVectorized(int dim, u64 pointers)
{
    return dim % 8 == 0 && dim <= 8 * NORM_CHUNKS * (int)blockDim.x && pointers % 16 == 0;
}

// The 8 f32 norm weights of chunk j (32-byte aligned when w is 16-byte aligned).
__device__ __forceinline__ void loadWeights8(const float* w, int j, float* out)
{
    float4 a = ((const float4*)w)[2 * j], b = ((const float4*)w)[2 * j + 1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
}

// y = x·rstd·w with rstd = 1/sqrt(mean(x²) + eps).
extern "C" __global__ void rmsNorm(const void* x, int tx, const float* w, float eps, void* y, int ty, float* rstd, int dim)
{
    __shared__ float scratch[32];
    i64 base = (i64)blockIdx.x * dim;
    if (tx == 1 && ty == 1 && normVectorized(dim, (u64)x | (u64)y | (u64)w))
    {
        const uint4* xr = (const uint4*)((const bf16*)x + base);
        uint4* yr = (uint4*)((bf16*)y + base);
        int chunks = dim / 8;
        uint4 held[NORM_CHUNKS];
        float s = 0.f;
#pragma unroll
        for (int c = 0; c < NORM_CHUNKS; c++)
        {
            int j = threadIdx.x + c * blockDim.x;
            if (j < chunks)
            {
                held[c] = xr[j];
                float f[8];
                unpackBF16x8(held[c], f);
#pragma unroll
                for (int e = 0; e < 8; e++) s += f[e] * f[e];
            }
        }
        s = blockSum(s, scratch);
        float inv = 1.f / sqrtf(s / dim + eps);
        if (rstd != 0 && threadIdx.x == 0) rstd[blockIdx.x] = inv;
#pragma unroll
        for (int c = 0; c < NORM_CHUNKS; c++)
        {
            int j = threadIdx.x + c * blockDim.x;
            if (j < chunks)
            {
                float f[8], wj[8];
                unpackBF16x8(held[c], f);
                loadWeights8(w, j, wj);
#pragma unroll
                for (int e = 0; e < 8; e++) f[e] = f[e] * inv * wj[e];
                yr[j] = packBF16x8(f);
            }
        }
        return;
    }
    float s = 0.f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) { float v = ld(x, tx, base + j); s += v * v; }
    s = blockSum(s, scratch);
    float inv = 1.f / sqrtf(s / dim + eps);
    if (rstd != 0 && threadIdx.x == 0) rstd[blockIdx.x] = inv;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) st(y, ty, base + j, ld(x, tx, base + j) * inv * w[j]);
}

// dx = rstd·(g − x̂·mean(g⊙x̂)) with g = dy⊙w; dw += dy⊙x̂ (atomically across rows).
extern "C" __global__ void rmsNormBackward(const void* dy, int tdy, const void* x, int tx, const float* w, const float* rstd,
                                           void* dx, int tdx, float* dw, int accumulate, int dim)
{
    __shared__ float scratch[32];
    i64 base = (i64)blockIdx.x * dim;
    float inv = rstd[blockIdx.x];
    if (tdy == 1 && tx == 1 && tdx == 1 && normVectorized(dim, (u64)dy | (u64)x | (u64)dx | (u64)w))
    {
        const uint4* xr = (const uint4*)((const bf16*)x + base);
        const uint4* dyr = (const uint4*)((const bf16*)dy + base);
        uint4* dxr = (uint4*)((bf16*)dx + base);
        int chunks = dim / 8;
        uint4 heldX[NORM_CHUNKS], heldDy[NORM_CHUNKS];
        float dot = 0.f;
#pragma unroll
        for (int c = 0; c < NORM_CHUNKS; c++)
        {
            int j = threadIdx.x + c * blockDim.x;
            if (j < chunks)
            {
                heldX[c] = xr[j];
                heldDy[c] = dyr[j];
                float xf[8], df[8], wj[8];
                unpackBF16x8(heldX[c], xf);
                unpackBF16x8(heldDy[c], df);
                loadWeights8(w, j, wj);
#pragma unroll
                for (int e = 0; e < 8; e++) dot += df[e] * wj[e] * xf[e];
            }
        }
        dot = blockSum(dot, scratch) * inv / dim;
#pragma unroll
        for (int c = 0; c < NORM_CHUNKS; c++)
        {
            int j = threadIdx.x + c * blockDim.x;
            if (j < chunks)
            {
                float xf[8], df[8], wj[8], out[8];
                unpackBF16x8(heldX[c], xf);
                unpackBF16x8(heldDy[c], df);
                loadWeights8(w, j, wj);
                if (accumulate) unpackBF16x8(dxr[j], out);
#pragma unroll
                for (int e = 0; e < 8; e++)
                {
                    float xhat = xf[e] * inv;
                    float v = inv * (df[e] * wj[e] - xhat * dot);
                    out[e] = accumulate ? out[e] + v : v;
                    if (dw != 0) atomicAdd(dw + 8 * j + e, df[e] * xhat);
                }
                dxr[j] = packBF16x8(out);
            }
        }
        return;
    }
    float dot = 0.f;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) dot += ld(dy, tdy, base + j) * w[j] * ld(x, tx, base + j);
    dot = blockSum(dot, scratch) * inv / dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
    {
        float xhat = ld(x, tx, base + j) * inv;
        float d = ld(dy, tdy, base + j);
        float v = inv * (d * w[j] - xhat * dot);
        if (accumulate) v += ld(dx, tdx, base + j);
        st(dx, tdx, base + j, v);
        if (dw != 0) atomicAdd(dw + j, d * xhat);
    }
}
