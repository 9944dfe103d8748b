// Sampling (IBackend.Sample; TokenFilter.Pick is the host's): one block of SAMPLE_THREADS threads over a row of float32
// logits. Top-k and top-p become thresholds on an order-preserving key of the scaled logits, found 4 bits at a time (8
// passes each, 15 candidates a pass): top-k's is the k-th largest key, top-p's the largest key c whose mass at or above it
// still reaches top_p of the total, so the kept tokens are those whose mass strictly above them is under top_p (ties with
// the last kept are all kept). One SM doing that over 152k logits took about 1 ms a token (H200), so when the kept tokens
// surely lie within SAMPLE_CANDIDATES of the most likely (the k-th largest, the top_p mass or the min_p bound reached within
// a margin of the maximum) those are first gathered into shared memory in index order, and the searches and the draw run
// there: the same thresholds and the same token (~0.4 ms a token with that; passes with four or eight loads in flight a
// thread and a gather without a barrier per tile changed it little, so the cost is in the digit searches' block sums and
// thread 0's serial walk, not in reading the row). Sums go in a fixed order, so a seed repeats a run. 512 threads rather
// than 1024: at 1024 a thread is capped at 64 registers and the kernel spilled 916 bytes (ptxas), at 512 it holds 96 and
// spills nothing; the sampled 7B decode went 225.5 / 225.8 -> 228.9 / 228.4 tokens/s (H200, same call, run 26).
#define SAMPLE_THREADS 512

__device__ __forceinline__ unsigned orderKey(float v)
{
    unsigned u = __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : u | 0x80000000u;
}

// The N values of every thread summed over the block in a fixed order; every thread gets the sums. shared: 32·N values.
template <typename T, int N> __device__ __forceinline__ void blockSums(T* v, T* shared)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
    for (int i = 0; i < N; i++)
        for (int o = 16; o > 0; o >>= 1) v[i] += __shfl_xor_sync(0xffffffffu, v[i], o);
    __syncthreads();                                           // an earlier use of shared is finished
    if (lane == 0)
    {
        // Braces: a pragma right after an if's condition would end the if.
#pragma unroll
        for (int i = 0; i < N; i++) shared[warp * N + i] = v[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < N; i++)
    {
        T t = 0;
        for (int w = 0; w < SAMPLE_THREADS / 32; w++) t += shared[w * N + i];
        v[i] = t;
    }
}

// f(i, value(i)) for every i < count, strided over the block with four loads in flight a thread (a pass over 152k logits
// on one SM is latency-bound: one load at a time made each pass ~4x slower).
template <typename V, typename F> __device__ __forceinline__ void forEachValue(int count, V value, F f)
{
    for (int i0 = threadIdx.x; i0 < count; i0 += 4 * SAMPLE_THREADS)
    {
        float v[4];
#pragma unroll
        for (int u = 0; u < 4; u++) v[u] = i0 + u * SAMPLE_THREADS < count ? value(i0 + u * SAMPLE_THREADS) : NEG_INF;
#pragma unroll
        for (int u = 0; u < 4; u++)
            if (i0 + u * SAMPLE_THREADS < count) f(i0 + u * SAMPLE_THREADS, v[u]);
    }
}

// The largest threshold t (a key) with weight(t) >= target, where weight(t) sums weightOf(v) over the values whose key is
// at least t (weight falls as t grows; weight(0) >= target is the caller's to ensure).
template <typename T, typename V, typename W>
__device__ __forceinline__ unsigned largestThreshold(int count, V value, W weightOf, T target, T* shared)
{
    unsigned prefix = 0;
    for (int shift = 28; shift >= 0; shift -= 4)
    {
        T weights[15];
#pragma unroll
        for (int d = 0; d < 15; d++) weights[d] = 0;
        forEachValue(count, value, [&](int, float v)
        {
            unsigned key = orderKey(v);
            if (key < prefix) return;
            T w = weightOf(v);
#pragma unroll
            for (int d = 0; d < 15; d++)
                if (key >= (prefix | (unsigned)(d + 1) << shift)) weights[d] += w;
        });
        blockSums<T, 15>(weights, shared);
        int best = 0;
#pragma unroll
        for (int d = 0; d < 15; d++)
            if (weights[d] >= target) best = d + 1;
        prefix |= (unsigned)best << shift;
    }
    return prefix;
}

#define SAMPLE_CANDIDATES 2048
#define SAMPLE_LEVELS 6
#define SAMPLE_SEGMENTS 1024

