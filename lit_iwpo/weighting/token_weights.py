"""TIS-DPO's token weights: from a contrastive pair of models to one weight per response token (pure torch).

The raw value of a response token is r_t = log π⁺(y_t|·) − log π⁻(y_t|·), π⁺/π⁻ the contrastive pair
(e.g. forward- and reverse-DPO adapters), with μ = +1 on chosen and −1 on rejected responses: a token the
positive model prefers matters in a chosen response, a token the negative model prefers in a rejected one.
A :class:`TokenWeightMap` turns one response's raw values into weights:

- :class:`ExpClamp`, the paper: w_t = k · exp(μ · clamp(r_t, L, U)), L = −0.5, U = 1.5, k normalising the
  response to mean 1 (``normalize``; methods.md) or 1;
- :class:`ThresholdAndScale`, the released code's ``threshold_and_scale``: s_t = μ r_t clamped to [−B, B],
  then mapped linearly onto [lo, hi] (defaults B = 1.5 → [0.7, 1.3]; the code's presets by name);
- :class:`RankBased`, the code's ``rank_based``: the rank of s_t within the response (ties: the earlier
  token ranks lower) mapped linearly onto [lo, hi]; a one-token response gets 1.

The released code also gives the response's last token weight 0: the end-of-sequence token, or the last kept
token of a truncated response (``zero_last`` in :func:`map_responses`; ours keeps it, see there).
Weights live per response, in token order, so :func:`align` can place them on any batch layout (prompt
masking, truncation, left or right padding) from the loss mask alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

SIDES = ("chosen", "rejected")


def sign(side: str) -> float:
    """μ: +1 for chosen responses, −1 for rejected ones."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    return 1.0 if side == "chosen" else -1.0


class TokenWeightMap(ABC):
    """From the raw values r [n] of one response's tokens to their weights [n]."""

    @abstractmethod
    def __call__(self, raw: Tensor, side: str) -> Tensor: ...

    @abstractmethod
    def clamp_hits(self, raw: Tensor, side: str) -> tuple[Tensor, Tensor]:
        """(at lower bound, at upper bound) [n] bool: tokens whose value the map's clamp cut."""

    def settings(self) -> str:
        """Everything the weights depend on, for cache keys."""
        return f"{type(self).__name__}{sorted(vars(self).items())}"


@dataclass
class ExpClamp(TokenWeightMap):
    """The paper's map: w = k · exp(μ · clamp(r, lower, upper)); ``normalize``: k sets the response's mean to 1.

    Args:
        lower: L, the clamp's lower bound on r (before the sign μ).
        upper: U, its upper bound.
        normalize: Scale each response's weights to mean 1 (methods.md); False leaves k = 1.
    """

    lower: float = -0.5
    upper: float = 1.5
    normalize: bool = True

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"ExpClamp needs lower < upper, got [{self.lower}, {self.upper}]")

    def __call__(self, raw: Tensor, side: str) -> Tensor:
        w = torch.exp(sign(side) * raw.clamp(self.lower, self.upper))
        return w / w.mean() if self.normalize and w.numel() else w

    def clamp_hits(self, raw, side):
        return raw <= self.lower, raw >= self.upper


# the released code's presets (config/transform/*.yaml): clamp bound B and the weight range [low, high]
PRESETS = {"default": (1.5, 0.7, 1.3), "aggressive": (2.0, 0.5, 1.5), "moderate": (1.8, 0.6, 1.4)}


def _preset(name: str | None, bound: float, low: float, high: float) -> tuple[float, float, float]:
    if name is None:
        return bound, low, high
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
    return PRESETS[name]


class ThresholdAndScale(TokenWeightMap):
    """The released code's ``threshold_and_scale``: s = μ r clamped to [−bound, bound], mapped linearly onto
    [low, high].

    Args:
        bound: B: s is clamped to [−B, B].
        low: Weight at s = −B.
        high: Weight at s = +B.
        preset: The code's presets instead of the three numbers: ``default`` ([−1.5, 1.5] → [0.7, 1.3]),
            ``aggressive`` ([−2, 2] → [0.5, 1.5]) or ``moderate`` ([−1.8, 1.8] → [0.6, 1.4]).
    """

    def __init__(self, bound: float = 1.5, low: float = 0.7, high: float = 1.3, preset: str | None = None) -> None:
        self.bound, self.low, self.high = _preset(preset, bound, low, high)
        if self.bound <= 0 or not self.low <= self.high:
            raise ValueError(f"ThresholdAndScale needs bound > 0 and low <= high, got {self.bound}, "
                             f"[{self.low}, {self.high}]")

    def __call__(self, raw: Tensor, side: str) -> Tensor:
        s = (sign(side) * raw).clamp(-self.bound, self.bound)
        return self.low + (s + self.bound) * (self.high - self.low) / (2 * self.bound)

    def clamp_hits(self, raw, side):
        s = sign(side) * raw
        return s <= -self.bound, s >= self.bound


