"""Comparisons with confidence: paired bootstrap intervals, variance components and detectable differences.

Results here are matrices ``[n_seeds, n_prompts]`` of per-(seed, prompt) values of a method (one D_te
outcome or pair correctness per training seed and test prompt). Two methods run with the same seeds see
the same data order, and every seed is tested on the same D_te prompts, so a comparison is *paired* in
both directions: seed ``s`` of method A goes with seed ``s`` of method B, and prompt ``p`` with prompt
``p``. Pairing removes the variation the two methods share (a hard prompt, a lucky data order) from the
difference, which is why a paired interval is much narrower than two separate mean ± sd columns.

The design is *crossed*, not nested: the same prompts are scored under every seed. So a bootstrap draw
resamples seeds and draws one resample of prompt indices that every resampled seed (and both methods)
shares (the "pigeonhole" bootstrap: McCullagh 2000, Owen 2007); drawing prompts afresh per seed would average a
prompt's effect away over seeds and make the interval too narrow. The matching variance model is
``d[s, p] = mu + seed_s + prompt_p + resid_sp``, whose grand mean has variance
``var_seed / S + var_prompt / P + var_resid / (S P)``: between-seed variance (training noise) shrinks
only with more seeds, the prompt variance only with more prompts. :func:`variance_components` estimates the
three from one table of paired differences, :func:`design_se` predicts the standard error of another
design and :func:`minimum_detectable_difference` turns it into the smallest true difference a two-sided
test would detect with the given power.

What the bootstrap measures, exactly: with the sample decomposition ``d = mean + a_s + b_p + e_sp`` (effects
summing to zero), the variance of a draw is ``Σa²/S² + Σb²/P² + Σe²/(S P)²`` (see the tests). In expectation
that is about ``var_seed·(S−1)/S² + var_prompt/P + c·var_resid/(S P)`` with ``c`` up to 3 (2.3 at 3 seeds ×
64 prompts): a little short on seed variance with few seeds, and conservative when seed × prompt noise
dominates, as it does for 0 / ½ / 1 outcomes. Planning (MDD, seeds needed) therefore uses the unbiased
components, and the interval is the bootstrap's.

Pure numpy (plus the standard library); :func:`head_to_head` imports the judges only when called.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from statistics import NormalDist
from typing import Any, Optional, Sequence

import numpy as np

__all__ = [
    "HeadToHead", "PairedDiff", "VarianceComponents", "bootstrap_means", "design_se", "head_to_head",
    "minimum_detectable_difference", "paired_bootstrap", "prompts_needed", "seeds_needed", "variance_components",
]


def as_matrix(x: Any) -> np.ndarray:
    """``x`` as a float matrix ``[n_seeds, n_prompts]``; a vector is one seed's prompts."""
    m = np.asarray(x, dtype=np.float64)
    if m.ndim == 1:
        m = m[None, :]
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"expected values shaped [n_seeds, n_prompts] with at least one of each; got shape {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("values must be finite (align seeds and prompts first; no NaN for missing cells)")
    return m


@dataclass(frozen=True)
class PairedDiff:
    """``diff`` = mean(a) − mean(b); ``[lo, hi]`` its percentile bootstrap interval at ``level``; ``se`` the
    bootstrap standard error. ``n_seeds == 1`` means the interval covers prompt sampling only."""

    diff: float
    lo: float
    hi: float
    se: float
    n_seeds: int
    n_prompts: int
    level: float = 0.95


def bootstrap_means(d: Any, n_boot: int = 10000, seed: int = 0, chunk: int = 2048) -> np.ndarray:
    """The two-level bootstrap distribution of the grand mean of ``d`` ``[n_seeds, n_prompts]``: ``n_boot`` draws.

    Each draw resamples the S seeds with replacement and, independently, the P prompts with replacement,
    one prompt resample shared by all resampled seeds (crossed design, see the module docstring). With
    seed counts ``c`` and prompt counts ``k`` of a draw its mean is ``c @ d @ k / (S P)``, which is what is
    computed (no S × P copy per draw), in chunks of ``chunk`` draws to bound memory. With one seed the seed
    level is fixed: prompts only. Deterministic for a given ``seed``, whatever the chunk size.
    """
    d = as_matrix(d)
    n_s, n_p = d.shape
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1; got {n_boot}")
    rng_seeds, rng_prompts = np.random.default_rng(seed).spawn(2)  # one stream per level: chunking changes nothing
    out = np.empty(n_boot, dtype=np.float64)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        seeds = rng_seeds.multinomial(n_s, np.full(n_s, 1.0 / n_s), size=m).astype(np.float64)  # [m, S] counts
        prompts = rng_prompts.multinomial(n_p, np.full(n_p, 1.0 / n_p), size=m).astype(np.float64)  # [m, P] counts
        out[start:start + m] = ((seeds @ d) * prompts).sum(axis=1) / (n_s * n_p)
    return out


