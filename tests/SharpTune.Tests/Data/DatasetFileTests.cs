using SharpTune.Data;

namespace SharpTune.Tests.Data;

public class DatasetFileTests
{
    static string Write(string name, string text)
    {
        var path = Path.Combine(TestData.TempDir("data"), name);
        File.WriteAllText(path, text);
        return path;
    }

    static (string, string)[] Messages(SftSample sample) => [.. sample.Messages.Select(m => (m.Role, m.Content))];

    [Fact]
    public void ReadsOpenAiMessagesWithSystemField()
    {
        var path = Write("a.jsonl", """
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}], "system": "Be brief."}

            {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}
            """);
        var rows = DatasetFile.Read(path, strict: true);
        Assert.Equal(2, rows.Samples.Count);
        Assert.Equal([("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!")], Messages(rows.Samples[0]));
        Assert.Equal([("system", "S"), ("user", "Q"), ("assistant", "A")], Messages(rows.Samples[1]));
        Assert.Equal(0, rows.SkippedRows);
    }

    [Fact]
    public void ReadsShareGptConversations()
    {
        var path = Write("s.jsonl", """
            {"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "Q1"}, {"from": "gpt", "value": "A1"}, {"from": "user", "value": "Q2"}, {"from": "assistant", "value": "A2"}]}
            """);
        var sample = DatasetFile.Read(path, strict: true).Samples.Single();
        Assert.Equal([("system", "S"), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")], Messages(sample));
    }

    [Fact]
    public void ReadsAlpacaJoiningInstructionAndInputWithANewline()
    {
        var path = Write("alpaca.json", """
            [
              {"instruction": "Translate to French", "input": "cat", "output": "chat"},
              {"instruction": "Say hi", "input": "", "output": "hi"},
              {"instruction": "", "input": "only input", "output": "ok", "system": "Sys"}
            ]
            """);
        var samples = DatasetFile.Read(path, strict: true).Samples;
        Assert.Equal([("user", "Translate to French\ncat"), ("assistant", "chat")], Messages(samples[0]));
        Assert.Equal([("user", "Say hi"), ("assistant", "hi")], Messages(samples[1]));
        Assert.Equal([("system", "Sys"), ("user", "only input"), ("assistant", "ok")], Messages(samples[2]));
    }

    [Fact]
    public void ReadsQueryResponseWithHistory()
    {
        var path = Write("q.jsonl", """
            {"system": "S", "query": "Q3", "response": "A3", "history": [["Q1", "A1"], ["Q2", "A2"]]}
            """);
        var sample = DatasetFile.Read(path, strict: true).Samples.Single();
        Assert.Equal([("system", "S"), ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"), ("user", "Q3"), ("assistant", "A3")],
            Messages(sample));
    }

    [Fact]
    public void ResponseMayBeAbsentLeavingTheUserTurnLast()
    {
        var path = Write("prompts.jsonl", """
            {"query": "Only a question"}
            {"instruction": "Summarise", "input": "text"}
            """);
        var samples = DatasetFile.Read(path, strict: true).Samples;
        Assert.Equal([("user", "Only a question")], Messages(samples[0]));
        Assert.Equal([("user", "Summarise\ntext")], Messages(samples[1]));
    }

    [Fact]
    public void ReadsPretokenizedRows()
    {
        var path = Write("ids.jsonl", """
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}
            {"input_ids": [1, 2]}
            """);
        var samples = DatasetFile.Read(path, strict: true).Samples;
        Assert.True(samples[0].IsPretokenized);
        Assert.Equal([5, 6, 7], samples[0].InputIds!);
        Assert.Equal([-100, 6, 7], samples[0].Labels!);
        Assert.Equal([1, 2], samples[1].InputIds!);
        Assert.Null(samples[1].Labels);
        Assert.Empty(samples[0].Messages);
    }

    [Fact]
    public void ReadsCsvWithQuotedFieldsAndJsonCells()
    {
        var path = Write("d.csv",
            "instruction,input,output\r\n" +
            "\"Add, then explain\",\"1 + 1\",\"2, because \"\"one and one\"\"\nmake two\"\r\n" +
            "Greet,,Hello\n" +
            "\n");
        var samples = DatasetFile.Read(path, strict: true).Samples;
        Assert.Equal(2, samples.Count);
        Assert.Equal([("user", "Add, then explain\n1 + 1"), ("assistant", "2, because \"one and one\"\nmake two")], Messages(samples[0]));
        Assert.Equal([("user", "Greet"), ("assistant", "Hello")], Messages(samples[1]));

        var history = Write("h.csv", "query,response,history\nQ2,A2,\"[[\"\"Q1\"\",\"\"A1\"\"]]\"\n");
        Assert.Equal([("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2")],
            Messages(DatasetFile.Read(history, strict: true).Samples.Single()));
    }

    [Theory]
    [InlineData("{\"messages\": \"hello\"}", 2, "field 'messages': expected a list, got a string")]
    [InlineData("{\"messages\": []}", 2, "field 'messages': expected a non-empty list")]
    [InlineData("{\"messages\": [{\"role\": \"user\"}]}", 2, "field 'messages[0].content': missing")]
    [InlineData("{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}", 2, "field 'messages[0].role': unknown role 'robot'")]
    [InlineData("{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", 2, "field 'messages[0].content': expected a string, got a number")]
    [InlineData("{\"conversations\": [{\"from\": \"alien\", \"value\": \"x\"}]}", 2, "field 'conversations[0].from': unknown speaker 'alien'")]
    [InlineData("{\"conversations\": [\"x\"]}", 2, "field 'conversations[0]': expected an object, got a string")]
    [InlineData("{\"instruction\": 5, \"output\": \"x\"}", 2, "field 'instruction': expected a string, got a number")]
    [InlineData("{\"query\": \"q\", \"response\": [\"r\"]}", 2, "field 'response': expected a string, got a list")]
    [InlineData("{\"query\": \"q\", \"response\": \"r\", \"history\": [[\"only one\"]]}", 2, "field 'history[0]': expected a [query, response] pair")]
    [InlineData("{\"input_ids\": [1, \"2\"]}", 2, "field 'input_ids[1]': expected an integer token id, got a string")]
    [InlineData("{\"input_ids\": [1, 2], \"labels\": [1]}", 2, "field 'labels': has 1 entries but input_ids has 2")]
    [InlineData("{\"text\": \"free text\"}", 2, "field 'messages': missing")]
    [InlineData("{\"query\": \"q\", \"response\": \"r\", \"system\": 3}", 2, "field 'system': expected a string, got a number")]
    [InlineData("[1, 2]", 2, "expected a JSON object for the row")]
    [InlineData("{\"query\": ", 2, "invalid JSON")]
    public void BadJsonlRowNamesFileLineAndField(string badRow, int line, string expected)
    {
        var path = Write("bad.jsonl", "{\"query\": \"ok\", \"response\": \"fine\"}\n" + badRow + "\n");
        var error = Assert.Throws<SharpTuneException>(() => DatasetFile.Read(path, strict: true));
        Assert.StartsWith($"{path}:{line}: {expected}", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void BadJsonArrayElementIsNamedByItsOneBasedIndex()
    {
        var path = Write("bad.json", """
            [
              {"query": "q", "response": "r"},
              {"query": "q", "response": "r"},
              {"messages": {"role": "user"}}
            ]
            """);
        var error = Assert.Throws<SharpTuneException>(() => DatasetFile.Read(path, strict: true));
        Assert.Equal($"{path}:3: field 'messages': expected a list, got an object", error.Message);
    }

    [Fact]
    public void BadCsvRowNamesItsStartingLine()
    {
        var path = Write("bad.csv", "query,response,history\n\"multi\nline\",r,\nq,r,not json\n");
        var error = Assert.Throws<SharpTuneException>(() => DatasetFile.Read(path, strict: true));
        Assert.Equal($"{path}:4: field 'history': expected JSON (a list) in the cell", error.Message);

        var unclosed = Write("unclosed.csv", "query,response\nq,r\n\"never closed,r\n");
        Assert.Equal($"{unclosed}:3: a quoted field is never closed", Assert.Throws<SharpTuneException>(() => DatasetFile.Read(unclosed)).Message);
        var strayQuote = Write("stray.csv", "query,response\nsay \"hi\",r\n");
        Assert.StartsWith($"{strayQuote}:2: a quote inside an unquoted field", Assert.Throws<SharpTuneException>(() => DatasetFile.Read(strayQuote)).Message);

        var columns = Write("cols.csv", "query,response\nq,r,extra\n");
        Assert.Equal($"{columns}:2: expected 2 fields as in the header, got 3",
            Assert.Throws<SharpTuneException>(() => DatasetFile.Read(columns, strict: true)).Message);
    }

    [Fact]
    public void JsonFileMayHoldJsonLines()
    {
        var path = Write("lines.json", "{\"query\": \"q1\", \"response\": \"r1\"}\n{\"query\": 2}\n");
        var error = Assert.Throws<SharpTuneException>(() => DatasetFile.Read(path, strict: true));
        Assert.Equal($"{path}:2: field 'query': expected a string, got a number", error.Message);
        var invalid = Write("invalid.json", "[{\"query\": ");
        Assert.StartsWith($"{invalid}: invalid JSON", Assert.Throws<SharpTuneException>(() => DatasetFile.Read(invalid)).Message);
    }

    [Fact]
    public void NonStrictSkipsAndCountsBadRows()
    {
        var path = Write("mixed.jsonl", """
            {"query": "q1", "response": "r1"}
            {"messages": 7}
            not json
            {"query": "q2", "response": "r2"}
            {"instruction": "i", "output": null, "input": 4}
            """);
        var rows = DatasetFile.Read(path, strict: false);
        Assert.Equal(2, rows.Samples.Count);
        Assert.Equal(3, rows.SkippedRows);
        Assert.Equal($"{path}:2: field 'messages': expected a list, got a number", rows.FirstSkipReason);
        Assert.Equal([("user", "q2"), ("assistant", "r2")], Messages(rows.Samples[1]));
    }

    [Fact]
    public void EmptyDatasetIsAnError()
    {
        var empty = Write("empty.jsonl", "\n\n");
        Assert.Equal($"{empty}: the dataset has no rows", Assert.Throws<SharpTuneException>(() => DatasetFile.Read(empty)).Message);

        var allBad = Write("bad.jsonl", "{\"x\": 1}\n{\"y\": 2}\n");
        var error = Assert.Throws<SharpTuneException>(() => DatasetFile.Read(allBad, strict: false));
        Assert.StartsWith($"{allBad}: the dataset has no usable rows (2 bad rows skipped; first: {allBad}:1: field 'messages': missing", error.Message);
    }

    [Fact]
    public void MissingFileAndUnknownTypeAreErrors()
    {
        Assert.Contains("dataset file not found", Assert.Throws<SharpTuneException>(() => DatasetFile.Read("/nonexistent/x.jsonl")).Message);
        var txt = Write("x.parquet", "x");
        Assert.Contains("unsupported dataset file type '.parquet'", Assert.Throws<SharpTuneException>(() => DatasetFile.Read(txt)).Message);
    }
}
