"""Batched greedy or sampled decoding of left-padded prompts."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_iwpo.models.layers import eager
from lit_iwpo.models.wrapping import root_gathered


@dataclass
class GenerationSpec:
    """Decoding settings for ``predict``, ``generate`` and the win-rate evaluation.

    Args:
        max_new_tokens: Tokens generated per prompt at most.
        do_sample: Sample (true) or decode greedily (false: deterministic).
        temperature: Sampling temperature (with do_sample).
        top_p: Nucleus sampling mass (with do_sample).
        seed: Seed of the sampling RNG, so generations are reproducible.
    """

    max_new_tokens: int = 64
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


@torch.no_grad()
def generate_texts(
    model: nn.Module, tokenizer, input_ids: Tensor, attention_mask: Tensor, spec: GenerationSpec, seed_offset: int = 0,
    synced: bool = False,
) -> list[str]:
    """Continuations of left-padded prompts, decoded without special tokens.

    Sampling runs in a forked RNG seeded by ``spec.seed + seed_offset`` (callers pass the batch's first row
    index), so a batch gets the same samples whatever ran before, given the same batching (eval batch size
    and number of processes), and the training RNG is never touched. ``synced`` (a sharded model, whose
    forwards are collectives): every process keeps stepping until all have finished (transformers'
    ``synced_gpus``).
    """
    was_training = model.training
    model.eval()
    try:
        # generate runs the model's inner forward itself: an FSDP1 root's own weights are gathered around it
        with torch.random.fork_rng(devices=[input_ids.device] if input_ids.is_cuda else []), eager(), \
                root_gathered(model):
            torch.manual_seed(spec.seed + seed_offset)
            out = model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                max_new_tokens=spec.max_new_tokens,
                do_sample=spec.do_sample,
                temperature=spec.temperature if spec.do_sample else None,
                top_p=spec.top_p if spec.do_sample else None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                synced_gpus=synced,
            )
    finally:
        model.train(was_training)
    return [t.strip() for t in tokenizer.batch_decode(out[:, input_ids.shape[1]:], skip_special_tokens=True)]
