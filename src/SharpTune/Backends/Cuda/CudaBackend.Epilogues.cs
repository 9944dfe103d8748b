using SharpTune.Tensors;

namespace SharpTune.Backends.Cuda;

/// <summary>
/// Linear layers with a bias as one cuBLASLt product whose epilogue adds the bias (CUBLASLT_EPILOGUE_BIAS), instead of a
/// product and then an elementwise pass that reads and rewrites the whole output. The handle, the descriptor, the
/// preference and the workspace are made on first use; each shape's layouts and algorithm are chosen once and kept,
/// since a training step repeats a few shapes and the heuristic costs tens of microseconds of host time per query.
/// </summary>
public sealed unsafe partial class CudaBackend
{
    /// <summary>The workspace cuBLAS recommends for Hopper (cublasSetWorkspace), offered to every product.</summary>
    const long EpilogueWorkspaceBytes = 32L << 20;
    /// <summary>SHARPTUNE_CUDA_EPILOGUE=0: biases are added by a separate kernel after the product (for measuring what the
    /// epilogue brings, or ruling it out).</summary>
    readonly bool _epilogues = Environment.GetEnvironmentVariable("SHARPTUNE_CUDA_EPILOGUE") != "0";
    nint _cublasLt, _biasMatmul, _biasPreference, _epilogueWorkspace;
    /// <summary>Per shape and operand alignment, what the heuristic chose; null where it found no algorithm.</summary>
    readonly Dictionary<(int M, int N, int K, int Alignment), BiasPlan?> _biasPlans = [];

    /// <summary>cuBLASLt's column-major layouts of W, x and y for one shape, and the algorithm chosen for them.</summary>
    sealed class BiasPlan(nint weight, nint x, nint y, CublasLt.MatmulAlgo algo)
    {
        public readonly nint Weight = weight, X = x, Y = y;
        public readonly CublasLt.MatmulAlgo Algo = algo;
    }

