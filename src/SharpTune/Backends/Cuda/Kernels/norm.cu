// One block per row: y = x·rstd·w with rstd = 1/sqrt(mean(x²) + eps).
extern "C" __global__ void rmsNorm(const void* x, int tx, const float* w, float eps, void* y, int ty, float* rstd, int dim)
{
    __shared__ float scratch[32];
    i64 base = (i64)blockIdx.x * dim;
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