class RankBased(TokenWeightMap):
    """The released code's ``rank_based``: the rank of s = μ r within the response (0 = smallest; ties: the
    earlier token ranks lower), w = low + rank / (n − 1) · (high − low); a one-token response gets 1.

    Args:
        low: Weight of the lowest-ranked token.
        high: Weight of the highest-ranked token.
        preset: The code's ranges by preset name (``default`` [0.7, 1.3], ``aggressive``, ``moderate``).
    """

    def __init__(self, low: float = 0.7, high: float = 1.3, preset: str | None = None) -> None:
        _, self.low, self.high = _preset(preset, 1.0, low, high)
        if not self.low <= self.high:
            raise ValueError(f"RankBased needs low <= high, got [{self.low}, {self.high}]")

    def __call__(self, raw: Tensor, side: str) -> Tensor:
        n = raw.numel()
        if n == 1:
            return torch.ones_like(raw)
        order = torch.argsort(sign(side) * raw, stable=True)
        rank = torch.empty(n, dtype=raw.dtype, device=raw.device)
        rank[order] = torch.arange(n, dtype=raw.dtype, device=raw.device)
        return self.low + rank / (n - 1) * (self.high - self.low)

    def clamp_hits(self, raw, side):
        none = torch.zeros_like(raw, dtype=torch.bool)
        return none, none


def map_responses(raw: list[Tensor], side: str, weight_map: TokenWeightMap, zero_last: bool = False) -> list[Tensor]:
    """Weights of each response (its raw values in token order). ``zero_last``: the response's last token
    gets 0, as in the released code (the end-of-sequence token, or the last kept token of a truncated
    response); by default it keeps its mapped weight, since that token carries the decision to stop. The zero
    is set after the map (and its normalisation), as the code does, so the response's mean drops below 1."""
    out = []
    for r in raw:
        w = weight_map(r.float(), side)
        if zero_last and w.numel():
            w = w.clone()
            w[-1] = 0.0
        out.append(w)
    return out


def raw_values(positive: Tensor, negative: Tensor, mask: Tensor) -> list[Tensor]:
    """r_t = log π⁺(y_t) − log π⁻(y_t) of each row's response tokens, in token order (one tensor per row).

    ``positive`` and ``negative`` are [R, T-1] per-position log-probs of the same tokens under the two
    models and ``mask`` [R, T-1] their response positions; the rows may come from different batch layouts
    (e.g. a contrastive system prompt shifts the response), as long as each row's response tokens match.
    """
    diff = (positive - negative).float()
    return [diff[i][mask[i].bool()] for i in range(mask.shape[0])]


def response_values(token_values: Tensor, mask: Tensor) -> list[Tensor]:
    """The values at each row's response positions, in token order (inverse of :func:`align`)."""
    return [token_values[i][mask[i].bool()] for i in range(mask.shape[0])]


def align(weights: list[Tensor], mask: Tensor, ids: list[str] | None = None) -> Tensor:
    """Place per-response weights (token order) on a batch's response positions: [R, T-1], 0 elsewhere.

    Works for any layout the mask describes: prompt masking, truncation, left or right padding. A
    response whose number of weights differs from its number of response positions is an error naming the
    row (and sample id): the weights were computed for other tokens.
    """
    mask = mask.bool()
    counts = mask.sum(-1).tolist()
    for i, (w, n) in enumerate(zip(weights, counts)):
        if w.numel() != n:
            who = f" (sample {ids[i % len(ids)]!r}, {'chosen' if i < len(ids) else 'rejected'})" if ids else ""
            raise ValueError(f"row {i}{who}: {w.numel()} token weights for {n} response tokens; the token weights "
                             "were computed for a different tokenisation (recompute them)")
    flat = torch.cat([w.to(mask.device, torch.float32) for w in weights]) if weights else torch.empty(0)
    return torch.zeros(mask.shape, dtype=torch.float32, device=mask.device).masked_scatter(mask, flat)
