"""Comparisons with confidence: the two-level paired bootstrap against exact enumeration, MDD and variance
components by hand and on synthetic data with known components, head-to-head judging, and the table's
diffs / h2h files on hand-made run directories checked against independent computations."""

import csv
import itertools
import json
import math

import numpy as np
import pytest

from lit_iwpo.eval.judges import Judge
from lit_iwpo.eval.stats import (
    VarianceComponents, bootstrap_means, design_se, head_to_head, minimum_detectable_difference, paired_bootstrap,
    prompts_needed, seeds_needed, variance_components,
)


# ------------------------------------------------------------------ exact bootstrap distributions, by brute force
def exact_crossed(d: np.ndarray) -> np.ndarray:
    """Every two-level resample of ``d`` [S, P], each with probability 1 / (S^S · P^P): S seed indices with
    replacement, P prompt indices with replacement shared by all resampled seeds; the mean of the resampled
    S × P cells, taken literally."""
    n_s, n_p = d.shape
    return np.array([d[np.ix_(si, pi)].mean() for si in itertools.product(range(n_s), repeat=n_s)
                     for pi in itertools.product(range(n_p), repeat=n_p)])


def exact_nested(d: np.ndarray) -> np.ndarray:
    """The other design (fresh prompt indices per resampled seed), only to show the data tell them apart."""
    n_s, n_p = d.shape
    prompt_draws = list(itertools.product(range(n_p), repeat=n_p))
    return np.array([np.mean([d[s, list(pi)].mean() for s, pi in zip(si, pis)])
                     for si in itertools.product(range(n_s), repeat=n_s)
                     for pis in itertools.product(prompt_draws, repeat=n_s)])


def exact_quantile(values: np.ndarray, q: float, margin: float = 0.002) -> float:
    """Inverse CDF of the equally likely ``values`` at ``q``, asserting that the atom there is clear of ``q`` by
    ``margin`` on both sides, so a Monte-Carlo quantile of many draws must land exactly on it."""
    atoms, counts = np.unique(np.round(values, 12), return_counts=True)
    cdf = np.cumsum(counts) / len(values)
    i = int(np.searchsorted(cdf, q))
    below = cdf[i - 1] if i else 0.0
    assert below < q - margin and cdf[i] > q + margin, "test data: the quantile sits on an atom boundary"
    return float(atoms[i])


def check_against_exact(a: np.ndarray, b: np.ndarray, exact: np.ndarray, n_boot: int = 200_000) -> None:
    res = paired_bootstrap(a, b, n_boot=n_boot, seed=3)
    draws = bootstrap_means(a - b, n_boot=n_boot, seed=3)
    sd = exact.std()
    assert res.diff == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert exact.mean() == pytest.approx(res.diff, abs=1e-12)  # the bootstrap is centred on the estimate
    assert draws.mean() == pytest.approx(exact.mean(), abs=5 * sd / math.sqrt(n_boot))
    assert res.se == pytest.approx(sd, rel=0.01)
    assert res.lo == pytest.approx(exact_quantile(exact, 0.025), abs=1e-12)
    assert res.hi == pytest.approx(exact_quantile(exact, 0.975), abs=1e-12)
    # the whole distribution: empirical vs exact probabilities of every atom (total variation distance)
    atoms, counts = np.unique(np.round(exact, 9), return_counts=True)
    seen = np.array([(np.round(draws, 9) == x).sum() for x in atoms]) / n_boot
    assert seen.sum() == pytest.approx(1.0)  # every draw is one of the exact atoms
    assert 0.5 * np.abs(seen - counts / len(exact)).sum() < 0.02


def test_paired_bootstrap_matches_exact_enumeration_2_seeds_by_3_prompts():
    a = np.array([[0.9, 0.1, 0.6], [1.0, 0.0, 0.4]])
    b = np.array([[0.2, 0.3, 0.1], [0.1, 0.2, 0.3]])
    exact = exact_crossed(a - b)
    assert len(exact) == 2 ** 2 * 3 ** 3
    # these data separate the crossed design from the nested one by far more than the tolerance below
    assert exact_nested(a - b).std() < 0.8 * exact.std()
    check_against_exact(a, b, exact)
    res = paired_bootstrap(a, b, n_boot=1000)
    assert (res.n_seeds, res.n_prompts, res.level) == (2, 3, 0.95)


def test_bootstrap_variance_has_the_exact_closed_form():
    """Var of a two-level draw = Σa²/S² + Σb²/P² + Σe²/(SP)² for the centred seed, prompt and residual effects:
    exact over every resample of a 3 × 3 table (3³ · 3³ = 729), and the documented bias that follows."""
    d = np.array([[0.5, -0.5, 1.0], [0.0, 0.5, -1.0], [1.0, 1.0, 0.5]])
    exact = exact_crossed(d)
    g = d.mean()
    a_s, b_p = d.mean(1) - g, d.mean(0) - g
    e = d - d.mean(1)[:, None] - d.mean(0)[None, :] + g
    assert exact.var() == pytest.approx((a_s ** 2).sum() / 9 + (b_p ** 2).sum() / 9 + (e ** 2).sum() / 81)
    assert bootstrap_means(d, 200_000, seed=1).var() == pytest.approx(exact.var(), rel=0.02)


