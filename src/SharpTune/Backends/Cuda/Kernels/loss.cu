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
    // Argmax: the first index of the largest value, as the CPU's IndexOfMax.
    float best = NEG_INF;
    int bestIndex = 0x7fffffff;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        if (x[j] > best) { best = x[j]; bestIndex = j; }
    for (int o = 16; o > 0; o >>= 1)
    {
        float ov = __shfl_xor_sync(0xffffffffu, best, o);
        int oi = __shfl_xor_sync(0xffffffffu, bestIndex, o);
        if (ov > best || (ov == best && oi < bestIndex)) { best = ov; bestIndex = oi; }
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    if (lane == 0) { scratchValue[warp] = best; scratchIndex[warp] = bestIndex; }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        for (int w = 1; w < warps; w++)
            if (scratchValue[w] > scratchValue[0] || (scratchValue[w] == scratchValue[0] && scratchIndex[w] < scratchIndex[0]))
            { scratchValue[0] = scratchValue[w]; scratchIndex[0] = scratchIndex[w]; }
    }
    __syncthreads();
    float rowMax = scratchValue[0];
    int argmax = scratchIndex[0];
    float s = 0.f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) s += expf(x[j] - rowMax);
    s = blockSum(s, scratch);
    float logZ = rowMax + logf(s);
    float labelLogit = x[label];
    __syncthreads();
    if (dLogits != 0)
    {
        float* d = dLogits + (i64)row * vocab;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            d[j] = expf(x[j] - logZ) * gradScale - (j == label ? gradScale : 0.f);
    }
    if (threadIdx.x == 0)
    {
        losses[row] = (double)logZ - (double)labelLogit;
        correct[row] = argmax == label ? 1 : 0;
    }
}
