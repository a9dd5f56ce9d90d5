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
    or ``policy``, as it is now), in eval mode, no grad. Cached in ``cache_dir`` under a fingerprint of the data
    splits, tokenizer, model and pooling (so a policy that moved is embedded again)."""
    splits = sorted({s for s, _, _ in pool})
    key = "|".join([*(ctx.fingerprint(f"data:{s}") for s in splits), ctx.fingerprint("tokenizer"),
                    ctx.fingerprint(model), pooling])
    path = Path(cache_dir) / f"embeddings-{hashlib.sha1(key.encode()).hexdigest()[:20]}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    out: dict[tuple[str, int, str], Tensor] = {}
    request = ForwardRequest(reference="token", embeddings=pooling)
    with torch.no_grad():
        for split in splits:
            rows = sorted({r for s, r, _ in pool if s == split})
            chunk = ctx.eval_batch_size
            for i in ctx.progress(range(0, len(rows), chunk), desc=f"{desc} ({split})", total=-(-len(rows) // chunk)):
                part = rows[i:i + chunk]
                batch = ctx.batch(split, part)
                if model == "policy":
                    lp = ctx.score(batch, "policy", mode="eval", request=ForwardRequest(embeddings=pooling))
                else:
                    lp = ctx.score(batch, "reference", request=request)
                emb = lp.embeddings.detach().float().cpu()
                for j, r in enumerate(part):
                    out[(split, r, "chosen")], out[(split, r, "rejected")] = emb[j], emb[len(part) + j]
    x = torch.stack([out[item] for item in pool])
    atomic_save(x, path)
    return x