def test_paired_bootstrap_one_seed_resamples_prompts_only():
    a = np.array([0.9, 0.2, 0.6, 0.35])  # a vector is one seed
    b = np.array([0.1, 0.3, 0.2, 0.3])
    exact = np.array([(a - b)[list(pi)].mean() for pi in itertools.product(range(4), repeat=4)])
    check_against_exact(a, b, exact)
    res = paired_bootstrap(a[None], b[None], n_boot=1000)
    assert res.n_seeds == 1 and res.n_prompts == 4


def test_pairing_identical_and_shifted_inputs():
    rng = np.random.default_rng(0)
    b = rng.choice([0.0, 0.5, 1.0], size=(3, 16))
    same = paired_bootstrap(b, b.copy(), n_boot=2000)
    assert (same.diff, same.lo, same.hi, same.se) == (0.0, 0.0, 0.0, 0.0)
    shifted = paired_bootstrap(b + 0.25, b, n_boot=2000)  # dyadic values: exact in floating point
    assert (shifted.diff, shifted.lo, shifted.hi, shifted.se) == (0.25, 0.25, 0.25, 0.0)
    # unpaired, the same shift would look uncertain: the pairing is what makes it exact
    unpaired = paired_bootstrap(b + 0.25, b[:, ::-1], n_boot=2000)
    assert unpaired.hi - unpaired.lo > 0.05
    with pytest.raises(ValueError, match="same seeds × prompts"):
        paired_bootstrap(b, b[:, :3])
    with pytest.raises(ValueError, match="finite"):
        paired_bootstrap(np.full((2, 2), np.nan), np.zeros((2, 2)))


def test_bootstrap_is_reproducible():
    rng = np.random.default_rng(1)
    a, b = rng.random((3, 20)), rng.random((3, 20))
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert np.array_equal(bootstrap_means(a - b, 5000, seed=2, chunk=333), bootstrap_means(a - b, 5000, seed=2))


# ------------------------------------------------------------------ detectable differences and variance components
def test_mdd_against_normal_quantiles():
    from scipy.stats import norm

    assert minimum_detectable_difference(0.01) == pytest.approx((norm.ppf(0.975) + norm.ppf(0.8)) * 0.01)
    assert minimum_detectable_difference(0.01) == pytest.approx(0.0280158, abs=1e-7)  # (1.959964 + 0.841621) · 0.01
    assert minimum_detectable_difference(2.0, alpha=0.1, power=0.9) == pytest.approx(2 * (1.644854 + 1.281552), abs=1e-5)
    assert minimum_detectable_difference(0.0) == 0.0
    with pytest.raises(ValueError):
        minimum_detectable_difference(1.0, alpha=0.0)


def test_variance_components_by_hand():
    # d = seed effect + prompt effect, no interaction: seed (0, 2) → variance 2; prompt (0, 1, 2) → variance 1
    d = np.array([0.0, 2.0])[:, None] + np.array([0.0, 1.0, 2.0])[None, :]
    vc = variance_components(d)
    assert (vc.seed, vc.prompt, vc.resid) == pytest.approx((2.0, 1.0, 0.0))
    assert design_se(vc, 4, 10) == pytest.approx(math.sqrt(2 / 4 + 1 / 10))
    # pure interaction: cells ±0.5 around 0.5, seed and prompt means all equal → resid 1, the others 0
    vc = variance_components([[1.0, 0.0], [0.0, 1.0]])
    assert (vc.seed, vc.prompt, vc.resid) == pytest.approx((0.0, 0.0, 1.0))
    assert design_se(vc, 2, 2) == pytest.approx(0.5)
    # one seed: the seed variance is unknown, the prompts' sample variance is the within-seed variance
    vc = variance_components([[1.0, 0.0, 0.5, 0.5]])
    assert math.isnan(vc.seed) and vc.prompt == pytest.approx(np.var([1, 0, 0.5, 0.5], ddof=1))
    assert math.isnan(design_se(vc, 3, 4))


def test_variance_components_recover_known_components_and_extrapolate():
    rng = np.random.default_rng(0)
    sd_seed, sd_prompt, sd_resid = 0.3, 0.2, 0.5
    n_s, n_p = 300, 400
    d = (0.1 + rng.normal(0, sd_seed, (n_s, 1)) + rng.normal(0, sd_prompt, (1, n_p))
         + rng.normal(0, sd_resid, (n_s, n_p)))
    vc = variance_components(d)
    assert vc.seed == pytest.approx(sd_seed ** 2, rel=0.25)
    assert vc.prompt == pytest.approx(sd_prompt ** 2, rel=0.25)
    assert vc.resid == pytest.approx(sd_resid ** 2, rel=0.03)
    # the predicted se of a small design against the spread of its grand mean over 4000 simulated experiments
    s2, p2 = 4, 50
    sims = [(rng.normal(0, sd_seed, (s2, 1)) + rng.normal(0, sd_prompt, (1, p2)) + rng.normal(0, sd_resid, (s2, p2))).mean()
            for _ in range(4000)]
    true_se = math.sqrt(sd_seed ** 2 / s2 + sd_prompt ** 2 / p2 + sd_resid ** 2 / (s2 * p2))
    assert np.std(sims) == pytest.approx(true_se, rel=0.05)
    assert design_se(vc, s2, p2) == pytest.approx(true_se, rel=0.15)


