using System.Reflection;
using System.Runtime.InteropServices;

namespace SharpTune.Backends.Cuda;

/// <summary>
/// Finds the CUDA libraries at run time: the driver (libcuda.so.1) and whichever of CUDA 13 or 12's NVRTC and cuBLAS is
/// installed. The P/Invoke declarations name the logical libraries "cuda", "nvrtc", "cublas" and "cublasLt"; this resolver
/// maps them.
/// </summary>
internal static class CudaLibraries
{
    static readonly string[] Driver = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"];
    static readonly string[] Nvrtc = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "nvrtc64_130_0.dll", "nvrtc64_120_0.dll"];
    static readonly string[] Cublas = ["libcublas.so.13", "libcublas.so.12", "libcublas.so", "cublas64_13.dll", "cublas64_12.dll"];
    static readonly string[] CublasLt = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so", "cublasLt64_13.dll", "cublasLt64_12.dll"];
    static readonly Dictionary<string, nint> Loaded = [];
    static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        NativeLibrary.SetDllImportResolver(typeof(CudaLibraries).Assembly, Resolve);
    }

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        string[]? candidates = name switch { "cuda" => Driver, "nvrtc" => Nvrtc, "cublas" => Cublas, "cublasLt" => CublasLt, _ => null };
        if (candidates == null) return 0;
        lock (Loaded)
        {
            if (Loaded.TryGetValue(name, out var h)) return h;
            foreach (var c in candidates)
                if (NativeLibrary.TryLoad(c, assembly, path, out h) || NativeLibrary.TryLoad(c, out h))
                {
                    Loaded[name] = h;
                    return h;
                }
        }
        throw new DllNotFoundException($"none of {string.Join(", ", candidates)} could be loaded (set LD_LIBRARY_PATH to the CUDA libraries, e.g. /usr/local/cuda/lib64)");
    }
}

/// <summary>The CUDA driver API calls the backend uses. Every call returns a CUresult; <see cref="Check"/> turns failures into exceptions.</summary>
internal static unsafe partial class Cu
{
    const string Lib = "cuda";

