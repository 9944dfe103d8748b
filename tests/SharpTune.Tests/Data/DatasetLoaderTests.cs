using SharpTune.Data;

namespace SharpTune.Tests.Data;

public class DatasetLoaderTests
{
    /// <summary>A .jsonl of <paramref name="count"/> query/response rows whose query is "q{i}", so rows can be identified.</summary>
    static string Numbered(int count, string prefix = "q")
    {
        var path = Path.Combine(TestData.TempDir("loader"), prefix + ".jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, count).Select(i => $"{{\"query\": \"{prefix}{i}\", \"response\": \"r{i}\"}}"));
        return path;
    }

    static string Query(SftSample s) => s.Messages.First(m => m.Role == "user").Content;

    [Theory]
    [InlineData("data.jsonl#200", "data.jsonl", 200)]
    [InlineData("swift/self-cognition#500", "swift/self-cognition", 500)]
    [InlineData("self-cognition", "self-cognition", null)]
    public void ParsesSpecs(string text, string source, int? sample)
    {
        Assert.Equal(new DatasetSpec(source, sample), DatasetSpec.Parse(text));
    }

    [Fact]
    public void ExistingFileWithHashInItsNameIsAPath()
    {
        var path = Path.Combine(TestData.TempDir("loader"), "odd#3.jsonl");
        File.WriteAllText(path, "{}");
        Assert.Equal(new DatasetSpec(path, null), DatasetSpec.Parse(path));
        Assert.Contains("'#x' is not a positive number", Assert.Throws<SharpTuneException>(() => DatasetSpec.Parse("a.jsonl#x")).Message);
        Assert.Contains("'#0' is not a positive number", Assert.Throws<SharpTuneException>(() => DatasetSpec.Parse("a.jsonl#0")).Message);
    }

    [Fact]
    public void SamplingBelowTheSizeTakesDistinctRows()
    {
        var rows = Enumerable.Range(0, 50).ToArray();
        var sample = DatasetLoader.Sample(rows, 20, shuffle: true, new Xoshiro256(7));
        Assert.Equal(20, sample.Count);
        Assert.Equal(20, sample.Distinct().Count());
        Assert.NotEqual(Enumerable.Range(0, 20), sample);
    }

    [Fact]
    public void SamplingAboveTheSizeRepeatsTheWholeDatasetThenSamplesTheRemainder()
    {
        var rows = Enumerable.Range(0, 10).ToArray();
        var sample = DatasetLoader.Sample(rows, 37, shuffle: true, new Xoshiro256(1));
        Assert.Equal(37, sample.Count);
        // floor(37 / 10) = 3 whole copies in order, then 7 distinct rows.
        Assert.Equal(Enumerable.Range(0, 10).Concat(Enumerable.Range(0, 10)).Concat(Enumerable.Range(0, 10)), sample.Take(30));
        var remainder = sample.Skip(30).ToArray();
        Assert.Equal(7, remainder.Distinct().Count());
        var counts = sample.GroupBy(x => x).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(7, counts.Values.Count(c => c == 4));
        Assert.Equal(3, counts.Values.Count(c => c == 3));

        Assert.Equal(Enumerable.Range(0, 10).Concat(Enumerable.Range(0, 10)), DatasetLoader.Sample(rows, 20, true, new Xoshiro256(1)));
        Assert.Equal(Enumerable.Range(0, 10).Concat(Enumerable.Range(0, 3)), DatasetLoader.Sample(rows, 13, shuffle: false, new Xoshiro256(1)));
    }

    [Fact]
    public void SamplingIsDeterministicBySeed()
    {
        var rows = Enumerable.Range(0, 100).ToArray();
        Assert.Equal(DatasetLoader.Sample(rows, 30, true, new Xoshiro256(42)), DatasetLoader.Sample(rows, 30, true, new Xoshiro256(42)));
        Assert.NotEqual(DatasetLoader.Sample(rows, 30, true, new Xoshiro256(42)), DatasetLoader.Sample(rows, 30, true, new Xoshiro256(43)));
    }

    [Fact]
    public void RngPermutationIsUniformEnough()
    {
        // Each of 4 items should land in each slot about 1/4 of 4000 draws; a biased shuffle would be far off.
        var rng = new Xoshiro256(5);
        var slotCounts = new int[4, 4];
        for (var t = 0; t < 4000; t++)
        {
            var p = rng.Permutation(4);
            for (var slot = 0; slot < 4; slot++) slotCounts[slot, p[slot]]++;
        }
        foreach (var count in slotCounts) Assert.InRange(count, 850, 1150);
    }

    [Fact]
    public void MixesSeveralDatasetsWithSamplingAndShuffles()
    {
        var a = Numbered(30, "a");
        var b = Numbered(5, "b");
        var options = new DatasetOptions { Datasets = [a, b + "#12"], Seed = 3 };
        var loaded = DatasetLoader.Load(options);
        Assert.Equal(42, loaded.Train.Count);
        Assert.Empty(loaded.Validation);
        var queries = loaded.Train.Select(Query).ToList();
        Assert.Equal(30, queries.Count(q => q.StartsWith('a')));
        Assert.Equal(30, queries.Where(q => q.StartsWith('a')).Distinct().Count());
        var bCounts = queries.Where(q => q.StartsWith('b')).GroupBy(q => q).Select(g => g.Count()).OrderBy(c => c).ToArray();
        Assert.Equal([2, 2, 2, 3, 3], bCounts);
        // Shuffled across datasets, not a then b.
        Assert.NotEqual(Enumerable.Range(0, 30).Select(i => $"a{i}"), queries.Take(30));
        Assert.Equal(queries, DatasetLoader.Load(options).Train.Select(Query));
        Assert.NotEqual(queries, DatasetLoader.Load(options with { Seed = 4 }).Train.Select(Query));
        Assert.Equal(Enumerable.Range(0, 30).Select(i => $"a{i}"),
            DatasetLoader.Load(options with { DatasetShuffle = false }).Train.Take(30).Select(Query));
    }

    [Fact]
    public void SplitRatioHoldsOutADeterministicDisjointValidationSet()
    {
        var path = Numbered(100);
        var options = new DatasetOptions { Datasets = [path], SplitDatasetRatio = 0.1, Seed = 11 };
        var loaded = DatasetLoader.Load(options);
        Assert.Equal(10, loaded.Validation.Count);
        Assert.Equal(90, loaded.Train.Count);
        var train = loaded.Train.Select(Query).ToHashSet();
        var validation = loaded.Validation.Select(Query).ToHashSet();
        Assert.Equal(90, train.Count);
        Assert.Empty(train.Intersect(validation));
        Assert.Equal(100, train.Union(validation).Count());
        Assert.Equal(loaded.Validation.Select(Query), DatasetLoader.Load(options).Validation.Select(Query));

        // ms-swift: validation = max(floor(min(N, size) * ratio), 1); training is sampled to N minus that.
        var sampled = DatasetLoader.Load(options with { Datasets = [path + "#40"] });
        Assert.Equal(4, sampled.Validation.Count);
        Assert.Equal(36, sampled.Train.Count);
        var tiny = DatasetLoader.Load(options with { Datasets = [Numbered(5)], SplitDatasetRatio = 0.01 });
        Assert.Single(tiny.Validation);
        Assert.Equal(4, tiny.Train.Count);
    }

    [Fact]
    public void ValDatasetIsLoadedSeparately()
    {
        var train = Numbered(20, "t");
        var val = Numbered(8, "v");
        var loaded = DatasetLoader.Load(new DatasetOptions { Datasets = [train], ValDatasets = [val + "#5"] });
        Assert.Equal(20, loaded.Train.Count);
        Assert.Equal(5, loaded.Validation.Count);
        Assert.All(loaded.Validation, s => Assert.StartsWith("v", Query(s)));
        Assert.Equal(5, loaded.Validation.Select(Query).Distinct().Count());

        var both = new DatasetOptions { Datasets = [train], ValDatasets = [val], SplitDatasetRatio = 0.1 };
        Assert.Contains("--val_dataset", Assert.Throws<SharpTuneException>(() => DatasetLoader.Load(both)).Message);
        Assert.Contains("asks for 9 rows but the dataset has 8",
            Assert.Throws<SharpTuneException>(() => DatasetLoader.Load(new DatasetOptions { Datasets = [train], ValDatasets = [val + "#9"] })).Message);
    }

    [Fact]
    public void UnknownDatasetNameIsAnError()
    {
        var error = Assert.Throws<SharpTuneException>(() => DatasetLoader.Load(new DatasetOptions { Datasets = ["AI-ModelScope/alpaca-gpt4-data-en#100"] }));
        Assert.StartsWith("--dataset AI-ModelScope/alpaca-gpt4-data-en#100: 'AI-ModelScope/alpaca-gpt4-data-en' is neither a file nor a built-in dataset", error.Message);
    }

    [Fact]
    public void SkippedRowsAreReportedByTheLoader()
    {
        var path = Path.Combine(TestData.TempDir("loader"), "mixed.jsonl");
        File.WriteAllText(path, "{\"query\": \"q\", \"response\": \"r\"}\n{\"bad\": 1}\n");
        Assert.Equal(1, DatasetLoader.Load(new DatasetOptions { Datasets = [path] }).SkippedRows);
        Assert.Throws<SharpTuneException>(() => DatasetLoader.Load(new DatasetOptions { Datasets = [path], Strict = true }));
    }

    [Fact]
    public void SelfCognitionFillsNamesByLanguageTag()
    {
        var rows = SelfCognition.Load(["小调", "Tuney"], ["调音工作室", "Tune Labs"]).Samples;
        Assert.True(rows.Count >= 100);
        string Text(SftSample s) => string.Concat(s.Messages.Select(m => m.Content));
        Assert.All(rows, s => Assert.DoesNotContain("{{", Text(s)));
        var chinese = rows.Where(s => Text(s).Any(c => c >= '\u4e00' && c <= '\u9fff')).ToList();
        var english = rows.Except(chinese).ToList();
        Assert.True(chinese.Count >= 40 && english.Count >= 40);
        Assert.All(chinese, s => Assert.Contains("小调", Text(s)));
        Assert.All(chinese, s => Assert.DoesNotContain("Tuney", Text(s)));
        Assert.All(english, s => Assert.Contains("Tuney", Text(s)));
        Assert.All(english, s => Assert.DoesNotContain("小调", Text(s)));
        Assert.Contains(english, s => Text(s).Contains("Tune Labs"));
        Assert.Contains(chinese, s => Text(s).Contains("调音工作室"));
        Assert.All(rows, s => Assert.Equal(["user", "assistant"], s.Messages.Select(m => m.Role)));
        Assert.Contains(english, s => s.Messages[0].Content == "Who are you?");
        Assert.Contains(chinese, s => s.Messages[0].Content == "你是谁？");
    }

    [Fact]
    public void SelfCognitionWithOneValueUsesItForBothLanguagesAndResolvesByName()
    {
        var loaded = DatasetLoader.Load(new DatasetOptions { Datasets = ["swift/self-cognition#30"], ModelName = ["Tuney"], ModelAuthor = ["Tune Labs"] });
        Assert.Equal(30, loaded.Train.Count);
        Assert.All(loaded.Train, s => Assert.DoesNotContain("{{NAME}}", s.Messages[1].Content));
        Assert.All(loaded.Train, s => Assert.Contains("Tuney", s.Messages[1].Content + s.Messages[0].Content));

        var unset = SelfCognition.Load(null, null).Samples;
        Assert.Contains(unset, s => s.Messages[1].Content.Contains("{{NAME}}"));
        Assert.Contains("--model_name", Assert.Throws<SharpTuneException>(() => SelfCognition.Load(["a", "b", "c"], null)).Message);
    }
}
