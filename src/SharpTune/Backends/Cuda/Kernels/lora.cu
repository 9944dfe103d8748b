// The LoRA down-projection under dropout: t[row, j] = Σ_c dropout(x[row, c])·a[j, c] for j < rank ≤ LORA_MAX_RANK, in one
// pass over x (no dropped-out copy written and read back, no skinny matrix product); dropped, when not null, also receives
// dropout(x). A block takes LORA_ROWS rows, so a (small, L2-resident) is read once per LORA_ROWS rows; its threads take
// columns tid, tid + LORA_THREADS, ... and keep LORA_ROWS × LORA_MAX_RANK partial sums, reduced across the block at the end.
#define LORA_ROWS 4
#define LORA_MAX_RANK 16
#define LORA_THREADS 256

extern "C" __global__ void __launch_bounds__(LORA_THREADS) loraDown(const void* x, int tx, const void* a, int ta, int rows, int cols,
                                                                    int rank, float p, u64 seed, void* dropped, int td, void* t, int tt)
{
    __shared__ float partial[LORA_THREADS / 32][LORA_ROWS * LORA_MAX_RANK];
    float acc[LORA_ROWS][LORA_MAX_RANK];
#pragma unroll
    for (int r = 0; r < LORA_ROWS; r++)
#pragma unroll
        for (int j = 0; j < LORA_MAX_RANK; j++) acc[r][j] = 0.f;
    int row0 = blockIdx.x * LORA_ROWS;
    float keep = 1.f / (1.f - p);
    for (int c = threadIdx.x; c < cols; c += LORA_THREADS)
    {
        float av[LORA_MAX_RANK];
#pragma unroll
        for (int j = 0; j < LORA_MAX_RANK; j++) av[j] = j < rank ? ld(a, ta, (i64)j * cols + c) : 0.f;
#pragma unroll
        for (int r = 0; r < LORA_ROWS; r++)
        {
            if (row0 + r < rows)
            {
                i64 i = (i64)(row0 + r) * cols + c;
                float v = ld(x, tx, i);
                // __fmul_rn: the dropped value rounded as the CPU's dropout computes it (no fused multiply-add).
                if (p > 0.f) v = counterUniform(seed, (u64)i) < p ? 0.f : __fmul_rn(v, keep);
                if (dropped) st(dropped, td, i, v);
#pragma unroll
                for (int j = 0; j < LORA_MAX_RANK; j++) acc[r][j] += v * av[j];
            }
        }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int r = 0; r < LORA_ROWS; r++)
#pragma unroll
        for (int j = 0; j < LORA_MAX_RANK; j++)
        {
            if (j < rank)
            {
                float s = warpSum(acc[r][j]);
                if (lane == 0) partial[warp][r * LORA_MAX_RANK + j] = s;
            }
        }
    __syncthreads();
    int k = threadIdx.x;
    if (k < LORA_ROWS * LORA_MAX_RANK)
    {
        int r = k / LORA_MAX_RANK, j = k % LORA_MAX_RANK;
        if (row0 + r < rows && j < rank)
        {
            float s = 0.f;
#pragma unroll
            for (int w = 0; w < LORA_THREADS / 32; w++) s += partial[w][k];
            st(t, tt, (i64)(row0 + r) * rank + j, s);
        }
    }
}
