"""TIS-DPO's loss as pure functions of per-token log-probabilities, masks and token weights.

TIS-DPO (Liu et al., ICLR 2025) weights every response token by its estimated importance w_t:
M(y) = Σ_t w_t Δ_t with Δ_t = log π(y_t|·) − log π_ref(y_t|·), and per pair
ℓ = −log σ(β [M(y_w) − M(y_l) − α (S(y_w) − S(y_l))]), S(y) = Σ_t w_t KL(π(·|y_<t) ‖ π_ref(·|y_<t)).

Σ_t w_t log π_ref(y_t) does not depend on the policy: with fixed token weights it is one number per
sequence, computed once (see :func:`weighted_logps`) and passed in, so a step needs no reference forward.
The KL term needs both models' logits at response positions and is only computed when α > 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def weighted_logps(token_logps: Tensor, weights: Tensor, mask: Tensor) -> Tensor:
    """Σ_t w_t log p(y_t) over response positions, per sequence [2B].

    ``token_logps``, ``weights`` and ``mask`` are [2B, T-1] (weights aligned to the positions, see
    ``lit_iwpo.weighting.token_weights.align``). Positions outside ``mask`` count for nothing, whatever
    their weight. With every weight 1 this is exactly the summed log-prob DPO uses.
    """
    return (token_logps * weights * mask).sum(-1)


def token_kl(policy_logits: Tensor, reference_logits: Tensor) -> Tensor:
    """KL(π ‖ π_ref) over the vocabulary at each of N response positions [N], from [N, V] logits."""
    logp = torch.log_softmax(policy_logits.float(), dim=-1)
    logq = torch.log_softmax(reference_logits.float(), dim=-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def weighted_kl(kl: Tensor, weights: Tensor, mask: Tensor) -> Tensor:
    """S(y) = Σ_t w_t KL_t per sequence [2B], from the per-position KL [N] in ``mask`` order."""
    dense = kl.new_zeros(mask.shape).masked_scatter(mask.bool(), kl)
    return (dense * weights).sum(-1)


def tis_dpo_loss(
    policy_weighted: Tensor,
    reference_weighted: Tensor,
    *,
    beta: float = 0.1,
    alpha: float = 0.0,
    kl_weighted: Tensor | None = None,
) -> Tensor:
    """Per-pair TIS-DPO loss [B] from [2B] sequence values (chosen rows first, then rejected).

    ``policy_weighted`` = Σ_t w_t log π(y_t), ``reference_weighted`` = Σ_t w_t log π_ref(y_t) (both from
    :func:`weighted_logps`), ``kl_weighted`` = S(y) (:func:`weighted_kl`), needed when ``alpha`` > 0.
    With every weight 1 and α = 0 this is DPO's loss, number for number.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    b = policy_weighted.shape[0] // 2
    # the same operation order as DPO's logit gap: equal weights of 1 give the same numbers bit for bit
    h = (policy_weighted[:b] - policy_weighted[b:]) - (reference_weighted[:b] - reference_weighted[b:])
    if alpha > 0:
        if kl_weighted is None:
            raise ValueError("alpha > 0 needs kl_weighted (the token-weighted sequence KL)")
        h = h - alpha * (kl_weighted[:b] - kl_weighted[b:])
    return -F.logsigmoid(beta * h)
