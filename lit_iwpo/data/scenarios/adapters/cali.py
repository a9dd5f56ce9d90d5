"""Culture scenario from CALI, the Culturally Aware NLI data of Huang & Yang (EMNLP 2023 Findings).

Schema used: the released file ``data/data.tsv`` of github.com/SALT-NLP/CulturallyAwareNLI, a TSV
with columns ``premise``, ``hypothesis``, ``us_ratings``, ``in_ratings``; each ratings cell is a
Python-style list of single-letter NLI labels from several annotators, e.g. ``['E', 'N', 'C']``
(E = entailment, N = neutral, C = contradiction). I found no copy on the Hugging Face hub, so the
loader reads the TSV through ``datasets.load_dataset("csv", delimiter="\\t")``; the URL (its
branch name is not verified) and the column names are parameters.

Rules. A row becomes the prompt "Premise: ... Hypothesis: ... Does the premise entail ...?" with
one short answer per label. Each population's label is the strict majority of its ratings (rows
without one for both populations are skipped). The rejected answer is the other population's
label where the majorities differ, else the most frequent other label in all ratings (fixed
fallback: E<->C, N->C). Training rows carry the American or the Indian label (an American label
is irrelevant iff it differs from the Indian one); D_v / D_te carry Indian labels. With
``severity`` set, exactly that share of D_tr is American-labelled disagreement rows; otherwise each
training row is American-labelled with probability ``us_share``. Rows sharing a premise stay in
one split.
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from lit_iwpo.data.scenarios.adapters.common import Item, grouped_split, load_rows, take_rows
from lit_iwpo.data.scenarios.splits import DEFAULT_SIZES, ScenarioSplits

SOURCE_URL = "https://raw.githubusercontent.com/SALT-NLP/CulturallyAwareNLI/main/data/data.tsv"
COLUMNS: dict[str, str] = {"premise": "premise", "hypothesis": "hypothesis", "us": "us_ratings", "in": "in_ratings"}
LABELS = ("E", "N", "C")
ANSWERS = {
    "E": "Entailment: the premise implies that the hypothesis is true.",
    "N": "Neutral: the premise neither confirms nor rules out the hypothesis.",
    "C": "Contradiction: the premise implies that the hypothesis is false.",
}
FALLBACK_ALT = {"E": "C", "C": "E", "N": "C"}
QUESTION = (
    "Premise: {premise}\nHypothesis: {hypothesis}\n"
    "Does the premise entail the hypothesis, contradict it, or neither?"
)


def parse_ratings(value: Any) -> list[str]:
    """``"['E', 'N']"`` or ``["E", "N"]`` (or ``"E,N"``) -> ``["E", "N"]``; unknown letters dropped."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = re.findall(r"[A-Za-z]+", value)
    if not isinstance(value, (list, tuple)):
        return []
    out = [str(v).strip().upper()[:1] for v in value]
    return [v for v in out if v in LABELS]


def majority(ratings: list[str]) -> str | None:
    """The strict-majority (plurality without a tie) label, or None."""
    counts = Counter(ratings).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def _alternative(label: str, ratings: list[str]) -> str:
    counts = Counter(r for r in ratings if r != label)
    if not counts:
        return FALLBACK_ALT[label]
    best = max(counts.values())
    return next(lab for lab in LABELS if counts.get(lab) == best)  # ties: fixed E, N, C order


def _record(prompt: str, chosen: str, rejected: str, **meta: Any) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": ANSWERS[chosen], "rejected": ANSWERS[rejected], **meta}


