"""Uniqueness helpers for the scenario engine: text keys, exhaustive enumeration of texts, unique draws.

The engine promises that no preference pair occurs twice in a build and that no D_te prompt occurs
in D_tr or D_v. Both are checked on *keys*: text lower-cased with whitespace and quotes normalised
(:func:`~lit_iwpo.data.scenarios.textfeatures.normalise`, the judges' view of text), so two pairs
that differ only in case or spacing count as the same pair.

To know how many distinct pairs a split can hold (and to refuse a request for more instead of
looping forever or returning fewer rows), the engine enumerates every text a material can render.
Materials draw their random wording only with ``rng.choice``; :func:`outcomes` runs a renderer
once per path through its choices, so the enumeration is exact and needs no material-specific code.
"""

from __future__ import annotations

from typing import Any, Callable

from lit_iwpo.data.scenarios.textfeatures import normalise

PairKey = tuple[str, str, str]
# prompt key -> every (chosen key, rejected key) a split can pair with that prompt
PairSpace = dict[str, frozenset[tuple[str, str]]]

# A renderer that keeps redrawing the same few pairs has an inconsistent capacity count; stop
# instead of hanging (the count said a new pair existed, so this is a bug, not a user error).
MAX_CONSECUTIVE_REDRAWS = 1_000_000


def text_key(text: str) -> str:
    """Comparison key of a prompt or response: case, whitespace and quote style do not count."""
    return normalise(text)


def pair_key(row: dict[str, Any]) -> PairKey:
    """Comparison key of one preference pair (prompt, chosen, rejected)."""
    return text_key(row["prompt"]), text_key(row["chosen"]), text_key(row["rejected"])


class ScriptedChoices:
    """Stands in for ``random.Random`` in :func:`outcomes`: replays fixed choice indices, then takes option 0.

    Records the index taken and the number of options at each call, so the caller can branch.
    """

    def __init__(self, script: tuple[int, ...]) -> None:
        self.script = script
        self.taken: list[int] = []
        self.widths: list[int] = []

    def choice(self, options: Any) -> Any:
        depth = len(self.taken)
        index = self.script[depth] if depth < len(self.script) else 0
        self.taken.append(index)
        self.widths.append(len(options))
        return options[index]

    def __getattr__(self, name: str) -> Any:
        raise TypeError(f"scenario texts may draw only with rng.choice (got rng.{name}), so they can be enumerated")


def outcomes(render: Callable[[Any], str]) -> frozenset[str]:
    """Every text ``render(rng)`` can return, by running it once per path of ``rng.choice`` calls.

    Depth-first over the choice tree: each run follows a script and reports where it branched
    beyond the script; every unexplored sibling becomes a new script. Renderers make a handful of
    choices among a few options, so the tree has tens of leaves.
    """
    found: set[str] = set()
    todo: list[tuple[int, ...]] = [()]
    while todo:
        rng = ScriptedChoices(todo.pop())
        found.add(render(rng))
        for depth in range(len(rng.script), len(rng.taken)):
            prefix = tuple(rng.taken[:depth])
            todo.extend(prefix + (i,) for i in range(1, rng.widths[depth]))
    return frozenset(found)


def space_size(space: PairSpace) -> int:
    """Number of distinct pairs in a pair space (prompt key -> {(chosen key, rejected key)})."""
    return sum(len(responses) for responses in space.values())


def overlap(space: PairSpace, other: PairSpace) -> int:
    """Number of pairs that lie in both pair spaces."""
    return sum(len(responses & other.get(prompt, frozenset())) for prompt, responses in space.items())


def draw_unique(
    n: int, draw: Callable[[], dict[str, Any]], seen: set[PairKey], banned_prompts: frozenset[str] | set[str]
) -> list[dict[str, Any]]:
    """``n`` rows from ``draw()`` whose pair key is not in ``seen`` and whose prompt key is not banned.

    Rejected draws are simply redrawn from the same (seeded) stream, so the result is the first
    ``n`` admissible draws: deterministic, and a prefix of the result for any larger ``n``. The
    caller must have checked that ``n`` admissible pairs exist; ``seen`` is updated in place.
    """
    rows: list[dict[str, Any]] = []
    misses = 0
    while len(rows) < n:
        row = draw()
        key = pair_key(row)
        if key in seen or key[0] in banned_prompts:
            misses += 1
            if misses > MAX_CONSECUTIVE_REDRAWS:
                raise RuntimeError(f"no new pair after {MAX_CONSECUTIVE_REDRAWS} draws; the capacity count is wrong")
            continue
        misses = 0
        seen.add(key)
        rows.append(row)
    return rows
