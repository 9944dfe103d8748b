using System.Globalization;
using System.Text;

namespace SharpTune.Templates.Jinja;

/// <summary>The filters chat templates use, with Jinja's semantics (tojson as transformers overrides it).</summary>
static class JinjaFilters
{
    public static object? Apply(string name, object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        object? Arg(int i, string keyword, object? fallback) =>
            i < args.Count ? args[i] : kwargs.TryGetValue(keyword, out var v) ? v : fallback;

        switch (name)
        {
            case "default" or "d":
                bool boolean = JinjaValues.IsTrue(Arg(1, "boolean", false));
                bool useDefault = value is JinjaUndefined || (boolean && !JinjaValues.IsTrue(value));
                return useDefault ? Arg(0, "default_value", "") : value;
            case "length" or "count":
                return value switch
                {
                    string s => (long)s.Length,
                    List<object?> l => (long)l.Count,
                    Dictionary<string, object?> d => (long)d.Count,
                    JinjaUndefined => 0L,
                    _ => throw new JinjaRuntimeException($"object of type {JinjaValues.TypeName(value)} has no length"),
                };
            case "trim":
                return JinjaMethods.Strip(Text(value), Arg(0, "chars", null) as string, true, true);
            case "tojson":
                var indent = Arg(0, "indent", null);
                return JinjaValues.ToJson(value, indent is null ? null : (int)JinjaValues.ToLong(indent));
            case "lower": return Text(value).ToLowerInvariant();
            case "upper": return Text(value).ToUpperInvariant();
            case "capitalize":
                var c = Text(value);
                return c.Length == 0 ? c : char.ToUpperInvariant(c[0]) + c[1..].ToLowerInvariant();
            case "title": return JinjaMethods.Title(Text(value));
            case "string": return JinjaValues.ToStr(value);
            case "safe": return value;
            case "join":
                var separator = JinjaValues.ToStr(Arg(0, "d", ""));
                var attribute = Arg(1, "attribute", null);
                return string.Join(separator, JinjaValues.Iterate(value)
                    .Select(item => JinjaValues.ToStr(attribute is string a ? JinjaBuiltins.GetAttribute(item, a) : item)));
            case "first":
                var firstItems = JinjaValues.Iterate(value);
                return firstItems.Count > 0 ? firstItems[0] : new JinjaUndefined("first");
            case "last":
                var lastItems = JinjaValues.Iterate(value);
                return lastItems.Count > 0 ? lastItems[^1] : new JinjaUndefined("last");
            case "list": return JinjaValues.Iterate(value).ToList();
            case "reverse":
                return value is string rs ? new string(rs.Reverse().ToArray()) : Enumerable.Reverse(JinjaValues.Iterate(value)).ToList();
            case "items":
                return value switch
                {
                    Dictionary<string, object?> dict => JinjaMethods.Items(dict),
                    JinjaUndefined => new List<object?>(),
                    _ => throw new JinjaRuntimeException($"items filter needs a mapping, got {JinjaValues.TypeName(value)}"),
                };
            case "replace":
                return JinjaMethods.BindString(Text(value), "replace") is JinjaFunction replace ? replace.Invoke(args, []) : value;
            case "int":
                return ToInt(value, Arg(0, "default", 0L));
            case "float":
                return value is string fs && double.TryParse(fs.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) ? parsed
                    : JinjaValues.IsNumber(value) ? JinjaValues.ToDouble(value) : Arg(0, "default", 0.0);
            case "abs":
                return value is double ad ? Math.Abs(ad) : (object)Math.Abs(JinjaValues.ToLong(value));
            case "round":
                var digits = (int)JinjaValues.ToLong(Arg(0, "precision", 0L));
                return Math.Round(JinjaValues.ToDouble(value), digits, MidpointRounding.ToEven); // Python round(): half to even
            case "indent":
                return Indent(Text(value), (int)JinjaValues.ToLong(Arg(0, "width", 4L)), JinjaValues.IsTrue(Arg(1, "first", false)), JinjaValues.IsTrue(Arg(2, "blank", false)));
            case "unique":
                var unique = new List<object?>();
                foreach (var item in JinjaValues.Iterate(value)) if (!unique.Any(u => JinjaValues.Equals(u, item))) unique.Add(item);
                return unique;
            case "min" or "max":
                var numbers = JinjaValues.Iterate(value);
                if (numbers.Count == 0) return new JinjaUndefined(name);
                return numbers.Aggregate((a, b) => (JinjaValues.Compare(a, b) < 0) == (name == "min") ? a : b);
            case "sum":
                return JinjaValues.Iterate(value).Aggregate(Arg(1, "start", 0L), (acc, item) => JinjaOperators.Apply("+", acc, item));
            case "map":
                return Map(value, args, kwargs);
            case "select" or "reject":
                return JinjaValues.Iterate(value).Where(item => JinjaBuiltins.ApplyTest(args.Count > 0 ? Text(args[0]) : "true", item, args.Skip(1).ToList()) == (name == "select")).ToList();
            case "selectattr" or "rejectattr":
                if (args.Count == 0) throw new JinjaRuntimeException($"{name} needs an attribute name");
                var attr = Text(args[0]);
                return JinjaValues.Iterate(value).Where(item =>
                {
                    var field = JinjaBuiltins.GetAttribute(item, attr);
                    bool pass = args.Count > 1 ? JinjaBuiltins.ApplyTest(Text(args[1]), field, args.Skip(2).ToList()) : JinjaValues.IsTrue(field);
                    return pass == (name == "selectattr");
                }).ToList();
            default:
                throw new JinjaRuntimeException($"unknown filter '{name}'");
        }
    }

    static string Text(object? value) => value switch
    {
        string s => s,
        JinjaUndefined => "",
        _ => JinjaValues.ToStr(value),
    };

    static object? ToInt(object? value, object? fallback) => value switch
    {
        long or bool or double => JinjaValues.ToLong(value),
        string s when long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) => n,
        string s when double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => (long)d,
        _ => fallback,
    };

    static List<object?> Map(object? value, List<object?> args, Dictionary<string, object?> kwargs)
    {
        var items = JinjaValues.Iterate(value);
        if (kwargs.TryGetValue("attribute", out var attribute))
        {
            var name = Text(attribute);
            return items.Select(item =>
            {
                var field = JinjaBuiltins.GetAttribute(item, name);
                return field is JinjaUndefined && kwargs.TryGetValue("default", out var d) ? d : field;
            }).ToList();
        }
        if (args.Count == 0) throw new JinjaRuntimeException("map needs a filter name or attribute=");
        var filter = Text(args[0]);
        var rest = args.Skip(1).ToList();
        return items.Select(item => Apply(filter, item, rest, [])).ToList();
    }

    static string Indent(string text, int width, bool first, bool blank)
    {
        var pad = new string(' ', width);
        var lines = text.Split('\n');
        var sb = new StringBuilder();
        for (int i = 0; i < lines.Length; i++)
        {
            if (i > 0) sb.Append('\n');
            bool indentThis = (i > 0 || first) && (blank || lines[i].Trim().Length > 0);
            if (indentThis) sb.Append(pad);
            sb.Append(lines[i]);
        }
        return sb.ToString();
    }
}
