namespace SharpTune.Templates.Jinja;

/// <summary>Attribute and item access, global functions and tests. Filters live in <see cref="JinjaFilters"/>, string methods in <see cref="JinjaMethods"/>.</summary>
static class JinjaBuiltins
{
    public static void AddGlobals(Dictionary<string, object?> globals)
    {
        globals["raise_exception"] = new JinjaFunction("raise_exception", (args, _) =>
            throw new JinjaRuntimeException("the template raised an error: " + (args.Count > 0 ? JinjaValues.ToStr(args[0]) : "")));
        globals["strftime_now"] = new JinjaFunction("strftime_now", (args, _) =>
            Strftime.Format(DateTime.Now, args.Count > 0 ? JinjaValues.ToStr(args[0]) : "%Y-%m-%d"));
        globals["namespace"] = new JinjaFunction("namespace", (args, kwargs) =>
        {
            var ns = new JinjaNamespace();
            foreach (var arg in args)
                if (arg is Dictionary<string, object?> initial) foreach (var (k, v) in initial) ns.Attributes[k] = v;
            foreach (var (k, v) in kwargs) ns.Attributes[k] = v;
            return ns;
        });
        globals["dict"] = new JinjaFunction("dict", (args, kwargs) =>
        {
            var dict = args.Count > 0 && args[0] is Dictionary<string, object?> d ? new Dictionary<string, object?>(d) : [];
            foreach (var (k, v) in kwargs) dict[k] = v;
            return dict;
        });
        globals["range"] = new JinjaFunction("range", (args, _) =>
        {
            long start = 0, stop, step = 1;
            if (args.Count == 1) stop = JinjaValues.ToLong(args[0]);
            else if (args.Count >= 2)
            {
                start = JinjaValues.ToLong(args[0]);
                stop = JinjaValues.ToLong(args[1]);
                if (args.Count > 2) step = JinjaValues.ToLong(args[2]);
            }
            else throw new JinjaRuntimeException("range() needs 1 to 3 arguments");
            if (step == 0) throw new JinjaRuntimeException("range() step cannot be zero");
            var result = new List<object?>();
            for (long i = start; step > 0 ? i < stop : i > stop; i += step) result.Add(i);
            return result;
        });
    }

    public static object? GetAttribute(object? target, string name) => target switch
    {
        JinjaUndefined u => throw new JinjaRuntimeException($"'{u.Name}' is undefined (reading '.{name}')"),
        Dictionary<string, object?> dict when JinjaMethods.IsDictMethod(name) => JinjaMethods.BindDict(dict, name),
        Dictionary<string, object?> dict => dict.TryGetValue(name, out var value) ? value : new JinjaUndefined(name),
        JinjaNamespace ns => ns.Attributes.TryGetValue(name, out var value) ? value : new JinjaUndefined(name),
        string s => JinjaMethods.BindString(s, name),
        _ => new JinjaUndefined(name),
    };

    public static object? GetItem(object? target, object? key)
    {
        switch (target)
        {
            case JinjaUndefined u: throw new JinjaRuntimeException($"'{u.Name}' is undefined (reading [{JinjaValues.Repr(key)}])");
            case List<object?> list when key is long or bool:
                long index = JinjaValues.ToLong(key);
                if (index < 0) index += list.Count;
                return index >= 0 && index < list.Count ? list[(int)index] : new JinjaUndefined($"[{key}]");
            case string s when key is long or bool:
                long i = JinjaValues.ToLong(key);
                if (i < 0) i += s.Length;
                return i >= 0 && i < s.Length ? s[(int)i].ToString() : new JinjaUndefined($"[{key}]");
            case Dictionary<string, object?> dict when key is string k:
                return dict.TryGetValue(k, out var value) ? value : GetAttribute(dict, k);
            case JinjaNamespace or string when key is string name:
                return GetAttribute(target, name);
            default:
                return new JinjaUndefined($"[{JinjaValues.Repr(key)}]");
        }
    }

    public static bool ApplyTest(string name, object? value, List<object?> args)
    {
        object? Arg(int i) => i < args.Count ? args[i] : throw new JinjaRuntimeException($"test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not JinjaUndefined,
            "undefined" => value is JinjaUndefined,
            "none" => value == null,
            "string" => value is string,
            "number" => value is long or double,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "mapping" => value is Dictionary<string, object?> or JinjaNamespace,
            "iterable" => value is string or List<object?> or Dictionary<string, object?>,
            "sequence" => value is string or List<object?> or Dictionary<string, object?>,
            "callable" => value is JinjaFunction,
            "odd" => JinjaValues.ToLong(value) % 2 != 0,
            "even" => JinjaValues.ToLong(value) % 2 == 0,
            "divisibleby" => JinjaValues.ToLong(value) % JinjaValues.ToLong(Arg(0)) == 0,
            "lower" => value is string s && s == s.ToLowerInvariant(),
            "upper" => value is string s && s == s.ToUpperInvariant(),
            "eq" or "equalto" or "==" => JinjaValues.Equals(value, Arg(0)),
            "ne" or "!=" => !JinjaValues.Equals(value, Arg(0)),
            "lt" or "lessthan" or "<" => JinjaValues.Compare(value, Arg(0)) < 0,
            "le" or "<=" => JinjaValues.Compare(value, Arg(0)) <= 0,
            "gt" or "greaterthan" or ">" => JinjaValues.Compare(value, Arg(0)) > 0,
            "ge" or ">=" => JinjaValues.Compare(value, Arg(0)) >= 0,
            "in" => JinjaValues.Contains(Arg(0), value),
            "sameas" => ReferenceEquals(value, Arg(0)) || (value == null && Arg(0) == null) || (value is bool b && Arg(0) is bool c && b == c),
            _ => throw new JinjaRuntimeException($"unknown test '{name}'"),
        };
    }
}
