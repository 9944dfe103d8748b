// Decoding's products of a few bfloat16 activation rows with a large bfloat16 weight (the down projection, gate/up, the
// output head), on Hopper (sm_90; the C# side loads this module only there). Each warp streams its rows as pieces of
// STREAM_PIECE weights through a private ring of STREAM_STAGES pieces in shared memory, each piece one bulk copy (the copy
// engine, completing on an mbarrier) that is asked for again as soon as the piece is in registers, so the bytes in flight
// are held by shared memory, not registers; x is staged once per block as float32 (times the norm weight). The first
// pieces are asked for before the kernel waits on the kernel before it (programmatic dependent launch).
// Measured on an H200 (bench/cuda-harness/stream_sweep.sh, 7B shapes, us per call, decode.cu's kernel in brackets):
// 16 warps, 2 stages of 2048: down 39.4 (45.5), gate+up 67.6 (72.4), but q/k/v 14.6 (13.3) and o 12.0 (11.7), so the
// small products stay with decode.cu. With 4 warps a block the warps could not consume pieces fast enough (1.75 TB/s for
// any shape or depth): a warp per scheduler cannot hide its own shared-memory latency. The sweep builds the module with
// other values; CudaBackend.Decode.cs's Stream* constants must match these. (Those q/k/v and o figures predate
// stageInput's loads going out together: with them, cuda-decode-kernels 7b had o streamed at 9.6 us against decode.cu's
// 11.0, q/k/v with its norm 12.5 against 12.6, yet the whole step the same, 253.5 / 253.6 against 254.3 / 253.4 tokens/s
// (docs/gpu-runs/2026-12-02 run 32), so the routing stayed.) The same file holds the resident products (residentLinear).
#ifndef STREAM_WARPS
#define STREAM_WARPS 16
#define STREAM_STAGES 2
#define STREAM_PIECE 2048
#endif

__device__ __forceinline__ unsigned sharedAddress(const void* p) { return (unsigned)__cvta_generic_to_shared(p); }

