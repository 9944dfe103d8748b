using System.Collections;
using System.Text;

namespace SharpTune.Templates.Jinja;

/// <summary>Binary operators with Python semantics (int/float promotion, string and list concatenation, floor division).</summary>
static class JinjaOperators
{
    public static object? RequireDefined(object? value) =>
        value is JinjaUndefined u ? throw new JinjaRuntimeException($"'{u.Name}' is undefined") : value;

    public static object? Apply(string op, object? left, object? right)
    {
        switch (op)
        {
            case "==": return JinjaValues.Equals(left, right);
            case "!=": return !JinjaValues.Equals(left, right);
            case "<": return JinjaValues.Compare(RequireDefined(left), RequireDefined(right)) < 0;
            case "<=": return JinjaValues.Compare(RequireDefined(left), RequireDefined(right)) <= 0;
            case ">": return JinjaValues.Compare(RequireDefined(left), RequireDefined(right)) > 0;
            case ">=": return JinjaValues.Compare(RequireDefined(left), RequireDefined(right)) >= 0;
            case "in": return JinjaValues.Contains(right, left);
            case "not in": return !JinjaValues.Contains(right, left);
            case "~": return JinjaValues.ToStr(left) + JinjaValues.ToStr(right);
        }
        RequireDefined(left);
        RequireDefined(right);
        switch (op)
        {
            case "+" when left is string a && right is string b: return a + b;
            case "+" when left is List<object?> a && right is List<object?> b: return a.Concat(b).ToList();
            case "*" when left is string s && right is long or bool: return Repeat(s, JinjaValues.ToLong(right));
            case "*" when left is List<object?> l && right is long or bool: return Enumerable.Repeat(l, (int)Math.Max(0, JinjaValues.ToLong(right))).SelectMany(x => x).ToList();
        }
        if (!JinjaValues.IsNumber(left) || !JinjaValues.IsNumber(right))
            throw new JinjaRuntimeException($"unsupported operand types for {op}: {JinjaValues.TypeName(left)} and {JinjaValues.TypeName(right)}");
        bool integers = left is not double && right is not double;
        if (op == "/") return JinjaValues.ToDouble(left) / Divisor(JinjaValues.ToDouble(right));
        if (integers)
        {
            long a = JinjaValues.ToLong(left), b = JinjaValues.ToLong(right);
            return op switch
            {
                "+" => (object)(a + b),
                "-" => a - b,
                "*" => a * b,
                "//" => (long)Math.Floor((double)a / Divisor(b)),
                "%" => ((a % (long)Divisor(b)) + b) % b,
                "**" => b >= 0 ? (object)(long)Math.Pow(a, b) : Math.Pow(a, b),
                _ => throw new JinjaRuntimeException($"unknown operator {op}"),
            };
        }
        double x = JinjaValues.ToDouble(left), y = JinjaValues.ToDouble(right);
        return op switch
        {
            "+" => x + y,
            "-" => x - y,
            "*" => x * y,
            "//" => Math.Floor(x / Divisor(y)),
            "%" => x - y * Math.Floor(x / Divisor(y)),
            "**" => Math.Pow(x, y),
            _ => throw new JinjaRuntimeException($"unknown operator {op}"),
        };
    }

    static double Divisor(double value) => value == 0 ? throw new JinjaRuntimeException("division by zero") : value;

    static string Repeat(string s, long count)
    {
        var sb = new StringBuilder();
        for (long i = 0; i < count; i++) sb.Append(s);
        return sb.ToString();
    }
}

/// <summary>Converts the values callers pass (any .NET list/dictionary/number) into the template's value types.</summary>
static class JinjaConvert
{
    public static object? FromDotNet(object? value) => value switch
    {
        null or string or bool or long or double or JinjaUndefined or JinjaNamespace or JinjaFunction => value,
        int i => (long)i,
        float f => (double)f,
        List<object?> list => list.Select(FromDotNet).ToList(),
        Dictionary<string, object?> dict => dict.ToDictionary(kv => kv.Key, kv => FromDotNet(kv.Value)),
        IDictionary dict => dict.Keys.Cast<object>().ToDictionary(k => k.ToString()!, k => FromDotNet(dict[k])),
        IEnumerable items => items.Cast<object?>().Select(FromDotNet).ToList(),
        _ => throw new ArgumentException($"cannot pass a {value.GetType().Name} to a template"),
    };
}