    /// <summary>
    /// y = x·weightᵀ + bias + beta·y in one cublasLtMatmul, for x [m, k], weight [n, k] and y [m, n] of bfloat16 and a float32
    /// bias [n]; false, with nothing done, for other types or shapes, with SHARPTUNE_CUDA_EPILOGUE=0, or when the heuristic
    /// has no algorithm for the shape.
    /// </summary>
    bool TryMatMulBias(Tensor x, Tensor weight, Tensor bias, Tensor y, float beta)
    {
        if (!_epilogues) return false;
        Own(x);
        Own(weight);
        Own(bias);
        Own(y);
        if (x.DType != DType.BF16 || weight.DType != DType.BF16 || y.DType != DType.BF16 || bias.DType != DType.F32) return false;
        int m = x.Rows, k = x.RowLength, n = weight.Rows;
        if (m == 0 || n == 0 || k == 0 || weight.RowLength != k || y.Rows != m || y.RowLength != n || bias.Count != n) return false;
        _device.MakeCurrent();
        var plan = BiasPlanFor(m, n, k, Alignment(x, weight, y));
        if (plan == null) return false;
        // cublasLtMatmul's type table lists only a bfloat16 bias for bfloat16 products, so the bias goes through a bfloat16
        // copy: n elements converted, against the m·n a separate bias pass reads and writes. An allocator block, so it is as
        // aligned as the heuristic assumed.
        using var bias16 = Converted(bias, DType.BF16);
        nint biasAddress = bias16.Address;
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_biasMatmul, CublasLt.DescBiasPointer, &biasAddress, (nuint)sizeof(nint)),
                     "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
        float alpha = 1f;
        var algo = plan.Algo;
        long started = ProfileStart();
        // Row-major y = x·Wᵀ is column-major yᵀ [n, m] = Wᵀ·xᵀ: the weight is A, transposed, x is B; the bias is per row of
        // yᵀ, which is per output feature.
        Cublas.Check(CublasLt.cublasLtMatmul(_cublasLt, _biasMatmul, &alpha, weight.Address, plan.Weight, x.Address, plan.X, &beta,
                                             y.Address, plan.Y, y.Address, plan.Y, &algo, _epilogueWorkspace,
                                             (nuint)EpilogueWorkspaceBytes, _device.Stream), "cublasLtMatmul");
        if (_profile != null) ProfileEnd($"gemm+bias {m}x{n}x{k}", started);
        return true;
    }

    /// <summary>
    /// The largest power of two up to 256 dividing every operand's address. The heuristic assumes 256-byte aligned
    /// operands unless told less (MIN_ALIGNMENT_*_BYTES), and row views need not be.
    /// </summary>
    static int Alignment(params ReadOnlySpan<Tensor> operands)
    {
        long bits = 256;
        foreach (var t in operands) bits |= t.Address;
        return (int)(bits & -bits);
    }

    /// <summary>The shape's plan, asking the heuristic for the best algorithm the first time the shape is seen.</summary>
    BiasPlan? BiasPlanFor(int m, int n, int k, int alignment)
    {
        var key = (m, n, k, alignment);
        if (_biasPlans.TryGetValue(key, out var plan)) return plan;
        if (_cublasLt == 0) CreateEpilogues();
        nint weightLayout = Layout(k, n, k), xLayout = Layout(k, m, k), yLayout = Layout(n, m, n);
        uint minimum = (uint)alignment;
        foreach (int attribute in (ReadOnlySpan<int>)[CublasLt.PreferenceMinAlignmentA, CublasLt.PreferenceMinAlignmentB,
                                                      CublasLt.PreferenceMinAlignmentC, CublasLt.PreferenceMinAlignmentD])
            Cublas.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(_biasPreference, attribute, &minimum, sizeof(uint)),
                         "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT)");
        CublasLt.HeuristicResult result;
        int status = CublasLt.cublasLtMatmulAlgoGetHeuristic(_cublasLt, _biasMatmul, weightLayout, xLayout, yLayout, yLayout,
                                                             _biasPreference, 1, &result, out int found);
        // NOT_SUPPORTED is the heuristic's "no algorithm for this configuration": the caller takes the general path.
        if (status != CublasLt.StatusNotSupported) Cublas.Check(status, $"cublasLtMatmulAlgoGetHeuristic({m}x{n}x{k})");
        if (status == 0 && found > 0 && result.State == 0) plan = new BiasPlan(weightLayout, xLayout, yLayout, result.Algo);
        else
        {
            CublasLt.cublasLtMatrixLayoutDestroy(weightLayout);
            CublasLt.cublasLtMatrixLayoutDestroy(xLayout);
            CublasLt.cublasLtMatrixLayoutDestroy(yLayout);
        }
        _biasPlans[key] = plan;
        return plan;
    }

    /// <summary>A column-major bfloat16 layout of <paramref name="rows"/> × <paramref name="cols"/>.</summary>
    static nint Layout(int rows, int cols, int ld)
    {
        Cublas.Check(CublasLt.cublasLtMatrixLayoutCreate(out nint layout, Cublas.R16BF, (ulong)rows, (ulong)cols, ld), "cublasLtMatrixLayoutCreate");
        return layout;
    }

    /// <summary>
    /// The descriptor every bias product shares (float32 accumulation and scale, W transposed, the bias epilogue on a
    /// bfloat16 bias), the heuristic's preference with the workspace limit, the workspace, and last the handle, whose
    /// presence marks the rest made.
    /// </summary>
    void CreateEpilogues()
    {
        Cublas.Check(CublasLt.cublasLtMatmulDescCreate(out _biasMatmul, Cublas.Compute32F, Cublas.R32F), "cublasLtMatmulDescCreate");
        int transA = Cublas.OpT, transB = Cublas.OpN, biasType = Cublas.R16BF;
        uint epilogue = CublasLt.EpilogueBias;
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_biasMatmul, CublasLt.DescTransA, &transA, sizeof(int)), "cublasLtMatmulDescSetAttribute(TRANSA)");
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_biasMatmul, CublasLt.DescTransB, &transB, sizeof(int)), "cublasLtMatmulDescSetAttribute(TRANSB)");
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_biasMatmul, CublasLt.DescEpilogue, &epilogue, sizeof(uint)), "cublasLtMatmulDescSetAttribute(EPILOGUE)");
        Cublas.Check(CublasLt.cublasLtMatmulDescSetAttribute(_biasMatmul, CublasLt.DescBiasDataType, &biasType, sizeof(int)),
                     "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE)");
        Cublas.Check(CublasLt.cublasLtMatmulPreferenceCreate(out _biasPreference), "cublasLtMatmulPreferenceCreate");
        ulong workspaceBytes = EpilogueWorkspaceBytes;
        Cublas.Check(CublasLt.cublasLtMatmulPreferenceSetAttribute(_biasPreference, CublasLt.PreferenceMaxWorkspaceBytes, &workspaceBytes, sizeof(ulong)),
                     "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES)");
        // cuMemAlloc blocks are at least 256-byte aligned, as cublasLtMatmul requires of the workspace.
        _epilogueWorkspace = _allocator.Allocate(EpilogueWorkspaceBytes);
        Cublas.Check(CublasLt.cublasLtCreate(out _cublasLt), "cublasLtCreate");
    }

    /// <summary>Frees the plans' layouts, the descriptor, the preference, the workspace and the handle (after the stream is
    /// done with them). Destroy statuses go unchecked, as for cublasDestroy_v2: nothing could be done about a failure.</summary>
    void DisposeEpilogues()
    {
        foreach (var plan in _biasPlans.Values)
        {
            if (plan == null) continue;
            CublasLt.cublasLtMatrixLayoutDestroy(plan.Weight);
            CublasLt.cublasLtMatrixLayoutDestroy(plan.X);
            CublasLt.cublasLtMatrixLayoutDestroy(plan.Y);
        }
        _biasPlans.Clear();
        if (_biasMatmul != 0) CublasLt.cublasLtMatmulDescDestroy(_biasMatmul);
        if (_biasPreference != 0) CublasLt.cublasLtMatmulPreferenceDestroy(_biasPreference);
        if (_epilogueWorkspace != 0) _allocator.Release(_epilogueWorkspace, EpilogueWorkspaceBytes);
        if (_cublasLt != 0) CublasLt.cublasLtDestroy(_cublasLt);
        _biasMatmul = _biasPreference = _epilogueWorkspace = _cublasLt = 0;
    }
}