def _mdd(vc, s, p):
    return minimum_detectable_difference(design_se(vc, s, p))


def test_seeds_and_prompts_needed_by_hand_and_by_search():
    # seed variance only, 0.01: MDD(S) = 2.80158 · 0.1 / √S ≤ 0.03  ⇔  S ≥ 87.21 → 88
    vc = VarianceComponents(seed=0.01, prompt=0.0, resid=0.0, n_seeds=3, n_prompts=64)
    assert seeds_needed(vc, 0.03, 64) == 88
    assert prompts_needed(vc, 0.03, 10) is None  # more prompts cannot remove seed noise
    # prompt variance 0.01 at 64 prompts: floor 2.80158 · 0.0125 = 0.035 > 0.03 → no number of seeds
    vc = VarianceComponents(seed=0.001, prompt=0.01, resid=0.2, n_seeds=3, n_prompts=64)
    assert seeds_needed(vc, 0.03, 64) is None
    # general case: the answer is the first design that reaches the target, by exhaustive search
    for vc in [VarianceComponents(0.002, 0.004, 0.2, 3, 64), VarianceComponents(0.0005, 0.0, 0.25, 3, 64),
               VarianceComponents(0.0, 0.001, 0.0, 3, 64)]:
        n = seeds_needed(vc, 0.03, 64)
        assert n == next(s for s in range(1, 10_000) if _mdd(vc, s, 64) <= 0.03)
        for seeds in (10, 40):  # at 10 seeds the first one's seed variance alone is too much: None
            m = prompts_needed(vc, 0.03, seeds)
            assert m == next((p for p in range(1, 100_000) if _mdd(vc, seeds, p) <= 0.03), None)
    assert prompts_needed(VarianceComponents(0.002, 0.004, 0.2, 3, 64), 0.03, 10) is None
    assert seeds_needed(VarianceComponents(0.0, 0.0, 0.0, 2, 8), 0.03, 8) == 1
    assert seeds_needed(VarianceComponents(math.nan, 0.01, 0.0, 1, 8), 0.03, 8) is None  # unknown seed variance


# ------------------------------------------------------------------ head-to-head
class FirstOrLonger(Judge):
    """Position-biased judge: prefers the longer answer, and the first shown when lengths are equal."""

    symmetric = False

    def compare_batch(self, rows, a, b):
        return [1.0 if len(x) > len(y) else 0.0 if len(x) < len(y) else 1.0 for x, y in zip(a, b)]


def test_head_to_head_both_orders():
    rows = [{}] * 5
    a = ["long answer", "s", "same", "abc", "xyz"]
    b = ["short", "longer one", "same", "def", "uvw"]
    # outcomes: longer 1; shorter 0; identical 0.5 unasked; equal length different text: 1 then (1 − 1) → 0.5
    h = head_to_head(rows, a, b, FirstOrLonger())
    assert h.outcomes == [1.0, 0.0, 0.5, 0.5, 0.5]
    assert (h.win_rate, h.win_rate_strict, h.tie_rate, h.loss_rate) == pytest.approx((0.5, 0.2, 0.6, 0.2))
    assert head_to_head(rows, b, a, FirstOrLonger()).win_rate == pytest.approx(1 - h.win_rate)
    with pytest.raises(ValueError):
        head_to_head(rows, a, b[:2], FirstOrLonger())


# ------------------------------------------------------------------ the table's comparisons on hand-made runs
SPEC = "scenario:helpful_harmless:test?n_test=8"


@pytest.fixture(scope="module")
def hh_rows():
    from lit_iwpo.data.sources import read_source

    return read_source(SPEC).rows


