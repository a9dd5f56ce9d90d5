"""Pure, unreduced loss functions of log-probability tensors (no Lightning)."""

from lit_iwpo.losses.dpo import (
    LOSS_TYPES,
    dpo_logit_gap,
    dpo_loss,
    implicit_reward,
    sft_loss,
    weighted_mean,
)
from lit_iwpo.losses.tis import tis_dpo_loss, token_kl, weighted_kl, weighted_logps

__all__ = ["LOSS_TYPES", "dpo_logit_gap", "dpo_loss", "implicit_reward", "sft_loss", "tis_dpo_loss", "token_kl",
           "weighted_kl", "weighted_logps", "weighted_mean"]
