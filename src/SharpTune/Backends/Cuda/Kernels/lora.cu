// The LoRA branches' products in the BF16 mode: one side has rank r <= 16, so they are memory-bound and a general GEMM
// (tiles sized for large k and n) spends most of its time on the shape. C = alpha·op(A)·op(B) + beta·C, row-major, bfloat16
// operands, float32 accumulation; beta == 0 never reads C (as cuBLAS). Every kernel sums in a fixed order (repeatable).

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
        else unpackBF16x8(*(const uint4*)(b + (i64)q * n + col), w[q]);
    }
    int rows = min(WIDE_ROWS, m - row0);
    // All of C's tile is loaded before any of it is written, so the loads are in flight together.
    uint4 old[WIDE_ROWS];
    if (beta != 0.f)
    {
#pragma unroll
        for (int r = 0; r < WIDE_ROWS; r++)
            if (r < rows) old[r] = *(const uint4*)(c + (i64)(row0 + r) * n + col);
    }
#pragma unroll
    for (int r = 0; r < WIDE_ROWS; r++)
    {
        if (r >= rows) break;
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
        float out[8];
        if (beta != 0.f)
        {
            float before[8];
            unpackBF16x8(old[r], before);
#pragma unroll
            for (int j = 0; j < 8; j++) out[j] = alpha * acc[j] + beta * before[j];
        }
        else
        {
#pragma unroll
            for (int j = 0; j < 8; j++) out[j] = alpha * acc[j];
        }
        *(uint4*)(c + (i64)(row0 + r) * n + col) = packBF16x8(out);
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
            if (r < rows) unpackBF16x8(__ldg((const uint4*)(a + (i64)(row0 + r) * k + k0)), x[r]);
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
                    unpackBF16x8(__ldg((const uint4*)(b + (i64)j * k + k0)), w);
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

#define GRAD_ROWS 128
#define GRAD_THREADS 256

// The LoRA gradients, G[col, j] = Σ_row W[row, col]·T[row, j] of wide W [rows, w] and thin T [rows, r <= K]: dB = s·dyᵀ·t
// and dA = dtᵀ·dropout(x). A block sums GRAD_ROWS rows for 256 columns: lane l of a warp owns columns 8l..8l+7 (16-byte
// loads of W), the 8 warps take every 8th row, T's rows sit in shared memory, and the warps' sums are added in a fixed
// order. partial[blockIdx.y][col·r + j] then holds the block's sums; thinGradientSum adds the blocks in a fixed order, so
// the result is the same from run to run. Needs w % 8 == 0 and 16-byte aligned W.
template <int K>
__device__ __forceinline__ void thinGradientPartial(const bf16* wide, const bf16* thin, float* partial, int rows, int w, int r)
{
    __shared__ float tTile[GRAD_ROWS][K];
    // [j][c][lane] for column 8·lane + c of the tile: a warp's lanes write consecutive words (no bank conflicts).
    __shared__ float sums[K][8][32];
    int row0 = blockIdx.y * GRAD_ROWS;
    int count = min(GRAD_ROWS, rows - row0);
    for (int i = threadIdx.x; i < GRAD_ROWS * K; i += blockDim.x)
    {
        int rr = i / K, j = i - rr * K;
        tTile[rr][j] = rr < count && j < r ? bf2f(thin[(i64)(row0 + rr) * r + j]) : 0.f;
    }
    __syncthreads();
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int col = blockIdx.x * 256 + lane * 8;
    float acc[8][K];
#pragma unroll
    for (int c = 0; c < 8; c++)
    {
#pragma unroll
        for (int j = 0; j < K; j++) acc[c][j] = 0.f;
    }
    if (col < w)
    {
#pragma unroll 4
        for (int rr = warp; rr < count; rr += GRAD_THREADS / 32)
        {
            float x[8];
            unpackBF16x8(__ldg((const uint4*)(wide + (i64)(row0 + rr) * w + col)), x);
#pragma unroll
            for (int j = 0; j < K; j++)
            {
                float t = tTile[rr][j];
#pragma unroll
                for (int c = 0; c < 8; c++) acc[c][j] = fmaf(x[c], t, acc[c][j]);
            }
        }
    }
    for (int s = 0; s < GRAD_THREADS / 32; s++)
    {
        if (warp == s)
        {
#pragma unroll
            for (int j = 0; j < K; j++)
            {
#pragma unroll
                for (int c = 0; c < 8; c++) sums[j][c][lane] = (s == 0 ? 0.f : sums[j][c][lane]) + acc[c][j];
            }
        }
        __syncthreads();
    }
    for (int i = threadIdx.x; i < 256 * K; i += blockDim.x)
    {
        int tileCol = i / K, j = i - tileCol * K;
        int gc = blockIdx.x * 256 + tileCol;
        if (gc < w && j < r) partial[((i64)blockIdx.y * w + gc) * r + j] = sums[j][tileCol & 7][tileCol >> 3];
    }
}

extern "C" __global__ void __launch_bounds__(GRAD_THREADS) thinGradient8(const bf16* wide, const bf16* thin, float* partial, int rows, int w, int r)
{
    thinGradientPartial<8>(wide, thin, partial, rows, w, r);
}

extern "C" __global__ void __launch_bounds__(GRAD_THREADS) thinGradient16(const bf16* wide, const bf16* thin, float* partial, int rows, int w,
                                                                           int r)
{
    thinGradientPartial<16>(wide, thin, partial, rows, w, r);
}

// C = alpha·Σ_s partial[s] + beta·C, with C [w, r] (wideMajor: dB) or [r, w] (dA).
extern "C" __global__ void thinGradientSum(const float* partial, int splits, void* c, int tc, int w, int r, int wideMajor, float alpha,
                                           float beta)
{
    i64 n = (i64)w * r;
    GRID_STRIDE(i, n)
    {
        float v = 0.f;
        for (int s = 0; s < splits; s++) v += partial[s * n + i];
        i64 col = i / r;
        i64 o = wideMajor ? i : (i - col * r) * w + col;
        v *= alpha;
        if (beta != 0.f) v += beta * ld(c, tc, o);
        st(c, tc, o, v);
    }
}
