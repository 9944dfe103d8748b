using System.Globalization;
using System.Text;

namespace SharpTune.Templates.Jinja;

/// <summary>
/// Template values are plain .NET objects with Python semantics: null (None), bool, long, double, string,
/// <see cref="List{T}"/> of object? (lists and tuples), <see cref="Dictionary{TKey,TValue}"/> of string to object? (dicts,
/// insertion-ordered), <see cref="JinjaNamespace"/>, <see cref="JinjaFunction"/> and <see cref="JinjaUndefined"/>.
/// </summary>
sealed class JinjaUndefined(string name)
{
    public string Name { get; } = name;
    public override string ToString() => "";
}

/// <summary>The object <c>namespace(...)</c> returns: attributes that can be reassigned from inside loops.</summary>
sealed class JinjaNamespace
{
    public Dictionary<string, object?> Attributes { get; } = [];
}

/// <summary>A callable value: a global function, a macro, or a bound method of a string/dict.</summary>
sealed class JinjaFunction(string name, Func<List<object?>, Dictionary<string, object?>, object?> invoke)
{
    public string Name { get; } = name;
    public object? Invoke(List<object?> args, Dictionary<string, object?> kwargs) => invoke(args, kwargs);
}

/// <summary>Thrown for a render-time problem; the renderer adds the source name and line.</summary>
sealed class JinjaRuntimeException(string message) : Exception(message);

static class JinjaValues
{
    public static bool IsTrue(object? value) => value switch
    {
        null or JinjaUndefined => false,
        bool b => b,
        long i => i != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> l => l.Count > 0,
        Dictionary<string, object?> d => d.Count > 0,
        _ => true,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    public static double ToDouble(object? value) => value switch
    {
        long i => i,
        double d => d,
        bool b => b ? 1 : 0,
        _ => throw new JinjaRuntimeException($"expected a number, got {TypeName(value)}"),
    };

    public static long ToLong(object? value) => value switch
    {
        long i => i,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new JinjaRuntimeException($"expected an integer, got {TypeName(value)}"),
    };

    public static string TypeName(object? value) => value switch
    {
        null => "none",
        JinjaUndefined u => $"undefined '{u.Name}'",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        Dictionary<string, object?> => "dict",
        JinjaNamespace => "namespace",
        JinjaFunction => "function",
        _ => value.GetType().Name,
    };

    /// <summary>Python's str(): what <c>{{ value }}</c> prints.</summary>
    public static string ToStr(object? value) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => Repr(value),
    };

    /// <summary>Python's repr(), used for values inside printed lists and dicts.</summary>
    public static string Repr(object? value)
    {
        switch (value)
        {
            case null: return "None";
            case JinjaUndefined: return "";
            case bool b: return b ? "True" : "False";
            case long i: return i.ToString(CultureInfo.InvariantCulture);
            case double d: return FormatFloat(d);
            case string s:
                char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
                var escaped = s.Replace("\\", "\\\\").Replace("\n", "\\n").Replace("\r", "\\r").Replace("\t", "\\t");
                if (quote == '\'') escaped = escaped.Replace("'", "\\'");
                return quote + escaped + quote;
            case List<object?> list: return "[" + string.Join(", ", list.Select(Repr)) + "]";
            case Dictionary<string, object?> dict: return "{" + string.Join(", ", dict.Select(kv => Repr(kv.Key) + ": " + Repr(kv.Value))) + "}";
            case JinjaNamespace ns: return "<Namespace " + Repr(ns.Attributes) + ">";
            case JinjaFunction f: return $"<function {f.Name}>";
            default: return value.ToString() ?? "";
        }
    }

    /// <summary>Python float repr: shortest round-trip digits, always with a '.0' or exponent.</summary>
    public static string FormatFloat(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        var abs = Math.Abs(d);
        if (abs != 0 && (abs >= 1e16 || abs < 1e-4))
        {
            var parts = d.ToString("R", CultureInfo.InvariantCulture).Split('E');
            if (parts.Length == 1) return parts[0];
            int exponent = int.Parse(parts[1], CultureInfo.InvariantCulture);
            return parts[0] + "e" + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
        }
        var text = d.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.') || text.Contains('E') ? text : text + ".0";
    }

    /// <summary>JSON as transformers' tojson filter writes it: json.dumps(ensure_ascii=False), optional indent, keys unsorted.</summary>
    public static string ToJson(object? value, int? indent)
    {
        var sb = new StringBuilder();
        WriteJson(sb, value, indent, 0);
        return sb.ToString();
    }

