"""The generic generator: any shift type a-h at any severity, on any :class:`Material`.

Model. The deployment distribution p_te draws a topic from the deployment prompt domain (or from
both domains when the prompt factor is not shifted), a ``dep`` contrast, and the deployment
population's label. Training is the mixture p_tr = (1 - s) p_te + s q, where the irrelevant part q
puts *every* factor named by the shift type in its "other" state:

- prompt  -> topics from the other domain only;
- response -> ``other`` contrasts (pairs that never occur at deployment);
- label   -> the other population's label, drawn only from *disputed* contrasts so that the label
  really differs from what deployment users would give.

Factors not named keep their deployment state, so e.g. type 'c' changes prompt domains but not the
label rule, and type 'a' has no irrelevant pairs at all (severity is ignored). The number of
irrelevant training pairs is exactly ``round(severity * n_train)``. D_v and D_te are drawn from
p_te only (``relevant`` is True throughout), each on its own share of the held-out prompts.

Held-out rule (``holdout``): ``"paraphrase"`` (default) reserves the last three prompt templates of
the material (its file's ``templates.held_out``) for D_v / D_te (topics and response texts are
shared with D_tr, prompt strings never are); ``"topic"`` reserves about a quarter of each domain's
topics (chosen by the seed) for D_v / D_te, and D_tr never sees them. Either way, each held-out
topic's templates are then split by the seed: a third of them (at least one) word D_v prompts and
the rest word D_te prompts, so D_v and D_te share topics but never a prompt, not even one that
differs only in its lead-in.

Uniqueness and isolation. No preference pair occurs twice in a build (pairs are compared as
(prompt, chosen, rejected) text, ignoring case and whitespace): a draw that repeats a pair of its
split is redrawn from the same seeded stream, so each part of a split is the first n distinct
pairs of its stream. Every prompt D_te *could* draw is reserved for D_te, and every prompt D_v
could draw is kept out of D_tr, so the splits share no prompt by construction, whatever the seed,
severity or size (and so no pair either). Sizes are exact; asking for more pairs than a split has
raises ValueError naming the split and its maximum (``meta["max_pairs"]`` holds the counts).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from typing import Any, Callable

from lit_iwpo.data.scenarios.material import Material, Topic
from lit_iwpo.data.scenarios.splits import (
    LABEL,
    PROMPT,
    RESPONSE,
    ScenarioSplits,
    assign_ids,
    check_severity,
    check_sizes,
    group_counts,
    relevant_share,
    shift_factors,
)
from lit_iwpo.data.scenarios.unique import PairSpace, draw_unique, outcomes, overlap, space_size, text_key

HOLDOUTS = ("paraphrase", "topic")
TOPIC_HOLDOUT_SHARE = 0.25
VAL_TEMPLATE_SHARE = 1 / 3  # of each held-out topic's templates, for D_v (the rest word D_te); cf. DEFAULT_SIZES


@dataclass(frozen=True)
class Spec:
    """Which state each factor is in for one component of a distribution."""

    domains: tuple[str, ...]
    kind: str  # "dep" | "other"
    population: str
    disputed_only: bool
    shifted: tuple[str, ...]  # factors in their "other" state (empty for deployment pairs)


@dataclass
class Pool:
    """Topics available to one split, and the prompt templates each topic may be worded with there."""

    topics: dict[str, list[Topic]]  # domain -> topics
    templates: dict[str, tuple[str, ...]]  # topic key -> templates


def specs(material: Material, factors: tuple[str, ...]) -> tuple[Spec, Spec]:
    dep_domain, other_domain = material.domains
    dep_pop, other_pop = material.populations
    both = (dep_domain, other_domain)
    deployment = Spec((dep_domain,) if PROMPT in factors else both, "dep", dep_pop, False, ())
    irrelevant = Spec(
        (other_domain,) if PROMPT in factors else both,
        "other" if RESPONSE in factors else "dep",
        other_pop if LABEL in factors else dep_pop,
        LABEL in factors,
        factors,
    )
    return deployment, irrelevant


def with_templates(topics: dict[str, list[Topic]], templates: tuple[str, ...]) -> Pool:
    """A pool in which every topic may use every one of ``templates``."""
    return Pool(topics, {t.key: templates for ts in topics.values() for t in ts})


def pools(material: Material, holdout: str, rng: random.Random) -> tuple[Pool, Pool]:
    """(training pool, deployment pool) under the held-out rule."""
    by_domain: dict[str, list[Topic]] = {d: [t for t in material.topics if t.domain == d] for d in material.domains}
    if holdout == "paraphrase":
        return (
            with_templates(by_domain, material.prompt_templates(held_out=False)),
            with_templates(by_domain, material.prompt_templates(held_out=True)),
        )
    train: dict[str, list[Topic]] = {}
    held: dict[str, list[Topic]] = {}
    for domain, topics in by_domain.items():
        order = list(topics)
        rng.shuffle(order)
        k = max(1, round(TOPIC_HOLDOUT_SHARE * len(order)))
        held[domain], train[domain] = order[:k], order[k:]
    return with_templates(train, material.templates), with_templates(held, material.templates)


def split_templates(templates: tuple[str, ...], rng: random.Random) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(D_v templates, D_te templates) of one topic: a seeded third (at least one) for D_v, the rest for D_te.

    Both keep the material's template order; only membership is random.
    """
    if len(templates) < 2:
        raise ValueError("a held-out topic needs at least two prompt templates to keep D_v and D_te apart")
    order = list(templates)
    rng.shuffle(order)
    k = min(len(order) - 1, max(1, round(VAL_TEMPLATE_SHARE * len(order))))
    val = set(order[:k])
    return tuple(t for t in templates if t in val), tuple(t for t in templates if t not in val)


