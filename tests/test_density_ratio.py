"""Tests for lit_iwpo.weighting.density_ratio.

numpy/scipy serve only as independent references. Accuracy thresholds were calibrated on
8 data seeds (the tests use seed 0); see ACCURACY_CASES for the observed ranges.
"""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize
from scipy.stats import multivariate_normal, norm, spearmanr

from lit_iwpo.weighting.density_ratio import (
    KLIEP,
    KMM,
    DensityRatioEstimator,
    RuLSIF,
    diw_gamma,
    effective_sample_size,
    kliep_alpha,
    median_heuristic,
    normalize_mean_one,
    rulsif_loo_score,
    rulsif_theta,
)


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    # The estimators run many tiny linear-algebra calls; on a shared 2-core box, intra-op
    # threading makes them several times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- helpers
def make_data(case, n_tr=800, n_v=300, seed=0):
    """Samples and the true densities at the training points."""
    g = np.random.default_rng(seed)
    if case == "shift1d":  # val narrower than train, so p_v/p_tr is bounded
        xtr, xv = g.normal(0, 1, n_tr), g.normal(0.5, 0.7, n_v)
        p_tr, p_v = norm.pdf(xtr, 0, 1), norm.pdf(xtr, 0.5, 0.7)
    elif case == "scale1d":
        xtr, xv = g.normal(0, 1, n_tr), g.normal(0, 0.6, n_v)
        p_tr, p_v = norm.pdf(xtr, 0, 1), norm.pdf(xtr, 0, 0.6)
    elif case == "shift2d":
        mu = np.array([0.6, -0.3])
        xtr, xv = g.normal(0, 1, (n_tr, 2)), mu + 0.8 * g.normal(0, 1, (n_v, 2))
        p_tr = multivariate_normal.pdf(xtr, np.zeros(2), np.eye(2))
        p_v = multivariate_normal.pdf(xtr, mu, 0.64 * np.eye(2))
    elif case == "scale2d":  # val contracted unevenly: sd 0.6 and 0.8 along the two axes
        cov = np.diag([0.36, 0.64])
        xtr, xv = g.normal(0, 1, (n_tr, 2)), g.normal(0, 1, (n_v, 2)) * np.sqrt(np.diag(cov))
        p_tr = multivariate_normal.pdf(xtr, np.zeros(2), np.eye(2))
        p_v = multivariate_normal.pdf(xtr, np.zeros(2), cov)
    else:
        raise KeyError(case)
    return torch.tensor(xtr), torch.tensor(xv), p_tr, p_v


def nmse(est, true):
    est, true = np.asarray(est, np.float64), np.asarray(true, np.float64)
    return float(np.mean((est / est.mean() - true / true.mean()) ** 2))


def np_standardize(xtr, xv):
    xtr, xv = np.asarray(xtr, np.float64), np.asarray(xv, np.float64)
    xtr, xv = xtr.reshape(len(xtr), -1), xv.reshape(len(xv), -1)
    pooled = np.concatenate([xtr, xv])
    mu, sd = pooled.mean(0), pooled.std(0)
    return (xtr - mu) / sd, (xv - mu) / sd


def np_kernel(a, b, sigma):
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * sigma**2))