struct SampleShared
{
    double mass[32 * 15];
    int count[32 * 15];
    float scratch[32];
    double segmentSums[SAMPLE_SEGMENTS];
    int segmentCounts[SAMPLE_SEGMENTS];
    float values[SAMPLE_CANDIDATES];
    int indices[SAMPLE_CANDIDATES];
};

// Ordered work splits count items into at most SAMPLE_SEGMENTS segments of consecutive items, a multiple of 32·8 long
// (eight consecutive items a lane): warp w takes segments w, w + 32, ... . Segment s, lane l, item u is
// s·length + l·(length / 32) + u.
__device__ __forceinline__ int segmentLength(int count)
{
    int unit = 32 * 8;
    return unit * max(1, (count + unit * SAMPLE_SEGMENTS - 1) / (unit * SAMPLE_SEGMENTS));
}

// Σ f(value(i)) over a lane's items i0 .. i0 + perLane of a segment (-inf past count), eight loads in flight.
template <typename T, typename V, typename F>
__device__ __forceinline__ T laneSum(int i0, int perLane, int count, V value, F f)
{
    T sum = 0;
    for (int u = 0; u < perLane; u += 8)
    {
        float v[8];
#pragma unroll
        for (int j = 0; j < 8; j++) v[j] = i0 + u + j < count ? value(i0 + u + j) : NEG_INF;
#pragma unroll
        for (int j = 0; j < 8; j++) sum += f(v[j]);
    }
    return sum;
}

