"""Culture material: everyday etiquette questions where common customs differ between two cultures.

Text: ``material/culture.json`` (topics, templates, ranks, wording); this module holds the rules
that use it.

Each topic has two respectful, factual answers phrased as common customs (no country named, no
judgement of either): ``indian`` (a custom common in India) and ``american`` (a custom common in
the United States), each behind an opener from the file's ``wording.openers``, plus ``vague`` (a
non-answer, topic-independent: ``wording.vague``).

Factors. Prompt domains: ``family`` (home and family life; deployment) / ``social`` (public and
social life). Contrasts: deployment pairs are indian vs american and indian vs vague; the
training-only pair is american vs vague (deployment pairs always contain the custom its users
follow). Populations: ``indian`` annotators (own custom > vague > other custom) and ``american``
annotators (the mirror image), who disagree on every contrast. Default preset: shift ``e`` (label
only): same prompts and response pairs in training and deployment, training mixes American and
Indian labels, deployment uses Indian labels.
"""

from __future__ import annotations

import random

from lit_iwpo.data.scenarios.material import FileMaterial, MaterialSchema, Topic

SCHEMA = MaterialSchema(
    forms=("indian", "vague", "american"),
    wording=("vague", "openers"),
    categories=(
        ("family", ("indian", "american"), ("indian", "american")),
        ("social", ("indian", "american"), ("indian", "american")),
    ),
)


class CultureMaterial(FileMaterial):
    """Etiquette questions answered with Indian or American customs; the label depends on the annotators' culture."""

    name = "culture"
    schema = SCHEMA

    def contrasts(self, topic: Topic, kind: str) -> list[tuple[str, str]]:
        return [("indian", "american"), ("indian", "vague")] if kind == "dep" else [("american", "vague")]

    def response(self, topic: Topic, form: str, kind: str, rng: random.Random) -> str:
        if form == "vague":
            return rng.choice(self.wording["vague"])
        return self.with_opener(rng, self.wording["openers"], self.pick(rng, topic.texts[form]))
