using SharpTune.Arguments;
using SharpTune.Inference;

namespace SharpTune.Serving;

/// <summary><c>sharptune deploy</c>: an OpenAI-compatible server (ms-swift's and vLLM's names); generation flags are the defaults of every request.</summary>
public sealed class DeployArguments : GenerationArguments
{
    [Arg("served_model_name", Help = "the model name clients ask for (default: the model folder's name)")]
    public string? ServedModelName { get; set; }

    [Arg("host", Help = "address to listen on; 0.0.0.0 serves the network")]
    public string Host { get; set; } = "127.0.0.1";

    [Arg("port", Help = "TCP port (0: any free port)")]
    public int Port { get; set; } = 8000;

    [Arg("api_key", Help = "require Authorization: Bearer KEY on every /v1 request")]
    public string? ApiKey { get; set; }

    [Arg("max_num_seqs", Help = "most sequences decoded together in one step")]
    public int MaxNumSeqs { get; set; } = 32;

    [Arg("max_model_len", Help = "longest prompt + answer in tokens (default: --max_length, else the model's context)")]
    public int? MaxModelLen { get; set; }

    [Arg("pack_weights", Help = "CPU: keep a second copy of the weights laid out for batched decoding (faster with several streams, twice the weight memory)")]
    public bool PackWeights { get; set; } = true;

    [Arg("kv_cache_budget", Help = "memory for the KV cache, e.g. 512MB or 2GB")]
    public string KvCacheBudget { get; set; } = "1GB";

    [Arg("block_size", Help = "positions per KV-cache block")]
    public int BlockSize { get; set; } = 16;

    [Arg("max_num_batched_tokens", Help = "most tokens (decode + prefill chunks) in one step")]
    public int MaxNumBatchedTokens { get; set; } = 256;

    [Arg("max_queue_size", Help = "requests waiting for the cache beyond which the server answers 429")]
    public int MaxQueueSize { get; set; } = 256;

    [Arg("max_request_size", Help = "largest request body, e.g. 4MB (larger: 413)")]
    public string MaxRequestSize { get; set; } = "4MB";
}
