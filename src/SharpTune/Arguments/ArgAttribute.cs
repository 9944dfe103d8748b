namespace SharpTune.Arguments;

/// <summary>
/// Marks an option-class property as a command-line flag <c>--name</c> (and a config-file key <c>name</c>).
/// Names are snake_case exactly as ms-swift spells them, so scripts and YAML files carry over unchanged.
/// </summary>
[AttributeUsage(AttributeTargets.Property, Inherited = true)]
public sealed class ArgAttribute(string name) : Attribute
{
    public string Name { get; } = name;

    /// <summary>One line shown by <see cref="ArgumentParser.Help{T}"/>.</summary>
    public string Help { get; init; } = "";

    /// <summary>Other accepted spellings, e.g. older ms-swift names such as <c>sft_type</c> for <c>train_type</c>.</summary>
    public string[] Aliases { get; init; } = [];
}
