"""One log-probability helper for policy and reference, over the canonical concatenated batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from lit_iwpo.models.wrapping import is_fsdp_root

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


# attention implementations that take a custom 4-D mask: SDPA (boolean, True = attend) and eager (additive)
SHARED_PROMPT_ATTENTION = ("sdpa", "eager")


@dataclass
class SharedPromptLayout:
    """A [2B, T] pair batch laid out as B rows ``[prompt | chosen | rejected]``: the prompt, which a pair's two
    rows share, is run once. The rejected response attends to the prompt and to itself, never to the chosen one,
    and its position ids continue from the prompt, so every response token sees exactly the context it has in
    its own row: the same numbers, with the prompt's tokens computed once instead of twice."""

    input_ids: Tensor  # [B, L]
    position_ids: Tensor  # [B, L]
    allowed: Tensor  # [B, L, L] bool: query position may attend to key position
    source: Tensor  # [2B, T] long: flat index into [B * L] of each canonical position (0 on padding)

    def attention_mask(self, implementation: str, dtype: torch.dtype) -> Tensor:
        """The [B, 1, L, L] mask the attention implementation takes: boolean for SDPA, additive for eager."""
        if implementation == "eager":
            return torch.zeros(self.allowed.shape, dtype=dtype, device=self.allowed.device).masked_fill(
                ~self.allowed, torch.finfo(dtype).min).unsqueeze(1)
        return self.allowed.unsqueeze(1)


def shared_prompt_layout(input_ids: Tensor, attention_mask: Tensor, loss_mask: Tensor) -> SharedPromptLayout | None:
    """:class:`SharedPromptLayout` of a canonical pair batch, or None when rows ``i`` and ``B + i`` are not a pair
    sharing its prompt (right-padded rows, prompt tokens then response tokens to the end of each row)."""
    rows, width = input_ids.shape
    if rows % 2 or rows == 0:
        return None
    b, device = rows // 2, input_ids.device
    n_real, n_resp = attention_mask.sum(1), loss_mask.sum(1)
    plen = n_real - n_resp
    col = torch.arange(width, device=device)
    in_real, in_resp = col < n_real[:, None], (col >= plen[:, None]) & (col < n_real[:, None])
    if (bool((attention_mask.bool() != in_real).any()) or bool((loss_mask.bool() != in_resp).any())
            or bool((plen[:b] != plen[b:]).any()) or bool((plen < 1).any()) or bool((n_resp < 1).any())):
        return None
    prompt = col < plen[:b, None]
    if bool((input_ids[:b] != input_ids[b:])[prompt].any()):
        return None
    p, c, r = plen[:b], n_resp[:b], n_resp[b:]
    total = p + c + r
    length = int(total.max())
    k = torch.arange(length, device=device)[None, :]  # [1, L]
    seg = (k >= p[:, None]).long() + (k >= (p + c)[:, None]).long() + (k >= total[:, None]).long()  # 0 1 2 3=pad
    chosen_col = k.clamp(max=width - 1).expand(b, -1)
    rejected_col = (k - c[:, None]).clamp(0, width - 1)
    ids = torch.where(seg <= 1, input_ids[:b].gather(1, chosen_col), input_ids[b:].gather(1, rejected_col))
    ids = ids.masked_fill(seg == 3, 0)
    position_ids = torch.where(seg == 2, k - c[:, None], k).masked_fill(seg == 3, 0)
    causal = k <= k.T  # [L, L]: [query, key], key at or before query
    q_seg, k_seg = seg[:, :, None], seg[:, None, :]
    allowed = causal & (k_seg != 3) & ~((q_seg == 2) & (k_seg == 1))
    allowed |= torch.eye(length, dtype=torch.bool, device=device)  # padding queries see themselves (no NaN)
    row = torch.arange(rows, device=device)[:, None]
    # a rejected row's response sits after its pair's chosen response in the packed row: shifted by c
    shift = ((row >= b) & (col >= plen[:, None])) * c.repeat(2)[:, None]
    source = ((row % b) * length + col + shift).masked_fill(~in_real, 0)
    return SharedPromptLayout(input_ids=ids, position_ids=position_ids, allowed=allowed, source=source)


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
    share_prompt: bool = False,
) -> LogProbs:
    """Sum of log π(y_t | x, y_<t) over response tokens, plus the per-token values.

    ``loss_mask`` [2B, T] marks response tokens; masks come from tokenisation, never from the pad id
    (SmolLM2's pad token *is* its end-of-turn token, which ends every response). Logits are computed
    only at response positions (the LM head is ~20 % of a 135M model's FLOPs and its [2B, T, V] output
    dominates activation memory), which gives the same numbers as slicing full logits. ``pool`` also
    returns pooled last hidden states (see :func:`pool_hidden`) from the same forward. ``share_prompt`` runs
    each pair's prompt once (:class:`SharedPromptLayout`) where the model allows it (a plain LM head or an
    FSDP root, an attention implementation that takes a custom mask); the results are those of the two-row
    layout up to floating-point rounding.
    """
    mask = loss_mask[:, 1:].bool()
    targets = input_ids[:, 1:][mask]  # [N]
    sharded = is_fsdp_root(model)
    parts = None if sharded else _fast_path_parts(model)
    layout = None
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if share_prompt and (parts is not None or sharded) and implementation in SHARED_PROMPT_ATTENTION:
        layout = shared_prompt_layout(input_ids, attention_mask, loss_mask)
    if layout is not None:
        packed_mask = layout.attention_mask(implementation, next(model.parameters()).dtype)
        need = layout.source[:, :-1][mask]  # [N] flat packed positions, in the two-row layout's mask order
        if parts is not None:
            decoder, head = parts
            packed = decoder(input_ids=layout.input_ids, position_ids=layout.position_ids, use_cache=False,
                             attention_mask=packed_mask).last_hidden_state.flatten(0, 1)  # [B * L, H]
            logits = head(packed[need])  # [N, V]
        else:  # FSDP: through the root's forward (see below), logits only at the packed columns needed
            width = layout.input_ids.shape[1]
            keep = torch.unique(need % width)
            column = torch.full((width,), -1, dtype=torch.long, device=need.device)
            column[keep] = torch.arange(len(keep), device=need.device)
            out = model(input_ids=layout.input_ids, position_ids=layout.position_ids, attention_mask=packed_mask,
                        use_cache=False, logits_to_keep=keep, output_hidden_states=pool is not None)
            logits = out.logits[need // width, column[need % width]]
            packed = out.hidden_states[-1].flatten(0, 1) if pool is not None else None
        hidden = packed[layout.source] if pool is not None else None  # [2B, T, H] as two rows would give
    elif parts is not None:
        decoder, head = parts
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        logits = head(hidden[:, :-1][mask])  # [N, V]
    elif sharded:
        # FSDP gathers the root's weights (embeddings, head) only in the root's own forward: go through it,
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
