namespace SharpTune.Templates;

/// <summary>The built-in templates, with the prefix/prompt/chat_sep/suffix/default_system of ms-swift's definitions of the same name.</summary>
static class BuiltinTemplates
{
    public const string QwenSystem = "You are a helpful assistant.";
    public const string Qwen2_5System = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

    // Meta's llama/generation.py default system prompt, which ms-swift's `llama` template uses.
    public const string Llama2System =
        "You are a helpful, respectful and honest assistant. Always answer as helpfully as possible, while being safe. "
        + "Your answers should not include any harmful, unethical, racist, sexist, toxic, dangerous, or illegal content. "
        + "Please ensure that your responses are socially unbiased and positive in nature.\n\n"
        + "If a question does not make any sense, or is not factually coherent, explain why instead of answering something not correct. "
        + "If you don't know the answer to a question, please don't share false information.";

    public static readonly string[] Names = ["qwen", "qwen2_5", "qwen3", "llama3", "llama", "default", "plain"];

    /// <param name="eosToken">the tokenizer's EOS, which ends a response in the `default` and `plain` templates.</param>
    public static BuiltinChatTemplate? Create(string name, string eosToken) => name switch
    {
        "qwen" => ChatMl(name, QwenSystem),
        "qwen2_5" => ChatMl(name, Qwen2_5System),
        "qwen3" => ChatMl(name, null, qwen3Thinking: true),
        "llama3" => new BuiltinChatTemplate(name,
            prefix: "<|begin_of_text|>",
            systemPrefix: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{{SYSTEM}}<|eot_id|>",
            prompt: "<|start_header_id|>user<|end_header_id|>\n\n{{QUERY}}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            chatSep: "<|eot_id|>", suffix: "<|eot_id|>", defaultSystem: null, endOfTurn: "<|eot_id|>",
            stopWords: ["<|eot_id|>", "<|end_of_text|>"]),
        "llama" => new BuiltinChatTemplate(name,
            prefix: "<s>[INST] ", systemPrefix: "<s>[INST] <<SYS>>\n{{SYSTEM}}\n<</SYS>>\n\n", prompt: "{{QUERY}} [/INST]",
            chatSep: "</s><s>[INST] ", suffix: "</s>", defaultSystem: Llama2System, endOfTurn: "</s>", stopWords: ["</s>"]),
        "default" => new BuiltinChatTemplate(name,
            prefix: "", systemPrefix: "{{SYSTEM}}\n\n", prompt: "### Human:\n{{QUERY}}\n\n### Assistant:\n",
            chatSep: "\n\n", suffix: eosToken, defaultSystem: QwenSystem, endOfTurn: eosToken, stopWords: Stop(eosToken)),
        // ms-swift's `dummy`: no role markers, each query followed directly by its response and the EOS token.
        "plain" => new BuiltinChatTemplate(name,
            prefix: "", systemPrefix: "{{SYSTEM}}\n\n", prompt: "{{QUERY}}",
            chatSep: eosToken, suffix: eosToken, defaultSystem: null, endOfTurn: eosToken, stopWords: Stop(eosToken)),
        _ => null,
    };

    static BuiltinChatTemplate ChatMl(string name, string? defaultSystem, bool qwen3Thinking = false) => new(name,
        prefix: "", systemPrefix: "<|im_start|>system\n{{SYSTEM}}<|im_end|>\n",
        prompt: "<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n",
        chatSep: "<|im_end|>\n", suffix: "<|im_end|>\n", defaultSystem: defaultSystem, endOfTurn: "<|im_end|>",
        stopWords: ["<|im_end|>", "<|endoftext|>"], qwen3Thinking: qwen3Thinking);

    static string[] Stop(string eos) => eos.Length == 0 ? [] : [eos];
}