def split_eval_pool(pool: Pool, rng_for: Callable[[str], random.Random]) -> tuple[Pool, Pool]:
    """(D_v pool, D_te pool): same topics, each topic's templates split by :func:`split_templates`.

    ``rng_for(topic key)`` gives each topic its own stream, so a topic's split does not depend on
    which other topics are in the pool (it is the same for every shift type and severity).
    """
    halves = {key: split_templates(templates, rng_for(key)) for key, templates in pool.templates.items()}
    return (
        Pool(pool.topics, {key: val for key, (val, _) in halves.items()}),
        Pool(pool.topics, {key: test for key, (_, test) in halves.items()}),
    )


def candidates(material: Material, spec: Spec, pool: Pool) -> list[tuple[Topic, list[tuple[str, str]]]]:
    """Topics of the spec's domains with their admissible contrasts (topics without any are dropped)."""
    out = []
    for domain in spec.domains:
        for topic in pool.topics.get(domain, []):
            pairs = material.contrasts(topic, spec.kind)
            if spec.disputed_only:
                pairs = [p for p in pairs if material.disputed(topic, p)]
            if pairs:
                out.append((topic, pairs))
    return out


def make_pair(material: Material, spec: Spec, pool: Pool, cands: list, rng: random.Random) -> dict[str, Any]:
    """Draw one pair (keep :func:`pair_space` in step with how the texts are rendered here)."""
    topic, pairs = rng.choice(cands)  # topic uniform first, then the contrast: keeps category shares stable
    pair = rng.choice(pairs)
    chosen_form, rejected_form = material.winner(spec.population, topic, pair)
    prompt = material.render_prompt(topic, rng.choice(pool.templates[topic.key]), rng)
    row = {
        "prompt": prompt,
        "chosen": material.response(topic, chosen_form, spec.kind, rng),
        "rejected": material.response(topic, rejected_form, spec.kind, rng),
        "group": material.group(topic, chosen_form, rejected_form, spec.kind),
        "relevant": not spec.shifted,
        "contested": material.disputed(topic, pair),
        "scenario": material.name,
        "domain": topic.domain,
        "category": topic.category,
        "topic": topic.key,
        "pair_kind": spec.kind,
        "annotator": spec.population,
        "chosen_form": chosen_form,
        "rejected_form": rejected_form,
        "shifted": "+".join(spec.shifted) if spec.shifted else "none",
    }
    if material.sources:  # who wrote each response (DoRA's calibration classifier learns it)
        row["source"] = {"chosen": material.source_of(chosen_form), "rejected": material.source_of(rejected_form)}
    return row


