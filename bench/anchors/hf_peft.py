"""The Hugging Face + PEFT anchors of docs/PERFORMANCE.md, measured on the GPU machine itself.

Same work as `SharpTune.Bench cuda-train` / `cuda-decode`: random bf16 weights at the real Qwen2.5 shapes, sdpa attention,
LoRA r=8 alpha=32 dropout 0.05 on all linear layers, gradient checkpointing, AdamW, one row of 2048 tokens; greedy
decoding at batch 1 with the KV cache. Prints one line per measurement.

usage: python3 hf_peft.py train|decode 7b|0.5b [steps|tokens]
"""
import sys
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, Qwen2Config

SHAPES = {
    "7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
               num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    "0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                 num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
}


def random_model(shape):
    config = Qwen2Config(**SHAPES[shape], rms_norm_eps=1e-6, rope_theta=1e6, max_position_embeddings=32768,
                         attn_implementation="sdpa", torch_dtype="bfloat16")
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16, attn_implementation="sdpa")
    return model


def train(shape, steps):
    model = random_model(shape)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    ids = torch.randint(0, SHAPES[shape]["vocab_size"], (1, 2048), device="cuda")

    def step():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(f"hf-train {shape} on {torch.cuda.get_device_name()}: {steps * 2048 / seconds:.0f} tokens/s "
          f"({seconds / steps * 1000:.0f} ms/step), peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB allocated, "
          f"torch {torch.__version__}", flush=True)


def decode(shape, tokens):
    model = random_model(shape).eval()
    prompt = torch.tensor([[1]], device="cuda")
    with torch.no_grad():
        model.generate(prompt, max_new_tokens=8, min_new_tokens=8, do_sample=False)
        torch.cuda.synchronize()
        start = time.perf_counter()
        out = model.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    made = out.shape[1] - 1
    print(f"hf-decode {shape} on {torch.cuda.get_device_name()}: {made / seconds:.1f} tokens/s greedy, batch 1, "
          f"{made} tokens", flush=True)


if __name__ == "__main__":
    what, shape = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else (5 if what == "train" else 64)
    {"train": train, "decode": decode}[what](shape, count)
