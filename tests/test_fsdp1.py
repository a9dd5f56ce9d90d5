"""FSDP1 wrapping (:func:`lit_iwpo.parallel.wrap_fsdp`) on 2 gloo processes, without Lightning: the units it cuts,
and that everything lit_iwpo computes with a model (log-probs in both layouts, greedy generation, the reference
cache's fingerprint, the reference through the disabled adapter, parameter names) is what the unwrapped model gives.

The independent computation is the same model unwrapped on each process; the sharded one holds half of every
unit's parameters per rank, so a forward or a ``generate`` that skipped gathering the root's weights (embeddings,
final norm, LM head) would fail or differ.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from lit_iwpo.data.collate import collate_pairs
from lit_iwpo.data.tokenize import TokenizedPair
from lit_iwpo.models import LoraSpec, response_logps
from lit_iwpo.models.generation import GenerationSpec, generate_texts
from lit_iwpo.models.loading import load_tokenizer
from lit_iwpo.models.lora import apply_lora
from lit_iwpo.models.refcache import model_fingerprint
from lit_iwpo.models.scoring import Scorer
from lit_iwpo.models.tiny import tiny_llama
from lit_iwpo.models.wrapping import clean_name, is_fsdp_root, unwrap
from lit_iwpo.parallel import is_sharded, wrap_fsdp


def _policy() -> nn.Module:
    model = apply_lora(tiny_llama(), LoraSpec(r=4, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(1)
    for p in model.parameters():  # random adapters, so the policy is not the base
        if p.requires_grad:
            p.data = torch.randn(p.shape, generator=g) * 0.02
    return model


def _batch():
    g = torch.Generator().manual_seed(0)
    ids = lambda n: torch.randint(3, 200, (n,), generator=g).tolist()  # noqa: E731
    items = [(i, f"s{i}", TokenizedPair(prompt=ids(p), chosen=ids(c), rejected=ids(r)))
             for i, (p, c, r) in enumerate([(5, 3, 7), (2, 6, 1), (9, 4, 4), (3, 3, 3)])]
    return collate_pairs(items, pad_id=0, split="train")


def _strategy():
    """What :func:`wrap_fsdp` reads of a Lightning FSDPStrategy (its defaults, on the CPU)."""
    from torch.distributed.fsdp import ShardingStrategy

    return SimpleNamespace(kwargs={}, cpu_offload=None, mixed_precision_config=None,
                           sharding_strategy=ShardingStrategy.FULL_SHARD, root_device=torch.device("cpu"))


def _everything(model: nn.Module, batch, tokenizer) -> dict:
    scorer = Scorer(model, share_prompt=True)
    out = {}
    with torch.no_grad():
        for share in (False, True):
            out[f"logps_share{share}"] = response_logps(model, batch.input_ids, batch.attention_mask,
                                                        batch.loss_mask, share_prompt=share).logps
        scorer.ref_cache = {}
        out["reference"] = scorer.score(batch, "reference", use_cache=False).logps
    prompts = tokenizer(["hello there", "a"], return_tensors="pt", padding=True, padding_side="left")
    out["texts"] = generate_texts(model, tokenizer, prompts.input_ids, prompts.attention_mask,
                                  GenerationSpec(max_new_tokens=6), synced=is_sharded(model))
    out["fingerprint"] = model_fingerprint(model, skip="")
    with scorer.reference_model() as ref:
        out["reference_fingerprint"] = model_fingerprint(ref)
    return out


def _worker(rank: int, port: int, box) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        from torch.distributed.fsdp import FullyShardedDataParallel

        batch, tokenizer = _batch(), load_tokenizer("tiny-llama")
        plain = _policy()
        want = _everything(plain, batch, tokenizer)
        wrapped = wrap_fsdp(_policy(), _strategy())
        got = _everything(wrapped, batch, tokenizer)
        units = sorted(type(m.module).__name__ for m in wrapped.modules() if isinstance(m, FullyShardedDataParallel))
        names = {clean_name(n) for n, p in wrapped.named_parameters() if p.requires_grad}
        shard = sum(p.numel() for p in wrapped.parameters())
        box[rank] = {"want": want, "got": got, "units": units, "names": names,
                     "plain_names": {n for n, p in plain.named_parameters() if p.requires_grad},
                     "shard": shard, "whole": sum(p.numel() for p in plain.parameters()),
                     "root": is_fsdp_root(wrapped) and not is_fsdp_root(plain),
                     "unwrap": type(unwrap(wrapped)).__name__}
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def results():
    with mp.Manager() as manager:
        box = manager.dict()
        mp.spawn(_worker, args=(29611, box), nprocs=2)
        return dict(box)


def test_units_are_lora_layers_decoder_layers_and_root(results):
    """peft's auto-wrap policy from ``_no_split_modules``: each lora_A / lora_B layer (2 per adapted projection),
    each decoder layer, and the root; every rank holds about half of the parameters."""
    r = results[0]
    layers = tiny_llama().config.num_hidden_layers
    assert r["units"] == sorted(["Linear"] * (layers * 2 * 2) + ["LlamaDecoderLayer"] * layers + ["PeftModelForCausalLM"])
    assert r["root"] and r["unwrap"] == "PeftModelForCausalLM"
    assert r["names"] == r["plain_names"]  # clean names: what checkpoints and the optimizer address
    for rank in (0, 1):  # FULL_SHARD: each rank's shards are half of the whole, up to padding
        assert abs(results[rank]["shard"] - results[rank]["whole"] / 2) <= 64


def test_scoring_and_generation_match_the_unwrapped_model(results):
    for rank in (0, 1):
        want, got = results[rank]["want"], results[rank]["got"]
        for key in ("logps_shareFalse", "logps_shareTrue", "reference"):
            torch.testing.assert_close(got[key], want[key], rtol=1e-5, atol=1e-5)
        assert not torch.allclose(want["reference"], want["logps_shareFalse"])  # the adapter was disabled
        assert got["texts"] == want["texts"]
        assert got["fingerprint"] == want["fingerprint"]
        assert got["reference_fingerprint"] == want["reference_fingerprint"]
