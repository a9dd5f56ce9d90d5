"""Pooled (prompt, response) embeddings of a model, batched and cached on disk: the inputs of DoRA's calibration
probe and of IWPO's clusters and reward heads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor

from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.context import StepContext
from lit_iwpo.weighting.store import atomic_save

Pool = list[tuple[str, int, str]]  # (split, row, side) per response


def response_embeddings(ctx: StepContext, pool: Pool, pooling: str, model: str, cache_dir: Path,
                        desc: str = "embeddings") -> Tensor:
    """[M, d] embeddings of the pool's responses: ``pooling`` (``mean_response``: the mean last hidden state over
    the response tokens; ``last_prompt``: the prompt's last token) of ``model`` (``reference``, the frozen base;
    or ``policy``, as it is now), in eval mode, no grad.

    Every split the pool touches is embedded whole (both responses of every row) and cached in ``cache_dir``, one
    file per split, under a fingerprint of that split's data, the tokenizer, the model and the pooling (so a
    policy that moved is embedded again); any pool over the split then reads from the same file."""
    tables = {split: _split_embeddings(ctx, split, pooling, model, Path(cache_dir), desc)
              for split in sorted({s for s, _, _ in pool})}
    if not pool:
        return torch.empty(0, 0)
    return torch.stack([tables[split][row, 0 if side == "chosen" else 1] for split, row, side in pool])


def _split_embeddings(ctx: StepContext, split: str, pooling: str, model: str, cache_dir: Path,
                      desc: str) -> Tensor:
    """[rows, 2, d]: the chosen (0) and rejected (1) response embeddings of every row of ``split``."""
    key = "|".join([ctx.fingerprint(f"data:{split}"), ctx.fingerprint("tokenizer"), ctx.fingerprint(model), pooling])
    path = cache_dir / f"embeddings-{split}-{hashlib.sha1(key.encode()).hexdigest()[:20]}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    request = ForwardRequest(reference="token", embeddings=pooling)
    n, chunk, parts = len(ctx.split(split)), ctx.eval_batch_size, []
    with torch.no_grad():
        for i in ctx.progress(range(0, n, chunk), desc=f"{desc} ({split})", total=-(-n // chunk)):
            rows = list(range(i, min(i + chunk, n)))
            batch = ctx.batch(split, rows)
            if model == "policy":
                lp = ctx.score(batch, "policy", mode="eval", request=ForwardRequest(embeddings=pooling))
            else:
                lp = ctx.score(batch, "reference", request=request)
            emb = lp.embeddings.detach().float().cpu()  # [2B, d]: the chosen responses, then the rejected
            parts.append(torch.stack([emb[:len(rows)], emb[len(rows):]], 1))
    x = torch.cat(parts)
    atomic_save(x, path)
    return x
