using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

public sealed unsafe partial class CudaBackend
{
    public void RowNorms(Tensor x, Tensor norms)
    {
        RequireF32(norms);
        if (norms.Count != x.Rows) throw new ArgumentException($"row norms of [{x.Rows}, {x.RowLength}] need {x.Rows} values, got {norms.Count}");
        if (x.Rows > 0) Launch("elementwise", "rowNorms", (uint)x.Rows, 256, 0, x.Address, Code(x), norms.Address, (long)x.RowLength);
    }

    public void Divide(Tensor a, Tensor b, Tensor y)
    {
        if (a.Count != b.Count || a.Count != y.Count) throw new ArgumentException("divide of tensors of different sizes");
        Elementwise("divide", y.Count, a.Address, Code(a), b.Address, Code(b), y.Address, Code(y), y.Count);
    }

    public void ScaleColumns(Tensor x, Tensor scale)
    {
        if (scale.Count != x.RowLength) throw new ArgumentException($"column scale of {scale.Count} values for rows of {x.RowLength}");
        Elementwise("scaleColumns", x.Count, x.Address, Code(x), scale.Address, Code(scale), (long)x.RowLength, x.Count);
    }

    public void ScaleRows(Tensor x, Tensor scale)
    {
        if (scale.Count != x.Rows) throw new ArgumentException($"row scale of {scale.Count} values for {x.Rows} rows");
        Elementwise("scaleRows", x.Count, x.Address, Code(x), scale.Address, Code(scale), (long)x.RowLength, x.Count);
    }

    public void ColumnDots(Tensor a, Tensor b, Tensor result)
    {
        RequireF32(result);
        int cols = a.RowLength;
        if (a.Count != b.Count || result.Count != cols) throw new ArgumentException("column dots of tensors of different shapes");
        Elementwise("columnDots", cols, a.Address, Code(a), b.Address, Code(b), result.Address, (long)a.Rows, (long)cols);
    }
}