# ----------------------------------------------------------------------------- accuracy
# NMSE thresholds vs observed NMSE over seeds 0-7 (max) and the uniform-weight NMSE (min):
#   shift1d: KMM .088, KLIEP .085, RuLSIF .058, uLSIF .067; uniform >= .34 (>= .31 relative)
#   scale1d: KMM .048, KLIEP .046, RuLSIF .034, uLSIF .049; uniform >= .28 (>= .25 relative)
#   shift2d: KLIEP .215, RuLSIF .075, uLSIF .093; uniform >= .55 (>= .46 relative)
#   shift2d KMM: .10-.60 (seed 0: .29) -- KMM is unreliable here; its bar is only "clearly
#   better than uniform on this seed", and the rank check carries more of the weight.
#   scale2d: KMM .108, KLIEP .125, RuLSIF .107, uLSIF .134 (seed 0: .047/.035/.026/.034); uniform >= .34
# Spearman min over seeds: .88 (shift1d, every estimator: the true ratio is ~0 on the left
# half of the training support, where ranks are noise), .82 (KMM scale1d), >= .92 otherwise;
# scale2d: KMM .83, KLIEP .81 (the ratio is flat near its peak at the origin), RuLSIF/uLSIF .95.
NMSE_MAX = {"shift1d": 0.15, "scale1d": 0.12, "shift2d": 0.30, "scale2d": 0.20}
NMSE_MAX_KMM_2D = 0.45
RHO_MIN = {"shift1d": 0.85, "scale1d": 0.85, "shift2d": 0.85, "scale2d": 0.78}

ESTIMATORS = {
    "KMM": (lambda: KMM(), 0.0),
    "KLIEP": (lambda: KLIEP(), 0.0),
    "RuLSIF": (lambda: RuLSIF(), 0.1),
    "uLSIF": (lambda: RuLSIF(alpha=0.0), 0.0),
}


@pytest.mark.parametrize("case", list(NMSE_MAX))
def test_thresholds_reject_uniform_and_inverted_ratio(case):
    ztr, zv, p_tr, p_v = make_data(case)
    for alpha in (0.0, 0.1):
        r = p_v / (alpha * p_v + (1 - alpha) * p_tr)
        assert nmse(np.ones_like(r), r) > NMSE_MAX[case] * 1.5
        # swapped numerator/denominator, i.e. the inverted ratio
        assert nmse(1.0 / r, r) > NMSE_MAX[case] * 10
        assert spearmanr(1.0 / r, r)[0] < -0.99
    if case == "shift2d":
        assert nmse(np.ones_like(p_v), p_v / p_tr) > NMSE_MAX_KMM_2D * 1.2


@pytest.mark.parametrize("case", list(NMSE_MAX))
@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_recovers_known_ratio(case, name):
    ztr, zv, p_tr, p_v = make_data(case)
    make, alpha = ESTIMATORS[name]
    w = make()(ztr, zv)
    assert w.dtype == torch.float32 and w.shape == (len(ztr),)
    assert torch.isfinite(w).all() and (w >= 0).all()
    true = p_v / (alpha * p_v + (1 - alpha) * p_tr)  # alpha-relative ratio for RuLSIF
    err, rho = nmse(w.numpy(), true), spearmanr(w.numpy(), true)[0]
    limit = NMSE_MAX_KMM_2D if (name, case) == ("KMM", "shift2d") else NMSE_MAX[case]
    assert err < limit, f"{name}/{case}: NMSE {err:.3f} >= {limit}"
    assert rho > RHO_MIN[case], f"{name}/{case}: Spearman {rho:.3f} <= {RHO_MIN[case]}"
    if alpha > 0:  # the alpha-relative ratio is bounded by 1/alpha
        assert float(w.max()) <= 1.0 / alpha * 1.5


# ----------------------------------------------------------------------------- KMM
def kmm_problem(xtr, xv, sigma):
    a, b = np_standardize(xtr, xv)
    n = len(a)
    K = np_kernel(a, a, sigma) + 1e-5 * np.eye(n)
    kappa = np_kernel(a, b, sigma).sum(1) * n / len(b)
    return K, kappa


