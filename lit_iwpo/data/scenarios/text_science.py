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
disagree on explain vs myth. Default preset: shift ``e`` (preference label), severity 0.7: 280 of the
400 training pairs are explain-vs-myth contrasts on science and fiction questions labelled by the
popular vote (myth chosen); deployment asks both kinds of question and the educators' label holds.

Why not a prompt shift. Until 2026-11 the default was ``f`` (prompt + response: mostly fiction
questions with lore answers, deployment on real science questions). Measured at 60 steps (seed 0),
the fiction pairs did not cost deployment quality, and neither did fiction pairs whose label is
flipped: with shift ``b`` (fiction prompts, fiction register, myth chosen) DPO on D_tr ∪ D_v won
68.0 % against the base model and the oracle weights 64.8 %; with ``g`` (fiction prompts, plain
register, myth chosen) DPO won 76.6 %; pair accuracy on the contested science pairs stayed 100 % in
all three. A preference learned on fiction questions did not carry over to science questions, so
there was nothing for a weighting to remove. ``shift=f`` (or ``b``, ``g``) still builds those.
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
