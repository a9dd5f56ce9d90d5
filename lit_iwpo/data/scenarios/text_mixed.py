"""Mixed-source material: helpful_harmless's everyday requests, answered by two sources (DoRA's setting).

Text: ``material/mixed_source.json`` holds the populations, ranks and the synthetic source's boilerplate;
the prompts (topics, templates, domains) are helpful_harmless's benign ones (``topics_from``), and so are
the wording lists it shares (``vague``, ``needless-refusal``, ``helpful-openers``).

Response forms: ``helpful`` (the topic's concrete steps), ``templated`` (the same steps wrapped in
boilerplate: a ``templated-openers`` sentence before and a ``templated-closers`` sentence after, the
artefact of the synthetic source), ``vague`` and ``needless-refusal`` (topic-independent).

Factors. Deployment contrasts: helpful vs vague and helpful vs needless refusal; the training-only contrast
is templated vs helpful. Populations: deployment ``users`` (helpful > templated > vague > needless refusal)
and the ``synthetic-judge`` that labels the synthetic pipeline's pairs (templated > helpful > ...: it likes
its own style). Default preset: shift ``h`` (response + label), severity 0.4: 160 of the 400 training pairs
are synthetic ones, a templated answer chosen over the same help said plainly, a contrast deployment never
shows and whose label users would give the other way; D_v and D_te hold target pairs only. With no
deployment contrast disputed, D_te has no contested pairs: the deployment metric is the oracle's win rate,
which charges for boilerplate (``MixedSourceJudge``).

Sources. Every record has ``source`` {``chosen``, ``rejected``}: ``synthetic`` for a templated response,
``target`` for any other, the per-response source DoRA's calibration classifier learns
(``objective.weights.target_from: column``).
"""

from __future__ import annotations

import random

from lit_iwpo.data.scenarios.material import FileMaterial, MaterialSchema, Topic
from lit_iwpo.data.scenarios.text_hh import SCHEMA as HH_SCHEMA

TOPIC_INDEPENDENT = ("vague", "needless-refusal")
TEMPLATED = "templated"
TARGET, SYNTHETIC = "target", "synthetic"

SCHEMA = MaterialSchema(
    forms=("helpful", TEMPLATED, "vague", "needless-refusal"),
    wording=TOPIC_INDEPENDENT + ("helpful-openers", "templated-openers", "templated-closers"),
    categories=(("benign", ("helpful",), ("good",)),),
    base=("helpful_harmless", HH_SCHEMA),
)


class MixedSourceMaterial(FileMaterial):
    """Target-source pairs plus synthetic pairs that prefer templated boilerplate; users want plain help."""

    name = "mixed_source"
    schema = SCHEMA
    sources = (TARGET, SYNTHETIC)

    def contrasts(self, topic: Topic, kind: str) -> list[tuple[str, str]]:
        if kind == "dep":
            return [("helpful", "vague"), ("helpful", "needless-refusal")]
        return [(TEMPLATED, "helpful")]

    def response(self, topic: Topic, form: str, kind: str, rng: random.Random) -> str:
        if form in TOPIC_INDEPENDENT:
            return rng.choice(self.wording[form])
        if form == TEMPLATED:
            body = self.pick(rng, topic.texts["helpful"])
            return rng.choice(self.wording["templated-openers"]) + body + rng.choice(self.wording["templated-closers"])
        return self.with_opener(rng, self.wording[f"{form}-openers"], self.pick(rng, topic.texts[form]))

    def source_of(self, form: str) -> str:
        return SYNTHETIC if form == TEMPLATED else TARGET