@pytest.mark.parametrize("bound,eps", [(50.0, None), (3.0, 0.05)])
def test_kmm_matches_scipy_qp(bound, eps):
    g = np.random.default_rng(3)
    xtr, xv = g.normal(0, 1, (40, 2)), g.normal(0.7, 0.6, (30, 2))
    sigma = 0.8
    K, kappa = kmm_problem(xtr, xv, sigma)
    n = len(K)
    e = (math.sqrt(n) - 1) / math.sqrt(n) if eps is None else eps
    lo, hi = n * (1 - e), n * (1 + e)
    obj = lambda b: 0.5 * b @ K @ b - kappa @ b
    res = minimize(
        obj, np.ones(n), jac=lambda b: K @ b - kappa, method="SLSQP", bounds=[(0, bound)] * n,
        constraints=[{"type": "ineq", "fun": lambda b: hi - b.sum(), "jac": lambda b: -np.ones(n)},
                     {"type": "ineq", "fun": lambda b: b.sum() - lo, "jac": lambda b: np.ones(n)}],
        options={"ftol": 1e-14, "maxiter": 2000},
    )
    assert res.success
    for tol in (1e-6, 1e-10):  # the default and a tight one
        beta = KMM(width=sigma, bound=bound, eps=eps, tol=tol, max_iter=200_000)(
            torch.tensor(xtr), torch.tensor(xv)).double().numpy()
        assert beta.min() >= 0 and beta.max() <= bound * (1 + 1e-6)
        assert lo * (1 - 1e-6) <= beta.sum() <= hi * (1 + 1e-6)
        assert abs(obj(beta) - res.fun) <= 1e-4 * abs(res.fun), (tol, obj(beta), res.fun)
    if eps is not None:  # the tight case exercises the projection with active constraints
        assert np.isclose(res.x.sum(), lo, rtol=1e-6) or np.isclose(res.x.sum(), hi, rtol=1e-6)
        assert np.isclose(res.x.max(), bound, rtol=1e-6)


def test_kmm_constraints_hold_on_returned_weights():
    ztr, zv, _, _ = make_data("shift1d", n_tr=300, n_v=150)
    n, bound, eps = 300, 1.5, 0.02  # tight enough that both the box and the slab are active
    est = KMM(bound=bound, eps=eps)
    beta = est(ztr, zv).double()
    assert float(beta.min()) >= 0.0
    assert float(beta.max()) <= bound * (1 + 1e-6)
    assert float(beta.max()) > bound * 0.999
    assert n * (1 - eps) * (1 - 1e-6) <= float(beta.sum()) <= n * (1 + eps) * (1 + 1e-6)
    assert float(beta.sum()) == pytest.approx(n * (1 - eps), rel=1e-5)
    # default eps: (sqrt(n) - 1) / sqrt(n)
    est = KMM()
    est(ztr, zv)
    assert est.last_params["eps"] == pytest.approx((math.sqrt(n) - 1) / math.sqrt(n))


def test_quantised_kmm_with_every_point_a_centre_is_exact_kmm():
    """Quantised KMM whose cells hold one training point each solves exact KMM's very problem (the projection
    by bisection instead of by knots); with box and slab both active."""
    g = torch.Generator().manual_seed(3)
    ztr, zv = torch.randn(200, 2, generator=g), 0.7 * torch.randn(60, 2, generator=g) + 0.5
    exact = KMM(bound=1.5, eps=0.02, tol=1e-10)
    want = exact(ztr, zv)
    assert exact.last_params["centers"] is None
    for centers in (200, 10_000):  # as many centres as points, or more: every point its own cell
        quantised = KMM(bound=1.5, eps=0.02, tol=1e-10, centers=centers)
        torch.testing.assert_close(quantised(ztr, zv), want, rtol=0, atol=1e-4)
        assert quantised.last_params["centers"] == 200


