"""DPO (+ IPO, cDPO) and SFT objectives: a per-sample loss, composed with a weight source and a reduction."""

from __future__ import annotations

from typing import Optional

from torch import Tensor

from lit_iwpo.data.collate import PreferenceBatch
from lit_iwpo.errors import ConfigError
from lit_iwpo.losses import dpo_loss, sft_loss
from lit_iwpo.losses.dpo import check_dpo_settings
from lit_iwpo.models.logprobs import LogProbs
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.base import PreferenceObjective, StepInputs
from lit_iwpo.objectives.context import StepContext
from lit_iwpo.objectives.reductions import Reduction
from lit_iwpo.objectives.weights.base import WeightSource
from lit_iwpo.objectives.weights.column import ColumnWeights
from lit_iwpo.weighting.transforms import loss_transform, reward_transform


def _weights(weights: Optional[WeightSource], weight_column: Optional[str]) -> Optional[WeightSource]:
    if weight_column is None:
        return weights
    if weights is not None:
        raise ConfigError("set objective.weights or objective.weight_column, not both")
    return ColumnWeights(weight_column)


class DPO(PreferenceObjective):
    """Direct Preference Optimisation (Rafailov et al. 2023), with IPO and cDPO variants.

    ℓ = −log σ(β h) (``sigmoid``), ℓ = (h − 1/(2β))² (``ipo``, Azar et al. 2023), or with label smoothing ε
    ℓ = −(1−ε) log σ(β h) − ε log σ(−β h) (cDPO), where
    h = [log π(y_w|x) − log π(y_l|x)] − [log π_ref(y_w|x) − log π_ref(y_l|x)]; loss = reduction(w_i ℓ_i).

    Args:
        beta: Strength of the KL regularisation towards the reference (β).
        loss_type: ``sigmoid`` (DPO / cDPO) or ``ipo``.
        label_smoothing: cDPO's ε, the assumed rate of flipped labels (0 = plain DPO).
        length_normalize: Use log-probs averaged over response tokens in h instead of sums. TRL averages for
            IPO; the IPO paper and our default use sums (β then keeps the same meaning across objectives).
            The logged ``rewards/*`` metrics always use sums, as TRL's do.
        weights: Sample weights (``class_path``), e.g. ``lit_iwpo.objectives.weights.ColumnWeights``; None: uniform.
        weight_column: Shortcut for ``weights: ColumnWeights(column)``: weights from this training-data column.
        reduction: From weighted per-sample losses to the loss; None: the mean.
        val_warmup_steps: Beyond the papers: the first k optimizer steps train on batches of D_v (``data.val``,
            in order, cycling) instead of the training batch, so the policy holds the deployment preference
            before D_tr's pairs come in (e.g. before IW-DPO estimates its first weights). 0: off.
    """

    loss_request = ForwardRequest(reference="sequence")

    def __init__(
        self,
        beta: float = 0.1,
        loss_type: str = "sigmoid",
        label_smoothing: float = 0.0,
        length_normalize: bool = False,
        weights: Optional[WeightSource] = None,
        weight_column: Optional[str] = None,
        reduction: Optional[Reduction] = None,
        val_warmup_steps: int = 0,
    ) -> None:
        check_dpo_settings(beta, loss_type, label_smoothing, prefix="objective.")
        if val_warmup_steps < 0:
            raise ConfigError(f"objective.val_warmup_steps must be >= 0, got {val_warmup_steps}")
        self.val_warmup_steps = val_warmup_steps
        self.beta = beta
        self.loss_type = loss_type
        self.label_smoothing = label_smoothing
        self.length_normalize = length_normalize
        super().__init__(weights=_weights(weights, weight_column), reduction=reduction)

    def sequence_terms(self, pol: LogProbs, ref: LogProbs | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(π(y_w), π(y_l), π_ref(y_w), π_ref(y_l)) as the loss uses them: sums, or per-token means."""
        if ref is None:
            raise ValueError("DPO needs reference log-probs")
        pc, pr, rc, rr = pol.chosen, pol.rejected, ref.chosen, ref.rejected
        if self.length_normalize:
            # policy and reference score the same tokens, so the policy's counts serve both (also for a cache)
            n = pol.lengths.clamp_min(1).to(pc.dtype)
            b = pol.n_pairs
            pc, pr, rc, rr = pc / n[:b], pr / n[b:], rc / n[:b], rr / n[b:]
        return pc, pr, rc, rr

    def pair_transform(self, kind: str, policy: LogProbs, reference: LogProbs) -> Tensor:
        """IW-DPO's transforms of a batch, detached: ``reward`` [B, 2] (r_w, r_l) or ``loss`` [B, 1] (this ℓ)."""
        args = tuple(t.detach() for t in self.sequence_terms(policy, reference))
        if kind == "reward":
            return reward_transform(*args, beta=self.beta)
        return loss_transform(*args, beta=self.beta, loss_type=self.loss_type, label_smoothing=self.label_smoothing)

    def per_sample_loss(self, inputs: StepInputs) -> Tensor:
        return dpo_loss(*self.sequence_terms(inputs.policy, inputs.reference), beta=self.beta,
                        loss_type=self.loss_type, label_smoothing=self.label_smoothing)

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        if self.val_warmup_steps and ctx.stage == "fit" and ctx.split("train") is not None and ctx.split("val") is None:
            raise ConfigError("objective.val_warmup_steps trains on D_v first: set data.val")

    def train_batch(self, batch: PreferenceBatch, ctx: StepContext) -> PreferenceBatch:
        """During the first ``val_warmup_steps`` steps: a batch of D_v instead of the loader's (rows chosen by step
        and rank, so a resumed run draws the same ones); the loader's batch is never scored."""
        if ctx.step >= self.val_warmup_steps:
            return batch
        n, b = len(ctx.split("val")), len(batch)
        index, size = ctx.accumulation  # every micro-batch of every process draws its own rows
        start = ((ctx.step * size + index) * ctx.world_size + ctx.rank) * b
        return ctx.batch("val", [(start + j) % n for j in range(b)])


class SFT(PreferenceObjective):
    """Supervised fine-tuning on the chosen responses: the NLL of y_w (the paper's SFT baseline).

    Args:
        average_tokens: Average the NLL over each response's tokens (True) or sum it (False).
        beta: Only scales the implicit-reward metrics logged for comparison with DPO runs.
        weights: Sample weights (``class_path``); None: uniform.
        weight_column: Shortcut for ``weights: ColumnWeights(column)``.
        reduction: From weighted per-sample losses to the loss; None: the mean.
    """

    loss_request = ForwardRequest(reference="none")

    def __init__(self, average_tokens: bool = True, beta: float = 0.1, weights: Optional[WeightSource] = None,
                 weight_column: Optional[str] = None, reduction: Optional[Reduction] = None) -> None:
        # not called length_normalize: switching class_path from DPO on the command line would carry
        # DPO's length_normalize=False over into SFT (jsonargparse keeps init args whose names match)
        self.average_tokens = average_tokens
        self.beta = beta
        super().__init__(weights=_weights(weights, weight_column), reduction=reduction)

    def per_sample_loss(self, inputs: StepInputs) -> Tensor:
        pol = inputs.policy
        lengths = pol.lengths[: pol.n_pairs] if self.average_tokens else None
        return sft_loss(pol.chosen, lengths)