def _write_run(d, rows, outcomes, policies, correct=None, finished=True, reverse=False):
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(f"data:\n  test: {SPEC}\n")
    gens = [{"id": r["id"], "prompt": r["prompt"], "policy": p, "baseline": r["rejected"], "outcome": o}
            for r, o, p in zip(rows, outcomes, policies)]
    pairs = None if correct is None else [{"id": r["id"], "group": r["group"], "margin": 1.0 if c else -1.0,
                                           "correct": c} for r, c in zip(rows, correct)]
    if reverse:  # alignment must go by id, not by line
        gens, pairs = gens[::-1], None if pairs is None else pairs[::-1]
    (d / "generations_test.jsonl").write_text("".join(json.dumps(g) + "\n" for g in gens))
    if pairs is not None:
        (d / "test_pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    summary = {"test/win_rate": float(np.mean(outcomes))} if finished else {"val/loss": 0.3}
    if correct is not None and finished:
        summary["test/rewards/accuracies"] = float(np.mean(correct))
    (d / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def table_runs(tmp_path, hh_rows):
    """dpo_tr_v (baseline) seeds 0–2; m_shift = baseline + 0.5 on every prompt, seeds 0–1 (seed 2 unfinished,
    seed 1's files in reverse order); m_noise: random outcomes, seeds 0–2, no test_pairs.jsonl at seed 2.
    Policy texts for the head-to-head: m_shift always answers 'chosen'; dpo_tr_v answers 'rejected' on the
    first 6 (seed 0) or first 2 (seed 1) prompts, 'chosen' otherwise."""
    rng = np.random.default_rng(5)
    out, n = tmp_path / "out", len(hh_rows)
    chosen = [r["chosen"] for r in hh_rows]
    data = {"base": {}, "shift": {}, "noise": {}, "acc_base": {}, "acc_noise": {}}
    for seed in range(3):
        base = rng.choice([0.0, 0.5], size=n)
        acc = rng.integers(0, 2, size=n)
        k = {0: 6, 1: 2, 2: 4}[seed]
        base_text = [r["rejected"] if i < k else r["chosen"] for i, r in enumerate(hh_rows)]
        _write_run(out / "runs" / "dpo_tr_v" / f"seed{seed}", hh_rows, base.tolist(), base_text, acc.tolist())
        data["base"][seed], data["acc_base"][seed] = base, acc
        _write_run(out / "runs" / "m_shift" / f"seed{seed}", hh_rows, (base + 0.5).tolist(), chosen, acc.tolist(),
                   finished=seed < 2, reverse=seed == 1)
        data["shift"][seed] = base + 0.5
        noise = rng.choice([0.0, 0.5, 1.0], size=n)
        acc_noise = rng.integers(0, 2, size=n)
        _write_run(out / "runs" / "m_noise" / f"seed{seed}", hh_rows, noise.tolist(), chosen,
                   acc_noise.tolist() if seed < 2 else None)
        data["noise"][seed], data["acc_noise"][seed] = noise, acc_noise
    methods = [tmp_path / f"{m}.yaml" for m in ("dpo_tr_v", "m_shift", "m_noise")]
    return out, methods, data


def _anova(d):
    """Variance components written out cell by cell (an independent check of ``variance_components``)."""
    S, P = len(d), len(d[0])
    g = sum(map(sum, d)) / (S * P)
    rs = [sum(row) / P for row in d]
    cs = [sum(d[s][p] for s in range(S)) / S for p in range(P)]
    ms_s = P * sum((x - g) ** 2 for x in rs) / (S - 1)
    ms_p = S * sum((x - g) ** 2 for x in cs) / (P - 1)
    ms_e = sum((d[s][p] - rs[s] - cs[p] + g) ** 2 for s in range(S) for p in range(P)) / ((S - 1) * (P - 1))
    return max(0.0, (ms_s - ms_e) / P), max(0.0, (ms_p - ms_e) / S), ms_e


def _read_csv(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_table_diffs_against_independent_computation(table_runs, capsys):
    from lit_iwpo.eval.table import table_main

    out, methods, data = table_runs
    argv = ["--base", "unused.yaml", "--methods", *map(str, methods), "--seeds", "0", "1", "2", "--out", str(out),
            "--collect", "--metrics", "test/win_rate", "test/rewards/accuracies", "--n-boot", "4000"]
    assert table_main(argv) == 0
    printed = capsys.readouterr().out
    diffs = {(r["metric"], r["method"]): r for r in _read_csv(out / "diffs.csv")}
    assert set(diffs) == {(m, k) for m in ("test/win_rate", "test/rewards/accuracies") for k in ("m_shift", "m_noise")}

    # m_shift: +0.5 on every prompt of the 2 seeds both finished, read by id despite the reversed file: exact
    r = diffs[("test/win_rate", "m_shift")]
    assert (r["seeds"], r["n_seeds"], r["n_prompts"]) == ("0 1", "2", "8")
    assert float(r["diff"]) == float(r["lo"]) == float(r["hi"]) == 0.5
    assert float(r["mdd"]) == 0.0 and r["seeds_needed"] == "1"
    r = diffs[("test/rewards/accuracies", "m_shift")]
    assert float(r["diff"]) == float(r["lo"]) == float(r["hi"]) == 0.0

    # m_noise: the matrices rebuilt here from the generated values, in the rows' order
    a = np.stack([data["noise"][s] for s in range(3)])
    b = np.stack([data["base"][s] for s in range(3)])
    r = diffs[("test/win_rate", "m_noise")]
    assert (r["seeds"], r["n_prompts"]) == ("0 1 2", "8")
    assert float(r["diff"]) == pytest.approx(a.mean() - b.mean())
    ref = paired_bootstrap(a, b, n_boot=4000)  # the same resampling, validated against enumeration above
    assert (float(r["lo"]), float(r["hi"]), float(r["se_boot"])) == pytest.approx((ref.lo, ref.hi, ref.se))
    v_s, v_p, v_e = _anova((a - b).tolist())
    assert (float(r["var_seed"]), float(r["var_prompt"]), float(r["var_resid"])) == pytest.approx((v_s, v_p, v_e))
    se = math.sqrt(v_s / 3 + v_p / 8 + v_e / 24)
    assert float(r["se"]) == pytest.approx(se)
    assert float(r["mdd"]) == pytest.approx(2.8015843 * se, rel=1e-6)
    need = r["seeds_needed"]
    want = next((s for s in range(1, 100_000) if 2.8015843 * math.sqrt(v_s / s + v_p / 8 + v_e / (8 * s)) <= 0.03), None)
    assert need == ("" if want is None else str(want))
    # accuracies: m_noise has test_pairs.jsonl at seeds 0 and 1 only
    r = diffs[("test/rewards/accuracies", "m_noise")]
    acc_a = np.stack([data["acc_noise"][s] for s in range(2)])
    acc_b = np.stack([data["acc_base"][s] for s in range(2)])
    assert r["seeds"] == "0 1" and float(r["diff"]) == pytest.approx(acc_a.mean() - acc_b.mean())

    # the header's pooled statement: components averaged over the two win-rate comparisons, at 3 seeds × 8 prompts
    pooled = [(0.0 + v) / 2 for v in (v_s, v_p, v_e)]
    mdd = 100 * 2.8015843 * math.sqrt(pooled[0] / 3 + pooled[1] / 8 + pooled[2] / 24)
    table = (out / "table.md").read_text()
    assert f"minimum detectable difference (two-sided α 0.05, power 0.8) {mdd:.2f} points at 3 seeds × 8 prompts" in table
    assert "| m_shift | " in table and "3-point difference" in table
    # diffs.md in points, printed too; the table's own files keep their format
    md = (out / "diffs.md").read_text()
    assert "| test/win_rate | m_shift | 2 | 8 | +50.00 | [+50.00, +50.00] | 0.00 | 1 |" in md
    assert md.strip() in printed and "Paired differences from dpo_tr_v" in printed
    assert (out / "table.csv").read_text().splitlines()[0] == "method,metric,mean,sd,n,values"
    # collecting again (resume) gives the same numbers
    before = (out / "diffs.csv").read_text()
    assert table_main(argv) == 0
    assert (out / "diffs.csv").read_text() == before


def test_table_head_to_head_with_the_oracle(table_runs, hh_rows, capsys):
    from lit_iwpo.data.scenarios import get_judge
    from lit_iwpo.eval.table import table_main

    judge = get_judge("helpful_harmless")
    assert all(judge.compare(r, r["chosen"], r["rejected"]) == 1.0 and judge.compare(r, r["rejected"], r["chosen"]) == 0.0
               for r in hh_rows)  # precondition: the oracle prefers every chosen answer, in both positions
    out, methods, _ = table_runs
    assert table_main(["--base", "unused.yaml", "--methods", *map(str, methods), "--seeds", "0", "1", "2",
                       "--out", str(out), "--collect", "--metrics", "test/win_rate", "--n-boot", "4000",
                       "--h2h", "m_shift", "dpo_tr_v", "--h2h", "dpo_tr_v", "m_shift"]) == 0
    rows = _read_csv(out / "h2h.csv")
    assert [(r["a"], r["b"]) for r in rows] == [("m_shift", "dpo_tr_v"), ("dpo_tr_v", "m_shift")]
    # common finished seeds 0, 1; m_shift's 'chosen' beats dpo_tr_v's 'rejected' (1) or ties its 'chosen' (0.5):
    # seed 0: 6 wins + 2 ties, seed 1: 2 wins + 6 ties → (7 + 5) / 16
    ab, ba = rows
    assert (ab["seeds"], ab["n_seeds"], ab["n_prompts"]) == ("0 1", "2", "8")
    assert float(ab["win_rate"]) == pytest.approx(12 / 16)
    assert (float(ab["wins"]), float(ab["ties"]), float(ab["losses"])) == pytest.approx((0.5, 0.5, 0.0))
    o = np.array([[1.0] * 6 + [0.5] * 2, [1.0] * 2 + [0.5] * 6])
    ref = paired_bootstrap(o, np.full_like(o, 0.5), n_boot=4000)
    assert (float(ab["lo"]), float(ab["hi"])) == pytest.approx((0.5 + ref.lo, 0.5 + ref.hi))
    # the reverse comparison mirrors it: same resamples, negated outcomes
    assert float(ba["win_rate"]) == pytest.approx(4 / 16)
    assert (float(ba["lo"]), float(ba["hi"])) == pytest.approx((1 - float(ab["hi"]), 1 - float(ab["lo"])))
    md = (out / "h2h.md").read_text()
    assert "| m_shift | dpo_tr_v | 2 | 8 | 75.00 |" in md and md.strip() in capsys.readouterr().out


def test_table_baseline_options(table_runs, capsys):
    from lit_iwpo.eval.table import table_main

    out, methods, _ = table_runs
    common = ["--base", "unused.yaml", "--methods", *map(str, methods), "--seeds", "0", "1", "--out", str(out),
              "--collect", "--metrics", "test/win_rate", "--n-boot", "500"]
    assert table_main([*common, "--baseline", "none"]) == 0
    assert not (out / "diffs.md").exists() and "minimum detectable" not in (out / "table.md").read_text()
    assert table_main([*common, "--baseline", "m_noise"]) == 0
    assert {r["method"] for r in _read_csv(out / "diffs.csv")} == {"dpo_tr_v", "m_shift"}
    with pytest.raises(SystemExit) as exit_:
        table_main([*common, "--baseline", "nope"])
    assert exit_.value.code == 2 and "not one of the methods" in capsys.readouterr().err
    for bad in (["dpo_tr_v", "nope"], ["m_noise", "m_noise"]):
        with pytest.raises(SystemExit) as exit_:
            table_main([*common, "--baseline", *bad])
        assert exit_.value.code == 2 and "--baseline" in capsys.readouterr().err


def test_table_more_baselines(table_runs, capsys):
    """Further rows after --baseline each get diffs_vs_<row>.md/.csv: the same rows as a table run with that row
    as its only baseline, while diffs.md, diffs.csv and the header stay the first baseline's."""
    from lit_iwpo.eval.table import table_main

    out, methods, _ = table_runs
    common = ["--base", "unused.yaml", "--methods", *map(str, methods), "--seeds", "0", "1", "2", "--out", str(out),
              "--collect", "--metrics", "test/win_rate", "test/rewards/accuracies", "--n-boot", "500"]
    alone = {}
    for b in ("dpo_tr_v", "m_noise", "m_shift"):
        assert table_main([*common, "--baseline", b]) == 0
        alone[b] = ((out / "diffs.csv").read_text(), (out / "diffs.md").read_text(), (out / "table.md").read_text())
    assert table_main([*common, "--baseline", "dpo_tr_v", "m_noise", "m_shift"]) == 0
    assert "written: " + str(out / "diffs_vs_m_shift.md") in capsys.readouterr().out
    assert ((out / "diffs.csv").read_text(), (out / "diffs.md").read_text(), (out / "table.md").read_text()) \
        == alone["dpo_tr_v"]
    for b in ("m_noise", "m_shift"):
        assert (out / f"diffs_vs_{b}.csv").read_text() == alone[b][0]
        assert (out / f"diffs_vs_{b}.md").read_text() == alone[b][1]
        rows = _read_csv(out / f"diffs_vs_{b}.csv")
        assert {r["baseline"] for r in rows} == {b} and b not in {r["method"] for r in rows}
    assert not (out / "diffs_vs_dpo_tr_v.md").exists()


def test_table_collect_takes_the_rows_from_the_table(table_runs, capsys):
    """--collect without --methods: the rows of OUT's table.csv in its order (not the run folders' order), then
    run folders it does not list yet, by name; the same files as a collect that names them. Running needs
    --methods, and an empty folder is refused."""
    import shutil

    from lit_iwpo.eval.table import table_main

    out, methods, _ = table_runs
    common = ["--base", "unused.yaml", "--seeds", "0", "1", "2", "--out", str(out), "--collect",
              "--metrics", "test/win_rate", "--n-boot", "300"]
    order = [methods[2], methods[0], methods[1]]  # m_noise, dpo_tr_v, m_shift: not alphabetical
    assert table_main([*common, "--methods", *map(str, order)]) == 0
    named = {f: (out / f).read_text() for f in ("table.md", "table.csv", "diffs.csv")}
    assert table_main(common) == 0
    assert {f: (out / f).read_text() for f in named} == named
    # a new row's runs (a copy of m_noise's) join after the table's rows
    shutil.copytree(out / "runs" / "m_noise", out / "runs" / "a_new")
    assert table_main(common) == 0
    rows = [line.split("|")[1].strip() for line in (out / "table.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| method")]
    assert rows == ["m_noise", "dpo_tr_v", "m_shift", "a_new"]
    with pytest.raises(SystemExit) as exit_:
        table_main([a for a in common if a != "--collect"])
    assert exit_.value.code == 2 and "--methods is needed to run" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        table_main([*common[:-7], "--out", str(out / "empty"), "--collect"])
    assert exit_.value.code == 2 and "holds no table.csv" in capsys.readouterr().err


def test_table_one_seed_is_prompts_only(table_runs):
    from lit_iwpo.eval.table import table_main

    out, methods, data = table_runs
    assert table_main(["--base", "unused.yaml", "--methods", *map(str, methods), "--seeds", "0", "--out", str(out),
                       "--collect", "--metrics", "test/win_rate", "--n-boot", "2000"]) == 0
    r = {x["method"]: x for x in _read_csv(out / "diffs.csv")}["m_noise"]
    d = data["noise"][0] - data["base"][0]
    assert (r["n_seeds"], float(r["var_resid"]), r["var_seed"]) == ("1", 0.0, "nan")
    assert float(r["se"]) == pytest.approx(math.sqrt(np.var(d, ddof=1) / 8))  # prompt sampling only
    assert float(r["mdd"]) == pytest.approx(2.8015843 * float(r["se"]), rel=1e-6) and r["seeds_needed"] == ""
    assert "| test/win_rate | m_noise | 1 | 8 |" in (out / "diffs.md").read_text()
    assert "run ≥ 2 seeds |" in (out / "diffs.md").read_text()
    assert "at 1 seed × 8 prompts, from prompt sampling only: a lower bound" in (out / "table.md").read_text()


def test_design_statement_one_seed_and_out_of_budget():
    from lit_iwpo.eval.table import design_statement

    row = {"metric": "test/win_rate", "baseline": "dpo_tr_v", "n_seeds": 1, "n_prompts": 64,
           "var_seed": math.nan, "var_prompt": 0.04, "var_resid": 0.0}
    text = design_statement([row])
    assert f"{100 * 2.8015843 * math.sqrt(0.04 / 64):.2f} points at 1 seed × 64 prompts" in text
    assert "lower bound" in text and "at least 2 seeds" in text
    # seed variance 0.01 alone: 88 seeds (see above) > a budget of 10; prompts cannot help
    row = {**row, "n_seeds": 3, "var_seed": 0.01, "var_prompt": 0.0}
    text = design_statement([row], max_seeds=10)
    assert "not reachable within the budget of 10 seeds at 64 prompts (88 seeds would be needed)" in text
    assert "no number of prompts reaches it" in text
    text = design_statement([row], max_seeds=100, minutes_per_run=6.0, n_methods=5)
    assert "needs 88 seeds at 64 prompts (about 44.0 h of runs for 5 methods at 6.0 min per run)" in text


# ------------------------------------------------------------------ sweeps over a scenario option, run order
def test_with_option_sets_one_scenario_option():
    from lit_iwpo.data.sources import parse_scenario_spec
    from lit_iwpo.errors import ConfigError
    from lit_iwpo.eval.sweep import parse_vary, with_option

    spec = with_option("scenario:helpful_harmless:train?seed=2&severity=0.4", "severity", "0.8")
    assert parse_scenario_spec(spec) == ("helpful_harmless", "train", {"seed": 2, "severity": 0.8})
    assert parse_scenario_spec(with_option("scenario:science:train", "shift", "e"))[2] == {"shift": "e"}
    assert parse_vary("severity=0.2, 0.4,0.6") == ("severity", ["0.2", "0.4", "0.6"])
    for bad in ("severity", "=0.2", "severity="):
        with pytest.raises(ConfigError, match="KEY=V1,V2"):
            parse_vary(bad)
    with pytest.raises(ConfigError, match="one embedded scenario"):
        with_option("data/train.jsonl", "severity", "0.2")


def test_sweep_collects_each_point_with_t_intervals_and_paired_diffs(tmp_path, hh_rows):
    from scipy import stats as sps

    from lit_iwpo.eval.table import CONTESTED_ACCURACY as CONTESTED
    from lit_iwpo.eval.table import table_main

    base = tmp_path / "base.yaml"
    base.write_text("data:\n  train: scenario:helpful_harmless:train?n_train=40\n")
    methods = [tmp_path / f"{m}.yaml" for m in ("dpo_tr_v", "m_up")]
    rng = np.random.default_rng(11)
    out, n = tmp_path / "sweep", len(hh_rows)
    truth = {}
    contested = np.array([r["contested"] for r in hh_rows])
    assert 0 < contested.sum() < n
    for k, value in enumerate(("0.2", "0.6")):
        for seed in range(3):
            b = rng.choice([0.0, 0.5, 1.0], size=n)
            up = np.minimum(b + 0.5 * (k + 1), 1.0)
            for method, outcomes in (("dpo_tr_v", b), ("m_up", up)):
                correct = rng.integers(0, 2, size=n).astype(bool)
                run = out / f"severity={value}" / "runs" / method / f"seed{seed}"
                _write_run(run, hh_rows, outcomes.tolist(), [r["chosen"] for r in hh_rows], correct.tolist())
                acc = float(correct[contested].mean())
                summary = json.loads((run / "summary.json").read_text())
                (run / "summary.json").write_text(json.dumps({**summary, CONTESTED: acc}))
                truth.setdefault((value, method), []).append(float(outcomes.mean()))
                truth.setdefault((value, method, CONTESTED), []).append(acc)
            truth.setdefault((value, "diff"), []).append(float((up - b).mean()))
    assert table_main(["--base", str(base), "--methods", *map(str, methods), "--seeds", "0", "1", "2", "--out",
                       str(out), "--collect", "--metrics", "test/win_rate", CONTESTED, "--n-boot", "500",
                       "--vary", "severity=0.2,0.6"]) == 0
    every = _read_csv(out / "sweep.csv")
    # the contested accuracy: its own rows, section and plot; its mean over seeds from the runs' own values
    for r in (r for r in every if r["metric"] == CONTESTED):
        assert float(r["mean"]) == pytest.approx(np.mean(truth[(r["severity"], r["method"], CONTESTED)]), abs=1e-4)
    assert len([r for r in every if r["metric"] == CONTESTED]) == 4
    text = (out / "sweep.md").read_text()
    assert text.index("test/win_rate against severity") < text.index(f"{CONTESTED} against severity")
    assert (out / "sweep_test_rewards_accuracies_contested.png").is_file()
    rows = {(r["severity"], r["method"]): r for r in every if r["metric"] == "test/win_rate"}
    cut = False
    assert set(rows) == {(v, m) for v in ("0.2", "0.6") for m in ("dpo_tr_v", "m_up")}
    for (value, method), r in rows.items():
        vals = truth[(value, method)]
        mean, sd = np.mean(vals), np.std(vals, ddof=1)
        half = sps.t.ppf(0.975, df=2) * sd / math.sqrt(3)
        assert float(r["mean"]) == pytest.approx(mean, abs=1e-4) and float(r["sd"]) == pytest.approx(sd, abs=1e-4)
        assert float(r["ci_low"]) == pytest.approx(max(mean - half, 0.0), abs=2e-3)  # a rate: cut to [0, 1]
        assert float(r["ci_high"]) == pytest.approx(min(mean + half, 1.0), abs=2e-3)
        cut = cut or mean - half < 0 or mean + half > 1
        if method == "m_up":  # the paired difference read from that point's own table
            assert float(r["diff"]) == pytest.approx(np.mean(truth[(value, "diff")]))
            assert float(r["diff_low"]) <= float(r["diff"]) <= float(r["diff_high"])
        else:
            assert r["diff"] == ""
    assert cut  # the data reach past [0, 1] at least once, so the cut is tested
    assert (out / "sweep.png").is_file() and "| 0.6 | m_up | 3 |" in (out / "sweep.md").read_text()
    # tables without the contested accuracy (a response shift): the win rate alone
    assert table_main(["--base", str(base), "--methods", *map(str, methods), "--seeds", "0", "1", "2", "--out",
                       str(out), "--collect", "--metrics", "test/win_rate", "--n-boot", "500",
                       "--vary", "severity=0.2,0.6"]) == 0
    assert CONTESTED not in (out / "sweep.md").read_text()
    assert {r["metric"] for r in _read_csv(out / "sweep.csv")} == {"test/win_rate"}
    # values given high first (the ends of a range run first): the tables still read from low to high
    assert table_main(["--base", str(base), "--methods", *map(str, methods), "--seeds", "0", "1", "2", "--out",
                       str(out), "--collect", "--metrics", "test/win_rate", "--n-boot", "500",
                       "--vary", "severity=0.6,0.2"]) == 0
    text = (out / "sweep.md").read_text()
    assert text.index("| 0.2 | dpo_tr_v |") < text.index("| 0.6 | dpo_tr_v |")
    assert [r["severity"] for r in _read_csv(out / "sweep.csv")] == ["0.2", "0.2", "0.6", "0.6"]


def test_table_runs_seed_by_seed_and_resumes(tmp_path, monkeypatch):
    from lit_iwpo.eval import table

    calls = []

    def fake_fit(cmd, stdout=None, stderr=None):
        method = cmd[cmd.index("--trainer.logger.init_args.name") + 1]
        seed = int(cmd[cmd.index("--seed_everything") + 1])
        calls.append((method, seed))
        d = table.run_dir(tmp_path / "out", method, seed)
        d.mkdir(parents=True, exist_ok=True)
        if (method, seed) != ("b", 1):  # b at seed 1 is "interrupted": no summary with test metrics
            (d / "summary.json").write_text(json.dumps({"test/win_rate": 0.5 + seed / 10, "time/total_s": 90 + 60 * seed}))
        return 0

    monkeypatch.setattr(table.subprocess, "call", fake_fit)
    argv = ["--base", "x.yaml", "--methods", "a.yaml", "b.yaml", "--seeds", "0", "1", "--out", str(tmp_path / "out"),
            "--metrics", "test/win_rate"]
    assert table.table_main(argv) == 0
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1)]  # every method at seed 0 before seed 1
    calls.clear()
    assert table.table_main(argv) == 0
    assert calls == [("b", 1)]  # only the unfinished run starts again
    # wall time from the runs' own clocks (time/total_s), not from file times (which git does not keep)
    minutes = {r["method"]: r["values"] for r in _read_csv(tmp_path / "out" / "table.csv") if r["metric"] == "time/minutes"}
    assert minutes == {"a": "1.5000 2.5000", "b": "1.5000"}  # b at seed 1 never finished


def test_rates_are_named_by_their_path():
    from lit_iwpo.eval.metrics import is_rate

    for name in ("test/win_rate", "test/win_rate/risky", "test/win_rate_strict", "test/rewards/accuracies",
                 "test/rewards/accuracies/contested", "val/rewards/accuracies/benign/helpful-over-vague"):
        assert is_rate(name), name
    for name in ("test/rewards/margins", "iw/ess_ratio", "iw/auc_relevant_used", "time/minutes", "accuracy_drift"):
        assert not is_rate(name), name
