"""How often a scenario's oracle agrees with people: hand-labelled generation pairs.

A labelled file is JSONL, one pair of generations per line: ``id`` (a D_te row id such as
``helpful_harmless-test-59``; its prefix names the scenario), ``prompt``, ``policy``, ``baseline`` and
``expected`` (``policy``, ``baseline`` or ``tie``: which answer serves the deployment user better, in a
person's judgement). The older form keeps the labels apart, in ``<file>.labels.json`` next to
``<file>.jsonl`` (a list of ``{"id", "expected"}``); both are read.

Two kinds of sets are kept, and reported apart: the *tuning* set, which the oracle's rules were written
against (agreement there is optimistic), and *held-out* sets, labelled from later runs' generations
before anyone looked at the oracle's verdicts on them, which the rules were never changed for. Agreement
is the share of the person's non-tie labels that the oracle reproduces (a tie from the oracle on such a
pair counts as disagreement); the oracle's tie rate over all pairs is reported beside it.

    lit_iwpo scenario judge-agreement tests/fixtures/generations/heldout/*.jsonl
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_iwpo.data.scenarios.judge import get_judge

LABELS = ("policy", "baseline", "tie")
SCENARIO_SUFFIXES = ("-test-", "-val-", "-train-")


def scenario_of(row_id: str) -> str:
    """``helpful_harmless-test-59`` -> ``helpful_harmless``."""
    for suffix in SCENARIO_SUFFIXES:
        if suffix in row_id:
            return row_id.split(suffix)[0]
    raise ValueError(f"row id {row_id!r} does not name a scenario split (NAME-test-N)")


def read_labelled(path: str | Path) -> list[dict[str, Any]]:
    """The labelled pairs of one file (with its ``.labels.json`` merged in when the lines carry no label).

    Raises ValueError naming the file, line and field for a malformed line or label.
    """
    path = Path(path)
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {n}: not JSON ({err.msg})") from None
        for key in ("id", "prompt", "policy", "baseline"):
            if not isinstance(row.get(key), str):
                raise ValueError(f"{path}: line {n}: field {key!r} missing or not text")
        row["_line"] = n
        rows.append(row)
    side = path.with_suffix(".labels.json")
    if side.is_file() and not any("expected" in r for r in rows):
        labels = {lab["id"]: lab["expected"] for lab in json.loads(side.read_text(encoding="utf-8"))}
        rows = [{**r, "expected": labels[r["id"]]} for r in rows if r["id"] in labels]
    for r in rows:
        if r.get("expected") not in LABELS:
            raise ValueError(f"{path}: line {r['_line']}: field 'expected' must be one of {LABELS}, "
                             f"got {r.get('expected')!r}")
    return rows


@dataclass
class Agreement:
    pairs: int = 0
    decided: int = 0  # pairs a person labelled policy or baseline
    agree: int = 0  # of those, the oracle picked the same side
    oracle_ties: int = 0  # pairs the oracle scored as a tie (all pairs)
    confusion: dict[tuple[str, str], int] = field(default_factory=dict)  # (person, oracle) -> count

    @property
    def rate(self) -> float:
        return self.agree / self.decided if self.decided else float("nan")

    @property
    def tie_rate(self) -> float:
        return self.oracle_ties / self.pairs if self.pairs else float("nan")


def agreement(rows: list[dict[str, Any]], scenario: str | None = None) -> Agreement:
    """The oracle's verdict on each labelled pair against the person's (the oracle is asked in one order: it
    is symmetric by construction)."""
    out = Agreement()
    verdicts = {1.0: "policy", 0.0: "baseline", 0.5: "tie"}
    for r in rows:
        judge = get_judge(scenario or scenario_of(r["id"]))
        row = {"prompt": r["prompt"], **({"topic": r["topic"]} if "topic" in r else {})}
        got = verdicts[judge.compare(row, r["policy"], r["baseline"])]
        out.pairs += 1
        out.oracle_ties += got == "tie"
        out.confusion[(r["expected"], got)] = out.confusion.get((r["expected"], got), 0) + 1
        if r["expected"] != "tie":
            out.decided += 1
            out.agree += got == r["expected"]
    return out


def report(path: str | Path, result: Agreement) -> str:
    cells = ", ".join(f"{p}->{o} {n}" for (p, o), n in sorted(result.confusion.items()))
    return (f"{path}: the oracle agrees with {result.agree}/{result.decided} = {result.rate:.3f} of the person's "
            f"non-tie labels; oracle ties {result.oracle_ties}/{result.pairs} = {result.tie_rate:.3f} "
            f"(person->oracle: {cells})")