@cache
def prompt_keys(material: Material, topic_key: str, template: str) -> frozenset[str]:
    """Keys of every prompt ``render_prompt`` can make from this topic and template (all lead-ins)."""
    topic = material.by_key[topic_key]
    return frozenset(map(text_key, outcomes(lambda rng: material.render_prompt(topic, template, rng))))


@cache
def response_keys(material: Material, topic_key: str, form: str, kind: str) -> frozenset[str]:
    """Keys of every text ``response`` can render for this topic, form and register."""
    topic = material.by_key[topic_key]
    return frozenset(map(text_key, outcomes(lambda rng: material.response(topic, form, kind, rng))))


def pair_space(material: Material, spec: Spec, pool: Pool, cands: list) -> PairSpace:
    """Every distinct pair :func:`make_pair` can draw from ``cands``, as prompt key -> response-key pairs."""
    space: PairSpace = {}
    for topic, pairs in cands:
        responses: set[tuple[str, str]] = set()
        for pair in pairs:
            chosen_form, rejected_form = material.winner(spec.population, topic, pair)
            chosen = response_keys(material, topic.key, chosen_form, spec.kind)
            rejected = response_keys(material, topic.key, rejected_form, spec.kind)
            responses.update((c, r) for c in chosen for r in rejected)
        frozen = frozenset(responses)
        for template in pool.templates[topic.key]:
            for prompt in prompt_keys(material, topic.key, template):
                space[prompt] = space[prompt] | frozen if prompt in space else frozen
    return space


def without_prompts(space: PairSpace, prompts: frozenset[str]) -> PairSpace:
    """``space`` less every pair whose prompt key is in ``prompts`` (prompts reserved for another split)."""
    return {prompt: responses for prompt, responses in space.items() if prompt not in prompts}


def max_train_size(severity: float, relevant: int, irrelevant: int) -> int:
    """Largest n_train whose relevant part (n - round(s*n)) and irrelevant part (round(s*n)) both fit.

    Both parts grow with n, so the sizes that fit are 1..answer; found by bisection.
    """
    lo, hi = 0, relevant + irrelevant
    while lo < hi:
        mid = (lo + hi + 1) // 2
        k = round(severity * mid)
        lo, hi = (mid, hi) if mid - k <= relevant and k <= irrelevant else (lo, mid - 1)
    return lo


def size_problem(sizes: dict[str, int], n_irrelevant: int, severity: float, max_pairs: dict[str, int]) -> str:
    """Why ``sizes`` cannot be met without repeating a pair, naming the split and its maximum ("" if they can)."""
    for split in ("test", "val"):
        if sizes[split] > max_pairs[split]:
            return (f"split {split!r} has only {max_pairs[split]} distinct pairs; "
                    f"n_{split}={sizes[split]} exceeds that maximum")  # fmt: skip
    relevant, irrelevant = max_pairs["train_relevant"], max_pairs["train_irrelevant"]
    if sizes["train"] - n_irrelevant > relevant or n_irrelevant > irrelevant:
        return (
            f"split 'train' holds at most {max_train_size(severity, relevant, irrelevant)} distinct pairs at "
            f"severity {severity:g} ({relevant} deployment pairs, {irrelevant} irrelevant pairs); "
            f"n_train={sizes['train']} exceeds that maximum"
        )
    return ""


