using SharpTune.Data;
using SharpTune.Templates;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Data;

public class SftDataTests
{
    [SkippableFact]
    public void PreparesPackedRowsFromFilesAndSelfCognition()
    {
        var dir = TestData.Model("qwen2-tiny");
        var tokenizer = Tokenizer.FromModelDirectory(dir);
        var encoder = new SftEncoder(tokenizer, ChatTemplates.Resolve(dir), new EncoderOptions { MaxLength = 256 });
        var file = Path.Combine(TestData.TempDir("sftdata"), "chat.jsonl");
        File.WriteAllLines(file, Enumerable.Range(0, 20).Select(i => $"{{\"query\": \"What is {i} + 1?\", \"response\": \"{i + 1}\"}}")
            .Append("{\"broken\": true}"));
        var datasets = new DatasetOptions { Datasets = [file, "self-cognition#40"], ModelName = ["小调", "Tuney"], ModelAuthor = ["调音", "Tune Labs"], SplitDatasetRatio = 0.1 };

        var packed = SftData.Prepare(datasets, encoder, packing: true);
        var unpacked = SftData.Prepare(datasets, encoder, packing: false);
        Assert.Equal(1, packed.SkippedRows);
        // 21 rows: 2 held out of the file, 4 of self-cognition.
        Assert.Equal(18 + 36, unpacked.Train.Count);
        Assert.Equal(2 + 4, unpacked.Validation.Count);
        Assert.Equal(unpacked.Train.Count, packed.Train.Sum(r => r.SampleCount));
        Assert.Equal(unpacked.Train.Sum(r => r.Length), packed.Train.Sum(r => r.Length));
        Assert.All(packed.Train, r => Assert.True(r.Length <= 256));
        Assert.True(packed.Train.Count < unpacked.Train.Count / 3);
        Assert.Contains(unpacked.Train, r => tokenizer.Decode(r.InputIds).Contains("Tuney"));

        var batch = new SftDataLoader(packed.Train, batchSize: 2, seed: 42, padTokenId: tokenizer.PadTokenId ?? tokenizer.EosTokenId!.Value).Epoch(0).First();
        Assert.Equal(2, batch.Rows);
        Assert.Equal(batch.Length, batch.InputIds[0].Length);
        Assert.Contains("--packing: needs --max_length",
            Assert.Throws<SharpTuneException>(() => SftData.Prepare(datasets, new SftEncoder(tokenizer, ChatTemplates.Resolve(dir)), packing: true)).Message);
    }
}
