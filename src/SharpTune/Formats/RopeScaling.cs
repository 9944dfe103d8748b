namespace SharpTune.Formats;

/// <summary>
/// Rotary inverse frequencies as transformers' <c>ROPE_INIT_FUNCTIONS</c> compute them. Like torch, the per-dimension
/// arithmetic is float32 (only scalar set-up such as the dynamic base is double), so the result matches bit for bit
/// up to the last ulp of <c>pow</c>.
/// </summary>
public static class RopeScaling
{
    /// <summary>
    /// The <c>head_dim / 2</c> inverse frequencies for a sequence of <paramref name="seqLen"/> positions
    /// (only dynamic NTK scaling depends on it: its base grows once the sequence exceeds the trained length).
    /// </summary>
    public static float[] InverseFrequencies(ModelConfig config, int seqLen)
    {
        var rope = config.Rope;
        int dim = config.HeadDim;
        switch (rope.RopeType)
        {
            case "default":
                return Base(rope.Theta, dim);
            case "linear":
                return Scale(Base(rope.Theta, dim), 1 / (float)rope.Factor);
            case "dynamic":
                {
                    // transformers scales against max_position_embeddings here, not original_max_position_embeddings.
                    int trained = config.MaxPositionEmbeddings;
                    double length = Math.Max(seqLen, trained);
                    double theta = rope.Theta * Math.Pow(rope.Factor * length / trained - (rope.Factor - 1), dim / (double)(dim - 2));
                    return Base(theta, dim);
                }
            case "llama3":
                return Llama3(Base(rope.Theta, dim), rope);
            case "yarn":
                return Yarn(rope, dim, config.MaxPositionEmbeddings);
            default:
                throw new SharpTuneException($"{config.SourcePath}: rope type '{rope.RopeType}' is not supported");
        }
    }

    /// <summary>The factor cos and sin are multiplied by: 1 except for yarn.</summary>
    public static float AttentionScaling(ModelConfig config)
    {
        var rope = config.Rope;
        if (rope.RopeType != "yarn") return 1f;
        if (rope.AttentionFactor is { } explicitFactor) return (float)explicitFactor;
        double factor = rope.Factor;
        if (rope.Mscale is { } m && rope.MscaleAllDim is { } mAll && m != 0 && mAll != 0)
            return (float)(YarnMscale(factor, m) / YarnMscale(factor, mAll));
        return (float)YarnMscale(factor, 1);
    }

    /// <summary>1 / theta^(2i/dim), with the exponent and power in float32 as torch computes them.</summary>
    static float[] Base(double theta, int dim)
    {
        var inv = new float[dim / 2];
        float baseF = (float)theta;
        for (int i = 0; i < inv.Length; i++)
        {
            float exponent = (2 * i) / (float)dim;
            inv[i] = 1f / MathF.Pow(baseF, exponent);
        }
        return inv;
    }

    static float[] Scale(float[] values, float by)
    {
        for (int i = 0; i < values.Length; i++) values[i] *= by;
        return values;
    }

    /// <summary>
    /// Llama 3.1: wavelengths longer than the trained context / low_freq_factor are slowed by <c>factor</c>, those shorter than
    /// context / high_freq_factor are kept, and the band between is interpolated smoothly.
    /// </summary>
    static float[] Llama3(float[] inv, RopeParameters rope)
    {
        float factor = (float)rope.Factor;
        double context = rope.OriginalMaxPositionEmbeddings!.Value;
        float lowFreqWavelen = (float)(context / rope.LowFreqFactor);
        float highFreqWavelen = (float)(context / rope.HighFreqFactor);
        float low = (float)rope.LowFreqFactor, span = (float)(rope.HighFreqFactor - rope.LowFreqFactor);
        var result = new float[inv.Length];
        for (int i = 0; i < inv.Length; i++)
        {
            float wavelen = 1f / inv[i] * (float)(2 * Math.PI);
            if (wavelen > lowFreqWavelen) result[i] = inv[i] / factor;
            else if (wavelen < highFreqWavelen) result[i] = inv[i];
            else
            {
                float smooth = (1f / wavelen * (float)context - low) / span;
                result[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i];
            }
        }
        return result;
    }

    /// <summary>YaRN: blends interpolated (divided by factor) and extrapolated frequencies with a linear ramp over the dimensions.</summary>
    static float[] Yarn(RopeParameters rope, int dim, int maxPositions)
    {
        double factor = rope.Factor;
        int trained = rope.OriginalMaxPositionEmbeddings ?? maxPositions;
        double betaFast = rope.BetaFast ?? 32, betaSlow = rope.BetaSlow ?? 1;
        double CorrectionDim(double rotations) => dim * Math.Log(trained / (rotations * 2 * Math.PI)) / (2 * Math.Log(rope.Theta));
        double low = CorrectionDim(betaFast), high = CorrectionDim(betaSlow);
        if (rope.Truncate)
        {
            low = Math.Floor(low);
            high = Math.Ceiling(high);
        }
        low = Math.Max(low, 0);
        high = Math.Min(high, dim - 1);
        if (low == high) high += 0.001;

        float baseF = (float)rope.Theta;
        var inv = new float[dim / 2];
        for (int i = 0; i < inv.Length; i++)
        {
            float posFreq = MathF.Pow(baseF, (2 * i) / (float)dim);
            float extrapolation = 1f / posFreq;
            float interpolation = 1f / ((float)factor * posFreq);
            float ramp = Math.Clamp((float)((i - low) / (high - low)), 0f, 1f);
            float extrapolationWeight = 1 - ramp;
            inv[i] = interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight;
        }
        return inv;
    }

    static double YarnMscale(double scale, double mscale) => scale <= 1 ? 1.0 : 0.1 * mscale * Math.Log(scale) + 1.0;
}
