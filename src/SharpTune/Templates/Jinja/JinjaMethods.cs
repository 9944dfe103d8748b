using System.Text;

namespace SharpTune.Templates.Jinja;

/// <summary>The Python str and dict methods templates call (<c>content.split('&lt;/think&gt;')</c>, <c>message.items()</c>).</summary>
static class JinjaMethods
{
    public static bool IsDictMethod(string name) => name is "items" or "keys" or "values" or "get";

    public static JinjaFunction BindDict(Dictionary<string, object?> dict, string name) => new(name, (args, _) => name switch
    {
        "items" => Items(dict),
        "keys" => dict.Keys.Cast<object?>().ToList(),
        "values" => dict.Values.ToList(),
        _ => args.Count > 0 && args[0] is string key && dict.TryGetValue(key, out var value) ? value : args.Count > 1 ? args[1] : null,
    });

    public static List<object?> Items(Dictionary<string, object?> dict) => dict.Select(kv => (object?)new List<object?> { kv.Key, kv.Value }).ToList();

    public static object? BindString(string s, string name)
    {
        Func<List<object?>, object?>? method = name switch
        {
            "startswith" => args => Affixes(args, name).Any(p => s.StartsWith(p, StringComparison.Ordinal)),
            "endswith" => args => Affixes(args, name).Any(p => s.EndsWith(p, StringComparison.Ordinal)),
            "strip" => args => Strip(s, Chars(args), true, true),
            "lstrip" => args => Strip(s, Chars(args), true, false),
            "rstrip" => args => Strip(s, Chars(args), false, true),
            "split" => args => Split(s, args.Count > 0 ? args[0] : null, args.Count > 1 ? JinjaValues.ToLong(args[1]) : -1),
            "replace" => args => Replace(s, Str(args, 0, name), Str(args, 1, name), args.Count > 2 ? JinjaValues.ToLong(args[2]) : -1),
            "upper" => _ => s.ToUpperInvariant(),
            "lower" => _ => s.ToLowerInvariant(),
            "title" => _ => Title(s),
            "capitalize" => _ => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant(),
            "find" => args => (long)s.IndexOf(Str(args, 0, name), StringComparison.Ordinal),
            "count" => args => (long)CountOccurrences(s, Str(args, 0, name)),
            "join" => args => string.Join(s, JinjaValues.Iterate(args.Count > 0 ? args[0] : null).Select(JinjaValues.ToStr)),
            "isdigit" => _ => s.Length > 0 && s.All(char.IsDigit),
            "isspace" => _ => s.Length > 0 && s.All(char.IsWhiteSpace),
            _ => null,
        };
        return method == null ? new JinjaUndefined(name) : new JinjaFunction(name, (args, _) => method(args));
    }

    static IEnumerable<string> Affixes(List<object?> args, string method) => args.Count > 0 && args[0] is List<object?> options
        ? options.Select(JinjaValues.ToStr)
        : [Str(args, 0, method)];

    static string? Chars(List<object?> args) => args.Count > 0 && args[0] is string chars ? chars : null;

    static string Str(List<object?> args, int i, string method) =>
        i < args.Count && args[i] is string s ? s : throw new JinjaRuntimeException($"str.{method}() needs a string argument {i + 1}");

    /// <summary>Python strip: <paramref name="chars"/> null means whitespace.</summary>
    public static string Strip(string s, string? chars, bool left, bool right)
    {
        bool Strippable(char c) => chars == null ? char.IsWhiteSpace(c) : chars.Contains(c);
        int start = 0, end = s.Length;
        if (left) while (start < end && Strippable(s[start])) start++;
        if (right) while (end > start && Strippable(s[end - 1])) end--;
        return s[start..end];
    }

    static List<object?> Split(string s, object? separator, long maxSplit)
    {
        var parts = new List<object?>();
        if (separator is null or JinjaUndefined)
        {
            // Python's split() without a separator: runs of whitespace, no empty strings.
            int i = 0;
            while (i < s.Length)
            {
                while (i < s.Length && char.IsWhiteSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxSplit >= 0 && parts.Count == maxSplit)
                {
                    parts.Add(s[i..]);
                    break;
                }
                int start = i;
                while (i < s.Length && !char.IsWhiteSpace(s[i])) i++;
                parts.Add(s[start..i]);
            }
            return parts;
        }
        var sep = JinjaValues.ToStr(separator);
        if (sep.Length == 0) throw new JinjaRuntimeException("str.split(): empty separator");
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(sep, from, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Add(s[from..at]);
            from = at + sep.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }

    static string Replace(string s, string old, string replacement, long count)
    {
        if (count < 0) return old.Length == 0 ? InsertEverywhere(s, replacement) : s.Replace(old, replacement, StringComparison.Ordinal);
        var sb = new StringBuilder();
        int from = 0;
        for (long n = 0; n < count && old.Length > 0; n++)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
        }
        return sb.Append(s, from, s.Length - from).ToString();
    }

    static string InsertEverywhere(string s, string insert) => insert + string.Concat(s.Select(c => c + insert));

    static int CountOccurrences(string s, string sub)
    {
        if (sub.Length == 0) return s.Length + 1;
        int n = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>Python str.title(): a letter after a non-letter is upper-cased, other letters lower-cased.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousIsLetter = false;
        foreach (char c in s)
        {
            sb.Append(previousIsLetter ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsLetter = char.IsLetter(c);
        }
        return sb.ToString();
    }
}
