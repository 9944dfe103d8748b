using System.Globalization;
using System.Text;

namespace SharpTune.Arguments;

/// <summary>A value that does not fit its option; the caller prefixes where it came from (flag or config key).</summary>
internal sealed class BadValueException(string message) : Exception(message);

/// <summary>Text to typed values and back, for the scalar types an option (or a list item) may have.</summary>
internal static class ScalarValues
{
    public static bool IsSupported(Type t) =>
        t == typeof(string) || t == typeof(int) || t == typeof(long) || t == typeof(float) || t == typeof(double) || t == typeof(bool) || t.IsEnum;

    /// <summary>How help text names the type of a value.</summary>
    public static string TypeName(Type t) =>
        t == typeof(string) ? "str" : t == typeof(int) || t == typeof(long) ? "int" : t == typeof(bool) ? "bool"
        : t.IsEnum ? "{" + string.Join(",", EnumNames(t)) + "}" : "float";

    public static object Parse(Type t, string text)
    {
        if (t == typeof(string)) return text;
        if (t == typeof(bool)) return ParseBool(text);
        if (t == typeof(int)) return (int)ParseInteger(text, int.MinValue, int.MaxValue);
        if (t == typeof(long)) return ParseInteger(text, long.MinValue, long.MaxValue);
        if (t == typeof(float)) return (float)ParseReal(text);
        if (t == typeof(double)) return ParseReal(text);
        return ParseEnum(t, text);
    }

    static bool ParseBool(string text) => text.ToLowerInvariant() switch
    {
        "true" or "1" or "yes" => true,
        "false" or "0" or "no" => false,
        _ => throw new BadValueException($"'{text}' is not a boolean (true/false)"),
    };

    static long ParseInteger(string text, long min, long max)
    {
        if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
            throw new BadValueException($"'{text}' is not an integer");
        if (v < min || v > max) throw new BadValueException($"'{text}' is out of range ({min}..{max})");
        return v;
    }

    static double ParseReal(string text)
    {
        // Python's float() spellings, which ms-swift scripts and YAML files use.
        switch (text.ToLowerInvariant())
        {
            case "inf" or "+inf" or "infinity": return double.PositiveInfinity;
            case "-inf" or "-infinity": return double.NegativeInfinity;
            case "nan": return double.NaN;
        }
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)) return v;
        throw new BadValueException($"'{text}' is not a number");
    }

    static object ParseEnum(Type t, string text)
    {
        var names = EnumNames(t);
        var values = Enum.GetValuesAsUnderlyingType(t);
        for (int i = 0; i < names.Length; i++)
            if (string.Equals(names[i], text, StringComparison.OrdinalIgnoreCase) ||
                string.Equals(names[i], text.Replace('-', '_'), StringComparison.OrdinalIgnoreCase))
                return Enum.ToObject(t, values.GetValue(i)!);
        var hint = Suggestions.DidYouMean(text, names);
        throw new BadValueException($"'{text}' is not one of {string.Join(", ", names)}{hint}");
    }

    /// <summary>Enum member names as ms-swift spells the values: <c>LastRound</c> is <c>last_round</c>.</summary>
    public static string[] EnumNames(Type t) => Enum.GetNames(t).Select(SnakeCase).ToArray();

    public static string SnakeCase(string pascal)
    {
        var sb = new StringBuilder(pascal.Length + 4);
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(pascal[i - 1]) || char.IsDigit(pascal[i - 1]))) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>Builds the property's array or List&lt;T&gt; from parsed items.</summary>
    public static object MakeList(Type propertyType, Type scalar, IReadOnlyList<object> items)
    {
        if (propertyType.IsArray)
        {
            var array = Array.CreateInstance(scalar, items.Count);
            for (int i = 0; i < items.Count; i++) array.SetValue(items[i], i);
            return array;
        }
        if (scalar == typeof(string)) return items.Cast<string>().ToList();
        if (scalar == typeof(int)) return items.Cast<int>().ToList();
        if (scalar == typeof(long)) return items.Cast<long>().ToList();
        if (scalar == typeof(float)) return items.Cast<float>().ToList();
        if (scalar == typeof(double)) return items.Cast<double>().ToList();
        if (scalar == typeof(bool)) return items.Cast<bool>().ToList();
        throw new InvalidOperationException($"[Arg] does not support List<{scalar.Name}>; use an array");
    }
}
