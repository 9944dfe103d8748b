namespace SharpTune.Models;

/// <summary>
/// One sequence's share of a batched step: its new tokens (a prefill chunk or one decode token) at positions
/// <see cref="StartPosition"/>.., its blocks in the <see cref="PagedKvCache"/>, the LoRA adapter its rows use (null: none),
/// and whether the step should return logits for its last token.
/// </summary>
public sealed record BatchSegment(int[] Tokens, int StartPosition, int[] BlockTable, string? Adapter, bool WantLogits);

/// <summary>Rows <see cref="Start"/>..Start+Count-1 of a batch that use the LoRA adapter <see cref="Adapter"/> (null: none).</summary>
public readonly record struct AdapterRows(string? Adapter, int Start, int Count);
