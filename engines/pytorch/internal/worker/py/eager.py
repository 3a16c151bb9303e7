"""eager.py: the pytorch engine's "eager" mode, transformers' LlamaForCausalLM.generate as a typical user runs
it: SDPA attention, the default dynamic KV cache, greedy decoding, a streamer that sees each new token.

EOS is ignored by passing eos_token_id=None (no EOS stopping criterion, and no min-length logits processor that
would otherwise suppress the EOS logit and change greedy tokens); min_new_tokens=max_new_tokens says the same.
"""

import time

import torch
from transformers import LlamaForCausalLM
from transformers.generation.streamers import BaseStreamer


class _Streamer(BaseStreamer):
    """_Streamer records each generated step and the time it reached the host. generate calls put() first with
    the prompt, then once per step with tokens already copied to the host (`.cpu()`, a device sync)."""

    def __init__(self, t0):
        self.t0 = t0
        self.prompt_seen = False
        self.steps, self.times = [], []

    def put(self, value):
        now = time.perf_counter_ns()
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.times.append(now - self.t0)
        self.steps.append(value.reshape(-1).tolist())

    def end(self):
        pass


class Eager:
    """Eager wraps a transformers model loaded on the host, then moved to the device."""

    def __init__(self, path, device, dtype, sync):
        t = time.perf_counter_ns()
        self.model = LlamaForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
        self.model.eval()
        self.host_ns = time.perf_counter_ns() - t
        t = time.perf_counter_ns()
        self.model.to(device)
        sync()
        self.device_ns = time.perf_counter_ns() - t
        self.device = device
        self.params = sum(p.numel() for p in self.model.parameters())
        self.max_pos = self.model.config.max_position_embeddings
        self.vocab = self.model.config.vocab_size

    def settings(self):
        return {
            "implementation": "transformers LlamaForCausalLM.generate",
            "attention": self.model.config._attn_implementation,
            "kv_cache": "dynamic (transformers default)",
            "decoding": "greedy (do_sample=False), eos_token_id=None, min_new_tokens=max_new_tokens",
            "token_timing": "BaseStreamer.put after generate's .cpu() of each step",
            "compile": "none",
            "cuda_graph": "off",
        }

    def generate(self, prompt, batch, n_new, t0):
        ids = torch.tensor([prompt] * batch, dtype=torch.long, device=self.device)
        streamer = _Streamer(t0)
        with torch.no_grad():
            self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=n_new,
                min_new_tokens=n_new,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
                streamer=streamer,
            )
        return streamer.steps, streamer.times, None
