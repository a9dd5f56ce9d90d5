"""WPO's on-policy weights (Zhou et al. 2024) as a weight source."""

from __future__ import annotations

from torch import Tensor

from lit_iwpo.losses.wpo import wpo_pair_weights, wpo_sequence_log_weights
from lit_iwpo.models.scoring import ForwardRequest
from lit_iwpo.objectives.context import StepInputs
from lit_iwpo.objectives.weights.base import StoredWeights



class WPOWeights(StoredWeights):
    """w = min(exp(ā(y_w) + ā(y_l)), 1) per pair, with ā(y) = mean_t [log π(y_t|·) − log Σ_v π(v|·)²]: how
    on-policy the pair looks to the current policy (from the training forward's logits, detached)."""

    request = ForwardRequest(reference="none", logits=True)

    def train_weights(self, inputs: StepInputs, losses: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pol = inputs.policy
        w = wpo_pair_weights(wpo_sequence_log_weights(pol.token_logps, pol.logits, pol.mask))
        self.record(inputs, w, log=True)
        return w, self.batch_metrics(w, inputs)