// count one-arrival mbarriers, 8 bytes apart from shared address bars, made visible to the copy engine (before any
// bulk copy completes on them).
__device__ __forceinline__ void initBarriers(unsigned bars, int count)
{
    for (int i = 0; i < count; i++) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(bars + i * 8) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// The barrier's next phase completes when bytes have landed (one arrival: the copy's issuer).
__device__ __forceinline__ void copyPiece(unsigned dst, const void* src, unsigned bytes, unsigned bar)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 :: "r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

__device__ __forceinline__ void waitPhase(unsigned bar, unsigned parity)
{
    asm volatile("{\n"
                 ".reg .pred ready;\n"
                 "WAIT:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 ready, [%0], %1;\n"
                 "@!ready bra WAIT;\n"
                 "}\n" :: "r"(bar), "r"(parity) : "memory");
}

// The weight rows a warp streams: for features f = first, first + stride, ... of its block's share, RPF rows each (1, or
// the gate's and the up projection's for SwiGLU), in pieces: piece p is chunk c of row r of the warp's i-th feature, p = (i·chunks + c)·RPF + r.
template <int RPF> struct RowStream
{
    const bf16* w0; const bf16* w1; const bf16* w2;   // linear: up to three weights one after another; SwiGLU: gate, up
    int n0, n1, k, chunks, first, stride;

    __device__ __forceinline__ const bf16* row(int feature, int r) const
    {
        if (RPF == 2) return (r ? w1 : w0) + (i64)feature * k;
        if (feature < n0) return w0 + (i64)feature * k;
        if (feature < n0 + n1) return w1 + (i64)(feature - n0) * k;
        return w2 + (i64)(feature - n0 - n1) * k;
    }

    __device__ __forceinline__ void issue(int p, unsigned ring, unsigned bars) const
    {
        int r = p % RPF, q = p / RPF, c = q % chunks, i = q / chunks;
        int length = min(STREAM_PIECE, k - c * STREAM_PIECE);
        int s = p % STREAM_STAGES;
        copyPiece(ring + s * STREAM_PIECE * 2, row(first + i * stride, r) + c * STREAM_PIECE, length * 2, bars + s * 8);
    }
};

// The block's x rows (bfloat16 [m, k]) into shared memory as float32, multiplied by the norm weight g (float32 [k]) when
// there is one, and each row's 1/rms (as rmsNorm: 1/sqrt(mean of squares + eps)) summed from the same loads, so the
// weights' consumers wait on one pass over x after the wait on the kernel before, not two. A thread's loads go out
// STAGE_LOADS at a time (the down projection's 18,944 values are 4.6 loads a thread of 512; one after another they
// were ~5 round trips to L2 while the weight stream stood still).
#define STAGE_LOADS 8
template <int M>
__device__ __forceinline__ void stageInput(const bf16* x, int m, int k, const float* g, float eps, float* xf, float* inv, float* scratch)
{
    float ss[M];
#pragma unroll
    for (int r = 0; r < M; r++) ss[r] = 0.f;
    int words = m * k / 8;
    for (int first = threadIdx.x; first < words; first += STAGE_LOADS * blockDim.x)
    {
        uint4 u[STAGE_LOADS];
        float4 gw[STAGE_LOADS][2];                         // the norm weights of those 8 columns, loaded with them
#pragma unroll
        for (int b = 0; b < STAGE_LOADS; b++)
        {
            int i = first + b * blockDim.x;
            if (i >= words) break;
            u[b] = ((const uint4*)x)[i];
            if (g)
            {
                const float4* gp = (const float4*)(g + i * 8 % k);
                gw[b][0] = gp[0];
                gw[b][1] = gp[1];
            }
        }
#pragma unroll
        for (int b = 0; b < STAGE_LOADS; b++)
        {
            int i = first + b * blockDim.x;
            if (i >= words) break;
            float v[8];
            unpackBF16x8(u[b], v);
            int row = i * 8 / k;                                // k is a multiple of 8: the 8 values lie in one row
            float s = 0.f;
#pragma unroll
            for (int j = 0; j < 8; j++) s = fmaf(v[j], v[j], s);
            if (g)
            {
                float gv[8] = {gw[b][0].x, gw[b][0].y, gw[b][0].z, gw[b][0].w, gw[b][1].x, gw[b][1].y, gw[b][1].z, gw[b][1].w};
#pragma unroll
                for (int j = 0; j < 8; j++) v[j] *= gv[j];
            }
            float4* to = (float4*)(xf + i * 8);
            to[0] = make_float4(v[0], v[1], v[2], v[3]);
            to[1] = make_float4(v[4], v[5], v[6], v[7]);
#pragma unroll
            for (int r = 0; r < M; r++)
                if (r == row) ss[r] += s;
        }
    }
    if (!g) return;
#pragma unroll
    for (int r = 0; r < M; r++)
        if (r < m)
        {
            float total = blockSum(ss[r], scratch);
            if (threadIdx.x == 0) inv[r] = 1.f / sqrtf(total / k + eps);
        }
}

// A warp's part of the block's shared memory (streamProduct): the staged x' rows, their 1/rms, its ring (generic pointer and
// shared address), its barriers' address, and how many pieces it streams.
struct StreamState
{
    float* xf; float* inv; const bf16* ring; unsigned ringAddress, bars; int pieces;
};

// Streams the warp's pieces through its ring and calls finish(feature, sums) after each feature's last piece, where
// sums[r·M + j] = w_r · x'_j summed over the warp (every lane gets them), r < RPF, j < m, x' the staged rows. The first
// STREAM_STAGES pieces were issued by the caller. A piece's weights are all loaded before the first use (the warp shares
// its scheduler with one or two others, so its own loads must hide their latency).
template <int M, int RPF, typename F>
__device__ __forceinline__ void consume(const RowStream<RPF>& rows, int m, const StreamState& state, F finish)
{
    const float* xf = state.xf;
    const bf16* ring = state.ring;
    unsigned ringAddress = state.ringAddress, bars = state.bars;
    int pieces = state.pieces;
    constexpr int LOADS = STREAM_PIECE / 256;
    int lane = threadIdx.x & 31;
    float acc[RPF * M];
#pragma unroll
    for (int i = 0; i < RPF * M; i++) acc[i] = 0.f;
    int c = 0, feature = rows.first;
    // A chunk of every row of the feature per iteration, so that r, the accumulator's index, is a constant.
    for (int p = 0; p < pieces; p += RPF)
    {
        int length = min(STREAM_PIECE, rows.k - c * STREAM_PIECE);
        const float* xp = xf + c * STREAM_PIECE + lane * 8;
#pragma unroll
        for (int r = 0; r < RPF; r++)
        {
            int q = p + r, s = q % STREAM_STAGES;
            waitPhase(bars + s * 8, (q / STREAM_STAGES) & 1);
            const bf16* piece = ring + s * STREAM_PIECE + lane * 8;
            uint4 w[LOADS];
#pragma unroll
            for (int h = 0; h < LOADS; h++)
                if (h * 256 + lane * 8 < length) w[h] = *(const uint4*)(piece + h * 256);
            __syncwarp();                                      // the stage is in registers: refill it
            if (lane == 0 && q + STREAM_STAGES < pieces) rows.issue(q + STREAM_STAGES, ringAddress, bars);
#pragma unroll
            for (int h = 0; h < LOADS; h++)
                if (h * 256 + lane * 8 < length)
                {
                    float wf[8];
                    unpackBF16x8(w[h], wf);
#pragma unroll
                    for (int j = 0; j < M; j++)
                        if (j < m)
                        {
                            const float4* xv = (const float4*)(xp + (i64)j * rows.k + h * 256);
                            float4 x0 = xv[0], x1 = xv[1];
                            float sum = acc[r * M + j];
                            sum = fmaf(wf[0], x0.x, sum); sum = fmaf(wf[1], x0.y, sum);
                            sum = fmaf(wf[2], x0.z, sum); sum = fmaf(wf[3], x0.w, sum);
                            sum = fmaf(wf[4], x1.x, sum); sum = fmaf(wf[5], x1.y, sum);
                            sum = fmaf(wf[6], x1.z, sum); sum = fmaf(wf[7], x1.w, sum);
                            acc[r * M + j] = sum;
                        }
                }
        }
        if (++c < rows.chunks) continue;
        c = 0;
        float sums[RPF * M];
#pragma unroll
        for (int i = 0; i < RPF * M; i++) { sums[i] = warpSum(acc[i]); acc[i] = 0.f; }
        finish(feature, sums);
        feature += rows.stride;
    }
}

// Shared memory: the warps' rings, their barriers, x' [m, k] float32, 1/rms per row, 32 floats of scratch. The C# side
// sizes it the same way (CudaBackend.Decode.cs, StreamSharedBytes). Returns the warp's part of it.
template <int M, int RPF>
__device__ __forceinline__ StreamState streamProduct(const bf16* x, int m, int k, const float* g, float eps, RowStream<RPF>& rows, int n)
{
    extern __shared__ __align__(128) unsigned char shared[];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    bf16* rings = (bf16*)shared;
    u64* barriers = (u64*)(shared + STREAM_WARPS * STREAM_STAGES * STREAM_PIECE * 2);
    StreamState state;
    state.xf = (float*)(barriers + STREAM_WARPS * STREAM_STAGES);
    state.inv = state.xf + (i64)m * k;
    float* scratch = state.inv + 8;
    state.ring = rings + warp * STREAM_STAGES * STREAM_PIECE;
    state.ringAddress = sharedAddress(state.ring);
    state.bars = sharedAddress(barriers + warp * STREAM_STAGES);
    rows.k = k;
    rows.chunks = (k + STREAM_PIECE - 1) / STREAM_PIECE;
    // Each block a contiguous share of the features, as even as the count allows: an SM streams at most its share of the
    // bandwidth, so one with more features than others sets the time (the 7B down projection's 3,584 features dealt a
    // warp at a time over 132 blocks of 16 warps gave 92 SMs twice the rows of the other 40: 37.2 us; shared out, 34.8-35.2
    // on H200s of the same kind, cuda-decode-kernels).
    int lo = (int)((i64)blockIdx.x * n / gridDim.x), hi = (int)((i64)(blockIdx.x + 1) * n / gridDim.x);
    rows.first = lo + warp;
    rows.stride = STREAM_WARPS;
    int features = rows.first < hi ? (hi - 1 - rows.first) / STREAM_WARPS + 1 : 0;
    state.pieces = features * rows.chunks * RPF;
    if (lane == 0)
    {
        initBarriers(state.bars, STREAM_STAGES);
        for (int p = 0; p < min(STREAM_STAGES, state.pieces); p++) rows.issue(p, state.ringAddress, state.bars);
    }
    // The weights are not written by earlier kernels; x, y and the outputs may be.
    gridDependencyWait();
    gridDependencyRelease();
    stageInput<M>(x, m, k, g, eps, state.xf, state.inv, scratch);
    __syncthreads();
    return state;
}

// Feature f of up to three outputs y_s [m, n_s] one after another (the q, k and v projections), row r: y = v + b + beta·y.
__device__ __forceinline__ void storeFeature(int f, int r, float v, float beta, int ty, const float* b0, void* y0, int n0,
                                             const float* b1, void* y1, int n1, const float* b2, void* y2, int n2)
{
    const float* b = b0; void* y = y0; int n = n0, j = f;
    if (j >= n0) { j -= n0; b = b1; y = y1; n = n1; if (j >= n1) { j -= n1; b = b2; y = y2; n = n2; } }
    i64 o = (i64)r * n + j;
    if (b) v += b[j];
    if (beta != 0.f) v += beta * ld(y, ty, o);
    st(y, ty, o, v);
}

// y_s = alpha·RmsNorm(x)·g·W_sᵀ + b_s + beta·y_s for up to three weights W_s [n_s, k] one after another (the q, k and v
// projections); without g, of x itself. x and W are bfloat16, y float32 or bfloat16 (code ty); b may be null.
template <int M>
__device__ __forceinline__ void streamLinear(const bf16* x, int m, int k, float alpha, float beta, int ty,
    const bf16* w0, const float* b0, void* y0, int n0, const bf16* w1, const float* b1, void* y1, int n1,
    const bf16* w2, const float* b2, void* y2, int n2, const float* g, float eps)
{
    RowStream<1> rows{w0, w1, w2, n0, n1};
    StreamState state = streamProduct<M, 1>(x, m, k, g, eps, rows, n0 + n1 + n2);
    const float* inv = state.inv;
    int lane = threadIdx.x & 31;
    consume<M, 1>(rows, m, state, [&](int f, const float* sums)
    {
#pragma unroll
        for (int r = 0; r < M; r++)
            if (r < m && lane == r)
                storeFeature(f, r, alpha * sums[r] * (g ? inv[r] : 1.f), beta, ty, b0, y0, n0, b1, y1, n1, b2, y2, n2);
    });
}

// h = silu(x'·Wgᵀ)·(x'·Wuᵀ) with x' = RmsNorm(x)·g (or x without g); Wg and Wu [n, k], h [m, n] float32 or bfloat16.
template <int M>
__device__ __forceinline__ void streamSwiGlu(const bf16* x, int m, int k, const bf16* wg, const bf16* wu, void* h, int th, int n,
                                             const float* g, float eps)
{
    RowStream<2> rows{wg, wu, nullptr, n, 0};
    StreamState state = streamProduct<M, 2>(x, m, k, g, eps, rows, n);
    const float* inv = state.inv;
    int lane = threadIdx.x & 31;
    consume<M, 2>(rows, m, state, [&](int f, const float* sums)
    {
#pragma unroll
        for (int r = 0; r < M; r++)
            if (r < m && lane == r)
            {
                float scale = g ? inv[r] : 1.f;
                float gate = sums[r] * scale, up = sums[M + r] * scale;
                st(h, th, (i64)r * n + f, gate / (1.f + expf(-gate)) * up);
            }
    });
}

// Products whose block's share of W fits in shared memory whole (the 0.5B o and down projections: 7 rows of 1.75 and
// 9.5 KiB an SM; CudaBackend.Decode.cs's ResidentLimit says why not the 7B o): the share is asked for, one bulk copy and
// one barrier a row, before the kernel waits on the kernel before it, so only the arithmetic from shared memory is left
// after the wait. x (bfloat16 [m, k], written by the kernel before) is read after it, through L1. Shared memory:
// the rows' barriers (rounded up to 128 bytes), then the rows; CudaBackend.Decode.cs's ResidentSharedBytes sizes it the same way.
#define RESIDENT_WARPS 8

template <int M>
__device__ __forceinline__ void residentLinear(const bf16* x, int m, int k, float alpha, float beta, int ty,
    const bf16* w0, const float* b0, void* y0, int n0, const bf16* w1, const float* b1, void* y1, int n1,
    const bf16* w2, const float* b2, void* y2, int n2)
{
    extern __shared__ __align__(128) unsigned char shared[];
    int n = n0 + n1 + n2;
    int lo = (int)((i64)blockIdx.x * n / gridDim.x), count = (int)((i64)(blockIdx.x + 1) * n / gridDim.x) - lo;
    const bf16* rows = (const bf16*)(shared + (count * 8 + 127) / 128 * 128);
    unsigned bars = sharedAddress(shared), rowsAddress = sharedAddress(rows);
    if (threadIdx.x == 0)
    {
        RowStream<1> weights{w0, w1, w2, n0, n1};
        weights.k = k;
        initBarriers(bars, count);
        for (int r = 0; r < count; r++) copyPiece(rowsAddress + r * k * 2, weights.row(lo + r, 0), k * 2, bars + r * 8);
    }
    __syncthreads();                                          // the barriers are initialized before anyone waits on them
    gridDependencyWait();
    gridDependencyRelease();
    int lane = threadIdx.x & 31;
    for (int r = threadIdx.x >> 5; r < count; r += RESIDENT_WARPS)
    {
        waitPhase(bars + r * 8, 0);
        const bf16* row = rows + (i64)r * k;
        float acc[M];
#pragma unroll
        for (int j = 0; j < M; j++) acc[j] = 0.f;
#pragma unroll 4
        for (int k0 = lane * 8; k0 < k; k0 += 256)
        {
            float wf[8];
            unpackBF16x8(*(const uint4*)(row + k0), wf);
#pragma unroll
            for (int j = 0; j < M; j++)
                if (j < m)
                {
                    float xf[8];
                    unpackBF16x8(*(const uint4*)(x + (i64)j * k + k0), xf);
#pragma unroll
                    for (int e = 0; e < 8; e++) acc[j] = fmaf(wf[e], xf[e], acc[j]);
                }
        }
#pragma unroll
        for (int j = 0; j < M; j++) acc[j] = warpSum(acc[j]);
#pragma unroll
        for (int j = 0; j < M; j++)
            if (j < m && lane == j) storeFeature(lo + r, j, alpha * acc[j], beta, ty, b0, y0, n0, b1, y1, n1, b2, y2, n2);
    }
}

#define STREAM_LINEAR_ENTRY(NAME, M)                                                                                     \
    extern "C" __global__ void __launch_bounds__(32 * STREAM_WARPS) NAME(const bf16* x, int m, int k, float alpha,       \
        float beta, int ty, const bf16* w0, const float* b0, void* y0, int n0, const bf16* w1, const float* b1, void* y1, \
        int n1, const bf16* w2, const float* b2, void* y2, int n2, const float* g, float eps)                              \
    {                                                                                                                     \
        streamLinear<M>(x, m, k, alpha, beta, ty, w0, b0, y0, n0, w1, b1, y1, n1, w2, b2, y2, n2, g, eps);                \
    }

#define STREAM_SWIGLU_ENTRY(NAME, M)                                                                                     \
    extern "C" __global__ void __launch_bounds__(32 * STREAM_WARPS) NAME(const bf16* x, int m, int k, const bf16* wg,    \
        const bf16* wu, void* h, int th, int n, const float* g, float eps)                                                \
    {                                                                                                                     \
        streamSwiGlu<M>(x, m, k, wg, wu, h, th, n, g, eps);                                                               \
    }

#define RESIDENT_LINEAR_ENTRY(NAME, M)                                                                                   \
    extern "C" __global__ void __launch_bounds__(32 * RESIDENT_WARPS) NAME(const bf16* x, int m, int k, float alpha,     \
        float beta, int ty, const bf16* w0, const float* b0, void* y0, int n0, const bf16* w1, const float* b1, void* y1, \
        int n1, const bf16* w2, const float* b2, void* y2, int n2)                                                        \
    {                                                                                                                     \
        residentLinear<M>(x, m, k, alpha, beta, ty, w0, b0, y0, n0, w1, b1, y1, n1, w2, b2, y2, n2);                      \
    }

STREAM_LINEAR_ENTRY(streamLinearx1, 1)
STREAM_LINEAR_ENTRY(streamLinearx2, 2)
STREAM_LINEAR_ENTRY(streamLinearx4, 4)
STREAM_LINEAR_ENTRY(streamLinearx8, 8)
STREAM_SWIGLU_ENTRY(streamSwiGlux1, 1)
STREAM_SWIGLU_ENTRY(streamSwiGlux2, 2)
STREAM_SWIGLU_ENTRY(streamSwiGlux4, 4)
STREAM_SWIGLU_ENTRY(streamSwiGlux8, 8)
RESIDENT_LINEAR_ENTRY(residentLinearx1, 1)
RESIDENT_LINEAR_ENTRY(residentLinearx2, 2)
RESIDENT_LINEAR_ENTRY(residentLinearx4, 4)
RESIDENT_LINEAR_ENTRY(residentLinearx8, 8)
