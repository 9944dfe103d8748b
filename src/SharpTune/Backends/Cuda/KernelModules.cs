using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace SharpTune.Backends.Cuda;

/// <summary>
/// Our CUDA C kernels (embedded resources <c>SharpTune.Kernels.*.cu</c>) compiled by NVRTC to a CUBIN for the device's
/// architecture on first use, and cached on disk keyed by source hash, architecture and driver version, so later starts
/// load the CUBIN directly. <c>common.cu</c> is prepended to every module.
/// </summary>
internal sealed unsafe class KernelModules(CudaDevice device)
{
    readonly Dictionary<string, nint> _modules = [];
    // Keyed by the (module, function) pair of string literals: no key is built per launch.
    readonly Dictionary<(string Module, string Function), (nint Function, uint SharedLimit)> _functions = [];

    /// <summary>Where compiled kernels are kept: $SHARPTUNE_CACHE or ~/.cache/sharptune, under kernels/.</summary>
    public static string CacheDirectory
    {
        get
        {
            var root = Environment.GetEnvironmentVariable("SHARPTUNE_CACHE");
            if (string.IsNullOrEmpty(root))
            {
                var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
                root = Path.Combine(string.IsNullOrEmpty(xdg) ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache") : xdg, "sharptune");
            }
            return Path.Combine(root, "kernels");
        }
    }

    /// <summary>
    /// The kernel <paramref name="function"/> of module <paramref name="module"/> (file name without .cu), allowed at least
    /// <paramref name="sharedBytes"/> of dynamic shared memory (above 48 KiB it must be asked for).
    /// </summary>
    public nint Function(string module, string function, uint sharedBytes)
    {
        var key = (module, function);
        lock (_functions)
        {
            if (!_functions.TryGetValue(key, out var entry))
            {
                var m = Module(module);
                var nameBytes = Encoding.ASCII.GetBytes(function + "\0");
                nint f;
                fixed (byte* n = nameBytes) Cu.Check(Cu.cuModuleGetFunction(out f, m, n), $"cuModuleGetFunction({function})");
                entry = (f, 48u << 10);
            }
            else if (sharedBytes <= entry.SharedLimit) return entry.Function;
            if (sharedBytes > entry.SharedLimit)
            {
                Cu.Check(Cu.cuFuncSetAttribute(entry.Function, Cu.AttrMaxDynamicSharedBytes, (int)sharedBytes), $"cuFuncSetAttribute({function})");
                entry.SharedLimit = sharedBytes;
            }
            _functions[key] = entry;
            return entry.Function;
        }
    }

    /// <summary>The registers per thread and local (spilled) bytes per thread the compiler gave a kernel.</summary>
    public (int Registers, int LocalBytes) Resources(string module, string function)
    {
        var f = Function(module, function, 0);
        Cu.Check(Cu.cuFuncGetAttribute(out int registers, Cu.FuncAttrNumRegs, f), "cuFuncGetAttribute");
        Cu.Check(Cu.cuFuncGetAttribute(out int local, Cu.FuncAttrLocalSizeBytes, f), "cuFuncGetAttribute");
        return (registers, local);
    }

    nint Module(string name)
    {
        if (_modules.TryGetValue(name, out var m)) return m;
        var source = ReadResource("common") + "\n" + ReadResource(name);
        var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(source)))[..16].ToLowerInvariant();
        var cachePath = Path.Combine(CacheDirectory, $"{name}-{hash}-{device.Architecture}-{device.DriverVersion}.cubin");
        byte[]? cubin = null;
        try { if (File.Exists(cachePath)) cubin = File.ReadAllBytes(cachePath); }
        catch (IOException) { }
        if (cubin == null)
        {
            cubin = Compile(name, source);
            try
            {
                Directory.CreateDirectory(CacheDirectory);
                AtomicFile.WriteAllBytes(cachePath, cubin);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // a cache we cannot write only costs a recompile
        }
        device.MakeCurrent();
        fixed (byte* image = cubin) Cu.Check(Cu.cuModuleLoadData(out m, image), $"cuModuleLoadData({name})");
        _modules[name] = m;
        return m;
    }

    /// <summary>
    /// A kernel's source: <c>$SHARPTUNE_KERNEL_SOURCES/{name}.cu</c> when that directory has it (for trying a kernel on a
    /// GPU machine without rebuilding; the cache key is the source's hash, so it compiles anew), else the embedded one.
    /// </summary>
    static string ReadResource(string name)
    {
        var overrides = Environment.GetEnvironmentVariable("SHARPTUNE_KERNEL_SOURCES");
        var overridden = string.IsNullOrEmpty(overrides) ? null : Path.Combine(overrides, name + ".cu");
        if (overridden != null && File.Exists(overridden)) return File.ReadAllText(overridden);
        using var stream = typeof(KernelModules).Assembly.GetManifestResourceStream($"SharpTune.Kernels.{name}.cu")
            ?? throw new InvalidOperationException($"kernel source {name}.cu is not embedded in the assembly");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    byte[] Compile(string name, string source)
    {
        var src = Encoding.UTF8.GetBytes(source + "\0");
        var fileName = Encoding.ASCII.GetBytes(name + ".cu\0");
        nint program;
        fixed (byte* s = src, n = fileName)
            Nvrtc.Check(Nvrtc.nvrtcCreateProgram(out program, s, n, 0, null, null), "nvrtcCreateProgram");
        try
        {
            string[] options = [$"--gpu-architecture={device.Architecture}", "--std=c++17", "-default-device"];
            var handles = options.Select(o => Marshal.StringToHGlobalAnsi(o)).ToArray();
            int status;
            try
            {
                fixed (nint* p = handles) status = Nvrtc.nvrtcCompileProgram(program, options.Length, (byte**)p);
            }
            finally
            {
                foreach (var h in handles) Marshal.FreeHGlobal(h);
            }
            if (status != 0)
            {
                Nvrtc.nvrtcGetProgramLogSize(program, out nuint logSize);
                var log = new byte[(int)logSize + 1];
                fixed (byte* l = log) Nvrtc.nvrtcGetProgramLog(program, l);
                throw new SharpTuneException($"NVRTC could not compile {name}.cu for {device.Architecture}: {Encoding.ASCII.GetString(log).TrimEnd('\0').Trim()}");
            }
            Nvrtc.Check(Nvrtc.nvrtcGetCUBINSize(program, out nuint size), "nvrtcGetCUBINSize");
            var cubin = new byte[(int)size];
            fixed (byte* c = cubin) Nvrtc.Check(Nvrtc.nvrtcGetCUBIN(program, c), "nvrtcGetCUBIN");
            return cubin;
        }
        finally
        {
            Nvrtc.nvrtcDestroyProgram(ref program);
        }
    }
}
