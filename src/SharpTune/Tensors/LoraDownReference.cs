namespace SharpTune.Tensors;

/// <summary>
/// <see cref="IBackend.LoraDownProject"/> and <see cref="IBackend.LoraDownBackward"/> composed of the backend's dropout and
/// matrix products, branch by branch, with dropout(x) in a temporary: the definition, what a host backend runs, and what a
/// GPU backend falls back to for operands its fused kernels do not take.
/// </summary>
public static class LoraDownReference
{
    public static void Project(IBackend be, Tensor x, ReadOnlySpan<LoraDownBranch> branches)
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

    public static void Backward(IBackend be, Tensor x, ReadOnlySpan<LoraDownGradient> branches, Tensor dx, bool accumulateDx)
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
}
