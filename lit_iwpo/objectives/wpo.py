"""WPO baseline (Zhou et al. 2024): DPO composed with WPO's on-policy weights."""

from __future__ import annotations

from lit_iwpo.objectives.dpo import DPO
from lit_iwpo.objectives.weights.wpo import WPOWeights


class WPO(DPO):
    """Weighted Preference Optimisation: DPO with each pair weighted by how on-policy it looks.

    Per token ℓ̃_t = log π(y_t|·) − log Σ_v π(v|·)², ā(y) = mean_t ℓ̃_t, pair weight
    w = min(exp(ā(y_w) + ā(y_l)), 1) (detached), loss = mean_i w_i ℓ_DPO,i
    (Zhou et al., "WPO: Enhancing RLHF with Weighted Preference Optimization", EMNLP 2024, eq. 6-7
    with the sampling-alignment normalisation). The same as ``DPO(weights: WPOWeights)``.

    Args:
        beta: DPO's β.
        loss_type: ``sigmoid`` or ``ipo``.
        label_smoothing: cDPO's ε.
        length_normalize: Length-averaged log-probs in h.
    """

    def __init__(self, beta: float = 0.1, loss_type: str = "sigmoid", label_smoothing: float = 0.0,
                 length_normalize: bool = False) -> None:
        super().__init__(beta=beta, loss_type=loss_type, label_smoothing=label_smoothing,
                         length_normalize=length_normalize, weights=WPOWeights())
