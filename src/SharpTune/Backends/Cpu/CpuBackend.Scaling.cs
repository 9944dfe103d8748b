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
        for (int r = 0; r < rows; r++)
        {
            var row = xs.Slice(r * cols, cols);
            double sum = 0;
            foreach (float v in row) sum += (double)v * v;
            ns[r] = (float)Math.Sqrt(sum);
        }
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
        var sums = new double[cols];
        for (int i = 0; i < As.Length; i += cols)
            for (int c = 0; c < cols; c++) sums[c] += (double)As[i + c] * Bs[i + c];
        var rs = result.AsSpan();
        for (int c = 0; c < cols; c++) rs[c] += (float)sums[c];
    }
}
