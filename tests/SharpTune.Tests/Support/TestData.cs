namespace SharpTune.Tests;

/// <summary>
/// Locates the shared reference fixtures (../shared/testdata beside the repository) and the repository itself.
/// Tests that need the fixtures call <see cref="Require"/>, which skips them with a clear message when absent.
/// </summary>
public static class TestData
{
    public static readonly string RepoRoot = FindRepoRoot();
    public static readonly string Root = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "testdata"));
    public static bool Available => Directory.Exists(Root);

    /// <summary>Absolute path of a fixture, skipping the calling test when the fixtures are not beside the repository.</summary>
    public static string Require(params string[] relative)
    {
        Skip.IfNot(Available, $"reference fixtures not found at {Root} (clone the repository beside ../shared to run this test)");
        var path = Path.Combine([Root, .. relative]);
        Skip.IfNot(File.Exists(path) || Directory.Exists(path), $"fixture {path} is missing");
        return path;
    }

    public static string Model(string name) => Require("models", name);

    /// <summary>The bundled default model inside the repository (always present).</summary>
    public static string BundledModel => Path.Combine(RepoRoot, "models", "stories260K");

    public static float[] ReadF32(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var result = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, result, 0, bytes.Length);
        return result;
    }

    /// <summary>A fresh empty folder under the system temp directory, deleted by the caller or left for inspection.</summary>
    public static string TempDir(string prefix = "sharptune-test")
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "SharpTune.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find SharpTune.slnx above " + AppContext.BaseDirectory);
    }
}
