using SharpTune.Inference;

namespace SharpTune.Tests.Inference;

public class StopWordStreamTests
{
    [Fact]
    public void CutsAtTheStopWordAndNeverShowsPartOfIt()
    {
        var stream = new StopWordStream(["<|end|>", "STOP"]);
        var shown = new List<string>();
        foreach (var piece in new[] { "Hello ", "wor", "ld <|e", "nd|> more" })
        {
            var (emit, stopped) = stream.Push(piece);
            shown.Add(emit);
            if (stopped) break;
        }
        Assert.Equal("Hello world ", string.Concat(shown));
        Assert.Equal("Hello world ", stream.Text);
        Assert.DoesNotContain(shown, s => s.Contains('<'));
        Assert.True(stream.Stopped);
    }

    [Fact]
    public void HeldBackTextComesOutWhenNoStopWordFollows()
    {
        var stream = new StopWordStream(["STOP"]);
        Assert.Equal(("a ", false), stream.Push("a ST"));
        Assert.Equal(("", false), stream.Push("O"));
        Assert.Equal(("STOx", false), stream.Push("x"));
        Assert.Equal("", stream.Drain());
        Assert.Equal(("ab", false), new StopWordStream([]).Push("ab"));
    }
}