def test_quantised_kmm_reaches_exact_kmms_discrepancy():
    """KMM minimises the MMD between the weighted training sample and the validation sample. On 3,000 points,
    quantised KMM (500 centres; and 2,000 by default above max_train) closes all but 1 % of the gap between
    uniform weights and exact KMM; 30 centres cannot (the check can fail). MMD computed here, by hand."""
    g = torch.Generator().manual_seed(4)
    ztr, zv = torch.randn(3000, 1, generator=g), torch.randn(300, 1, generator=g) + 1.0
    pooled = torch.cat([ztr, zv]).double()
    mu, sd = pooled.mean(0), pooled.std(0, unbiased=False)
    a, b = (ztr.double() - mu) / sd, (zv.double() - mu) / sd
    exact = KMM()
    w_exact = exact(ztr, zv).double()
    gamma = exact.last_params["gamma"]

    def mmd(w):
        k = lambda x, y: torch.exp(-gamma * (x - y.T) ** 2)  # noqa: E731 (1-D inputs)
        n = len(w)
        return float(w @ k(a, a) @ w / n**2 - 2 * (w @ k(a, b).mean(1)) / n + k(b, b).mean()) ** 0.5

    uniform, best = mmd(torch.ones(3000, dtype=torch.float64)), mmd(w_exact)
    for est in (KMM(centers=500), KMM(max_train=1000)):
        w = est(ztr, zv).double()
        assert mmd(w) - best <= 0.01 * (uniform - best)
        assert len(torch.unique(w)) <= est.last_params["centers"]  # one weight per cell
    coarse = KMM(centers=30)
    assert mmd(coarse(ztr, zv).double()) - best > 0.01 * (uniform - best)


def test_kmm_uses_median_and_diw_widths_on_standardised_data():
    g = np.random.default_rng(1)
    xtr, xv = g.normal(0, 3, (30, 2)), g.normal(1, 2, (20, 2))
    a, b = np_standardize(xtr, xv)
    pooled = np.concatenate([a, b])
    iu = np.triu_indices(len(pooled), 1)
    d = np.sqrt(((pooled[:, None] - pooled[None]) ** 2).sum(-1))[iu]
    est = KMM()
    est(torch.tensor(xtr), torch.tensor(xv))
    assert est.last_params["gamma"] == pytest.approx(1 / (2 * np.median(d[d > 0]) ** 2), rel=1e-10)
    assert est.last_params["median"] == pytest.approx(np.median(d[d > 0]), rel=1e-10)
    iu = np.triu_indices(len(a), 1)
    d_tr = np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))[iu]
    est = KMM(width="diw")
    est(torch.tensor(xtr), torch.tensor(xv))
    assert est.last_params["gamma"] == pytest.approx(np.quantile(d_tr, 0.01), rel=1e-10)
    assert est.last_params["median"] is None  # the DIW rule never computes it


# ----------------------------------------------------------------------------- KLIEP
def test_kliep_solver_reaches_scipy_optimum():
    g = np.random.default_rng(2)
    c = g.normal(0, 1, (15, 1))
    phi_v = np_kernel(g.normal(0.3, 0.7, (60, 1)), c, 0.3)
    b = np_kernel(g.normal(0, 1, (100, 1)), c, 0.3).mean(0)
    f = lambda a: -np.mean(np.log(phi_v @ a))
    res = minimize(
        f, np.ones(15) / b.sum(), jac=lambda a: -(phi_v.T @ (1 / (phi_v @ a))) / len(phi_v),
        method="SLSQP", bounds=[(0, None)] * 15, options={"ftol": 1e-14, "maxiter": 1000},
        constraints=[{"type": "eq", "fun": lambda a: b @ a - 1, "jac": lambda a: b}],
    )
    assert res.success
    alpha = kliep_alpha(torch.tensor(phi_v), torch.tensor(b), 1e-8).numpy()
    assert alpha.min() >= 0 and b @ alpha == pytest.approx(1.0, abs=1e-10)
    assert -f(alpha) >= -res.fun - 1e-6  # at least as good as SLSQP