// The filters and the draw over count tokens, value(i) their scaled logits and index(i) their vocabulary ids (ascending),
// top their maximum; total, when not negative, is the mass of every token of the vocabulary (top-p without top-k over
// tokens gathered from it). Thread 0 writes the pick.
template <typename V, typename I>
__device__ __forceinline__ void filterAndDraw(int count, V value, I index, int topK, float topP, float minP, float top, double total,
                                              const int* uniformBits, int* picked, SampleShared& sh)
{
    unsigned low = 0;                                          // kept: key >= low and value >= minimum
    if (topK > 0 && topK < count) low = largestThreshold<int>(count, value, [](float) { return 1; }, topK, sh.count);
    if (topP < 1.f)
    {
        auto mass = [&](float v) { return orderKey(v) >= low ? (double)expf(v - top) : 0.0; };
        if (total < 0.0 || low != 0)
        {
            double sum[1] = {0.0};
            forEachValue(count, value, [&](int, float v) { sum[0] += mass(v); });
            blockSums<double, 1>(sum, sh.mass);
            total = sum[0];
        }
        unsigned cut = largestThreshold<double>(count, value, mass, (double)topP * total, sh.mass);
        low = max(low, min(cut, orderKey(top)));               // the most likely token always stays
    }
    float minimum = minP > 0.f ? top + logf(minP) : NEG_INF;
    auto kept = [&](float v) { return orderKey(v) >= low && v >= minimum; };
    auto weight = [&](float v) { return kept(v) ? (double)expf(v - top) : 0.0; };
    // The draw: the first kept token, in index order, whose cumulative weight passes uniform·total. Each segment's
    // weight (a warp's sum in a fixed order), then thread 0 walks the segments and, in the one the target falls in, its tokens.
    int length = segmentLength(count), segments = (count + length - 1) / length, perLane = length / 32;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();                                           // earlier readers of the shared arrays are done
    for (int segment = warp; segment < segments; segment += SAMPLE_THREADS / 32)
    {
        double sum = laneSum<double>(segment * length + lane * perLane, perLane, count, value, weight);
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        if (lane == 0) sh.segmentSums[segment] = sum;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    double all = 0.0;
    for (int t = 0; t < segments; t++) all += sh.segmentSums[t];
    u64 bits = ((u64)(unsigned)uniformBits[1] << 32 | (unsigned)uniformBits[0]) & ((1ull << 53) - 1);
    double target = (double)bits * (1.0 / 9007199254740992.0) * all, cumulative = 0.0;
    int first = segments;
    for (int t = 0; t < segments; t++)
    {
        if (cumulative + sh.segmentSums[t] > target) { first = t; break; }
        cumulative += sh.segmentSums[t];
    }
    int pick = -1;
    for (int i = first * length; i < count && pick < 0; i++)
    {
        float v = value(i);
        if (!kept(v)) continue;
        cumulative += expf(v - top);
        if (cumulative > target) pick = index(i);
    }
    // Rounding left the target unreached: the last kept token, as the host's draw.
    for (int i = count - 1; i >= 0 && pick < 0; i--)
        if (kept(value(i))) pick = index(i);
    picked[0] = pick < 0 ? 0 : pick;
}

extern "C" __global__ void __launch_bounds__(SAMPLE_THREADS) sampleRow(const float* logits, int vocab, float temperature, int topK,
    float topP, float minP, const int* uniformBits, int* picked)
{
    __shared__ SampleShared sh;
    gridDependencyWait();
    gridDependencyRelease();
    auto value = [&](int i) { return logits[i] / temperature; };
    float top = NEG_INF;
    forEachValue(vocab, value, [&](int, float v) { top = fmaxf(top, v); });
    top = blockMax(top, sh.scratch);
    bool byTopK = topK > 0 && topK < vocab, truncated = byTopK || topP < 1.f || minP > 0.f;
    // How many tokens lie within 1, 2, 4 ... 32 of the maximum, their mass, and the vocabulary's. Masses only for top-p
    // without top-k (top-k's own tokens are gathered; their mass is summed there).
    bool byMass = topP < 1.f && !byTopK;
    int counts[SAMPLE_LEVELS];
    double masses[SAMPLE_LEVELS + 1];
#pragma unroll
    for (int j = 0; j < SAMPLE_LEVELS; j++) { counts[j] = 0; masses[j] = 0.0; }
    masses[SAMPLE_LEVELS] = 0.0;
    if (truncated)
    {
        forEachValue(vocab, value, [&](int, float v)
        {
            double e = byMass ? (double)expf(v - top) : 0.0;
            masses[SAMPLE_LEVELS] += e;
#pragma unroll
            for (int j = 0; j < SAMPLE_LEVELS; j++)
                if (v >= top - (float)(1 << j)) { counts[j]++; masses[j] += e; }
        });
        blockSums<int, SAMPLE_LEVELS>(counts, sh.count);
        blockSums<double, SAMPLE_LEVELS + 1>(masses, sh.mass);
    }
    double total = masses[SAMPLE_LEVELS];
    int level = -1;
    for (int j = 0; j < SAMPLE_LEVELS && truncated && counts[j] <= SAMPLE_CANDIDATES; j++)
    {
        bool covered = (byTopK && counts[j] >= topK) || (byMass && masses[j] >= (double)topP * total)
                       || (minP > 0.f && topP >= 1.f && -logf(minP) <= (float)(1 << j));   // top-p needs all of top-k's mass
        if (covered) { level = j; break; }
    }
    if (level < 0)
    {
        filterAndDraw(vocab, value, [](int i) { return i; }, topK, topP, minP, top, -1.0, uniformBits, picked, sh);
        return;
    }
    // Gather the tokens within the level's margin in index order: each segment's count, their running sum, then each lane
    // writes its own from its offset.
    float bound = top - (float)(1 << level);
    int length = segmentLength(vocab), segments = (vocab + length - 1) / length, perLane = length / 32;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    auto laneCount = [&](int i0) { return laneSum<int>(i0, perLane, vocab, value, [&](float v) { return v >= bound ? 1 : 0; }); };
    for (int segment = warp; segment < segments; segment += SAMPLE_THREADS / 32)
    {
        int n = laneCount(segment * length + lane * perLane);
        for (int o = 16; o > 0; o >>= 1) n += __shfl_xor_sync(0xffffffffu, n, o);
        if (lane == 0) sh.segmentCounts[segment] = n;
    }
    __syncthreads();
    if (threadIdx.x == 0)
        for (int t = 0, running = 0; t < segments; t++)
        {
            int n = sh.segmentCounts[t];
            sh.segmentCounts[t] = running;
            running += n;
        }
    __syncthreads();
    for (int segment = warp; segment < segments; segment += SAMPLE_THREADS / 32)
    {
        int i0 = segment * length + lane * perLane, n = laneCount(i0), before = n;
        for (int o = 1; o < 32; o <<= 1)
        {
            int up = __shfl_up_sync(0xffffffffu, before, o);
            if (lane >= o) before += up;
        }
        int at = sh.segmentCounts[segment] + before - n;       // exclusive: the lanes before this one
        for (int i = i0; i < i0 + perLane && i < vocab; i++)
        {
            float v = value(i);
            if (v >= bound)
            {
                sh.values[at] = v;
                sh.indices[at] = i;
                at++;
            }
        }
    }
    __syncthreads();
    int gathered = counts[level];
    // Top-k's tokens are all gathered: top-p's total is theirs. Without top-k it is the vocabulary's.
    filterAndDraw(gathered, [&](int i) { return sh.values[i]; }, [&](int i) { return sh.indices[i]; },
                  byTopK ? topK : 0, topP, minP, top, byTopK ? -1.0 : total, uniformBits, picked, sh);
}
