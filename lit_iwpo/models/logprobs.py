"""One log-probability helper for policy and reference, over the canonical concatenated batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

# bumped whenever the numbers response_logps returns could change (masking, dtype handling, pooling):
# part of the reference log-prob cache key, so a cache never outlives the code that wrote it
SCORING_VERSION = "2"

POOLINGS = ("mean_response", "last_prompt")


@dataclass
class LogProbs:
    """Log-probabilities of the response tokens of a [2B, T] batch (chosen rows first, then rejected)."""

    logps: Tensor  # [2B] summed over response tokens
    token_logps: Tensor | None = None  # [2B, T-1] log π(y_t | ·) at the position predicting token t+1; 0 elsewhere
    mask: Tensor | None = None  # [2B, T-1] bool: position predicts a response token (None: from a cache)
    logits: Tensor | None = None  # [N, V] logits at the N = mask.sum() response positions, in mask order
    embeddings: Tensor | None = None  # [2B, H] pooled last hidden state (see response_logps' ``pool``)

    @property
    def n_pairs(self) -> int:
        return self.logps.shape[0] // 2

    @property
    def chosen(self) -> Tensor:  # [B]
        return self.logps[: self.n_pairs]

    @property
    def rejected(self) -> Tensor:  # [B]
        return self.logps[self.n_pairs :]

    @property
    def lengths(self) -> Tensor:  # [2B] number of response tokens
        return self.mask.sum(-1)


# architectures whose CausalLM forward is exactly lm_head(decoder(x)): no soft-capping or logit scaling
# (Gemma 2 soft-caps, Cohere and Granite scale, Falcon-H1 multiplies). Others take the full forward.
PLAIN_HEAD_MODELS = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "phi3",
                               "smollm3", "olmo2", "gemma"})


def _is_fsdp(model: nn.Module) -> bool:
    """Whether ``model`` is the root of an FSDP2 sharding (:func:`lit_iwpo.parallel.parallelize`)."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # a torch without FSDP2
        return False
    return isinstance(model, FSDPModule)


def _fast_path_parts(model: nn.Module) -> tuple[nn.Module, nn.Module] | None:
    """(decoder, lm_head) when logits are just ``lm_head(decoder(x))``; None otherwise (full forward)."""
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) not in PLAIN_HEAD_MODELS:
        return None
    try:
        decoder, head = model.get_decoder(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return None
    if decoder is None or head is None or decoder is model:
        return None
    return decoder, head


def pool_hidden(hidden: Tensor, loss_mask: Tensor, pool: str) -> Tensor:
    """[2B, H] pooled from the last hidden state [2B, T, H]: the mean over response tokens
    (``mean_response``) or the state at the last prompt token (``last_prompt``, which has read the prompt
    and predicts the first response token: the same vector for a pair's two rows)."""
    if pool not in POOLINGS:
        raise ValueError(f"embeddings pooling must be one of {POOLINGS}, got {pool!r}")
    m = loss_mask.to(hidden.dtype)
    if pool == "mean_response":
        return (hidden * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp_min(1)
    first = loss_mask.long().argmax(1)  # first response position; the prompt's last token sits just before
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    return hidden[rows, (first - 1).clamp_min(0)]


def response_logps(
    model: nn.Module,
    input_ids: Tensor,
    attention_mask: Tensor,
    loss_mask: Tensor,
    *,
    return_logits: bool = False,
    pool: str | None = None,
) -> LogProbs:
    """Sum of log π(y_t | x, y_<t) over response tokens, plus the per-token values.

    ``loss_mask`` [2B, T] marks response tokens; masks come from tokenisation, never from the pad id
    (SmolLM2's pad token *is* its end-of-turn token, which ends every response). Logits are computed
    only at response positions (the LM head is ~20 % of a 135M model's FLOPs and its [2B, T, V] output
    dominates activation memory), which gives the same numbers as slicing full logits. ``pool`` also
    returns pooled last hidden states (see :func:`pool_hidden`) from the same forward.
    """
    mask = loss_mask[:, 1:].bool()
    targets = input_ids[:, 1:][mask]  # [N]
    sharded = _is_fsdp(model)
    parts = None if sharded else _fast_path_parts(model)
    if parts is not None:
        decoder, head = parts
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        logits = head(hidden[:, :-1][mask])  # [N, V]
    elif sharded:
        # FSDP2 gathers the root's weights (embeddings, head) only in the root's own forward: go through it,
        # asking for logits only at the positions where some row has a response token
        keep = mask.any(0).nonzero().squeeze(-1)
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, logits_to_keep=keep,
                    output_hidden_states=pool is not None)
        logits = out.logits[mask[:, keep]]
        hidden = out.hidden_states[-1] if pool is not None else None
    else:
        out = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False,
                    output_hidden_states=pool is not None)
        logits = out.logits[:, :-1][mask]
        hidden = out.hidden_states[-1] if pool is not None else None
    # fp32 log-softmax: bf16 logsumexp over a 49k vocabulary loses ~2 digits
    logits = logits.float()
    tok = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)  # [N]
    token_logps = tok.new_zeros(mask.shape).masked_scatter(mask, tok)
    return LogProbs(
        logps=token_logps.sum(-1),
        token_logps=token_logps,
        mask=mask,
        logits=logits if return_logits else None,
        embeddings=pool_hidden(hidden.float(), loss_mask, pool) if pool is not None else None,
    )