def test_kliep_cv_picks_a_grid_width_and_fixed_width_skips_cv():
    ztr, zv, _, _ = make_data("shift1d", n_tr=200, n_v=100)
    est = KLIEP(sigma_grid=(0.5, 1.0), n_folds=3)
    est(ztr, zv)
    scores = est.last_params["cv_scores"]
    assert len(scores) == 2 and all(math.isfinite(v) for v in scores.values())
    best = max(scores, key=scores.get)
    assert est.last_params["gamma"] == pytest.approx(1 / (2 * best**2))
    med = median_heuristic(torch.cat(_std(ztr, zv)))
    assert est.last_params["median"] == pytest.approx(med, rel=1e-12)
    assert sorted(scores) == pytest.approx([0.5 * med, 1.0 * med], rel=1e-12)
    est = KLIEP(width=0.7)
    w = est(ztr, zv)
    assert est.last_params["cv_scores"] == {} and est.last_params["gamma"] == pytest.approx(1 / (2 * 0.49))
    assert est.last_params["median"] is None
    assert float(w.double().mean()) == pytest.approx(1.0, abs=1e-4)  # constraint mean r_tr = 1


def test_kliep_cv_on_a_validation_subset_picks_the_full_cvs_width_and_fits_on_all_points():
    """Above cv_max_val the width CV runs on a subset; on a problem whose best width is clear it picks the
    same width as the CV on all points, and the final fit (all validation points, same centres) is then
    the very same: identical weights. Below the cap nothing changes."""
    ztr, zv, _, _ = make_data("shift1d", n_tr=400, n_v=600)
    grid = (0.05, 1.0, 8.0)
    full, sub = KLIEP(sigma_grid=grid, cv_max_val=None), KLIEP(sigma_grid=grid, cv_max_val=200)
    w_full, w_sub = full(ztr, zv), sub(ztr, zv)
    assert sub.last_params["gamma"] == full.last_params["gamma"]
    assert sub.last_params["cv_scores"] != full.last_params["cv_scores"]  # the subset's own scores
    torch.testing.assert_close(w_sub, w_full)
    torch.testing.assert_close(KLIEP(sigma_grid=grid, cv_max_val=600)(ztr, zv), w_full)
    with pytest.raises(ValueError, match="cv_max_val must be >= n_folds"):
        KLIEP(cv_max_val=3)


# ----------------------------------------------------------------------------- RuLSIF
def np_theta(phi_tr, phi_v, alpha, lam):
    H = alpha * phi_v.T @ phi_v / len(phi_v) + (1 - alpha) * phi_tr.T @ phi_tr / len(phi_tr)
    return np.maximum(0, np.linalg.solve(H + lam * np.eye(H.shape[0]), phi_v.mean(0)))


def test_rulsif_fixed_params_match_numpy_closed_form():
    g = np.random.default_rng(4)
    xtr, xv = g.normal(0, 1, (50, 2)), g.normal(0.5, 0.8, (20, 2))
    sigma, lam, alpha = 0.9, 0.05, 0.3
    w = RuLSIF(alpha=alpha, sigma=sigma, lambda_=lam, n_centers=100)(torch.tensor(xtr), torch.tensor(xv))
    a, b = np_standardize(xtr, xv)  # n_centers >= n_v: every validation point is a centre
    phi_tr, phi_v = np_kernel(a, b, sigma), np_kernel(b, b, sigma)
    np.testing.assert_allclose(w.numpy(), phi_tr @ np_theta(phi_tr, phi_v, alpha, lam), rtol=1e-5, atol=1e-7)
    theta = rulsif_theta(torch.tensor(phi_tr), torch.tensor(phi_v), alpha, lam).numpy()
    np.testing.assert_allclose(theta, np_theta(phi_tr, phi_v, alpha, lam), rtol=1e-10, atol=1e-12)


def brute_force_loo(phi_tr, phi_v, alpha, lam):
    m = min(len(phi_tr), len(phi_v))
    losses = []
    for i in range(m):
        th = np_theta(np.delete(phi_tr, i, 0), np.delete(phi_v, i, 0), alpha, lam)
        r_v, r_tr = phi_v[i] @ th, phi_tr[i] @ th
        losses.append(alpha / 2 * r_v**2 + (1 - alpha) / 2 * r_tr**2 - r_v)
    return float(np.mean(losses))


