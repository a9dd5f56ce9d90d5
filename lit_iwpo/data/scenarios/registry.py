"""Named scenarios: each is a preset (material + default shift type + default severity) of the generic engine."""

from __future__ import annotations

from lit_iwpo.data.scenarios.engine import build_shifted
from lit_iwpo.data.scenarios.material import Material
from lit_iwpo.data.scenarios.splits import DEFAULT_SIZES, ScenarioSplits
from lit_iwpo.data.scenarios.text_culture import CultureMaterial
from lit_iwpo.data.scenarios.text_hh import HelpfulHarmlessMaterial
from lit_iwpo.data.scenarios.text_mixed import MixedSourceMaterial
from lit_iwpo.data.scenarios.text_mixed_task import MixedTaskMaterial
from lit_iwpo.data.scenarios.text_science import ScienceMaterial

MATERIALS: dict[str, Material] = {
    m.name: m
    for m in (HelpfulHarmlessMaterial(), ScienceMaterial(), CultureMaterial(), MixedSourceMaterial(),
              MixedTaskMaterial())
}

# name -> one-line description (what `lit_iwpo scenario list` prints)
SCENARIOS: dict[str, str] = {name: m.description for name, m in MATERIALS.items()}


def get_material(name: str) -> Material:
    try:
        return MATERIALS[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def build_scenario(
    name: str,
    *,
    seed: int = 0,
    n_train: int | None = None,
    n_val: int | None = None,
    n_test: int | None = None,
    severity: float | None = None,
    shift: str | None = None,
    holdout: str = "paraphrase",
) -> ScenarioSplits:
    """Build a named scenario; deterministic in ``seed`` (same seed -> identical records).

    ``shift`` (a-h) replaces the scenario's own shift type, turning it into the generic generator on
    that scenario's text; ``severity`` is the share of irrelevant training pairs (exact by count);
    sizes default to :data:`DEFAULT_SIZES`. ``holdout`` is ``"paraphrase"`` (D_v/D_te use held-out
    prompt templates) or ``"topic"`` (D_v/D_te use held-out topics).

    Every pair in the result is distinct and no D_te prompt occurs in D_tr or D_v; sizes are exact,
    and a size beyond the distinct pairs a split can hold raises ValueError naming the maximum.
    """
    material = get_material(name)
    return build_shifted(
        material,
        name=name,
        shift=shift if shift is not None else material.default_shift,
        severity=material.default_severity if severity is None else severity,
        n_train=DEFAULT_SIZES["train"] if n_train is None else n_train,
        n_val=DEFAULT_SIZES["val"] if n_val is None else n_val,
        n_test=DEFAULT_SIZES["test"] if n_test is None else n_test,
        seed=seed,
        holdout=holdout,
    )
