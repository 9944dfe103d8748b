namespace SharpTune.Tensors;

/// <summary>
/// LoRA's ops (<see cref="IBackend.LoraDownProject"/>, <see cref="IBackend.LoraDownBackward"/>,
/// <see cref="IBackend.LoraUpProject"/>, <see cref="IBackend.LoraUpBackward"/>) composed of the backend's dropout and matrix products, branch by branch, with
/// dropout(x) in a temporary: the definition, what a host backend runs, and what a GPU backend falls back to for operands
/// its fused kernels do not take.
/// </summary>
public static class LoraReference
{
    public static void DownProject(IBackend be, Tensor x, ReadOnlySpan<LoraDownBranch> branches)
    {
        Tensor? dropped = null;
        try
        {
            foreach (var b in branches)
            {
                if (b.Dropout <= 0f)
                {
                    be.MatMul(x, false, b.A, true, b.Hidden);
                    continue;
                }
                dropped ??= be.Allocate(x.DType, x.Shape);
                be.Dropout(x, b.Dropout, b.Seed, dropped);
                be.MatMul(dropped, false, b.A, true, b.Hidden);
            }
        }
        finally
        {
            dropped?.Dispose();
        }
    }

    public static void DownBackward(IBackend be, Tensor x, ReadOnlySpan<LoraDownGradient> branches, Tensor dx, bool accumulateDx)
    {
        Tensor? scratch = null;
        try
        {
            bool dxHolds = accumulateDx;
            foreach (var b in branches)
            {
                if (b.Dropout <= 0f)
                {
                    if (b.GradA is { } undroppedGrad) be.MatMul(b.HiddenGradient, true, x, false, undroppedGrad, 1f, 1f);
                    be.MatMul(b.HiddenGradient, false, b.A, false, dx, 1f, dxHolds ? 1f : 0f);
                    dxHolds = true;
                    continue;
                }
                scratch ??= be.Allocate(x.DType, x.Shape);
                if (b.GradA is { } grad)
                {
                    be.Dropout(x, b.Dropout, b.Seed, scratch);
                    be.MatMul(b.HiddenGradient, true, scratch, false, grad, 1f, 1f);
                }
                // Through the dropout: the forward's mask (same seed) applied to dt·A, written or added to dx in the same pass.
                be.MatMul(b.HiddenGradient, false, b.A, false, scratch);
                be.Dropout(scratch, b.Dropout, b.Seed, dx, accumulate: dxHolds);
                dxHolds = true;
            }
        }
        finally
        {
            scratch?.Dispose();
        }
    }

    public static void UpProject(IBackend be, Tensor hidden, Tensor b, float scale, Tensor y, float beta) =>
        be.MatMul(hidden, false, b, true, y, scale, beta);

    public static void UpBackward(IBackend be, Tensor dy, Tensor hidden, Tensor b, float scale, Tensor hiddenGradient, Tensor? gradB)
    {
        if (gradB != null) be.MatMul(dy, true, hidden, false, gradB, scale, 1f);
        be.MatMul(dy, false, b, false, hiddenGradient, scale, 0f);
    }
}
