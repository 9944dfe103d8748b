using System.Globalization;
using System.Text.RegularExpressions;

namespace SharpTune.Training;

/// <summary>ms-swift's output layout: <c>output_dir/vN-YYYYMMDD-HHMMSS/</c> with N one more than the highest existing version.</summary>
public static partial class RunDirectory
{
    public static string Create(string outputDir, bool addVersion)
    {
        Directory.CreateDirectory(outputDir);
        if (!addVersion) return Path.GetFullPath(outputDir);
        int next = 0;
        foreach (var dir in Directory.GetDirectories(outputDir))
        {
            var m = VersionPattern().Match(Path.GetFileName(dir));
            if (m.Success) next = Math.Max(next, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) + 1);
        }
        var path = Path.Combine(outputDir, $"v{next}-{DateTime.Now:yyyyMMdd-HHmmss}");
        Directory.CreateDirectory(path);
        return Path.GetFullPath(path);
    }

    [GeneratedRegex(@"^v(\d+)-")]
    private static partial Regex VersionPattern();
}