def r_densratio_loo(phi_tr, phi_v, lam, drop_denom_in_b1=False):
    """R densratio / Kanamori et al. uLSIF LOO score (alpha = 0); x = numerator, y = denominator."""
    ny, nx, b = len(phi_tr), len(phi_v), phi_tr.shape[1]
    m = min(nx, ny)
    H, h = phi_tr.T @ phi_tr / ny, phi_v.mean(0)[:, None]
    X, Y = phi_v[:m].T, phi_tr[:m].T
    B = H + lam * (ny - 1) / ny * np.eye(b)
    BinvY = np.linalg.solve(B, Y)
    denom = ny - (Y * BinvY).sum(0)
    B0 = np.linalg.solve(B, h @ np.ones((1, m))) + BinvY * ((h.T @ BinvY) / denom)
    corr = (X * BinvY).sum(0)
    B1 = np.linalg.solve(B, X) + BinvY * (corr if drop_denom_in_b1 else corr / denom)
    B2 = np.maximum(0, (ny - 1) * (nx * B0 - B1) / (ny * (nx - 1)))
    r_y, r_x = (Y * B2).sum(0), (X * B2).sum(0)
    return float((r_y @ r_y / 2 - r_x.sum()) / m)


@pytest.mark.parametrize("n_tr,n_v", [(14, 11), (9, 13)])
def test_rulsif_loo_score_is_exact(n_tr, n_v):
    g = np.random.default_rng(5)
    c = g.normal(0, 1, (6, 2))
    phi_tr = np_kernel(g.normal(0, 1, (n_tr, 2)), c, 1.0)
    phi_v = np_kernel(g.normal(0.4, 0.8, (n_v, 2)), c, 1.0)
    for alpha in (0.0, 0.1, 0.5):
        for lam in (1e-3, 0.1, 1.0):
            fast = rulsif_loo_score(torch.tensor(phi_tr), torch.tensor(phi_v), alpha, lam)
            assert fast == pytest.approx(brute_force_loo(phi_tr, phi_v, alpha, lam), rel=1e-8, abs=1e-12)
    # At alpha = 0 it is R densratio's formula; the Python port (no "/ denom" in B1) is not.
    for lam in (1e-3, 0.1):
        fast = rulsif_loo_score(torch.tensor(phi_tr), torch.tensor(phi_v), 0.0, lam)
        assert fast == pytest.approx(r_densratio_loo(phi_tr, phi_v, lam), rel=1e-8)
        assert abs(fast - r_densratio_loo(phi_tr, phi_v, lam, drop_denom_in_b1=True)) > 1e-3 * abs(fast)


def test_rulsif_cv_selects_from_grids():
    ztr, zv, _, _ = make_data("scale1d", n_tr=200, n_v=100)
    est = RuLSIF(sigma_grid=(0.5, 1.0), lambda_grid=(0.01, 0.1))
    est(ztr, zv)
    med = median_heuristic(torch.cat(_std(ztr, zv)))
    assert est.last_params["lambda"] in (0.01, 0.1)
    assert min(abs(est.last_params["sigma"] - m * med) for m in (0.5, 1.0)) < 1e-12
    assert est.last_params["median"] == pytest.approx(med, rel=1e-12)
    est = RuLSIF(sigma=0.4)  # fixed sigma, lambda still cross-validated
    est(ztr, zv)
    assert est.last_params["sigma"] == 0.4 and est.last_params["lambda"] in (1e-3, 1e-2, 1e-1, 1.0, 10.0)
    assert est.last_params["median"] is None


def _std(ztr, zv):
    a, b = np_standardize(ztr.numpy(), zv.numpy())
    return torch.tensor(a), torch.tensor(b)


