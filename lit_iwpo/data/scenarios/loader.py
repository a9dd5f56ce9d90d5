"""Scenario material and oracle vocabulary as package data: read, validate and cache the JSON files.

Every text the embedded scenarios use lives in ``lit_iwpo/data/scenarios/material/`` (shipped as
package data, read through :func:`importlib.resources.files`), so the engine, the materials and the
oracle change independently:

- ``<scenario>.json``: one scenario's material, read by :func:`load_material` into a
  :class:`~lit_iwpo.data.scenarios.material.FileMaterial`. Keys (all required, no others):
  ``description``; ``domains`` [deployment, other]; ``populations`` [deployment, other];
  ``default_shift`` (a-h); ``default_severity``; ``ranks`` {population: {form: int}} (higher is
  preferred); ``templates`` {``train``: [...], ``held_out``: [N_HELD_OUT templates for D_v / D_te]},
  ``{slot}`` placeholders filled from each topic's slots; ``wording`` {name: [strings]}, texts not
  tied to a topic (topic-independent response forms, openers, framings; the scenario's code names the
  lists it draws from, "" entries are allowed and weight the draw); ``topics``, each
  {``key``, ``domain``, ``category``, ``slots`` {slot: phrase}, ``texts`` {form: [variants]},
  ``keywords`` {feature: [keywords]}} (keywords: the oracle's hand-written features, ``*`` = prefix).
  Which forms, wording lists, and per-category texts / keyword features a scenario needs is its
  :class:`MaterialSchema` (declared next to its code in ``text_<scenario>.py``).
  A *derived* material (its schema names a ``base``) reuses another material's prompts: in place of
  ``domains``, ``templates`` and ``topics`` its file has ``topics_from`` {``material``: the base's
  name, ``categories``: [the base's topic categories it keeps]}; its ``wording`` holds only its own
  lists and is added to the base's (a name in both is an error).
- ``shared.json``: material shared by all scenarios: ``prompt_prefixes``, the optional lead-ins
  of every prompt.
- ``oracle_<scenario>.json``: the oracle's vocabulary for one scenario, read by :func:`load_oracle`:
  ``features`` {feature: {``rewards``: form, ``never_on``: [forms]}} (the form whose text a feature
  rewards and the forms it must never fire on); ``phrases`` {name: [phrases]} (the judge's fixed
  phrase lists); ``extensions`` {topic key: {feature: [keywords]}} (wider per-topic vocabulary).
- ``oracle_shared.json``: word lists of :mod:`~lit_iwpo.data.scenarios.textfeatures`:
  ``stopwords``, ``filler``, ``imperative-verbs``.

Each file is validated once on load (results are cached): a missing, unknown or ill-typed key raises
ValueError naming the file and the key path, e.g. ``material/culture.json: topics[3].texts: missing
key 'indian'``. The validators take the parsed data and a source name, so a broken copy can be
checked with the same code (:func:`validate_material`, :func:`validate_oracle`, ...).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from lit_iwpo.data.scenarios.splits import SHIFT_TYPES

PACKAGE = "lit_iwpo.data.scenarios"
FOLDER = "material"
N_HELD_OUT = 3  # paraphrase templates reserved for validation / test prompts


# ------------------------------------------------------------------------------------------ reading
def read_json(filename: str) -> Any:
    """Parsed content of ``material/<filename>`` in the installed package (ValueError if unreadable)."""
    source = f"{FOLDER}/{filename}"
    resource = files(PACKAGE) / FOLDER / filename
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{source}: material file not found in package {PACKAGE}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: not valid JSON: {e}") from None


# ------------------------------------------------------------------------------------------ checks
class Checker:
    """Typed access to parsed JSON that raises ValueError naming the source file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> None:
        raise ValueError(f"{self.source}: {path}: {message}" if path else f"{self.source}: {message}")

    def obj(self, value: Any, path: str, keys: tuple[str, ...] | None = None) -> dict[str, Any]:
        """A JSON object; with ``keys``, exactly those keys (each missing or unknown key is named)."""
        if not isinstance(value, dict):
            self.fail(path, f"must be an object, got {type_name(value)}")
        if keys is not None:
            missing = [k for k in keys if k not in value]
            if missing:
                self.fail(path, f"missing key {missing[0]!r}" + (f" (and {missing[1:]})" if missing[1:] else ""))
            unknown = [k for k in value if k not in keys]
            if unknown:
                self.fail(path, f"unknown key {unknown[0]!r} (expected {', '.join(keys)})")
        return value

    def text(self, value: Any, path: str, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {type_name(value)}")
        if not allow_empty and not value.strip():
            self.fail(path, "must be a non-empty string")
        return value

    def texts(self, value: Any, path: str, allow_empty: bool = False, min_len: int = 1) -> tuple[str, ...]:
        """A list of strings (at least ``min_len``), as a tuple."""
        if not isinstance(value, list):
            self.fail(path, f"must be a list of strings, got {type_name(value)}")
        if len(value) < min_len:
            self.fail(path, f"must hold at least {min_len} string{'s' if min_len > 1 else ''}, got {len(value)}")
        return tuple(self.text(v, f"{path}[{i}]", allow_empty) for i, v in enumerate(value))

    def number(self, value: Any, path: str, lo: float, hi: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number, got {type_name(value)}")
        if not lo <= value <= hi:
            self.fail(path, f"must lie in [{lo:g}, {hi:g}], got {value}")
        return float(value)

    def integer(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"must be an integer, got {type_name(value)}")
        return value

    def one_of(self, value: Any, path: str, allowed: tuple[str, ...] | set[str] | frozenset[str]) -> str:
        value = self.text(value, path)
        if value not in allowed:
            self.fail(path, f"{value!r} is not one of {', '.join(sorted(allowed))}")
        return value

    def names(self, value: Any, path: str, n: int) -> tuple[str, ...]:
        """Exactly ``n`` distinct non-empty strings."""
        out = self.texts(value, path, min_len=n)
        if len(out) != n or len(set(out)) != n:
            self.fail(path, f"must hold exactly {n} distinct strings, got {list(out)}")
        return out


def type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


# ------------------------------------------------------------------------------------------ material
@dataclass(frozen=True)
class MaterialSchema:
    """What a scenario's code needs from its material file.

    ``forms``: the response forms its contrasts and ranks use (each population ranks exactly these);
    ``wording``: the names of the scenario-wide text lists it draws from;
    ``categories``: per topic category, (text forms, keyword features) every topic of it must have.
    """

    forms: tuple[str, ...]
    wording: tuple[str, ...]
    categories: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]
    base: tuple[str, "MaterialSchema"] | None = None  # (name, schema) of the material whose prompts it reuses

    def category(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
        return next(((texts, kws) for cat, texts, kws in self.categories if cat == name), None)

    @property
    def features(self) -> tuple[str, ...]:
        """Keyword features of all categories (first-seen order)."""
        return tuple(dict.fromkeys(f for _, _, kws in self.categories for f in kws))

    @property
    def text_forms(self) -> tuple[str, ...]:
        """Every form a topic or the ranks may name."""
        return tuple(dict.fromkeys(self.forms + tuple(f for _, texts, _ in self.categories for f in texts)))


MATERIAL_KEYS = (
    "description", "domains", "populations", "default_shift", "default_severity", "ranks", "templates", "wording",
    "topics",
)  # fmt: skip
TOPIC_KEYS = ("key", "domain", "category", "slots", "texts", "keywords")
DERIVED_KEYS = (
    "description", "topics_from", "populations", "default_shift", "default_severity", "ranks", "wording",
)  # fmt: skip


@dataclass(frozen=True)
class MaterialData:
    """One validated material file (lists become tuples; object key order is kept)."""

    description: str
    domains: tuple[str, str]
    populations: tuple[str, str]
    default_shift: str
    default_severity: float
    ranks: dict[str, dict[str, int]]
    train_templates: tuple[str, ...]
    held_out_templates: tuple[str, ...]
    wording: dict[str, tuple[str, ...]]
    topics: tuple[dict[str, Any], ...]  # keyword arguments of Topic


def template_slots(template: str) -> set[str]:
    """The ``{slot}`` names a template fills."""
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def populations_and_ranks(c: Checker, d: dict[str, Any], schema: MaterialSchema) -> tuple[tuple[str, ...], dict]:
    """The two populations and each one's rank of every form of ``schema`` (a material file's keys)."""
    populations = c.names(d["populations"], "populations", 2)
    ranks_in = c.obj(d["ranks"], "ranks", populations)
    ranks = {}
    for pop in populations:
        table = c.obj(ranks_in[pop], f"ranks.{pop}", schema.forms)
        ranks[pop] = {form: c.integer(v, f"ranks.{pop}.{form}") for form, v in table.items()}
    return populations, ranks


def validate_material(data: Any, source: str, schema: MaterialSchema, base: MaterialData | None = None) -> MaterialData:
    """Check one parsed material file against ``schema`` (see the module docstring for the format).

    A derived schema (``schema.base``) needs ``base``, the validated material it takes its prompts from.
    """
    if schema.base is not None:
        if base is None:
            raise ValueError(f"{source}: a derived material needs its base material {schema.base[0]!r}")
        return validate_derived(data, source, schema, base)
    c = Checker(source)
    d = c.obj(data, "", MATERIAL_KEYS)
    domains = c.names(d["domains"], "domains", 2)
    populations, ranks = populations_and_ranks(c, d, schema)
    templates = c.obj(d["templates"], "templates", ("train", "held_out"))
    train = c.texts(templates["train"], "templates.train")
    held_out = c.texts(templates["held_out"], "templates.held_out", min_len=N_HELD_OUT)
    if len(held_out) != N_HELD_OUT:
        c.fail("templates.held_out", f"must hold exactly {N_HELD_OUT} templates, got {len(held_out)}")
    wording_in = c.obj(d["wording"], "wording", schema.wording)
    wording = {name: c.texts(wording_in[name], f"wording.{name}", allow_empty=True) for name in wording_in}

    topics: list[dict[str, Any]] = []
    topics_in = d["topics"]
    if not isinstance(topics_in, list) or not topics_in:
        c.fail("topics", f"must be a non-empty list of topic objects, got {type_name(topics_in)}")
    seen: dict[str, int] = {}
    for i, raw in enumerate(topics_in):
        at = f"topics[{i}]"
        t = c.obj(raw, at, TOPIC_KEYS)
        key = c.text(t["key"], f"{at}.key")
        if key in seen:
            c.fail(f"{at}.key", f"duplicate topic key {key!r} (also topics[{seen[key]}])")
        seen[key] = i
        domain = c.one_of(t["domain"], f"{at}.domain", set(domains))
        category = c.text(t["category"], f"{at}.category")
        required = schema.category(category)
        if required is None:
            c.fail(f"{at}.category", f"{category!r} is not one of {', '.join(cat for cat, _, _ in schema.categories)}")
        forms, features = required
        slots_in = c.obj(t["slots"], f"{at}.slots")
        if not slots_in:
            c.fail(f"{at}.slots", "must name at least one slot")
        slots = {name: c.text(v, f"{at}.slots.{name}") for name, v in slots_in.items()}
        texts_in = c.obj(t["texts"], f"{at}.texts", forms)
        texts = {form: c.texts(v, f"{at}.texts.{form}") for form, v in texts_in.items()}
        keywords_in = c.obj(t["keywords"], f"{at}.keywords", features)
        keywords = {f: c.texts(v, f"{at}.keywords.{f}") for f, v in keywords_in.items()}
        for group, items in (("train", train), ("held_out", held_out)):
            for j, template in enumerate(items):
                missing = template_slots(template) - set(slots)
                if missing:
                    c.fail(f"{at}.slots", f"missing slot {sorted(missing)[0]!r} used by templates.{group}[{j}]")
        topics.append(
            {"key": key, "domain": domain, "category": category, "slots": slots, "texts": texts, "keywords": keywords}
        )
    return MaterialData(
        description=c.text(d["description"], "description"),
        domains=domains,  # type: ignore[arg-type]
        populations=populations,  # type: ignore[arg-type]
        default_shift=c.one_of(d["default_shift"], "default_shift", set(SHIFT_TYPES)),
        default_severity=c.number(d["default_severity"], "default_severity", 0.0, 1.0),
        ranks=ranks,
        train_templates=train,
        held_out_templates=held_out,
        wording=wording,
        topics=tuple(topics),
    )


def validate_derived(data: Any, source: str, schema: MaterialSchema, base: MaterialData) -> MaterialData:
    """A derived material file: its own labels and wording on ``base``'s prompts (``topics_from``)."""
    assert schema.base is not None
    base_name, _ = schema.base
    c = Checker(source)
    d = c.obj(data, "", DERIVED_KEYS)
    frm = c.obj(d["topics_from"], "topics_from", ("material", "categories"))
    c.one_of(frm["material"], "topics_from.material", {base_name})
    base_categories = {t["category"] for t in base.topics}
    keep = c.texts(frm["categories"], "topics_from.categories")
    for j, category in enumerate(keep):
        c.one_of(category, f"topics_from.categories[{j}]", base_categories)
        if schema.category(category) is None:
            c.fail(f"topics_from.categories[{j}]", f"{category!r} is not a category of this material's schema")
    # the kept topics must carry what this material's schema asks of their category
    topics = tuple(t for t in base.topics if t["category"] in keep)
    for t in topics:
        forms, features = schema.category(t["category"])  # type: ignore[misc]
        missing = [f for f in forms if f not in t["texts"]] + [f for f in features if f not in t["keywords"]]
        if missing:
            c.fail("topics_from", f"topic {t['key']!r} of {base_name!r} lacks {missing[0]!r}")
    populations, ranks = populations_and_ranks(c, d, schema)
    own_names = tuple(n for n in schema.wording if n not in base.wording)
    wording_in = c.obj(d["wording"], "wording", own_names)
    wording = dict(base.wording)
    wording.update({name: c.texts(wording_in[name], f"wording.{name}", allow_empty=True) for name in wording_in})
    return MaterialData(
        description=c.text(d["description"], "description"),
        domains=base.domains,
        populations=populations,  # type: ignore[arg-type]
        default_shift=c.one_of(d["default_shift"], "default_shift", set(SHIFT_TYPES)),
        default_severity=c.number(d["default_severity"], "default_severity", 0.0, 1.0),
        ranks=ranks,
        train_templates=base.train_templates,
        held_out_templates=base.held_out_templates,
        wording=wording,
        topics=topics,
    )


@cache
def load_material(name: str, schema: MaterialSchema) -> MaterialData:
    """``material/<name>.json``, validated against ``schema`` (cached); a derived one on its loaded base."""
    base = load_material(*schema.base) if schema.base is not None else None
    return validate_material(read_json(f"{name}.json"), f"{FOLDER}/{name}.json", schema, base)


def validate_shared(data: Any, source: str) -> dict[str, tuple[str, ...]]:
    c = Checker(source)
    d = c.obj(data, "", ("prompt_prefixes",))
    return {"prompt_prefixes": c.texts(d["prompt_prefixes"], "prompt_prefixes", allow_empty=True)}


@cache
def load_shared() -> dict[str, tuple[str, ...]]:
    """``material/shared.json``: material every scenario shares (the prompt lead-ins)."""
    return validate_shared(read_json("shared.json"), f"{FOLDER}/shared.json")


# ------------------------------------------------------------------------------------------ oracle
@dataclass(frozen=True)
class OracleSchema:
    """What a scenario's judge needs from its oracle file besides the material's features.

    ``phrases``: the names of the fixed phrase lists it uses; ``extension_features``: features that
    exist only as per-topic extensions (e.g. helpful_harmless's ``act``, naming the harmful act).
    """

    phrases: tuple[str, ...] = ()
    extension_features: tuple[str, ...] = ()


@dataclass(frozen=True)
class OracleVocabulary:
    """One validated oracle file."""

    features: dict[str, tuple[str, tuple[str, ...]]]  # feature -> (rewarded form, forms it never fires on)
    phrases: dict[str, tuple[str, ...]]
    extensions: dict[str, dict[str, tuple[str, ...]]]  # topic key -> feature -> keywords


def validate_oracle(
    data: Any, source: str, schema: OracleSchema, material: MaterialSchema, topics: tuple[str, ...]
) -> OracleVocabulary:
    """Check one parsed oracle file: every keyword feature of ``material`` has its forms, the phrase
    lists of ``schema`` are there, and extensions name only topics in ``topics`` and known features."""
    c = Checker(source)
    d = c.obj(data, "", ("features", "phrases", "extensions"))
    forms = set(material.text_forms)
    feats = {}
    for f, raw in c.obj(d["features"], "features", material.features).items():
        spec = c.obj(raw, f"features.{f}", ("rewards", "never_on"))
        pos = c.one_of(spec["rewards"], f"features.{f}.rewards", forms)
        neg = c.texts(spec["never_on"], f"features.{f}.never_on", min_len=0)
        for j, form in enumerate(neg):
            c.one_of(form, f"features.{f}.never_on[{j}]", forms)
        feats[f] = (pos, neg)
    phrases_in = c.obj(d["phrases"], "phrases", schema.phrases)
    phrases = {name: c.texts(v, f"phrases.{name}") for name, v in phrases_in.items()}
    allowed = material.features + schema.extension_features
    extensions = {}
    for key, raw in c.obj(d["extensions"], "extensions").items():
        if key not in topics:
            c.fail(f"extensions.{key}", "is not a topic key of the material")
        per = c.obj(raw, f"extensions.{key}")
        for f in per:
            if f not in allowed:
                c.fail(f"extensions.{key}.{f}", f"unknown feature (expected one of {', '.join(allowed)})")
        extensions[key] = {f: c.texts(v, f"extensions.{key}.{f}") for f, v in per.items()}
    return OracleVocabulary(feats, phrases, extensions)


@cache
def load_oracle(name: str, schema: OracleSchema, material: MaterialSchema, topics: tuple[str, ...]) -> OracleVocabulary:
    """``material/oracle_<name>.json``, validated with :func:`validate_oracle` (cached)."""
    return validate_oracle(read_json(f"oracle_{name}.json"), f"{FOLDER}/oracle_{name}.json", schema, material, topics)


ORACLE_SHARED_KEYS = ("stopwords", "filler", "imperative-verbs")


def validate_oracle_shared(data: Any, source: str) -> dict[str, tuple[str, ...]]:
    c = Checker(source)
    d = c.obj(data, "", ORACLE_SHARED_KEYS)
    return {k: c.texts(d[k], k) for k in ORACLE_SHARED_KEYS}


@cache
def load_oracle_shared() -> dict[str, tuple[str, ...]]:
    """``material/oracle_shared.json``: the word lists of the shared text features."""
    return validate_oracle_shared(read_json("oracle_shared.json"), f"{FOLDER}/oracle_shared.json")
