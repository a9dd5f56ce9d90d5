"""Text material for the embedded scenarios: topics, response forms, and the three shift factors.

A :class:`Material` gives each of the paper's three factors a *deployment* state and an *other*
(training-only) state, all on the same hand-written English text:

- factor 1, prompt: topics belong to a deployment domain or another domain;
- factor 2, response pair: a topic offers ``dep`` contrasts (pairs of response forms that occur at
  deployment) and ``other`` contrasts (pairs that never do: another form, or another register);
- factor 3, label: two annotator populations rank the response forms; the deployment population's
  ranking defines the deployment label, the other population disagrees on some contrasts
  ("disputed" contrasts).

Text. The three embedded materials are :class:`FileMaterial` subclasses (``text_<scenario>.py``:
which forms are contrasted and how a response is rendered, in code) whose text comes from
``material/<scenario>.json`` in this package (topics with their slots, response texts and judge
keywords; prompt templates; populations' ranks; scenario-wide wording such as openers), loaded and
validated by :mod:`~lit_iwpo.data.scenarios.loader`. The prompt lead-ins shared by every material
(:data:`PROMPT_PREFIXES`) are in ``material/shared.json``.

Prompts are rendered from paraphrase templates. The last ``N_HELD_OUT`` templates of every
material (a file's ``templates.held_out``) are held out: only validation and test prompts use them,
so no D_v / D_te prompt string equals a D_tr prompt string (the topics and response texts are
shared, which is what lets a label shift show as "same prompt content, same response pair, flipped
choice"). The engine further splits each topic's held-out templates between D_v and D_te, so those
two never share a prompt.

Random wording (lead-ins, openers, variants) is drawn with ``rng.choice`` only: the engine
enumerates every text a material can render (:func:`~lit_iwpo.data.scenarios.unique.outcomes`) to
know how many distinct pairs a split can hold, and refuses any other kind of draw.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import random
from dataclasses import dataclass, field

from lit_iwpo.data.scenarios.loader import N_HELD_OUT, MaterialSchema, load_material, load_shared

# Optional lead-ins for prompts (train and eval alike) for surface variety ("" = none).
PROMPT_PREFIXES: tuple[str, ...] = load_shared()["prompt_prefixes"]


@dataclass(frozen=True)
class Topic:
    """One prompt topic: slots for the prompt templates, response texts per form, judge keywords.

    ``texts[form]`` holds one or more hand-written variants of that response form;
    ``keywords[feature]`` holds the oracle judge's features for this topic (``*`` = prefix match).
    """

    key: str
    domain: str
    category: str
    slots: dict[str, str]
    texts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    keywords: dict[str, tuple[str, ...]] = field(default_factory=dict)


def lower_first(text: str) -> str:
    """Lower-case the first letter unless the text starts with 'I ' / 'I'm' (a pronoun) or an acronym."""
    if not text or text.startswith(("I ", "I'")) or (len(text) > 1 and text[1].isupper()):
        return text
    return text[0].lower() + text[1:]


class Material(ABC):
    """Base class: subclasses set the class attributes and implement ``contrasts``/``rank``/``response``."""

    name: str = ""
    domains: tuple[str, str] = ("", "")  # (deployment domain, other domain)
    populations: tuple[str, str] = ("", "")  # (deployment population, other population)
    templates: tuple[str, ...] = ()
    topics: tuple[Topic, ...] = ()
    default_shift: str = "a"
    default_severity: float = 0.5
    description: str = ""

    def __init__(self) -> None:
        keys = [t.key for t in self.topics]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: duplicate topic keys")
        self.by_key = {t.key: t for t in self.topics}

    # ---- factor 1: prompts -------------------------------------------------------------------
    def prompt_templates(self, held_out: bool) -> tuple[str, ...]:
        return self.templates[-N_HELD_OUT:] if held_out else self.templates[:-N_HELD_OUT]

    def render_prompt(self, topic: Topic, template: str, rng: random.Random) -> str:
        body = template.format(**topic.slots)
        return (rng.choice(PROMPT_PREFIXES) + body).strip()

    # ---- factor 2: response pairs ------------------------------------------------------------
    @abstractmethod
    def contrasts(self, topic: Topic, kind: str) -> list[tuple[str, str]]:
        """Unordered pairs of response forms for this topic; ``kind`` is 'dep' or 'other'."""

    @abstractmethod
    def response(self, topic: Topic, form: str, kind: str, rng: random.Random) -> str:
        """Render one response of ``form`` for ``topic`` (``kind`` selects the register)."""

    # ---- factor 3: labels --------------------------------------------------------------------
    @abstractmethod
    def rank(self, population: str, topic: Topic, form: str) -> int:
        """Higher is preferred by ``population``."""

    def winner(self, population: str, topic: Topic, pair: tuple[str, str]) -> tuple[str, str]:
        a, b = pair
        ra, rb = self.rank(population, topic, a), self.rank(population, topic, b)
        if ra == rb:
            raise ValueError(f"{self.name}: population {population} ranks {a} and {b} equally on {topic.key}")
        return (a, b) if ra > rb else (b, a)

    def disputed(self, topic: Topic, pair: tuple[str, str]) -> bool:
        dep, other = self.populations
        return self.winner(dep, topic, pair) != self.winner(other, topic, pair)

    # ---- response sources (DoRA's setting) -----------------------------------------------------
    sources: tuple[str, ...] = ()  # empty: the material's records carry no ``source`` column

    def source_of(self, form: str) -> str:
        """The source that writes responses of ``form`` (materials with ``sources`` only)."""
        raise ValueError(f"{self.name}: this material has no response sources")

    # ---- analysis names ----------------------------------------------------------------------
    def group(self, topic: Topic, chosen: str, rejected: str, kind: str) -> str:
        return f"{topic.category}/{chosen}-over-{rejected}"

    @staticmethod
    def pick(rng: random.Random, options: tuple[str, ...]) -> str:
        return options[0] if len(options) == 1 else rng.choice(options)

    @staticmethod
    def with_opener(rng: random.Random, openers: tuple[str, ...], text: str) -> str:
        opener = rng.choice(openers)
        if not opener:
            return text
        # After a comma the sentence continues, so the text's first letter is lowered.
        return opener + (lower_first(text) if opener.endswith(", ") else text)


class FileMaterial(Material):
    """A material whose text is ``material/<name>.json``, validated against ``schema`` on load.

    Subclasses set ``name`` and ``schema`` and implement ``contrasts`` and ``response`` (and may
    override ``group``); ranks come from the file's ``ranks``. Every table of the file is exposed as
    is: ``description``, ``domains``, ``populations``, ``default_shift``, ``default_severity``,
    ``ranks``, ``templates`` (training then held-out), ``wording`` (name -> texts) and ``topics``.
    """

    schema: MaterialSchema

    def __init__(self) -> None:
        data = load_material(self.name, self.schema)
        self.description = data.description
        self.domains = data.domains
        self.populations = data.populations
        self.default_shift = data.default_shift
        self.default_severity = data.default_severity
        self.ranks = data.ranks
        self.templates = data.train_templates + data.held_out_templates
        self.wording = data.wording
        self.topics = tuple(Topic(**t) for t in data.topics)
        super().__init__()

    def rank(self, population: str, topic: Topic, form: str) -> int:
        return self.ranks[population][form]