    [LibraryImport(Lib)] public static partial int cuInit(uint flags);
    [LibraryImport(Lib)] public static partial int cuDriverGetVersion(out int version);
    [LibraryImport(Lib)] public static partial int cuDeviceGetCount(out int count);
    [LibraryImport(Lib)] public static partial int cuDeviceGet(out int device, int ordinal);
    [LibraryImport(Lib)] public static partial int cuDeviceGetAttribute(out int value, int attribute, int device);
    [LibraryImport(Lib)] public static partial int cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRetain(out nint context, int device);
    [LibraryImport(Lib)] public static partial int cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(Lib)] public static partial int cuCtxSetCurrent(nint context);
    [LibraryImport(Lib)] public static partial int cuMemGetInfo_v2(out nuint free, out nuint total);
    [LibraryImport(Lib)] public static partial int cuMemAlloc_v2(out nint pointer, nuint bytes);
    [LibraryImport(Lib)] public static partial int cuMemFree_v2(nint pointer);
    [LibraryImport(Lib)] public static partial int cuMemcpyHtoDAsync_v2(nint dst, void* src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemcpyDtoHAsync_v2(void* dst, nint src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemcpyDtoDAsync_v2(nint dst, nint src, nuint bytes, nint stream);
    [LibraryImport(Lib)] public static partial int cuMemsetD8Async(nint dst, byte value, nuint count, nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamCreate(out nint stream, uint flags);
    [LibraryImport(Lib)] public static partial int cuStreamDestroy_v2(nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamSynchronize(nint stream);
    [LibraryImport(Lib)] public static partial int cuStreamWaitEvent(nint stream, nint evt, uint flags);
    [LibraryImport(Lib)] public static partial int cuEventCreate(out nint evt, uint flags);
    [LibraryImport(Lib)] public static partial int cuEventRecord(nint evt, nint stream);
    [LibraryImport(Lib)] public static partial int cuEventSynchronize(nint evt);
    [LibraryImport(Lib)] public static partial int cuEventDestroy_v2(nint evt);
    [LibraryImport(Lib)] public static partial int cuMemAllocHost_v2(out nint pointer, nuint bytes);
    [LibraryImport(Lib)] public static partial int cuMemFreeHost(nint pointer);
    [LibraryImport(Lib)] public static partial int cuModuleLoadData(out nint module, void* image);
    [LibraryImport(Lib)] public static partial int cuModuleGetFunction(out nint function, nint module, byte* name);
    [LibraryImport(Lib)] public static partial int cuFuncSetAttribute(nint function, int attribute, int value);
    [LibraryImport(Lib)] public static partial int cuFuncGetAttribute(out int value, int attribute, nint function);
    [LibraryImport(Lib)] public static partial int cuLaunchKernel(nint f, uint gx, uint gy, uint gz, uint bx, uint by, uint bz,
                                                                 uint sharedBytes, nint stream, void** args, void** extra);
    [LibraryImport(Lib)] public static partial int cuLaunchKernelEx(LaunchConfig* config, nint f, void** args, void** extra);
    [LibraryImport(Lib)] public static partial int cuGetErrorName(int error, out byte* name);
    [LibraryImport(Lib)] public static partial int cuStreamBeginCapture_v2(nint stream, int mode);
    [LibraryImport(Lib)] public static partial int cuStreamEndCapture(nint stream, out nint graph);
    [LibraryImport(Lib)] public static partial int cuGraphInstantiateWithFlags(out nint exec, nint graph, ulong flags);
    [LibraryImport(Lib)] public static partial int cuGraphLaunch(nint exec, nint stream);
    [LibraryImport(Lib)] public static partial int cuGraphExecDestroy(nint exec);
    [LibraryImport(Lib)] public static partial int cuGraphDestroy(nint graph);

    /// <summary>CUlaunchConfig.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct LaunchConfig
    {
        public uint GridX, GridY, GridZ, BlockX, BlockY, BlockZ, SharedBytes;
        public nint Stream;
        public LaunchAttribute* Attributes;
        public uint AttributeCount;
    }

    /// <summary>CUlaunchAttribute: an id, then a 64-byte value union of which these attributes use the first int.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 72)]
    public struct LaunchAttribute
    {
        [FieldOffset(0)] public int Id;
        [FieldOffset(8)] public int Value;
    }

    /// <summary>CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION: the kernel may start before the previous one ends.</summary>
    public const int LaunchAttributeProgrammaticStreamSerialization = 6;

    /// <summary>CU_STREAM_CAPTURE_MODE_RELAXED: module loads and allocations may happen while a stream records.</summary>
    public const int CaptureModeRelaxed = 2;

    /// <summary>CU_STREAM_NON_BLOCKING and CU_EVENT_DISABLE_TIMING: a copy stream that never waits on the legacy stream, and
    /// events used only for ordering.</summary>
    public const uint StreamNonBlocking = 1, EventDisableTiming = 2;

    public const int CUDA_ERROR_OUT_OF_MEMORY = 2;
    public const int AttrMaxDynamicSharedBytes = 8;
    // CUfunction_attribute values of cuFuncGetAttribute.
    public const int FuncAttrLocalSizeBytes = 3, FuncAttrNumRegs = 4;
    public const int AttrComputeCapabilityMajor = 75, AttrComputeCapabilityMinor = 76, AttrMultiprocessorCount = 16;

    public static void Check(int status, string call)
    {
        if (status == 0) return;
        string name = "unknown";
        if (cuGetErrorName(status, out var p) == 0 && p != null) name = Marshal.PtrToStringAnsi((nint)p) ?? name;
        if (status == CUDA_ERROR_OUT_OF_MEMORY) throw new CudaOutOfMemoryException(call);
        throw new SharpTuneException($"CUDA {call} failed: {name} ({status})");
    }
}

/// <summary>Device memory ran out; the message says what to change.</summary>
public sealed class CudaOutOfMemoryException(string call) : SharpTuneException(
    $"CUDA out of device memory in {call}: use a smaller --per_device_train_batch_size or --max_length, --gradient_checkpointing true, or --device cpu");

/// <summary>NVRTC: compiles our CUDA C kernels to a CUBIN for the device at run time.</summary>
internal static unsafe partial class Nvrtc
{
    const string Lib = "nvrtc";

    [LibraryImport(Lib)] public static partial int nvrtcCreateProgram(out nint program, byte* source, byte* name, int headers, byte** headerSources, byte** headerNames);
    [LibraryImport(Lib)] public static partial int nvrtcCompileProgram(nint program, int optionCount, byte** options);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLogSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial int nvrtcGetProgramLog(nint program, byte* log);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBINSize(nint program, out nuint size);
    [LibraryImport(Lib)] public static partial int nvrtcGetCUBIN(nint program, byte* cubin);
    [LibraryImport(Lib)] public static partial int nvrtcDestroyProgram(ref nint program);

    public static void Check(int status, string call)
    {
        if (status != 0) throw new SharpTuneException($"NVRTC {call} failed with status {status}");
    }
}

/// <summary>cuBLAS (v2 API): the matrix products.</summary>
internal static unsafe partial class Cublas
{
    const string Lib = "cublas";

    [LibraryImport(Lib)] public static partial int cublasCreate_v2(out nint handle);
    [LibraryImport(Lib)] public static partial int cublasDestroy_v2(nint handle);
    [LibraryImport(Lib)] public static partial int cublasSetStream_v2(nint handle, nint stream);
    [LibraryImport(Lib)] public static partial int cublasGemmEx(nint handle, int transa, int transb, int m, int n, int k, void* alpha,
        nint a, int aType, int lda, nint b, int bType, int ldb, void* beta, nint c, int cType, int ldc, int computeType, int algo);

    public const int OpN = 0, OpT = 1;
    public const int R32F = 0, R16BF = 14;
    public const int Compute32F = 68;
    public const int GemmDefault = -1;

    public static void Check(int status, string call)
    {
        if (status == 3) throw new CudaOutOfMemoryException(call);
        if (status != 0) throw new SharpTuneException($"cuBLAS {call} failed with status {status}");
    }
}

/// <summary>
/// cuBLASLt: matrix products with a fused epilogue (the bias add). Its calls return cublasStatus_t, checked with
/// <see cref="Cublas.Check"/>. The constants are cublasLt.h's (CUDA 12 and 13 agree on them).
/// </summary>
internal static unsafe partial class CublasLt
{
    const string Lib = "cublasLt";

    [LibraryImport(Lib)] public static partial int cublasLtCreate(out nint handle);
    [LibraryImport(Lib)] public static partial int cublasLtDestroy(nint handle);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescCreate(out nint desc, int computeType, int scaleType);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescDestroy(nint desc);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulDescSetAttribute(nint desc, int attribute, void* value, nuint bytes);
    [LibraryImport(Lib)] public static partial int cublasLtMatrixLayoutCreate(out nint layout, int type, ulong rows, ulong cols, long ld);
    [LibraryImport(Lib)] public static partial int cublasLtMatrixLayoutDestroy(nint layout);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceCreate(out nint preference);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceDestroy(nint preference);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulPreferenceSetAttribute(nint preference, int attribute, void* value, nuint bytes);
    [LibraryImport(Lib)] public static partial int cublasLtMatmulAlgoGetHeuristic(nint handle, nint desc, nint a, nint b, nint c, nint d,
        nint preference, int requested, HeuristicResult* results, out int returned);
    [LibraryImport(Lib)] public static partial int cublasLtMatmul(nint handle, nint desc, void* alpha, nint a, nint aLayout, nint b, nint bLayout,
        void* beta, nint c, nint cLayout, nint d, nint dLayout, MatmulAlgo* algo, nint workspace, nuint workspaceBytes, nint stream);

    /// <summary>cublasLtMatmulAlgo_t: an opaque configuration the heuristic fills in and cublasLtMatmul reads.</summary>
    public struct MatmulAlgo
    {
        public fixed ulong Data[8];
    }

    /// <summary>cublasLtMatmulHeuristicResult_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct HeuristicResult
    {
        public MatmulAlgo Algo;
        public nuint WorkspaceSize;
        public int State;
        public float WavesCount;
        public fixed int Reserved[4];
    }

    /// <summary>cublasLtMatmulDescAttributes_t: TRANSA and TRANSB (int32 cublasOperation_t), EPILOGUE (uint32),
    /// BIAS_POINTER (a device pointer), BIAS_DATA_TYPE (int32 cudaDataType).</summary>
    public const int DescTransA = 3, DescTransB = 4, DescEpilogue = 7, DescBiasPointer = 8, DescBiasDataType = 26;

    /// <summary>CUBLASLT_EPILOGUE_BIAS: adds a bias vector, one value per row of D, broadcast over D's columns.</summary>
    public const uint EpilogueBias = 4;

    /// <summary>cublasLtMatmulPreferenceAttributes_t: MAX_WORKSPACE_BYTES (uint64) and MIN_ALIGNMENT_A..D_BYTES (uint32).</summary>
    public const int PreferenceMaxWorkspaceBytes = 1, PreferenceMinAlignmentA = 5, PreferenceMinAlignmentB = 6,
                     PreferenceMinAlignmentC = 7, PreferenceMinAlignmentD = 8;

    /// <summary>CUBLAS_STATUS_NOT_SUPPORTED: the heuristic has no algorithm for the configuration.</summary>
    public const int StatusNotSupported = 15;
}