# ----------------------------------------------------------------------------- width rules
def test_width_rules_by_hand():
    z = torch.tensor([[0.0], [1.0], [3.0], [7.0]])  # distances 1, 3, 7, 2, 6, 4
    assert median_heuristic(z) == pytest.approx(3.5)  # mean of 3 and 4
    assert diw_gamma(z) == pytest.approx(1.05)  # 1 + 0.05 * (2 - 1), numpy's linear rule
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]])  # distances 5, 10, 5
    assert median_heuristic(z) == pytest.approx(5.0)
    assert diw_gamma(z) == pytest.approx(5.0)
    z = torch.tensor([[0.0], [0.0], [1.0]])  # a duplicate: distances 0, 1, 1
    assert median_heuristic(z) == pytest.approx(1.0)  # zeros excluded
    assert diw_gamma(z) == pytest.approx(0.02)  # zeros kept, as in DIW: 0 + 0.02 * (1 - 0)
    assert median_heuristic(torch.zeros(3, 2)) == 1.0  # all points coincide: fallback


def test_median_heuristic_subsamples_deterministically():
    z = torch.randn(2500, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = median_heuristic(z, max_points=500), median_heuristic(z, max_points=500)
    assert a == b and a != median_heuristic(z, max_points=500, seed=1)
    assert a == pytest.approx(median_heuristic(z), rel=0.05)


# ----------------------------------------------------------------------------- input checks
ALL = [KMM, KLIEP, RuLSIF]


@pytest.mark.parametrize("cls", ALL)
def test_input_errors(cls):
    good_tr, good_v = torch.randn(20, 2), torch.randn(10, 2)
    with pytest.raises(ValueError, match="z_train is empty"):
        cls()(torch.empty(0, 2), good_v)
    with pytest.raises(ValueError, match=r"at least \d+ validation points but z_val has 1"):
        cls()(good_tr, torch.randn(1, 2))
    with pytest.raises(ValueError, match="z_train has 2 features but z_val has 3"):
        cls()(good_tr, torch.randn(10, 3))
    bad = good_tr.clone()
    bad[3, 1], bad[5, 0] = float("nan"), float("inf")
    with pytest.raises(ValueError, match="z_train contains 2 non-finite"):
        cls()(bad, good_v)
    bad = good_v.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="z_val contains 1 non-finite"):
        cls()(good_tr, bad)
    with pytest.raises(ValueError, match=r"shape \[N, d\] or \[N\]"):
        cls()(torch.randn(4, 2, 2), good_v)


def test_kliep_min_val_follows_folds():
    assert DensityRatioEstimator.min_val == 2 and KLIEP(n_folds=7).min_val == 7
    assert KLIEP(width="median").min_val == 2
    with pytest.raises(ValueError, match="at least 5 validation points.*n_folds"):
        KLIEP()(torch.randn(20, 1), torch.randn(4, 1))
    assert KLIEP(n_folds=2)(torch.randn(20, 1), torch.randn(4, 1)).shape == (20,)


def test_bad_init_args():
    with pytest.raises(ValueError, match="width"):
        KMM(width="silverman")
    with pytest.raises(ValueError, match="positive"):
        KMM(width=-1.0)
    assert KMM(width="0.5").width == 0.5  # numbers arriving as CLI text
    with pytest.raises(ValueError, match="alpha"):
        RuLSIF(alpha=1.0)
    with pytest.raises(ValueError, match="n_folds"):
        KLIEP(n_folds=1)


# ----------------------------------------------------------------------------- misc
@pytest.mark.parametrize("make", [lambda: KMM(), lambda: KMM(width="diw"), lambda: KLIEP(), lambda: RuLSIF()])
def test_deterministic(make):
    ztr, zv, _, _ = make_data("shift2d", n_tr=150, n_v=60, seed=7)
    assert torch.equal(make()(ztr, zv), make()(ztr.clone(), zv.clone()))


