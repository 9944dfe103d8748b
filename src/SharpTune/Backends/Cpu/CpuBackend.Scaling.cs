using System.Numerics.Tensors;
using SharpTune.Tensors;

namespace SharpTune.Backends.Cpu;

public sealed partial class CpuBackend
{
    public void RowNorms(Tensor x, Tensor norms)
    {
        int rows = x.Rows, cols = x.RowLength;
        if (norms.Count != rows) throw new ArgumentException($"row norms of [{rows}, {cols}] need {rows} values, got {norms.Count}");
        var xs = x.AsSpan();
        var ns = norms.AsSpan();
        for (int r = 0; r < rows; r++) ns[r] = TensorPrimitives.Norm(xs.Slice(r * cols, cols));
    }

    public void Divide(Tensor a, Tensor b, Tensor y)
    {
        if (a.Count != b.Count || a.Count != y.Count) throw new ArgumentException("divide of tensors of different sizes");
        TensorPrimitives.Divide(a.AsSpan(), b.AsSpan(), y.AsSpan());
    }

    public void ScaleColumns(Tensor x, Tensor scale)
    {
        int cols = x.RowLength;
        if (scale.Count != cols) throw new ArgumentException($"column scale of {scale.Count} values for rows of {cols}");
        var xs = x.AsSpan();
        var s = scale.AsSpan();
        for (int i = 0; i < xs.Length; i += cols)
        {
            var row = xs.Slice(i, cols);
            TensorPrimitives.Multiply(row, s, row);
        }
    }

    public void ScaleRows(Tensor x, Tensor scale)
    {
        int rows = x.Rows, cols = x.RowLength;
        if (scale.Count != rows) throw new ArgumentException($"row scale of {scale.Count} values for {rows} rows");
        var xs = x.AsSpan();
        var s = scale.AsSpan();
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * cols, cols);
            TensorPrimitives.Multiply(row, s[r], row);
        }
    }

    public void ColumnDots(Tensor a, Tensor b, Tensor result)
    {
        int cols = a.RowLength;
        if (a.Count != b.Count || result.Count != cols) throw new ArgumentException("column dots of tensors of different shapes");
        var As = a.AsSpan();
        var Bs = b.AsSpan();
        var sums = result.AsSpan();
        for (int i = 0; i < As.Length; i += cols) TensorPrimitives.MultiplyAdd(As.Slice(i, cols), Bs.Slice(i, cols), sums, sums);
    }
}
