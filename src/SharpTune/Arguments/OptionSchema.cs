using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace SharpTune.Arguments;

/// <summary>One <c>[Arg]</c> property: its names, and the scalar type it (or each of its list items) holds.</summary>
internal sealed record OptionField(ArgAttribute Arg, PropertyInfo Property, Type ScalarType, bool IsList, bool IsNullable)
{
    public string Name => Arg.Name;

    /// <summary>A bool flag may appear bare (<c>--stream</c>), which means true.</summary>
    public bool IsBool => ScalarType == typeof(bool) && !IsList;
}

/// <summary>The flags of an option class, found once per type by reflection over its <c>[Arg]</c> properties.</summary>
internal sealed class OptionSchema
{
    static readonly ConcurrentDictionary<Type, OptionSchema> Cache = new();

    /// <summary>Reserved: names a config file rather than an option.</summary>
    public const string ConfigFlag = "config";

    public IReadOnlyList<OptionField> Fields { get; }
    readonly Dictionary<string, OptionField> byName = new(StringComparer.Ordinal);

    OptionSchema(Type type, PropertyInfo[] properties)
    {
        var fields = new List<OptionField>();
        foreach (var p in properties)
        {
            var arg = p.GetCustomAttribute<ArgAttribute>();
            if (arg == null) continue;
            if (!p.CanRead || !p.CanWrite)
                throw new InvalidOperationException($"{type.Name}.{p.Name}: an [Arg] property needs a getter and a setter");
            var field = Describe(type, p, arg);
            fields.Add(field);
            foreach (var name in arg.Aliases.Prepend(arg.Name))
            {
                if (name == ConfigFlag || !byName.TryAdd(name, field))
                    throw new InvalidOperationException($"{type.Name}.{p.Name}: flag name '{name}' is reserved or used twice");
            }
        }
        Fields = fields;
    }

    public static OptionSchema For([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type) =>
        Cache.GetOrAdd(type, t => new OptionSchema(t, type.GetProperties(BindingFlags.Public | BindingFlags.Instance)));

    public OptionField? Find(string name) => byName.GetValueOrDefault(name);

    public IEnumerable<string> AllNames => byName.Keys;

    static OptionField Describe(Type owner, PropertyInfo p, ArgAttribute arg)
    {
        var t = p.PropertyType;
        if (t.IsArray) return Checked(owner, p, arg, t.GetElementType()!, isList: true, isNullable: false);
        if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(List<>))
            return Checked(owner, p, arg, t.GetGenericArguments()[0], isList: true, isNullable: false);
        var underlying = Nullable.GetUnderlyingType(t);
        if (underlying != null) return Checked(owner, p, arg, underlying, isList: false, isNullable: true);
        return Checked(owner, p, arg, t, isList: false, isNullable: !t.IsValueType);
    }

    static OptionField Checked(Type owner, PropertyInfo p, ArgAttribute arg, Type scalar, bool isList, bool isNullable)
    {
        if (!ScalarValues.IsSupported(scalar))
            throw new InvalidOperationException($"{owner.Name}.{p.Name}: [Arg] does not support type {p.PropertyType.Name}");
        return new OptionField(arg, p, scalar, isList, isNullable);
    }
}
