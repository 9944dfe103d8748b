using SharpTune.Arguments;

namespace SharpTune.Inference;

/// <summary>Model, template and generation arguments shared by infer, deploy and export (ms-swift's names and defaults).</summary>
public class ModelArguments
{
    [Arg("model", Help = "Hugging Face model folder (config.json, safetensors, tokenizer.json)")]
    public string? Model { get; set; }

    [Arg("adapters", Help = "PEFT LoRA adapter folders; DIR:WEIGHT scales one adapter")]
    public string[] Adapters { get; set; } = [];

    [Arg("template", Help = "chat template: qwen, qwen2_5, qwen3, llama3, llama, default (default: the model's own)")]
    public string? Template { get; set; }

    [Arg("system", Help = "system prompt used when the conversation has none")]
    public string? System { get; set; }

    [Arg("max_length", Help = "longest prompt + answer in tokens (default: the model's max_position_embeddings)")]
    public int? MaxLength { get; set; }

    [Arg("device", Help = "cpu, cuda or auto")]
    public string Device { get; set; } = "auto";

    [Arg("torch_dtype", Help = "GPU compute type: bfloat16 (default) or float32 (the checking mode)")]
    public string? TorchDtype { get; set; }

    [Arg("verbose", Help = "print stack traces with errors")]
    public bool Verbose { get; set; }
}

/// <summary>Sampling knobs; unset values come from generation_config.json, then from transformers' defaults.</summary>
public class GenerationArguments : ModelArguments
{
    [Arg("max_new_tokens", Help = "most tokens to generate")]
    public int? MaxNewTokens { get; set; }

    [Arg("temperature", Help = "0 = greedy")]
    public float? Temperature { get; set; }

    [Arg("top_k")]
    public int? TopK { get; set; }

    [Arg("top_p")]
    public float? TopP { get; set; }

    [Arg("min_p")]
    public float? MinP { get; set; }

    [Arg("repetition_penalty")]
    public float? RepetitionPenalty { get; set; }

    [Arg("seed", Help = "random seed for sampling")]
    public int Seed { get; set; } = 42;

    [Arg("stop_words", Help = "extra strings that end the answer")]
    public string[] StopWords { get; set; } = [];

    [Arg("logprobs", Help = "return log-probabilities of generated tokens")]
    public bool Logprobs { get; set; }

    [Arg("top_logprobs", Help = "with --logprobs, the K most likely alternatives per token")]
    public int? TopLogprobs { get; set; }
}

/// <summary><c>sharptune infer</c>: interactive chat, one query, or a dataset in batch.</summary>
public sealed class InferArguments : GenerationArguments
{
    [Arg("query", Help = "answer this one query and exit")]
    public string? Query { get; set; }

    [Arg("stream", Help = "print tokens as they come")]
    public bool Stream { get; set; } = true;

    [Arg("use_chat_template", Help = "false: feed the raw text, no template")]
    public bool UseChatTemplate { get; set; } = true;

    [Arg("val_dataset", Help = "JSONL of conversations (messages format) to answer in batch")]
    public string[] ValDataset { get; set; } = [];

    [Arg("result_path", Help = "where batch results go (JSONL)")]
    public string? ResultPath { get; set; }

    [Arg("enable_thinking", Help = "Qwen3 templates: false adds an empty think block")]
    public bool? EnableThinking { get; set; }
}
