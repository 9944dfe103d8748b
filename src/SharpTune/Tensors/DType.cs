namespace SharpTune.Tensors;

/// <summary>Element types of tensors and of checkpoint files. Compute is float32 (CPU) or bfloat16 storage (CUDA).</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    F64,
    I8,
    U8,
    I16,
    I32,
    I64,
    Bool,
}

public static class DTypeExtensions
{
    public static int SizeInBytes(this DType t) => t switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.F64 or DType.I64 => 8,
        DType.I8 or DType.U8 or DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>The spelling used in safetensors headers and Hugging Face configs' <c>torch_dtype</c>.</summary>
    public static string SafeTensorsName(this DType t) => t switch
    {
        DType.F32 => "F32", DType.F16 => "F16", DType.BF16 => "BF16", DType.F64 => "F64",
        DType.I8 => "I8", DType.U8 => "U8", DType.I16 => "I16", DType.I32 => "I32", DType.I64 => "I64", DType.Bool => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    public static bool TryParseSafeTensorsName(string name, out DType t)
    {
        switch (name)
        {
            case "F32": t = DType.F32; return true;
            case "F16": t = DType.F16; return true;
            case "BF16": t = DType.BF16; return true;
            case "F64": t = DType.F64; return true;
            case "I8": t = DType.I8; return true;
            case "U8": t = DType.U8; return true;
            case "I16": t = DType.I16; return true;
            case "I32": t = DType.I32; return true;
            case "I64": t = DType.I64; return true;
            case "BOOL": t = DType.Bool; return true;
            default: t = default; return false;
        }
    }

    /// <summary>Hugging Face <c>torch_dtype</c> / <c>dtype</c> strings ("bfloat16", "float16", "float32").</summary>
    public static DType? FromTorchName(string? name) => name switch
    {
        "float32" or "float" => DType.F32,
        "bfloat16" => DType.BF16,
        "float16" or "half" => DType.F16,
        _ => null,
    };

    public static string TorchName(this DType t) => t switch
    {
        DType.F32 => "float32", DType.BF16 => "bfloat16", DType.F16 => "float16",
        _ => throw new ArgumentOutOfRangeException(nameof(t), "not a floating-point weight type"),
    };
}
