using System.Diagnostics.CodeAnalysis;

namespace SharpTune.Arguments;

/// <summary>
/// ms-swift-style arguments: <c>--name value</c>, <c>--name=value</c>, bare <c>--flag</c> for true, lists as
/// <c>--target_modules q_proj v_proj</c>, and <c>--config FILE.yaml|.json</c> whose keys the command line overrides.
/// </summary>
public static partial class ArgumentParser
{
    const DynamicallyAccessedMemberTypes OptionMembers = DynamicallyAccessedMemberTypes.PublicProperties | DynamicallyAccessedMemberTypes.PublicParameterlessConstructor;

    public static T Parse<[DynamicallyAccessedMembers(OptionMembers)] T>(string[] argv) where T : new()
    {
        var schema = OptionSchema.For(typeof(T));
        var flags = Tokenize(argv);
        var options = new T();
        foreach (var (_, values) in flags.Where(f => f.Name == OptionSchema.ConfigFlag))
        {
            if (values.Count != 1) throw new SharpTuneException("--config: expected one file name");
            ApplyConfig(schema, options, values[0]);
        }
        foreach (var (name, values) in flags.Where(f => f.Name != OptionSchema.ConfigFlag))
        {
            var field = schema.Find(name) ?? throw new SharpTuneException($"unknown argument --{name}{Suggestions.DidYouMean(name, schema.AllNames)}");
            try { Assign(field, options, FromCommandLine(field, values)); }
            catch (BadValueException e) { throw new SharpTuneException($"--{name}: {e.Message}"); }
        }
        return options;
    }

    /// <summary>Splits argv into flags, each with the tokens that follow it up to the next <c>--</c> flag.</summary>
    static List<(string Name, List<string> Values)> Tokenize(string[] argv)
    {
        var flags = new List<(string, List<string>)>();
        foreach (var token in argv)
        {
            if (token.StartsWith("--", StringComparison.Ordinal) && token.Length > 2)
            {
                int eq = token.IndexOf('=');
                flags.Add(eq < 0 ? (token[2..], new List<string>()) : (token[2..eq], new List<string> { token[(eq + 1)..] }));
            }
            else if (flags.Count == 0)
                throw new SharpTuneException($"unexpected argument '{token}': options are given as --name value");
            else
                flags[^1].Item2.Add(token);
        }
        return flags;
    }

    static object? FromCommandLine(OptionField field, List<string> values)
    {
        if (field.IsList)
        {
            if (values.Count == 0) throw new BadValueException("expected one or more values");
            return ScalarValues.MakeList(field.Property.PropertyType, field.ScalarType, values.Select(v => ScalarValues.Parse(field.ScalarType, v)).ToList());
        }
        if (values.Count == 0)
            return field.IsBool ? true : throw new BadValueException("expected a value");
        if (values.Count > 1)
            throw new BadValueException($"expected one value, got {values.Count} ('{string.Join("' '", values)}')");
        // Python's None, so that scripts can reset an optional number to "not set".
        if (field.IsNullable && field.ScalarType != typeof(string) && values[0] == "None") return null;
        return ScalarValues.Parse(field.ScalarType, values[0]);
    }

    static void ApplyConfig(OptionSchema schema, object options, string path)
    {
        foreach (var (key, value) in ConfigFile.Load(path))
        {
            var field = schema.Find(key) ?? throw new SharpTuneException($"{path}: unknown key '{key}'{Suggestions.DidYouMean(key, schema.AllNames)}");
            try { Assign(field, options, FromConfig(field, value)); }
            catch (BadValueException e) { throw new SharpTuneException($"{path}: key '{key}': {e.Message}"); }
        }
    }

    static object? FromConfig(OptionField field, ConfigValue value)
    {
        if (value.Items != null)
        {
            if (!field.IsList) throw new BadValueException("expected a single value, got a list");
            return ScalarValues.MakeList(field.Property.PropertyType, field.ScalarType,
                value.Items.Select(item => ScalarValues.Parse(field.ScalarType, item ?? throw new BadValueException("list items cannot be null"))).ToList());
        }
        if (value.Scalar == null)
            return field.IsNullable || field.IsList ? null : throw new BadValueException("null is not allowed here");
        var parsed = ScalarValues.Parse(field.ScalarType, value.Scalar);
        return field.IsList ? ScalarValues.MakeList(field.Property.PropertyType, field.ScalarType, [parsed]) : parsed;
    }

    static void Assign(OptionField field, object options, object? value) => field.Property.SetValue(options, value);
}