def _item(index: int, row: dict[str, Any], col: Mapping[str, str]) -> Item | None:
    premise, hypothesis = row.get(col["premise"]), row.get(col["hypothesis"])
    if not (isinstance(premise, str) and premise.strip() and isinstance(hypothesis, str) and hypothesis.strip()):
        return None
    us_r, in_r = parse_ratings(row.get(col["us"])), parse_ratings(row.get(col["in"]))
    us, ind = majority(us_r), majority(in_r)
    if us is None or ind is None:
        return None
    prompt = QUESTION.format(premise=premise.strip(), hypothesis=hypothesis.strip())
    agree = us == ind
    alt = _alternative(ind, us_r + in_r) if agree else None
    # contested: the two populations order this pair differently (what D_te accuracy must get right)
    common = {"us_label": us, "in_label": ind, "source_index": index, "contested": not agree}
    indian = _record(prompt, ind, alt if agree else us, group="agree" if agree else "disagree/indian-label",
                     relevant=True, annotator="indian", **common)  # fmt: skip
    american = _record(prompt, us, alt if agree else ind, group="agree" if agree else "disagree/american-label",
                       relevant=agree, annotator="american", **common)  # fmt: skip
    deploy = _record(prompt, ind, alt if agree else us, group="agree" if agree else "disagree",
                     relevant=True, annotator="indian", **common)  # fmt: skip
    return Item(premise.strip(), indian, deploy, train_alt=american)


def cali_to_splits(
    rows: Iterable[dict[str, Any]],
    *,
    seed: int = 0,
    n_train: int = DEFAULT_SIZES["train"],
    n_val: int = DEFAULT_SIZES["val"],
    n_test: int = DEFAULT_SIZES["test"],
    severity: float | None = None,
    us_share: float = 0.5,
    columns: Mapping[str, str] | None = None,
    limit: int | None = None,
    name: str = "cali_culture",
) -> ScenarioSplits:
    """Build D_tr / D_v / D_te from raw CALI rows (see the module docstring for the rules)."""
    col = {**COLUMNS, **(columns or {})}
    items = [it for i, row in take_rows(rows, limit) if (it := _item(i, row, col)) is not None]

    def pick_train(train_items: list[Item], rng: random.Random) -> list[dict[str, Any]]:
        if severity is None:
            return [it.train_alt if rng.random() < us_share else it.train for it in train_items]  # type: ignore[misc]
        # Exactly n_irr disagreement rows get the American label; all others stay relevant.
        n_irr = round(float(severity) * n_train)
        disagree = [it for it in train_items if it.train_alt is not None and not it.train_alt["relevant"]]
        rng.shuffle(disagree)
        flipped = {id(it) for it in disagree[:n_irr]}
        out = []
        for it in train_items:
            if id(it) in flipped:
                out.append(it.train_alt)
            elif it.train_alt is not None and it.train_alt["relevant"] and rng.random() < us_share:
                out.append(it.train_alt)  # agreeing rows may carry either population's (identical) label
            else:
                out.append(it.train)
        return out

    meta = {
        "source": SOURCE_URL,
        "scenario": "culture",
        "train_labels": "American or Indian annotators' majority",
        "deployment_label": "Indian annotators' majority",
        "us_share": us_share,
        "rows_usable": len(items),
        "rows_disagreeing": sum(1 for it in items if it.train_alt and not it.train_alt["relevant"]),
    }
    return grouped_split(
        items, name=name, seed=seed, n_train=n_train, n_val=n_val, n_test=n_test, severity=severity, meta=meta,
        pick_train=pick_train,
    )  # fmt: skip


def load_cali(
    source: Any = SOURCE_URL, *, dataset_kwargs: Mapping[str, Any] | None = None, **kwargs: Any
) -> ScenarioSplits:
    """Read the CALI TSV (URL or local path) with ``datasets.load_dataset("csv", delimiter="\\t")`` and
    adapt it; ``kwargs`` go to :func:`cali_to_splits`, ``dataset_kwargs`` (e.g. ``cache_dir``) to
    ``load_dataset``."""
    rows = load_rows("csv", split="train", data_files=source, delimiter="\t", **(dataset_kwargs or {}))
    return cali_to_splits(rows, **kwargs)
