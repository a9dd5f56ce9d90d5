"""Transforms t(x, y_w, y_l) ↦ z in which IW-DPO estimates density ratios (Lodkaew et al.).

Both are computed with the current policy under no_grad: at initialisation every loss is log 2 and every
reward 0, so the transforms only carry signal once the policy has moved (hence IW-DPO's warm-up).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lit_iwpo.errors import ConfigError
from lit_iwpo.losses import dpo_loss, implicit_reward

TRANSFORMS = ("loss", "reward")


def reward_transform(policy_chosen: Tensor, policy_rejected: Tensor, reference_chosen: Tensor,
                     reference_rejected: Tensor, beta: float) -> Tensor:
    """IW-DPO-R: z = (r(x, y_w), r(x, y_l)), shape [B, 2], ordered by the label so label shift is visible."""
    return torch.stack([implicit_reward(policy_chosen, reference_chosen, beta),
                        implicit_reward(policy_rejected, reference_rejected, beta)], dim=-1)


def loss_transform(policy_chosen: Tensor, policy_rejected: Tensor, reference_chosen: Tensor,
                   reference_rejected: Tensor, beta: float, loss_type: str = "sigmoid",
                   label_smoothing: float = 0.0) -> Tensor:
    """IW-DPO-L: z = ℓ_DPO(x, y_w, y_l), shape [B, 1]."""
    loss = dpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected,
                    beta=beta, loss_type=loss_type, label_smoothing=label_smoothing)
    return loss.detach().unsqueeze(-1)


def transform_dim(name: str) -> int:
    if name not in TRANSFORMS:
        raise ConfigError(f"transform must be one of {TRANSFORMS}, got {name!r}")
    return 2 if name == "reward" else 1
