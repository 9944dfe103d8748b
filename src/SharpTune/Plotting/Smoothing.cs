namespace SharpTune.Plotting;

public static class Smoothing
{
    /// <summary>
    /// TensorBoard's debiased exponential moving average, which ms-swift's plot_images draws over train/loss with weight 0.9:
    /// s_n = (Σ_{i≤n} w^(n-i) v_i) / (Σ_{i≤n} w^(n-i)). The first value is kept as is rather than pulled towards zero.
    /// Non-finite values (a NaN loss) come out as they are and do not enter the average, as in TensorBoard.
    /// </summary>
    public static double[] Ema(IReadOnlyList<double> values, double weight = 0.9)
    {
        if (!(weight >= 0 && weight < 1)) throw new SharpTuneException($"smoothing weight {weight} must be in [0, 1)");
        var result = new double[values.Count];
        double weightedSum = 0, weightTotal = 0;
        for (int i = 0; i < values.Count; i++)
        {
            double v = values[i];
            if (!double.IsFinite(v)) { result[i] = v; continue; }
            weightedSum = weightedSum * weight + v;
            weightTotal = weightTotal * weight + 1;
            result[i] = weightedSum / weightTotal;
        }
        return result;
    }
}
