"""Reference log-probabilities computed once per split and cached on disk.

The cache key covers everything the cached numbers depend on: the data (sample ids and token ids), the
tokenizer, the reference model (every parameter and persistent buffer, the non-persistent buffers such
as rotary frequencies, and its config), the trainer's precision and the version of the scoring code. Any
change to one of them computes afresh instead of reusing stale numbers.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

import torch
from torch import Tensor, nn

from lit_iwpo.data.collate import PreferenceBatch
from lit_iwpo.models.logprobs import SCORING_VERSION
from lit_iwpo.models.wrapping import clean_name

if TYPE_CHECKING:
    from lit_iwpo.data.datamodule import SplitData


def _update_tensor(h: "hashlib._Hash", t: Tensor) -> None:
    from torch.distributed.tensor import DTensor

    if isinstance(t, DTensor):  # a shard (FSDP2): hash the whole tensor (a collective: every rank is here)
        t = t.full_tensor()
    t = t.detach().cpu().contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    h.update(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(memoryview(t.numpy()).cast("B"))


def _config_text(model: nn.Module) -> str:
    config = getattr(model, "config", None)
    if config is None:
        return ""
    # the name or path a model was loaded from says nothing about its numbers (a copied folder is the same model)
    return str(sorted((k, repr(v)) for k, v in config.to_dict().items() if k not in ("_name_or_path", "name_or_path")))


def model_fingerprint(model: nn.Module, skip: str = "lora_") -> str:
    """Hash of every parameter and buffer, persistent or not, and of the model config (exact; ~0.5 s for a
    135M model on CPU).

    Tensors whose name contains ``skip`` are left out: with the adapter disabled the reference is the base
    alone, and a fresh adapter's random A matrices must not change the key.
    """
    h = hashlib.blake2b(digest_size=16)
    tensors = dict(model.state_dict())
    # non-persistent buffers (e.g. Llama's rotary inv_freq) are absent from state_dict but change the outputs
    # (FSDP1's state_dict is whole and its names clean on every rank; its buffer names carry wrapper prefixes)
    buffers = {clean_name(name): b for name, b in model.named_buffers()}
    tensors.update({f"buffer:{name}": b for name, b in buffers.items() if name not in tensors})
    for name, t in sorted(tensors.items()):
        if skip and skip in name:
            continue
        h.update(name.encode())
        _update_tensor(h, t)
    h.update(_config_text(model).encode())
    return h.hexdigest()


def adapter_fingerprint(model: nn.Module, name: str, base_fp: str) -> str:
    """Hash of the named LoRA adapter's tensors (and its peft config) on top of ``base_fp``, the base's
    :func:`model_fingerprint`: what the base with that adapter active computes."""
    h = hashlib.blake2b(digest_size=16)
    h.update(base_fp.encode())
    tag = f".{name}."
    for key, t in sorted(model.state_dict().items()):
        if tag in key:
            h.update(key.encode())
            _update_tensor(h, t)
    config = getattr(model, "peft_config", {}).get(name)
    h.update(repr(_stable(config.to_dict()) if config is not None else None).encode())
    return h.hexdigest()


def _stable(value):
    """A value whose repr is the same in every process: sets sorted (peft keeps ``target_modules`` as a set, whose
    order follows string hashing, which differs from one Python process to the next), dicts by key."""
    if isinstance(value, dict):
        return [(str(k), _stable(v)) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
    if isinstance(value, (set, frozenset)):
        return sorted((_stable(v) for v in value), key=repr)
    if isinstance(value, (list, tuple)):
        return [_stable(v) for v in value]
    return value


def data_fingerprint(split: "SplitData") -> str:
    h = hashlib.blake2b(digest_size=16)
    for sid, pair in zip(split.ids, split.pairs):
        h.update(sid.encode())
        for part in (pair.prompt, pair.chosen, pair.rejected):
            h.update(len(part).to_bytes(4, "little"))
            h.update(torch.tensor(part, dtype=torch.int32).numpy().tobytes())
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str(sorted(tokenizer.get_vocab().items())).encode())
    h.update(str(getattr(tokenizer, "chat_template", "")).encode())
    return h.hexdigest()


def cache_path(cache_dir: Path, split: "SplitData", tokenizer, model_fp: str, precision: str = "") -> Path:
    """``precision`` is the trainer's (e.g. ``bf16-mixed``): the cached numbers are only exact in it."""
    key = hashlib.sha1(
        f"{data_fingerprint(split)}|{tokenizer_fingerprint(tokenizer)}|{model_fp}|{precision}|"
        f"scoring-v{SCORING_VERSION}".encode()
    ).hexdigest()
    return Path(cache_dir) / f"ref_logps-{split.name}-{key[:20]}.pt"


@torch.no_grad()
def compute_reference_logps(
    batches: Iterable[PreferenceBatch], n: int, score: Callable[[PreferenceBatch], Tensor]
) -> Tensor:
    """[n, 2] (chosen, rejected) reference log-probs, rows in split order; ``score`` returns [2B] per batch."""
    out = torch.full((n, 2), float("nan"), dtype=torch.float64)
    for batch in batches:
        logps = score(batch).double().cpu()
        b = len(batch)
        out[batch.index.cpu(), 0] = logps[:b]
        out[batch.index.cpu(), 1] = logps[b:]
    if torch.isnan(out).any():
        raise RuntimeError(f"reference log-probs missing for {int(torch.isnan(out[:, 0]).sum())} rows")
    return out


def load_or_compute(path: Path, split: "SplitData", compute: Callable[[], Tensor], *, is_main: bool = True,
                    barrier: Callable[[], None] = lambda: None, everywhere: bool = False) -> Tensor:
    """The cached [N, 2] log-probs at ``path``; the main process computes and writes them first if absent
    (atomically, so other processes never read half a file), the others wait at ``barrier``. ``everywhere``
    (a sharded model, whose forwards are collectives): every process runs ``compute`` when the file is absent,
    the main process writes."""
    missing = not path.is_file()
    if everywhere:
        barrier()  # every process has looked before the main one writes: they all compute, or none does
        if missing:
            values = compute()
    if is_main and missing:
        values = values if everywhere else compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"ids": split.ids, "logps": values}, tmp)
        tmp.rename(path)
    barrier()
    saved = torch.load(path, weights_only=True)
    if saved["ids"] != split.ids:
        raise RuntimeError(f"reference cache {path} does not match split '{split.name}' (ids differ)")
    return saved["logps"]