    static void WriteJson(StringBuilder sb, object? value, int? indent, int depth)
    {
        switch (value)
        {
            case null or JinjaUndefined: sb.Append("null"); break;
            case bool b: sb.Append(b ? "true" : "false"); break;
            case long i: sb.Append(i.ToString(CultureInfo.InvariantCulture)); break;
            case double d: sb.Append(double.IsFinite(d) ? FormatFloat(d) : d > 0 ? "Infinity" : d < 0 ? "-Infinity" : "NaN"); break;
            case string s: WriteJsonString(sb, s); break;
            case List<object?> list: WriteJsonContainer(sb, list.Select(v => ((string?)null, v)).ToList(), '[', ']', indent, depth); break;
            case Dictionary<string, object?> dict: WriteJsonContainer(sb, dict.Select(kv => ((string?)kv.Key, kv.Value)).ToList(), '{', '}', indent, depth); break;
            case JinjaNamespace ns: WriteJson(sb, ns.Attributes, indent, depth); break;
            default: throw new JinjaRuntimeException($"cannot convert {TypeName(value)} to JSON");
        }
    }

    static void WriteJsonContainer(StringBuilder sb, List<(string? Key, object? Value)> items, char open, char close, int? indent, int depth)
    {
        sb.Append(open);
        if (items.Count == 0)
        {
            sb.Append(close);
            return;
        }
        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0) sb.Append(indent == null ? ", " : ",");
            if (indent != null) sb.Append('\n').Append(' ', indent.Value * (depth + 1));
            if (items[i].Key != null)
            {
                WriteJsonString(sb, items[i].Key!);
                sb.Append(": ");
            }
            WriteJson(sb, items[i].Value, indent, depth + 1);
        }
        if (indent != null) sb.Append('\n').Append(' ', indent.Value * depth);
        sb.Append(close);
    }

    static void WriteJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    if (c < 0x20) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    public static new bool Equals(object? a, object? b)
    {
        if (a is JinjaUndefined || b is JinjaUndefined) return a is JinjaUndefined && b is JinjaUndefined;
        if (a == null || b == null) return a == null && b == null;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        if (a is string sa && b is string sb) return sa == sb;
        if (a is List<object?> la && b is List<object?> lb) return la.Count == lb.Count && la.Zip(lb).All(p => Equals(p.First, p.Second));
        if (a is Dictionary<string, object?> da && b is Dictionary<string, object?> db)
            return da.Count == db.Count && da.All(kv => db.TryGetValue(kv.Key, out var v) && Equals(kv.Value, v));
        return ReferenceEquals(a, b);
    }

    public static int Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string sa && b is string sb) return string.CompareOrdinal(sa, sb);
        if (a is List<object?> la && b is List<object?> lb)
        {
            for (int i = 0; i < Math.Min(la.Count, lb.Count); i++)
            {
                if (Equals(la[i], lb[i])) continue;
                return Compare(la[i], lb[i]);
            }
            return la.Count.CompareTo(lb.Count);
        }
        throw new JinjaRuntimeException($"cannot compare {TypeName(a)} with {TypeName(b)}");
    }

    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string sub => s.Contains(sub, StringComparison.Ordinal),
        string => throw new JinjaRuntimeException($"'in <string>' requires a string on the left, not {TypeName(item)}"),
        List<object?> list => list.Any(x => Equals(x, item)),
        Dictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        JinjaUndefined => false, // Python's `in` falls back to iterating, and an undefined iterates as empty
        _ => throw new JinjaRuntimeException($"argument of type {TypeName(container)} is not iterable"),
    };

    /// <summary>Iterates a value as a Jinja for loop does (dicts yield their keys, strings their characters, undefined nothing).</summary>
    public static List<object?> Iterate(object? value) => value switch
    {
        List<object?> list => list,
        Dictionary<string, object?> dict => dict.Keys.Cast<object?>().ToList(),
        string s => s.Select(c => (object?)c.ToString()).ToList(),
        JinjaUndefined => [],
        _ => throw new JinjaRuntimeException($"{TypeName(value)} is not iterable"),
    };

    /// <summary>Python slice semantics (negative indices and steps) over a list or string.</summary>
    public static object Slice(object? target, object? start, object? stop, object? step)
    {
        int count = target switch
        {
            string s => s.Length,
            List<object?> l => l.Count,
            _ => throw new JinjaRuntimeException($"cannot slice {TypeName(target)}"),
        };
        long stepValue = step is null or JinjaUndefined ? 1 : ToLong(step);
        if (stepValue == 0) throw new JinjaRuntimeException("slice step cannot be zero");
        long Clamp(object? bound, long lowDefault, long highDefault)
        {
            if (bound is null or JinjaUndefined) return stepValue > 0 ? lowDefault : highDefault;
            long b = ToLong(bound);
            if (b < 0) b += count;
            return stepValue > 0 ? Math.Clamp(b, 0, count) : Math.Clamp(b, -1, count - 1);
        }
        long from = Clamp(start, 0, count - 1), to = Clamp(stop, count, -1);
        var indices = new List<int>();
        for (long i = from; stepValue > 0 ? i < to : i > to; i += stepValue) indices.Add((int)i);
        if (target is string str) return string.Concat(indices.Select(i => str[i]));
        var source = (List<object?>)target!;
        return indices.Select(i => source[i]).ToList();
    }
}