def paired_bootstrap(a: Any, b: Any, n_boot: int = 10000, seed: int = 0, level: float = 0.95) -> PairedDiff:
    """Paired difference mean(a) − mean(b) of two methods with a percentile bootstrap interval.

    Args:
        a, b: Per-(seed, prompt) values ``[n_seeds, n_prompts]`` of the two methods, rows the same seeds
            (same data order) and columns the same prompts, in the same order. A vector is one seed.
        n_boot: Bootstrap draws.
        seed: Seed of the resampling (the interval is reproducible).
        level: Coverage of the interval.

    The per-cell differences ``a − b`` are resampled (seeds, then one shared prompt resample; see
    :func:`bootstrap_means`), so within a draw both methods get the same seeds and prompts: identical
    inputs give a zero-width interval at 0, and ``a = b + c`` gives exactly ``c``. With ``n_seeds == 1``
    only prompts are resampled: the interval then says how sure we are about *this* training run on other
    prompts, not about the method, whose seed-to-seed variation it cannot see. With few seeds (2–3) the
    seed level of any bootstrap is coarse and its seed variance shrinks by (S − 1)/S; the seed × prompt
    noise, on the other hand, is counted up to three times (module docstring), so the interval errs wide
    when that noise dominates.
    """
    a, b = as_matrix(a), as_matrix(b)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same seeds × prompts: {a.shape} vs {b.shape}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1); got {level}")
    d = a - b
    draws = bootstrap_means(d, n_boot=n_boot, seed=seed)
    lo, hi = np.quantile(draws, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    se = float(draws.std(ddof=1)) if n_boot > 1 else 0.0
    return PairedDiff(diff=float(d.mean()), lo=float(lo), hi=float(hi), se=se, n_seeds=d.shape[0],
                      n_prompts=d.shape[1], level=level)


def minimum_detectable_difference(se: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference a two-sided level-``alpha`` test detects with probability ``power``:
    ``(z_{1−alpha/2} + z_power) · se`` (normal approximation; 2.80 · se at the defaults)."""
    if not 0.0 < alpha < 1.0 or not 0.0 < power < 1.0:
        raise ValueError(f"alpha and power must lie in (0, 1); got {alpha}, {power}")
    z = NormalDist()
    return (z.inv_cdf(1.0 - alpha / 2.0) + z.inv_cdf(power)) * se


@dataclass(frozen=True)
class VarianceComponents:
    """Variances of the paired-difference model ``d[s, p] = mu + seed_s + prompt_p + resid_sp``.

    ``seed`` is the between-seed variance (training noise); ``prompt`` and ``resid`` together are the
    within-seed variance: ``prompt`` the part shared by every seed (some prompts favour one method), ``resid``
    the seed × prompt interaction. NaN where the data cannot tell: ``seed`` with one seed (then ``prompt``
    holds the whole within-seed variance and ``resid`` 0), ``prompt`` with one prompt.
    """

    seed: float
    prompt: float
    resid: float
    n_seeds: int
    n_prompts: int


def variance_components(d: Any) -> VarianceComponents:
    """Unbiased two-way ANOVA (method-of-moments) estimates from a crossed table ``[n_seeds, n_prompts]``.

    Mean squares of seeds, prompts and residual have expectations ``resid + P·seed``, ``resid + S·prompt`` and
    ``resid``; solving gives the components, negative estimates set to 0. Pass the paired differences
    ``a − b`` (or ``outcome − 0.5`` for a head-to-head).
    """
    d = as_matrix(d)
    n_s, n_p = d.shape
    grand = d.mean()
    seed_means, prompt_means = d.mean(axis=1), d.mean(axis=0)
    if n_s == 1 and n_p == 1:
        return VarianceComponents(math.nan, math.nan, math.nan, 1, 1)
    if n_s == 1:
        return VarianceComponents(math.nan, float(d[0].var(ddof=1)), 0.0, 1, n_p)
    ms_seed = n_p * float(((seed_means - grand) ** 2).sum()) / (n_s - 1)
    if n_p == 1:
        return VarianceComponents(ms_seed, math.nan, 0.0, n_s, 1)
    ms_prompt = n_s * float(((prompt_means - grand) ** 2).sum()) / (n_p - 1)
    resid = d - seed_means[:, None] - prompt_means[None, :] + grand
    ms_resid = float((resid ** 2).sum()) / ((n_s - 1) * (n_p - 1))
    return VarianceComponents(seed=max(0.0, (ms_seed - ms_resid) / n_p), prompt=max(0.0, (ms_prompt - ms_resid) / n_s),
                              resid=ms_resid, n_seeds=n_s, n_prompts=n_p)


def design_se(vc: VarianceComponents, n_seeds: int, n_prompts: int) -> float:
    """Predicted standard error of a mean paired difference over ``n_seeds`` × ``n_prompts`` (crossed):
    ``sqrt(seed / S + prompt / P + resid / (S P))``; NaN when a needed component is unknown."""
    if n_seeds < 1 or n_prompts < 1:
        raise ValueError(f"a design needs at least one seed and one prompt; got {n_seeds} × {n_prompts}")
    var = vc.seed / n_seeds + vc.prompt / n_prompts + vc.resid / (n_seeds * n_prompts)
    return math.sqrt(var) if not math.isnan(var) else math.nan


def _smallest(extra: float, room: float, ok) -> Optional[int]:
    """Smallest n ≥ 1 with ``ok(n)``, where ``ok(n)`` ⇔ ``extra / n ≤ room`` up to rounding; None if
    unreachable."""
    if math.isnan(room) or math.isnan(extra):
        return None
    if extra <= 0.0 or room <= 0.0:  # n does not matter, or nothing is small enough
        return 1 if ok(1) else None
    n = max(1, math.ceil(extra / room - 1e-9))
    while n > 1 and ok(n - 1):  # guard the closed form against rounding, both ways
        n -= 1
    for _ in range(1000):
        if ok(n):
            return n
        n += 1
    return None


def seeds_needed(vc: VarianceComponents, target: float, n_prompts: int, alpha: float = 0.05,
                 power: float = 0.8) -> Optional[int]:
    """Fewest seeds at ``n_prompts`` prompts whose MDD is at most ``target``; None when no number of seeds
    reaches it (the prompt variance alone, ``prompt / P``, already exceeds it) or the seed variance is unknown."""
    k = minimum_detectable_difference(1.0, alpha, power)
    room = (target / k) ** 2 - vc.prompt / n_prompts
    return _smallest(vc.seed + vc.resid / n_prompts, room,
                     lambda n: minimum_detectable_difference(design_se(vc, n, n_prompts), alpha, power) <= target)


def prompts_needed(vc: VarianceComponents, target: float, n_seeds: int, alpha: float = 0.05,
                   power: float = 0.8) -> Optional[int]:
    """Fewest prompts at ``n_seeds`` seeds whose MDD is at most ``target``; None when no number of prompts
    reaches it (``seed / S`` alone exceeds it) or a component is unknown."""
    k = minimum_detectable_difference(1.0, alpha, power)
    room = (target / k) ** 2 - vc.seed / n_seeds
    return _smallest(vc.prompt + vc.resid / n_seeds, room,
                     lambda n: minimum_detectable_difference(design_se(vc, n_seeds, n), alpha, power) <= target)


@dataclass(frozen=True)
class HeadToHead:
    """A against B on the same prompts: per-prompt ``outcomes`` (1 A better, 0 B better, 0.5 tie or split
    verdict) and their summary; ``win_rate`` counts ties as half, 0.5 = no difference."""

    outcomes: list[float]
    win_rate: float
    win_rate_strict: float
    tie_rate: float
    loss_rate: float


def head_to_head(rows: Sequence[dict], answers_a: Sequence[str], answers_b: Sequence[str], judge) -> HeadToHead:
    """Win rate of answers A over answers B to the same prompt ``rows``, each pair judged in both orders
    (``judge_both_orders``: position bias cancels, identical answers tie without asking)."""
    from lit_iwpo.eval.judges import judge_both_orders
    from lit_iwpo.eval.metrics import win_rate

    if not len(rows) == len(answers_a) == len(answers_b):
        raise ValueError(f"{len(rows)} rows, {len(answers_a)} answers A and {len(answers_b)} answers B")
    outcomes = judge_both_orders(judge, rows, answers_a, answers_b)
    stats = win_rate(outcomes)
    return HeadToHead(outcomes=list(outcomes), win_rate=stats["win_rate"], win_rate_strict=stats["win_rate_strict"],
                      tie_rate=stats["tie_rate"], loss_rate=stats["loss_rate"])
