"""The result type of every scenario builder, default sizes, and the eight shift types of the paper.

A preference pair is (x, y_w, y_l); the seed paper factors its distribution as
p(x) p(y1, y2 | x) p(b | x, y1, y2): factor 1 = prompt, factor 2 = response pair, factor 3 = label.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Sized for CPU runs with max_length ~128 tokens; callers override per call (N_v << N_tr).
DEFAULT_SIZES: dict[str, int] = {"train": 400, "val": 32, "test": 64}

PROMPT, RESPONSE, LABEL = "prompt", "response", "label"

# Shift type -> the factors whose training distribution differs from deployment.
SHIFT_TYPES: dict[str, tuple[str, ...]] = {
    "a": (),
    "b": (PROMPT, RESPONSE, LABEL),
    "c": (PROMPT,),
    "d": (RESPONSE,),
    "e": (LABEL,),
    "f": (PROMPT, RESPONSE),
    "g": (PROMPT, LABEL),
    "h": (RESPONSE, LABEL),
}

SHIFT_NAMES: dict[str, str] = {
    "a": "no shift",
    "b": "full shift (prompt + response + label)",
    "c": "prompt shift",
    "d": "response shift",
    "e": "preference-label shift",
    "f": "prompt + response shift",
    "g": "prompt + label shift",
    "h": "response + label shift",
}


def shift_factors(shift: str) -> tuple[str, ...]:
    """Factors named by a shift type letter (a-h); raises ValueError on anything else."""
    try:
        return SHIFT_TYPES[shift]
    except KeyError:
        raise ValueError(f"unknown shift type {shift!r}; expected one of {', '.join(SHIFT_TYPES)}") from None


@dataclass
class ScenarioSplits:
    """Train / validation / test preference records of one scenario, plus a JSON-able ``meta`` dict.

    Every record has ``id``, ``prompt``, ``chosen``, ``rejected`` (plain text), ``group`` (a short
    name for the kind of pair), ``relevant`` (does the pair belong to the deployment distribution)
    and ``contested`` (do the two annotator populations order this contrast differently: in D_te,
    the pairs whose accuracy shows whether the deployment preference, not the training one, was
    learned), plus scenario metadata used by the oracle judge and by analysis. ``relevant``,
    ``contested`` and ``group`` are ground truth for analysis only; training code must not read them.
    """

    name: str
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    test: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def split(self, which: str) -> list[dict[str, Any]]:
        if which not in ("train", "val", "test"):
            raise KeyError(f"unknown split {which!r}; expected train, val or test")
        return getattr(self, which)

    def items(self) -> list[tuple[str, list[dict[str, Any]]]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def check_sizes(n_train: int, n_val: int, n_test: int) -> None:
    for label, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{label} must be a positive integer, got {n!r}")


def check_severity(severity: float) -> float:
    if not 0.0 <= float(severity) <= 1.0:
        raise ValueError(f"severity must lie in [0, 1], got {severity!r}")
    return float(severity)


def assign_ids(name: str, split: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Put ``id`` = ``<name>-<split>-<n>`` first in each record (stable, unique within a build)."""
    return [{"id": f"{name}-{split}-{i}", **{k: v for k, v in row.items() if k != "id"}} for i, row in enumerate(rows)]


def relevant_share(rows: list[dict[str, Any]]) -> float:
    return sum(bool(r["relevant"]) for r in rows) / len(rows) if rows else 0.0


def group_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["group"]] = counts.get(r["group"], 0) + 1
    return dict(sorted(counts.items()))
