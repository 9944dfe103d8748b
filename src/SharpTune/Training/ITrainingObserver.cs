using System.Text.Json.Nodes;

namespace SharpTune.Training;

/// <summary>What a front end shows while training: plain messages, and each optimizer step with its log line when there is one.</summary>
public interface ITrainingObserver
{
    void Message(string line);
    void Step(int globalStep, int maxSteps, double elapsedSeconds, JsonObject? log);
}
