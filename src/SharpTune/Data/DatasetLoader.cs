namespace SharpTune.Data;

/// <summary>The dataset arguments of sft/pt, named as ms-swift names them.</summary>
public sealed record DatasetOptions
{
    /// <summary>--dataset: files or built-in names, each optionally "#N".</summary>
    public IReadOnlyList<string> Datasets { get; init; } = [];
    /// <summary>--val_dataset: validation files, used whole (or "#N"); excludes --split_dataset_ratio, as in ms-swift.</summary>
    public IReadOnlyList<string> ValDatasets { get; init; } = [];
    /// <summary>--split_dataset_ratio: the fraction of each dataset held out for validation.</summary>
    public double SplitDatasetRatio { get; init; }
    /// <summary>--data_seed (ms-swift's default 42): seeds sampling, the split and the shuffle.</summary>
    public ulong Seed { get; init; } = 42;
    /// <summary>--strict: a bad row is an error; otherwise skipped and counted (ms-swift's default).</summary>
    public bool Strict { get; init; }
    /// <summary>--dataset_shuffle / --val_dataset_shuffle (ms-swift's defaults: true / false).</summary>
    public bool DatasetShuffle { get; init; } = true;
    public bool ValDatasetShuffle { get; init; }
    /// <summary>--model_name / --model_author: (Chinese, English) for the self-cognition placeholders.</summary>
    public IReadOnlyList<string>? ModelName { get; init; }
    public IReadOnlyList<string>? ModelAuthor { get; init; }
}

/// <summary>The training and validation rows, and the files they came from (with their skipped-row counts).</summary>
public sealed record LoadedDatasets(IReadOnlyList<SftSample> Train, IReadOnlyList<SftSample> Validation, IReadOnlyList<DatasetRows> Sources)
{
    public int SkippedRows => Sources.Sum(s => s.SkippedRows);
}

/// <summary>
/// ms-swift's load_dataset, for local files and built-in datasets: each dataset is read, then split and sampled on its own
/// (one generator seeded once is drawn from in order, as ms-swift shares one RandomState), then all training parts are
/// concatenated and shuffled, and so are the validation parts.
/// </summary>
public static class DatasetLoader
{
    public static LoadedDatasets Load(DatasetOptions options)
    {
        if (options.Datasets.Count == 0) throw new SharpTuneException("--dataset: no dataset given");
        if (options.SplitDatasetRatio is < 0 or > 1 || double.IsNaN(options.SplitDatasetRatio))
            throw new SharpTuneException($"--split_dataset_ratio: {options.SplitDatasetRatio} is not between 0 and 1");
        if (options.ValDatasets.Count > 0 && options.SplitDatasetRatio > 0)
            throw new SharpTuneException("--val_dataset: cannot be combined with --split_dataset_ratio > 0 (set it to 0)");

        var sources = new List<DatasetRows>();
        var (train, validation) = LoadGroup(options.Datasets, options.SplitDatasetRatio, options.DatasetShuffle, options, sources);
        if (options.ValDatasets.Count > 0)
            (_, validation) = LoadGroup(options.ValDatasets, 1.0, options.ValDatasetShuffle, options, sources);
        if (train.Count == 0) throw new SharpTuneException("--dataset: no training rows left after the split");
        return new LoadedDatasets(train, validation, sources);
    }

    static (List<SftSample> Train, List<SftSample> Validation) LoadGroup(IReadOnlyList<string> specs, double ratio, bool shuffle,
        DatasetOptions options, List<DatasetRows> sources)
    {
        var rng = new Xoshiro256(options.Seed);
        List<SftSample> train = [], validation = [];
        foreach (var text in specs)
        {
            var spec = DatasetSpec.Parse(text);
            var rows = Read(spec, options);
            sources.Add(rows);
            var (t, v) = SplitAndSample(rows.Samples, spec, ratio, shuffle, rng);
            train.AddRange(t);
            validation.AddRange(v);
        }
        if (shuffle)
        {
            new Xoshiro256(rng.NextSeed()).Shuffle(train);
            new Xoshiro256(rng.NextSeed()).Shuffle(validation);
        }
        return (train, validation);
    }

    static DatasetRows Read(DatasetSpec spec, DatasetOptions options)
    {
        if (SelfCognition.Names.Contains(spec.Source)) return SelfCognition.Load(options.ModelName, options.ModelAuthor);
        if (!File.Exists(spec.Source))
            throw new SharpTuneException($"--dataset {spec}: '{spec.Source}' is neither a file nor a built-in dataset " +
                $"({string.Join(", ", SelfCognition.Names)}); hub datasets are not downloaded, pass a local file");
        return DatasetFile.Read(spec.Source, options.Strict);
    }

    /// <summary>
    /// ms-swift's post_process: with a ratio in (0, 1) the validation part has max(floor(min(N, size) * ratio), 1) rows and
    /// the training part is sampled to N minus that; ratio 1 makes all of it validation (sampled to N).
    /// </summary>
    internal static (IReadOnlyList<T> Train, IReadOnlyList<T> Validation) SplitAndSample<T>(IReadOnlyList<T> rows, DatasetSpec spec,
        double ratio, bool shuffle, Xoshiro256 rng)
    {
        if (ratio == 0) return (Sample(rows, spec.Sample, shuffle, rng), []);
        if (ratio == 1)
        {
            if (spec.Sample > rows.Count)
                throw new SharpTuneException($"--val_dataset {spec}: asks for {spec.Sample} rows but the dataset has {rows.Count}");
            return ([], Sample(rows, spec.Sample, shuffle, rng));
        }
        var wanted = spec.Sample ?? rows.Count;
        var validationCount = Math.Max((int)(Math.Min(wanted, rows.Count) * ratio), 1);
        var trainCount = wanted - validationCount;
        if (trainCount <= 0 || validationCount >= rows.Count)
            throw new SharpTuneException($"--dataset {spec}: too few rows ({rows.Count}) to hold out {validationCount} for validation and still train");
        // Hugging Face's train_test_split: one permutation, the first rows are the test (validation) part.
        var order = shuffle ? new Xoshiro256(rng.NextSeed()).Permutation(rows.Count) : Enumerable.Range(0, rows.Count).ToArray();
        var validation = order[..validationCount].Select(i => rows[i]).ToList();
        var rest = order[validationCount..].Select(i => rows[i]).ToList();
        return (Sample(rest, trainCount, shuffle, rng), validation);
    }

    /// <summary>
    /// ms-swift's sample_dataset: N rows from a dataset of S = floor(N / S) copies of the whole dataset in order, then
    /// N mod S distinct rows (the first of a random permutation, or the first rows when not shuffling).
    /// </summary>
    public static IReadOnlyList<T> Sample<T>(IReadOnlyList<T> rows, int? count, bool shuffle, Xoshiro256 rng)
    {
        if (count is not { } n) return rows;
        if (rows.Count == 0) throw new SharpTuneException("cannot sample rows from an empty dataset");
        var result = new List<T>(n);
        for (var repeat = 0; repeat < n / rows.Count; repeat++) result.AddRange(rows);
        var remainder = n % rows.Count;
        if (remainder > 0)
        {
            var picks = shuffle ? rng.Permutation(rows.Count)[..remainder] : Enumerable.Range(0, remainder).ToArray();
            result.AddRange(picks.Select(i => rows[i]));
        }
        return result;
    }
}
