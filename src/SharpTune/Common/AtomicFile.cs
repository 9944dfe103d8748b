namespace SharpTune;

/// <summary>Writes files and folders under a temporary name and renames them into place, so a crash never leaves half a file.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false)); w.Write(text); });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var tmp = TempName(path);
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write)) f.Write(bytes);
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>Calls <paramref name="write"/> with a stream on a temporary file, then renames it over <paramref name="path"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        var tmp = TempName(path);
        try
        {
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20)) write(f);
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            File.Delete(tmp);
            throw;
        }
    }

    /// <summary>Fills a temporary sibling folder with <paramref name="fill"/>, then renames it to <paramref name="dir"/> (replacing an old one).</summary>
    public static void WriteDirectory(string dir, Action<string> fill)
    {
        dir = Path.GetFullPath(dir);
        var tmp = dir.TrimEnd(Path.DirectorySeparatorChar) + ".tmp-" + Environment.ProcessId;
        if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
        Directory.CreateDirectory(tmp);
        try
        {
            fill(tmp);
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            Directory.Move(tmp, dir);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, true);
            throw;
        }
    }

    static string TempName(string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        return full + ".tmp-" + Environment.ProcessId;
    }
}
