namespace SharpTune.Arguments;

/// <summary>"Did you mean" hints for misspelt flags, keys and enum values.</summary>
internal static class Suggestions
{
    /// <summary>" (did you mean 'x'?)" for the closest candidate within a few edits (or that the input abbreviates), else "".</summary>
    public static string DidYouMean(string input, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates)
        {
            int d = c.StartsWith(input, StringComparison.OrdinalIgnoreCase) && input.Length >= 3 ? 1 : Distance(input.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestDistance || (d == bestDistance && string.CompareOrdinal(c, best) < 0)) (best, bestDistance) = (c, d);
        }
        int allowed = Math.Max(2, input.Length / 3);
        return best != null && bestDistance <= allowed ? $" (did you mean '{best}'?)" : "";
    }

    /// <summary>Levenshtein distance: insertions, deletions and substitutions.</summary>
    static int Distance(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (int j = 0; j <= b.Length; j++) previous[j] = j;
        for (int i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (int j = 1; j <= b.Length; j++)
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            (previous, current) = (current, previous);
        }
        return previous[b.Length];
    }
}
