namespace SharpTune;

/// <summary>
/// A failure the user can act on: bad input, a missing file, an unsupported model.
/// The message is one line that names the file, field or argument and says what is wrong;
/// the command line prints it without a stack trace (unless --verbose).
/// </summary>
public class SharpTuneException : Exception
{
    public SharpTuneException(string message) : base(message) { }
    public SharpTuneException(string message, Exception inner) : base(message, inner) { }
}
