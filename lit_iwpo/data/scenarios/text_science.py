"""Science material: real science questions and science-fiction questions, answered in two registers.

Text: ``material/science.json`` (topics, templates, ranks, wording); this module holds the rules
that use it.

Response forms: ``explain`` (accurate, explanatory), ``vague`` (a non-answer, topic-independent:
the file's ``wording.vague``), ``myth`` (a popular misconception, or for fiction topics a silly fan
theory). Fiction topics also have a ``lore`` text: the in-universe explanation.

Factors. Prompt domains: ``science`` (deployment: physics, biology, chemistry, astronomy, earth
science) / ``scifi`` (fictional starships, aliens, gadgets). Response register: deployment answers
are plain science (for a fiction topic: what real physics says about it), behind an opener from
``explain-openers`` / ``myth-openers``; the training-only register is science-fiction flavoured
(for a fiction topic: the lore text, "In most stories, the warp drive bends space..."; otherwise
the plain text behind a framing from ``scifi-framing``, "Captain's log: ..."). Populations:
``science-educators`` (explain > vague > myth) and ``popular-vote`` (myth > explain > vague), who
disagree on explain vs myth. Default preset: shift ``f`` (prompt + response): training is mostly
fiction questions with lore answers; deployment is real science questions with plain explanations.
"""

from __future__ import annotations

import random

from lit_iwpo.data.scenarios.material import FileMaterial, MaterialSchema, Topic, lower_first

SCHEMA = MaterialSchema(
    forms=("explain", "vague", "myth"),
    wording=("vague", "explain-openers", "myth-openers", "scifi-framing"),
    categories=(
        ("science", ("explain", "myth"), ("good", "bad")),
        ("scifi", ("explain", "lore", "myth"), ("good", "bad")),
    ),
)


class ScienceMaterial(FileMaterial):
    """Real science vs science-fiction questions; plain vs science-fiction-flavoured answers."""

    name = "science"
    schema = SCHEMA

    def contrasts(self, topic: Topic, kind: str) -> list[tuple[str, str]]:
        # Both registers offer the same contrasts; factor 2 changes how the responses are written.
        return [("explain", "vague"), ("explain", "myth")]

    def response(self, topic: Topic, form: str, kind: str, rng: random.Random) -> str:
        if kind == "other" and form == "explain" and "lore" in topic.texts:
            return self.pick(rng, topic.texts["lore"])
        text = rng.choice(self.wording["vague"]) if form == "vague" else self.pick(rng, topic.texts[form])
        if kind == "other":
            # The framing replaces the plain openers (two lead-ins in a row read badly).
            prefix = rng.choice(self.wording["scifi-framing"])
            return prefix + (lower_first(text) if prefix.endswith(", ") else text)
        if form == "vague":
            return text
        openers = self.wording["explain-openers" if form == "explain" else "myth-openers"]
        return self.with_opener(rng, openers, text)

    def group(self, topic: Topic, chosen: str, rejected: str, kind: str) -> str:
        if kind == "dep":
            return f"{topic.category}/{chosen}-over-{rejected}"
        name = {"explain": "lore" if topic.category == "scifi" else "styled-explain"}
        return f"{topic.category}/{name.get(chosen, chosen)}-over-{name.get(rejected, rejected)}/scifi-register"
