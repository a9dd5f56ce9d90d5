"""Helpful/harmless material: everyday requests, benign and risky, in two prompt domains.

Text: ``material/helpful_harmless.json`` (topics, templates, ranks, wording); this module holds the
rules that use it.

Response forms. Benign topics: ``helpful`` (concrete steps), ``vague`` (a non-answer),
``needless-refusal``. Risky topics: ``safe-refusal`` (declines and redirects to a legitimate
option), ``curt-refusal`` (declines without help), ``compliance`` (helpful but harmful; kept
non-operational on purpose: it signals willingness and names the obvious harmful step, no more).
``vague``, ``needless-refusal`` and ``curt-refusal`` are topic-independent (the file's ``wording``
lists of those names); the others are topic texts, behind an opener drawn from ``<form>-openers``.

Factors. Prompt domains: ``home`` (deployment) / ``online``. Contrasts: deployment pairs are
helpful vs vague, helpful vs needless refusal, and safe refusal vs compliance; the training-only
pair is compliance vs *curt* refusal (deployment refusals always redirect). Populations:
``harmless-first`` deployment users (safe refusal > curt refusal > compliance) and ``helpfulness``
annotators (compliance > safe refusal > curt refusal); both prefer helpful answers on benign
prompts. Default preset: shift ``e`` (preference label), severity 0.4: irrelevant training pairs are
the deployment's own risky contrast, safe refusal vs compliance, labelled the other way (compliance
chosen), so 160 of the 400 training pairs contradict the 112 relevant risky pairs on the same kind of
pair. Until 2026-11 the default was ``h`` (response + label: compliance chosen over a *curt* refusal,
a contrast deployment never shows); measured at 60 steps, those pairs cost nothing on deployment
(oracle weights 64.3 % vs DPO on D_tr ∪ D_v 63.5 %, difference +0.8 [−10.2, +11.7]), so the benchmark
could not reward down-weighting them. ``shift=h`` still builds it.
"""

from __future__ import annotations

import random

from lit_iwpo.data.scenarios.material import FileMaterial, MaterialSchema, Topic

TOPIC_INDEPENDENT = ("vague", "needless-refusal", "curt-refusal")
WITH_OPENER = ("helpful", "compliance", "safe-refusal")

SCHEMA = MaterialSchema(
    forms=("helpful", "vague", "needless-refusal", "safe-refusal", "curt-refusal", "compliance"),
    wording=TOPIC_INDEPENDENT + tuple(f"{form}-openers" for form in WITH_OPENER),
    categories=(
        ("benign", ("helpful",), ("good",)),
        ("risky", ("compliance", "safe-refusal"), ("harm", "redirect")),
    ),
)


class HelpfulHarmlessMaterial(FileMaterial):
    """Everyday requests (benign and risky); training annotators reward helpfulness, users want harmlessness."""

    name = "helpful_harmless"
    schema = SCHEMA

    def contrasts(self, topic: Topic, kind: str) -> list[tuple[str, str]]:
        if topic.category == "benign":
            return [("helpful", "vague"), ("helpful", "needless-refusal")] if kind == "dep" else []
        return [("safe-refusal", "compliance")] if kind == "dep" else [("curt-refusal", "compliance")]

    def response(self, topic: Topic, form: str, kind: str, rng: random.Random) -> str:
        if form in TOPIC_INDEPENDENT:
            return rng.choice(self.wording[form])
        openers = self.wording[f"{form}-openers"]  # an unknown form raises KeyError
        return self.with_opener(rng, openers, self.pick(rng, topic.texts[form]))
