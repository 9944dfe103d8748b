using System.Text.Json.Nodes;
using SharpTune.Plotting;

namespace SharpTune.Training;

/// <summary>images/*.png as ms-swift draws them: train loss (raw and smoothed), learning rate, grad norm, eval loss.</summary>
public static class TrainingPlots
{
    public const double SmoothingWeight = 0.9;

    public static void Write(string runDir, IReadOnlyList<JsonObject> history)
    {
        var images = Path.Combine(runDir, "images");
        Directory.CreateDirectory(images);
        Plot(images, history, "loss", "train_loss", smooth: true);
        Plot(images, history, "learning_rate", "train_learning_rate", smooth: false);
        Plot(images, history, "grad_norm", "train_grad_norm", smooth: false);
        Plot(images, history, "token_acc", "train_token_acc", smooth: true);
        Plot(images, history, "eval_loss", "eval_loss", smooth: false);
        Plot(images, history, "eval_token_acc", "eval_token_acc", smooth: false);
    }

    static void Plot(string images, IReadOnlyList<JsonObject> history, string key, string name, bool smooth)
    {
        var points = history.Where(h => h[key] != null && h["step"] != null)
                            .Select(h => ((double)h["step"]!.GetValue<int>(), h[key]!.GetValue<double>())).ToList();
        if (points.Count == 0) return;
        var smoothed = smooth
            ? points.Zip(Smoothing.Ema(points.Select(p => p.Item2).ToList(), SmoothingWeight), (p, s) => (p.Item1, s)).ToList()
            : null;
        LinePlot.Save(Path.Combine(images, name + ".png"), name, "step", points, smoothed);
    }
}
