// One block per row of logits [rows, vocab] (float32): loss = logZ − logit[label], argmax hit, and optionally
// dLogits = gradScale·(softmax − onehot) written in place or elsewhere. Ignored rows (label −100) get zero gradient.
extern "C" __global__ void crossEntropy(const float* logits, const int* labels, float* dLogits, float gradScale, int vocab,
                                        double* losses, int* correct)
{
    __shared__ float scratchValue[32];
    __shared__ int scratchIndex[32];
    __shared__ float scratch[32];
    int row = blockIdx.x;
    const float* x = logits + (i64)row * vocab;
    int label = labels[row];
    if (label == -100)
    {
        if (dLogits != 0) for (int j = threadIdx.x; j < vocab; j += blockDim.x) dLogits[(i64)row * vocab + j] = 0.f;
        if (threadIdx.x == 0) { losses[row] = 0.0; correct[row] = -1; }
        return;
    }
    if (label < 0 || label >= vocab)
    {
        if (threadIdx.x == 0) { losses[row] = 0.0; correct[row] = -2; }
        return;
    }
    // One read of the row for the argmax (the first index of the largest value, as the CPU's IndexOfMax), the maximum and
    // the sum of exponentials, kept relative to the running maximum and rescaled when it grows.
    float best = NEG_INF, sum = 0.f;
    int bestIndex = 0x7fffffff;
    auto visit = [&](float value, int index)
    {
        if (value > best)
        {
            sum = sum * expf(best - value) + 1.f;
            best = value;
            bestIndex = index;
        }
        else if (value != NEG_INF) sum += expf(value - best);
    };
    bool wide = vocab % 4 == 0 && (u64)x % 16 == 0;
    if (wide)
        for (int j = threadIdx.x; j < vocab / 4; j += blockDim.x)
        {
            float4 v = ((const float4*)x)[j];
            visit(v.x, 4 * j);
            visit(v.y, 4 * j + 1);
            visit(v.z, 4 * j + 2);
            visit(v.w, 4 * j + 3);
        }
    else
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) visit(x[j], j);
    // (best, sum) pairs combine at the larger maximum; an empty one (best = -inf) has sum 0.
    auto combine = [&](float otherBest, float otherSum, int otherIndex)
    {
        float m = fmaxf(best, otherBest);
        if (m != NEG_INF) sum = sum * expf(best - m) + otherSum * expf(otherBest - m);
        if (otherBest > best || (otherBest == best && otherIndex < bestIndex)) bestIndex = otherIndex;
        best = m;
    };
    for (int o = 16; o > 0; o >>= 1)
    {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        float os = __shfl_xor_sync(0xffffffffu, sum, o);
        int oi = __shfl_xor_sync(0xffffffffu, bestIndex, o);
        combine(ov, os, oi);
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { scratchValue[warp] = best; scratchIndex[warp] = bestIndex; scratch[warp] = sum; }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        for (int w = 1; w < warps; w++) combine(scratchValue[w], scratch[w], scratchIndex[w]);
        scratchValue[0] = best;
        scratchIndex[0] = bestIndex;
        scratch[0] = sum;
    }
    __syncthreads();
    float rowMax = scratchValue[0];
    int argmax = scratchIndex[0];
    float s = scratch[0];
    float logZ = rowMax + logf(s);
    float labelLogit = x[label];
    __syncthreads();
    if (dLogits != 0)
    {
        float* d = dLogits + (i64)row * vocab;
        if (wide && (u64)d % 16 == 0)
            for (int j = threadIdx.x; j < vocab / 4; j += blockDim.x)
            {
                float4 v = ((const float4*)x)[j];
                v.x = expf(v.x - logZ) * gradScale - (4 * j == label ? gradScale : 0.f);
                v.y = expf(v.y - logZ) * gradScale - (4 * j + 1 == label ? gradScale : 0.f);
                v.z = expf(v.z - logZ) * gradScale - (4 * j + 2 == label ? gradScale : 0.f);
                v.w = expf(v.w - logZ) * gradScale - (4 * j + 3 == label ? gradScale : 0.f);
                ((float4*)d)[j] = v;
            }
        else
            for (int j = threadIdx.x; j < vocab; j += blockDim.x)
                d[j] = expf(x[j] - logZ) * gradScale - (j == label ? gradScale : 0.f);
    }
    if (threadIdx.x == 0)
    {
        losses[row] = (double)logZ - (double)labelLogit;
        correct[row] = argmax == label ? 1 : 0;
    }
}