def test_vector_inputs_dtypes_and_constant_features():
    ztr, zv, _, _ = make_data("shift1d", n_tr=100, n_v=40)
    est = RuLSIF(sigma=0.5, lambda_=0.1)
    ref = est(ztr, zv)
    assert est.last_params["loo_score"] is None  # nothing was cross-validated
    assert not est(ztr.clone().requires_grad_(), zv).requires_grad
    assert torch.equal(ref, est(ztr[:, None], zv[:, None]))
    np.testing.assert_allclose(est(ztr.float(), zv.float()).numpy(), ref.numpy(), rtol=1e-4, atol=1e-6)
    # a constant extra column (std 0 up to rounding) must not change anything
    const = lambda z: torch.stack([z, torch.full_like(z, 0.1)], 1)
    np.testing.assert_allclose(est(const(ztr), const(zv)).numpy(), ref.numpy(), rtol=1e-6, atol=1e-7)


def test_effective_sample_size_and_normalisation():
    assert effective_sample_size([1, 1, 1, 1]) == pytest.approx(4.0)
    assert effective_sample_size([4, 0, 0, 0]) == pytest.approx(1.0)
    assert effective_sample_size(torch.tensor([1.0, 2.0, 3.0])) == pytest.approx(36 / 14)
    assert effective_sample_size([0, 0]) == 0.0
    w = normalize_mean_one(torch.tensor([1.0, 3.0, 0.0, 4.0]))
    assert torch.allclose(w, torch.tensor([0.5, 1.5, 0.0, 2.0]))
    with pytest.raises(ValueError, match="positive sum"):
        normalize_mean_one(torch.zeros(3))


def test_chunked_kernel_sums_equal_the_whole_matrix():
    from lit_iwpo.weighting.density_ratio import kernel_apply, kernel_gram, kernel_sum

    g = torch.Generator().manual_seed(5)
    z, c, coef = torch.randn(103, 2, generator=g).double(), torch.randn(9, 2, generator=g).double(), torch.randn(9).double()
    phi = torch.exp(-0.7 * ((z[:, None] - c[None]) ** 2).sum(-1))
    gram, total = kernel_gram(z, c, 0.7, chunk=10)
    torch.testing.assert_close(gram, phi.T @ phi)
    torch.testing.assert_close(total, phi.sum(0))
    torch.testing.assert_close(kernel_sum(z, c, 0.7, chunk=7), phi.sum(0))
    torch.testing.assert_close(kernel_apply(z, c, 0.7, coef, chunk=50), phi @ coef)


def test_kernel_stats_of_several_widths_in_one_pass_equal_each_width_alone():
    from lit_iwpo.weighting.density_ratio import kernel_stats

    g = torch.Generator().manual_seed(6)
    z, c = torch.randn(57, 3, generator=g).double(), torch.randn(8, 3, generator=g).double()
    sq = ((z[:, None] - c[None]) ** 2).sum(-1)
    gammas = [0.1, 0.7, 3.0]
    totals, grams = kernel_stats(z, c, gammas, gram=True, chunk=16)
    assert totals.shape == (3, 8) and grams.shape == (3, 8, 8)
    for j, gamma in enumerate(gammas):
        phi = torch.exp(-gamma * sq)
        torch.testing.assert_close(totals[j], phi.sum(0))
        torch.testing.assert_close(grams[j], phi.T @ phi)
    assert kernel_stats(z, c, gammas, chunk=16)[1] is None  # no Gram unless asked


@pytest.mark.parametrize("dim", [1, 3, 6])  # 1 and 3: the in-place loop over dimensions; 6: cdist
def test_pairwise_sq_dists_equal_the_broadcast_sum_and_are_zero_on_duplicates(dim):
    from lit_iwpo.weighting.density_ratio import pairwise_sq_dists

    g = torch.Generator().manual_seed(dim)
    a, b = torch.randn(40, dim, generator=g).double(), torch.randn(7, dim, generator=g).double()
    b[3] = a[11]
    d = pairwise_sq_dists(a, b)
    torch.testing.assert_close(d, ((a[:, None] - b[None]) ** 2).sum(-1), rtol=1e-12, atol=1e-12)
    assert float(d[11, 3]) == 0.0
