"""TIS-DPO: token-level importance sampling for DPO (Liu et al., ICLR 2025; released code exlaw/TIS-DPO)."""

from __future__ import annotations

from typing import Any, Optional

from torch import Tensor

from lit_iwpo.errors import ConfigError
from lit_iwpo.losses import tis_dpo_loss, token_kl, weighted_kl, weighted_logps
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.base import ObjectiveOutput, StepInputs
from lit_iwpo.objectives.context import StepContext
from lit_iwpo.objectives.dpo import DPO
from lit_iwpo.objectives.reductions import Reduction
from lit_iwpo.objectives.weights.base import WeightSource
from lit_iwpo.objectives.weights.token import ContrastiveTokenWeights


class TISDPO(DPO):
    """ℓ = −log σ(β [Σ_t w_t Δ_t(y_w) − Σ_t w_t Δ_t(y_l) − α (S(y_w) − S(y_l))]), Δ_t = log π(y_t) − log π_ref(y_t),
    S(y) = Σ_t w_t KL_t(π ‖ π_ref) over the vocabulary, token weights w_t from a contrastive pair of models.

    The token weights are computed once at fit start (cached on disk) and fixed, so Σ_t w_t log π_ref(y_t) is
    cached with them: with ``model.precompute_ref_logps`` a step costs what a cached-reference DPO step costs.
    α = 0 (the released code's default) computes no full-vocabulary quantity; α > 0 needs a live reference
    forward with logits at response positions. Validation and test losses are plain DPO (unweighted), so
    they compare across methods.

    Args:
        token_weights: Where the token weights come from (``ContrastiveTokenWeights``: its ``contrast`` and
            ``weight_map``).
        alpha: α, the weight of the token-weighted sequence KL term (0: off).
        beta: β.
        weights: Sample weights on top (``class_path``); None: uniform.
        reduction: From per-pair losses to the loss; None: the mean.
    """

    def __init__(self, token_weights: ContrastiveTokenWeights, alpha: float = 0.0, beta: float = 0.1,
                 weights: Optional[WeightSource] = None, reduction: Optional[Reduction] = None) -> None:
        if alpha < 0:
            raise ConfigError(f"objective.alpha must be >= 0, got {alpha}")
        super().__init__(beta=beta, weights=weights, reduction=reduction)
        self.token_weights = token_weights
        self.alpha = alpha

    @property
    def request(self) -> ForwardRequest:
        req = super().request
        if self.alpha > 0:
            req = req.merge(ForwardRequest(reference="token", logits=True, reference_logits=True))
        return req

    def adapters(self) -> dict[str, str]:
        return self.token_weights.adapters()

    def setup(self, ctx: StepContext) -> None:
        super().setup(ctx)
        self.token_weights.setup(ctx)

    def on_fit_start(self, ctx: StepContext) -> None:
        super().on_fit_start(ctx)
        self.token_weights.prepare(ctx)

    def per_sample_loss(self, inputs: StepInputs) -> Tensor:
        if inputs.stage != "train":
            return super().per_sample_loss(inputs)
        pol, ids = inputs.policy, inputs.batch.ids
        w = self.token_weights.batch_weights(ids, pol.mask)
        kl = None
        if self.alpha > 0:
            kl = weighted_kl(token_kl(pol.logits, inputs.reference.logits), w, pol.mask)
        return tis_dpo_loss(weighted_logps(pol.token_logps, w, pol.mask),
                            self.token_weights.reference_weighted(ids, pol.logps.device),
                            beta=self.beta, alpha=self.alpha, kl_weighted=kl)

    def __call__(self, inputs: StepInputs) -> ObjectiveOutput:
        out = super().__call__(inputs)
        if inputs.stage == "train":
            out.metrics.update(self.token_weights.batch_metrics(inputs.batch.ids))
        return out

    def weight_sources(self) -> list[Any]:
        return [*super().weight_sources(), self.token_weights]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "token_weights": self.token_weights.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self.token_weights.load_state_dict(state.pop("token_weights", {}))
        super().load_state_dict(state)