def build_shifted(
    material: Material,
    *,
    name: str,
    shift: str,
    severity: float,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int = 0,
    holdout: str = "paraphrase",
) -> ScenarioSplits:
    """Generate D_tr, D_v, D_te for ``material`` under shift type ``shift`` (see the module docstring)."""
    factors = shift_factors(shift)
    check_sizes(n_train, n_val, n_test)
    requested = check_severity(severity)
    if holdout not in HOLDOUTS:
        raise ValueError(f"holdout must be one of {HOLDOUTS}, got {holdout!r}")
    effective = requested if factors else 0.0
    n_irrelevant = round(effective * n_train)

    # One string-seeded stream per purpose: str seeds hash with SHA-512, so runs are reproducible
    # across processes (unlike hash()), and no stream depends on another's draw count. The
    # deployment-side streams are keyed by the deployment distribution only, so for one seed every
    # severity, and every shift type with the same deployment domains, shares D_v, D_te and the
    # relevant part of D_tr (a prefix of it when the relevant count differs).
    def stream(*purpose: object) -> random.Random:
        return random.Random("|".join(map(str, (material.name, holdout, seed, *purpose))))

    train_pool, eval_pool = pools(material, holdout, stream("topic-holdout"))
    val_pool, test_pool = split_eval_pool(eval_pool, lambda key: stream("eval-prompts", key))
    deployment, irrelevant = specs(material, factors)

    def source(split: str, spec: Spec, pool: Pool) -> tuple[list, PairSpace]:
        cands = candidates(material, spec, pool)
        if not cands:
            raise ValueError(f"{name}: no deployment pairs available for split {split!r}")
        return cands, pair_space(material, spec, pool, cands)

    # Reservations: D_te's prompts are off limits to D_v and D_tr, D_v's to D_tr.
    test_cands, test_space = source("test", deployment, test_pool)
    val_cands, val_space = source("val", deployment, val_pool)
    val_space = without_prompts(val_space, frozenset(test_space))
    eval_prompts = frozenset(test_space) | frozenset(val_space)
    rel_cands, rel_space = source("train", deployment, train_pool)
    rel_space = without_prompts(rel_space, eval_prompts)
    irr_cands = candidates(material, irrelevant, train_pool) if effective else []
    if n_irrelevant and not irr_cands:
        raise ValueError(f"{name}: shift {shift!r} has no irrelevant pairs to draw from")
    irr_space = without_prompts(pair_space(material, irrelevant, train_pool, irr_cands), eval_prompts)

    max_pairs = {
        "train_relevant": space_size(rel_space),
        "train_irrelevant": space_size(irr_space) - overlap(irr_space, rel_space),
        "val": space_size(val_space),
        "test": space_size(test_space),
    }
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    problem = size_problem(sizes, n_irrelevant, effective, max_pairs)
    if problem:
        raise ValueError(f"{name}: {problem} (holdout {holdout!r}, shift {shift!r})")

    def draws(spec: Spec, pool: Pool, cands: list, rng: random.Random) -> Callable[[], dict[str, Any]]:
        return lambda: make_pair(material, spec, pool, cands, rng)

    rows: dict[str, list[dict[str, Any]]] = {}
    rows["test"] = draw_unique(
        n_test, draws(deployment, test_pool, test_cands, stream("test", *deployment.domains)), set(), frozenset()
    )
    rows["val"] = draw_unique(
        n_val, draws(deployment, val_pool, val_cands, stream("val", *deployment.domains)), set(), frozenset(test_space)
    )
    seen_train: set = set()
    rows["train"] = draw_unique(
        n_train - n_irrelevant,
        draws(deployment, train_pool, rel_cands, stream("train", *deployment.domains)),
        seen_train,
        eval_prompts,
    )
    if n_irrelevant:
        rng = stream("irrelevant", shift)
        rows["train"] += draw_unique(
            n_irrelevant, draws(irrelevant, train_pool, irr_cands, rng), seen_train, eval_prompts
        )
        stream("order", shift, n_irrelevant).shuffle(rows["train"])

    train, val, test = (assign_ids(name, s, rows[s]) for s in ("train", "val", "test"))
    meta = {
        "name": name,
        "material": material.name,
        "shift": shift,
        "factors": list(factors),
        "severity": effective,
        "severity_requested": requested,
        "seed": seed,
        "holdout": holdout,
        "sizes": {"train": len(train), "val": len(val), "test": len(test)},
        "n_irrelevant_train": n_irrelevant,
        "relevant_share_train": relevant_share(train),
        "max_pairs": max_pairs,
        "domains": {"deployment": material.domains[0], "other": material.domains[1]},
        "populations": {"deployment": material.populations[0], "other": material.populations[1]},
        "deployment_domains": list(deployment.domains),
        "irrelevant_spec": {
            "domains": list(irrelevant.domains),
            "pair_kind": irrelevant.kind,
            "annotator": irrelevant.population,
        },
        "held_out_templates": list(material.prompt_templates(held_out=True)) if holdout == "paraphrase" else [],
        "held_out_topics": sorted(t.key for ts in eval_pool.topics.values() for t in ts) if holdout == "topic" else [],
        "groups_train": group_counts(train),
        "groups_test": group_counts(test),
        "description": material.description,
    }
    return ScenarioSplits(name, train, val, test, meta)
