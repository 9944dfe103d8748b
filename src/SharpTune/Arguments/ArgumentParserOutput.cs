using System.Collections;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace SharpTune.Arguments;

public static partial class ArgumentParser
{
    /// <summary>Usage text: every flag with its aliases, type, default (from a fresh <typeparamref name="T"/>) and help line.</summary>
    public static string Help<[DynamicallyAccessedMembers(OptionMembers)] T>(string command) where T : new()
    {
        var defaults = new T();
        var sb = new StringBuilder();
        sb.Append("usage: sharptune ").Append(command).Append(" [--name value ...] [--config FILE.yaml]\n\noptions:\n");
        sb.Append("  --config FILE\n      YAML or JSON file of option names to values; flags on the command line override it\n");
        foreach (var field in OptionSchema.For(typeof(T)).Fields)
        {
            var names = string.Join(", ", field.Arg.Aliases.Prepend(field.Name).Select(n => "--" + n));
            var type = ScalarValues.TypeName(field.ScalarType);
            if (field.IsList) type += " [" + type + " ...]";
            sb.Append("  ").Append(names).Append(' ').Append(type)
              .Append("  (default: ").Append(FormatDefault(field.Property.GetValue(defaults))).Append(")\n");
            if (field.Arg.Help.Length > 0) sb.Append("      ").Append(field.Arg.Help).Append('\n');
        }
        return sb.ToString();
    }

    static string FormatDefault(object? value) => value switch
    {
        null => "None",
        string s => s,
        IEnumerable items => "[" + string.Join(", ", items.Cast<object>().Select(FormatDefault)) + "]",
        bool b => b ? "true" : "false",
        Enum e => ScalarValues.SnakeCase(e.ToString()),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>
    /// The args.json ms-swift writes next to a run: every [Arg] property under its snake_case name, in declaration order,
    /// indented by two spaces. <typeparamref name="T"/> must be the options' own class (so trimming keeps its properties).
    /// </summary>
    public static string ToJson<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] T>(T options) where T : notnull
    {
        if (options.GetType() != typeof(T))
            throw new ArgumentException($"ToJson: pass the options as their own type {options.GetType().Name}, not {typeof(T).Name}");
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            foreach (var field in OptionSchema.For(typeof(T)).Fields)
            {
                json.WritePropertyName(field.Name);
                WriteValue(json, field.Property.GetValue(options));
            }
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    static void WriteValue(Utf8JsonWriter json, object? value)
    {
        switch (value)
        {
            case null: json.WriteNullValue(); break;
            case string s: json.WriteStringValue(s); break;
            case bool b: json.WriteBooleanValue(b); break;
            case int i: json.WriteNumberValue(i); break;
            case long l: json.WriteNumberValue(l); break;
            case float f when float.IsFinite(f): json.WriteNumberValue(f); break;
            case double d when double.IsFinite(d): json.WriteNumberValue(d); break;
            // Python's json writes these bare tokens; ms-swift tools read args.json with Python.
            case float or double: json.WriteRawValue(NonFinite(Convert.ToDouble(value, CultureInfo.InvariantCulture)), skipInputValidation: true); break;
            case Enum e: json.WriteStringValue(ScalarValues.SnakeCase(e.ToString())); break;
            case IEnumerable items:
                json.WriteStartArray();
                foreach (var item in items) WriteValue(json, item);
                json.WriteEndArray();
                break;
            default: throw new InvalidOperationException($"ToJson: unsupported value type {value.GetType().Name}");
        }
    }

    static string NonFinite(double d) => double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity";
}
