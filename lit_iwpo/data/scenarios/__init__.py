"""Preference scenarios under deployment distribution shift (after Lodkaew et al., IW-DPO).

Embedded, offline scenarios in natural English (``helpful_harmless``, ``science``, ``culture``),
each a preset of a generic generator for the paper's shift types a-h with a severity knob; a
rule-based oracle judge per scenario for win rates on generated text; adapters for the real
datasets (PKU-SafeRLHF, SHP, CALI); writers and the ``lit_iwpo scenario`` command.

The scenarios' text (topics, prompt templates, response texts, wording) and the oracles' vocabulary
are JSON package data in ``material/`` (``<scenario>.json``, ``oracle_<scenario>.json``, shared
files), validated on load by :mod:`~lit_iwpo.data.scenarios.loader`; the code in ``text_*.py``,
``engine.py`` and ``judge.py`` holds the rules (the oracle's numbers are named constants there).

    splits = build_scenario("culture", seed=0)             # ScenarioSplits(name, train, val, test, meta)
    judge = get_judge("culture"); judge.compare(row, a, b)  # 1.0 / 0.5 / 0.0
    write_scenario(splits, "data/culture", fmt="jsonl")
"""

from lit_iwpo.data.scenarios.adapters import (
    cali_to_splits,
    load_cali,
    load_saferlhf,
    load_shp,
    saferlhf_to_splits,
    shp_to_splits,
)
from lit_iwpo.data.scenarios.cli import scenario_main
from lit_iwpo.data.scenarios.engine import build_shifted
from lit_iwpo.data.scenarios.io import write_scenario
from lit_iwpo.data.scenarios.judge import Judge, get_judge
from lit_iwpo.data.scenarios.registry import MATERIALS, SCENARIOS, build_scenario
from lit_iwpo.data.scenarios.splits import DEFAULT_SIZES, SHIFT_NAMES, SHIFT_TYPES, ScenarioSplits

__all__ = [
    "DEFAULT_SIZES",
    "MATERIALS",
    "SCENARIOS",
    "SHIFT_NAMES",
    "SHIFT_TYPES",
    "Judge",
    "ScenarioSplits",
    "build_scenario",
    "build_shifted",
    "cali_to_splits",
    "get_judge",
    "load_cali",
    "load_saferlhf",
    "load_shp",
    "saferlhf_to_splits",
    "scenario_main",
    "shp_to_splits",
    "write_scenario",
]
