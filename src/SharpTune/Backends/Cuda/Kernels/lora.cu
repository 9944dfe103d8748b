// The LoRA branches' products in the BF16 mode: one side has rank r <= 16, so they are memory-bound and a general GEMM
// (tiles sized for large k and n) spends most of its time on the shape. C = alpha·A·op(B) + beta·C, row-major, all bfloat16
// except C of the thin products (bfloat16 or float32), float32 accumulation; beta == 0 never reads C (as cuBLAS).

// 8 bfloat16 of a 16-byte word to float32, and back (round to nearest even).
__device__ __forceinline__ void unpack8(uint4 w, float* f)
{
    unsigned u[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++)
    {
        f[2 * i] = __uint_as_float(u[i] << 16);
        f[2 * i + 1] = __uint_as_float(u[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ uint4 pack8(const float* f)
{
    uint4 w;
    w.x = (unsigned)f2bf(f[0]) | ((unsigned)f2bf(f[1]) << 16);
    w.y = (unsigned)f2bf(f[2]) | ((unsigned)f2bf(f[3]) << 16);
    w.z = (unsigned)f2bf(f[4]) | ((unsigned)f2bf(f[5]) << 16);
    w.w = (unsigned)f2bf(f[6]) | ((unsigned)f2bf(f[7]) << 16);
    return w;
}

#define WIDE_ROWS 16

// Wide C [m, n] from thin A [m, k] (k <= K): y += s·t·Bᵀ (B [n, k], transB) and dx = dt·A (A [k, n]). Each thread owns 8
// columns: their k×8 B values stay in registers while it walks WIDE_ROWS rows, reading A's row tile from shared memory
// and C with 16-byte accesses. Needs n % 8 == 0 and 16-byte aligned C (and B when !transB).
template <int K>
__device__ __forceinline__ void wideFromThin(const bf16* a, const bf16* b, int transB, bf16* c, int m, int n, int k, float alpha, float beta)
{
    __shared__ float aTile[WIDE_ROWS][K];
    int row0 = blockIdx.y * WIDE_ROWS;
    for (int i = threadIdx.x; i < WIDE_ROWS * K; i += blockDim.x)
    {
        int r = i / K, q = i - r * K;
        aTile[r][q] = row0 + r < m && q < k ? bf2f(a[(i64)(row0 + r) * k + q]) : 0.f;
    }
    __syncthreads();
    int col = (blockIdx.x * blockDim.x + threadIdx.x) * 8;
    if (col >= n) return;
    float w[K][8];
#pragma unroll
    for (int q = 0; q < K; q++)
    {
        if (q >= k)
        {
#pragma unroll
            for (int j = 0; j < 8; j++) w[q][j] = 0.f;
        }
        else if (transB)
        {
#pragma unroll
            for (int j = 0; j < 8; j++) w[q][j] = bf2f(b[(i64)(col + j) * k + q]);
        }
        else unpack8(*(const uint4*)(b + (i64)q * n + col), w[q]);
    }
    int rows = min(WIDE_ROWS, m - row0);
    for (int r = 0; r < rows; r++)
    {
        float acc[8];
#pragma unroll
        for (int j = 0; j < 8; j++) acc[j] = 0.f;
#pragma unroll
        for (int q = 0; q < K; q++)
        {
            float t = aTile[r][q];
#pragma unroll
            for (int j = 0; j < 8; j++) acc[j] = fmaf(t, w[q][j], acc[j]);
        }
        uint4* p = (uint4*)(c + (i64)(row0 + r) * n + col);
        float out[8];
        if (beta != 0.f)
        {
            float old[8];
            unpack8(*p, old);
#pragma unroll
            for (int j = 0; j < 8; j++) out[j] = alpha * acc[j] + beta * old[j];
        }
        else
        {
#pragma unroll
            for (int j = 0; j < 8; j++) out[j] = alpha * acc[j];
        }
        *p = pack8(out);
    }
}

extern "C" __global__ void __launch_bounds__(256) wideFromThin8(const bf16* a, const bf16* b, int transB, bf16* c, int m, int n, int k,
                                                                 float alpha, float beta)
{
    wideFromThin<8>(a, b, transB, c, m, n, k, alpha, beta);
}

extern "C" __global__ void __launch_bounds__(256) wideFromThin16(const bf16* a, const bf16* b, int transB, bf16* c, int m, int n, int k,
                                                                  float alpha, float beta)
{
    wideFromThin<16>(a, b, transB, c, m, n, k, alpha, beta);
}

#define THIN_THREADS 128

// Thin C [m, n] (n <= N) from wide A [m, k]: t = x·Aᵀ (B [n, k], transB) and dt = dy·B (B [k, n]). A block takes R rows;
// each thread reads 8 consecutive k of all R rows with 16-byte loads (A is read once), multiplies them by the matching
// B values (small, from L1/L2) and the block sums its threads' R×N partial dot products at the end. Needs k % 8 == 0 and
// 16-byte aligned A (and B when transB).
template <int N, int R>
__device__ __forceinline__ void thinFromWide(const bf16* a, const bf16* b, int transB, void* c, int tc, int m, int n, int k, float alpha,
                                             float beta)
{
    __shared__ float sums[THIN_THREADS / 32][R * N];
    int row0 = blockIdx.x * R;
    int rows = min(R, m - row0);
    float acc[R][N];
#pragma unroll
    for (int r = 0; r < R; r++)
    {
#pragma unroll
        for (int j = 0; j < N; j++) acc[r][j] = 0.f;
    }
    for (int k0 = threadIdx.x * 8; k0 < k; k0 += THIN_THREADS * 8)
    {
        float x[R][8];
#pragma unroll
        for (int r = 0; r < R; r++)
        {
            if (r < rows) unpack8(__ldg((const uint4*)(a + (i64)(row0 + r) * k + k0)), x[r]);
            else
            {
#pragma unroll
                for (int q = 0; q < 8; q++) x[r][q] = 0.f;
            }
        }
        if (transB)
        {
#pragma unroll
            for (int j = 0; j < N; j++)
            {
                if (j < n)
                {
                    float w[8];
                    unpack8(__ldg((const uint4*)(b + (i64)j * k + k0)), w);
#pragma unroll
                    for (int r = 0; r < R; r++)
                    {
#pragma unroll
                        for (int q = 0; q < 8; q++) acc[r][j] = fmaf(x[r][q], w[q], acc[r][j]);
                    }
                }
            }
        }
        else
        {
#pragma unroll
            for (int q = 0; q < 8; q++)
            {
                float w[N];
#pragma unroll
                for (int j = 0; j < N; j++) w[j] = j < n ? bf2f(b[(i64)(k0 + q) * n + j]) : 0.f;
#pragma unroll
                for (int r = 0; r < R; r++)
                {
#pragma unroll
                    for (int j = 0; j < N; j++) acc[r][j] = fmaf(x[r][q], w[j], acc[r][j]);
                }
            }
        }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int r = 0; r < R; r++)
    {
#pragma unroll
        for (int j = 0; j < N; j++)
        {
            float v = warpSum(acc[r][j]);
            if (lane == 0) sums[warp][r * N + j] = v;
        }
    }
    __syncthreads();
    int t = threadIdx.x;
    if (t >= R * N) return;
    int r = t / N, j = t - r * N;
    if (r >= rows || j >= n) return;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < THIN_THREADS / 32; w++) v += sums[w][t];
    i64 i = (i64)(row0 + r) * n + j;
    v *= alpha;
    if (beta != 0.f) v += beta * ld(c, tc, i);
    st(c, tc, i, v);
}

extern "C" __global__ void __launch_bounds__(THIN_THREADS) thinFromWide8(const bf16* a, const bf16* b, int transB, void* c, int tc, int m,
                                                                          int n, int k, float alpha, float beta)
{
    thinFromWide<8, 8>(a, b, transB, c, tc, m, n, k, alpha, beta);
}

extern "C" __global__ void __launch_bounds__(THIN_THREADS) thinFromWide16(const bf16* a, const bf16* b, int transB, void* c, int tc, int m,
                                                                           int n, int k, float alpha, float beta)
{
    thinFromWide<16, 4>(a, b, transB, c, tc, m, n, k, alpha, beta);
}
