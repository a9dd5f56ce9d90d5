"""DPO-family losses as pure functions of sequence log-probabilities.

Every function returns the *unreduced* per-sample loss [B]; sample, token and DRO weighting
compose around these outside (see ``lit_iwpo.objectives``). Log-probabilities are sums over
response tokens unless the caller passes length-averaged ones (see ``DPO(length_normalize=...)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from lit_iwpo.errors import ConfigError

LOSS_TYPES = ("sigmoid", "ipo")


def dpo_logit_gap(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
) -> Tensor:
    """h = [log π(y_w|x) − log π(y_l|x)] − [log π_ref(y_w|x) − log π_ref(y_l|x)], shape [B]."""
    return (policy_chosen_logps - policy_rejected_logps) - (reference_chosen_logps - reference_rejected_logps)


def check_dpo_settings(beta: float, loss_type: str, label_smoothing: float, prefix: str = "") -> None:
    """Raise ValueError for settings :func:`dpo_loss` rejects (``prefix`` names the config group)."""
    if loss_type not in LOSS_TYPES:
        raise ConfigError(f"{prefix}loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    if beta <= 0:
        raise ConfigError(f"{prefix}beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ConfigError(f"{prefix}label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if loss_type == "ipo" and label_smoothing:
        raise ConfigError(f"{prefix}label_smoothing (cDPO) applies to loss_type 'sigmoid' only; set it to 0 for IPO")


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    reference_chosen_logps: Tensor,
    reference_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Per-sample DPO / cDPO / IPO loss, shape [B].

    - ``sigmoid`` (DPO, Rafailov et al. 2023, eq. 7): ℓ = −log σ(β h).
      With ``label_smoothing`` ε (conservative DPO, Mitchell 2023):
      ℓ = −(1−ε) log σ(β h) − ε log σ(−β h).
    - ``ipo`` (Azar et al. 2023, eq. 17): ℓ = (h − 1/(2β))².

    h is :func:`dpo_logit_gap`. All inputs are [B].
    """
    check_dpo_settings(beta, loss_type, label_smoothing)
    h = dpo_logit_gap(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    if loss_type == "ipo":
        return (h - 1.0 / (2.0 * beta)) ** 2
    # logsigmoid is the numerically stable form of log σ for large |βh|
    loss = -F.logsigmoid(beta * h)
    if label_smoothing:
        loss = (1.0 - label_smoothing) * loss - label_smoothing * F.logsigmoid(-beta * h)
    return loss


def implicit_reward(policy_logps: Tensor, reference_logps: Tensor, beta: float) -> Tensor:
    """r(x, y) = β (log π(y|x) − log π_ref(y|x)), detached: a metric and a transform, never a gradient path."""
    return (beta * (policy_logps - reference_logps)).detach()


def sft_loss(chosen_logps: Tensor, chosen_lengths: Tensor | None = None) -> Tensor:
    """Negative log-likelihood of the chosen response, per sample [B].

    With ``chosen_lengths`` (response token counts [B]) the NLL is averaged over tokens, so long and
    short answers weigh the same per token; without it the summed NLL is returned.
    """
    if chosen_lengths is None:
        return -chosen_logps
    return -chosen_logps / chosen_lengths.clamp_min(1).to(chosen_logps.dtype)


def weighted_mean(losses: Tensor, weights: Tensor | None = None) -> Tensor:
    """mean_i(w_i ℓ_i) with the weights detached (importance weights are constants in the gradient)."""
    if weights is None:
        return losses.mean()
    return (weights.detach().to(losses.dtype) * losses).mean()
