"""Density-ratio estimators for importance weighting (pure torch).

Every estimator is called as ``estimator(z_train, z_val)`` and returns an estimate of
``p_val(z) / p_train(z)`` at the training points (RuLSIF: the alpha-relative ratio).
Inputs are ``[N, d]`` or ``[N]`` tensors of any real dtype; the work is done in float64 on
the input's device and a float32 tensor comes back. Both sets are standardised with the
mean/std of the pooled data first, so every kernel width below is in standardised units.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from lit_iwpo.errors import ConfigError
from lit_iwpo.weighting.nearest import nearest_centre

__all__ = [
    "DensityRatioEstimator", "KMM", "KLIEP", "RuLSIF", "effective_sample_size", "normalize_mean_one",
    "pairwise_sq_dists", "gaussian_kernel", "sigma_to_gamma", "median_heuristic", "diw_gamma",
    "kliep_alpha", "rulsif_theta", "rulsif_loo_score",
]

DEFAULT_SIGMA_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
DEFAULT_LAMBDA_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
KMM_JITTER = 1e-5
DEFAULT_KMM_CENTERS = 2000


# ----------------------------------------------------------------------------- weights
def effective_sample_size(w) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (0.0 for all-zero weights)."""
    w = torch.as_tensor(w, dtype=torch.float64).flatten()
    sq = float((w * w).sum())
    return 0.0 if sq <= 0.0 else float(w.sum()) ** 2 / sq


def normalize_mean_one(w: Tensor) -> Tensor:
    """Rescale weights to mean one, the scale an importance-weighted mean loss expects."""
    mean = float(w.mean())
    if not mean > 0.0 or not math.isfinite(mean):
        raise ValueError(f"cannot normalise weights with mean {mean}; pass non-negative weights with a positive sum")
    return w / mean


# ----------------------------------------------------------------------------- kernels
SQ_DIST_LOOP_MAX_DIM = 4  # up to this many dimensions, distances are summed over the dimensions in place


def pairwise_sq_dists(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances ``[len(a), len(b)]``."""
    # The matmul shortcut |a|^2 + |b|^2 - 2ab turns exact duplicates into tiny non-zero
    # (even negative) values; the width rules must see true zeros. In the few dimensions of transform spaces,
    # summing (a_k - b_k)^2 in place over the dimensions is 2-3x faster than cdist (and does not square a sqrt).
    if a.shape[1] > SQ_DIST_LOOP_MAX_DIM:
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist").square()
    out = None
    for k in range(a.shape[1]):
        diff = a[:, k:k + 1] - b[:, k]
        diff.mul_(diff)
        out = diff if out is None else out.add_(diff)
    return out if out is not None else a.new_zeros(a.shape[0], b.shape[0])


def gaussian_kernel(a: Tensor, b: Tensor, gamma: float) -> Tensor:
    """``k(a, b) = exp(-gamma * |a - b|^2)``; ``gamma = 1 / (2 sigma^2)`` for a width sigma."""
    return pairwise_sq_dists(a, b).mul_(-gamma).exp_()


KERNEL_CHUNK = 65536  # rows of a kernel block computed at once: [chunk, centres] float64 stays ~50 MB


def kernel_stats(z: Tensor, centers: Tensor, gammas: Sequence[float], gram: bool = False,
                 chunk: int = KERNEL_CHUNK) -> tuple[Tensor, Optional[Tensor]]:
    """For every width in ``gammas``: Σ_i φ(z_i) [len(gammas), b] and, with ``gram``, Σ_i φ(z_i) φ(z_i)ᵀ
    [len(gammas), b, b], of the Gaussian features φ(z) = k(z, centres). In row chunks (never the whole [n, b]
    matrix: n may be 10⁶), and each chunk's distances are computed once for all widths (only the exp repeats)."""
    b = centers.shape[0]
    totals = z.new_zeros(len(gammas), b)
    grams = z.new_zeros(len(gammas), b, b) if gram else None
    for i in range(0, z.shape[0], chunk):
        d = pairwise_sq_dists(z[i:i + chunk], centers)
        for j, g in enumerate(gammas):
            phi = torch.mul(d, -g).exp_()
            totals[j] += phi.sum(0)
            if grams is not None:
                grams[j] += phi.T @ phi
    return totals, grams


def kernel_gram(z: Tensor, centers: Tensor, gamma: float, chunk: int = KERNEL_CHUNK) -> tuple[Tensor, Tensor]:
    """(Σ_i φ(z_i) φ(z_i)ᵀ [b, b], Σ_i φ(z_i) [b]) for one width (see :func:`kernel_stats`)."""
    totals, grams = kernel_stats(z, centers, [gamma], gram=True, chunk=chunk)
    return grams[0], totals[0]


def kernel_sum(z: Tensor, centers: Tensor, gamma: float, chunk: int = KERNEL_CHUNK) -> Tensor:
    """Σ_i φ(z_i) [b] for one width (see :func:`kernel_stats`)."""
    return kernel_stats(z, centers, [gamma], chunk=chunk)[0][0]


def kernel_apply(z: Tensor, centers: Tensor, gamma: float, coef: Tensor, chunk: int = KERNEL_CHUNK) -> Tensor:
    """φ(z) @ coef [n] in row chunks (the fitted ratio at every point of ``z``)."""
    return torch.cat([gaussian_kernel(z[i:i + chunk], centers, gamma) @ coef for i in range(0, z.shape[0], chunk)])


def sigma_to_gamma(sigma: float) -> float:
    """Width sigma of ``exp(-|a-b|^2 / (2 sigma^2))`` to the coefficient gamma."""
    return 1.0 / (2.0 * float(sigma) ** 2)


def _subsample(z: Tensor, max_points: int, seed: int) -> Tensor:
    if z.shape[0] <= max_points:
        return z
    gen = torch.Generator().manual_seed(seed)
    return z[torch.randperm(z.shape[0], generator=gen)[:max_points].to(z.device)]


def _pair_dists(z: Tensor) -> Tensor:
    """Euclidean distances of all pairs i < j (each unordered pair once, no diagonal)."""
    i, j = torch.triu_indices(z.shape[0], z.shape[0], offset=1, device=z.device)
    return pairwise_sq_dists(z, z)[i, j].sqrt()


def _quantile(x: Tensor, q: float) -> float:
    # numpy's default "linear" rule; torch.quantile refuses inputs above 2**24 elements.
    x = torch.sort(x.flatten()).values
    pos = q * (x.numel() - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, x.numel() - 1)
    return float(x[lo] + (pos - lo) * (x[hi] - x[lo]))


def median_heuristic(z: Tensor, max_points: int = 2000, seed: int = 0) -> float:
    """Median non-zero pairwise distance (seeded subsample above max_points rows); 1.0 if all coincide."""
    d = _pair_dists(_subsample(z, max_points, seed))
    d = d[d > 0]
    return 1.0 if d.numel() == 0 else _quantile(d, 0.5)


def diw_gamma(z_train: Tensor, max_points: int = 2000, seed: int = 0) -> float:
    """The DIW code's KMM width: the 1%-quantile of pairwise training distances.

    Fang et al. (NeurIPS 2020, ``kmm.get_kernel_width``) pass this *distance* to sklearn's
    ``rbf_kernel`` as ``gamma``, i.e. ``k = exp(-q |a-b|^2)``: not a principled bandwidth (nor
    scale-invariant), reproduced for comparability. Duplicates' zero distances are kept, as in
    the original; above max_points rows a seeded subsample is used (DIW ran on 256-row batches).
    """
    d = _pair_dists(_subsample(z_train, max_points, seed))
    return 1.0 if d.numel() == 0 else _quantile(d, 0.01)


def _parse_width(width, allowed: Sequence[str]) -> Union[str, float]:
    if isinstance(width, str) and width not in allowed:
        try:  # a number that arrived as text from the command line
            width = float(width)
        except ValueError:
            raise ConfigError(f"width must be one of {list(allowed)} or a positive float, got {width!r}") from None
    if not isinstance(width, str) and not (0 < float(width) < math.inf):
        raise ConfigError(f"a fixed width (sigma) must be a positive finite float, got {width!r}")
    return width if isinstance(width, str) else float(width)


def _resolve_gamma(width: Union[str, float], ztr: Tensor, zv: Tensor) -> tuple[float, Optional[float]]:
    """γ of a width rule, and the median heuristic when the rule computed it (None otherwise)."""
    if width == "median":
        med = median_heuristic(torch.cat([ztr, zv]))
        return sigma_to_gamma(med), med
    if width == "diw":
        return diw_gamma(ztr), None
    return sigma_to_gamma(float(width)), None


def _pick_centers(zv: Tensor, n_centers: int, gen: torch.Generator) -> Tensor:
    idx = torch.randperm(zv.shape[0], generator=gen)[:n_centers]
    return zv[idx.to(zv.device)]


# ----------------------------------------------------------------------------- base
class DensityRatioEstimator(ABC):
    """Base class: input checks and standardisation around ``_fit_predict``.

    Subclasses implement ``_fit_predict(ztr, zv) -> Tensor[N_train]`` on standardised float64
    ``[N, d]`` tensors. ``min_val`` (class attribute, default 2) is the fewest validation
    points accepted; subclasses raise it where their fitting needs more. After each call,
    ``last_params`` holds the hyper-parameters that were used (chosen widths etc.) and, where the width rule
    computed it, ``median``: the median heuristic σ on the standardised data, so a chosen width can be read as
    a multiple of it (the cross-validation grids are).
    """

    min_val: int = 2

    def __init__(self) -> None:
        self.last_params: dict = {}

    def __call__(self, z_train: Tensor, z_val: Tensor) -> Tensor:
        ztr = self._as_matrix(z_train, "z_train")
        zv = self._as_matrix(z_val, "z_val")
        name = type(self).__name__
        if ztr.shape[0] == 0:
            raise ValueError(f"{name}: z_train is empty (0 rows); pass at least one training point")
        if zv.shape[0] < self.min_val:
            raise ValueError(f"{name}: needs at least {self.min_val} validation points but z_val has "
                             f"{zv.shape[0]}; pass more validation data{self._min_val_hint()}")
        if ztr.shape[1] != zv.shape[1]:
            raise ValueError(f"{name}: dimension mismatch: z_train has {ztr.shape[1]} features but z_val "
                             f"has {zv.shape[1]}; both sets must live in the same feature space")
        for z, label in ((ztr, "z_train"), (zv, "z_val")):
            if bad := int((~torch.isfinite(z)).sum()):
                raise ValueError(f"{name}: {label} contains {bad} non-finite value(s) (NaN/inf); drop "
                                 "or impute those rows before estimating density ratios")
        ztr, zv = _standardize(ztr, zv)
        r = self._fit_predict(ztr, zv)
        # Every estimator here is non-negative and finite by construction; fail loudly
        # rather than hand a NaN weight to a training loop.
        if not bool(torch.isfinite(r).all()) or bool((r < 0).any()):
            raise RuntimeError(f"{name}: produced non-finite or negative ratios ({self.last_params})")
        return r.to(torch.float32)

    def _min_val_hint(self) -> str:
        return ""

    @staticmethod
    def _as_matrix(z, label: str) -> Tensor:
        z = torch.as_tensor(z).detach()  # weights are data, never a path for gradients
        if z.is_complex() or z.dtype == torch.bool:
            raise ValueError(f"{label} must be real-valued, got dtype {z.dtype}")
        if z.dim() == 1:
            z = z.unsqueeze(1)
        if z.dim() != 2:
            raise ValueError(f"{label} must have shape [N, d] or [N], got {tuple(z.shape)}")
        return z.to(torch.float64)

    @abstractmethod
    def _fit_predict(self, ztr: Tensor, zv: Tensor) -> Tensor:
        """Ratio estimates [N_train] from standardised float64 inputs."""


def _standardize(ztr: Tensor, zv: Tensor) -> tuple[Tensor, Tensor]:
    pooled = torch.cat([ztr, zv])
    mean = pooled.mean(0)
    std = pooled.std(0, unbiased=False)
    # A constant column has std = 0 or a rounding residue (~1e-17 * |value|); dividing by
    # that would turn rounding noise into an O(1) feature, so such columns are only centred.
    scale = pooled.abs().amax(0)
    std = torch.where(std > 1e-12 * scale, std, torch.ones_like(std))
    return (ztr - mean) / std, (zv - mean) / std


# ----------------------------------------------------------------------------- KMM
def _shift_for_sum(v: Tensor, upper: float, target: float) -> float:
    """tau with sum(clamp(v - tau, 0, upper)) == target, for 0 <= target <= n * upper.

    The sum is piecewise linear and non-increasing in tau with knots at v and v - upper, so it
    is evaluated at every knot (sorted prefix sums) and interpolated on the crossing segment.
    """
    u = torch.sort(v).values
    prefix = torch.cat([u.new_zeros(1), u.cumsum(0)])
    knots = torch.sort(torch.cat([u - upper, u])).values
    at_cap = torch.searchsorted(u, knots + upper, side="left")  # first u >= tau + upper
    above = torch.searchsorted(u, knots, side="right")  # first u > tau
    total = upper * (u.numel() - at_cap) + (prefix[at_cap] - prefix[above]) - knots * (at_cap - above)
    k = min(max(int((total >= target).sum()) - 1, 0), knots.numel() - 2)
    t0, t1, s0, s1 = float(knots[k]), float(knots[k + 1]), float(total[k]), float(total[k + 1])
    return t0 if s0 == s1 else t0 + (s0 - target) * (t1 - t0) / (s0 - s1)


def _project_box_slab(v: Tensor, upper: float, lo: float, hi: float) -> Tensor:
    """Euclidean projection onto {0 <= x <= upper, lo <= sum(x) <= hi}.

    KKT: x = clamp(v - tau, 0, upper) with tau = 0 if the clamp alone lands in the slab,
    otherwise tau puts the sum on the violated face.
    """
    x = v.clamp(0.0, upper)
    s = float(x.sum())
    if lo <= s <= hi:
        return x
    tau = _shift_for_sum(v, upper, hi if s > hi else lo)
    return (v - tau).clamp(0.0, upper)


def _project_box_slab_vec(v: Tensor, upper: Tensor, lo: float, hi: float, iters: int = 100) -> Tensor:
    """Euclidean projection onto {0 <= x <= upper (per coordinate), lo <= sum(x) <= hi}: x = clamp(v - tau, 0,
    upper) with tau found by bisection (the sum is non-increasing in tau) when the clamp alone misses the slab."""
    x = torch.minimum(v.clamp_min(0.0), upper)
    s = float(x.sum())
    if lo <= s <= hi:
        return x
    target = hi if s > hi else lo
    t_lo, t_hi = float((v - upper).min()), float(v.max())  # sum = Σ upper at t_lo, 0 at t_hi
    for _ in range(iters):
        mid = 0.5 * (t_lo + t_hi)
        if float(torch.minimum((v - mid).clamp_min(0.0), upper).sum()) > target:
            t_lo = mid
        else:
            t_hi = mid
    return torch.minimum((v - 0.5 * (t_lo + t_hi)).clamp_min(0.0), upper)


def _largest_eigenvalue(k: Tensor) -> float:
    if k.shape[0] <= 2000:
        return float(torch.linalg.eigvalsh(k)[-1])
    # A positive matrix has a positive Perron vector, so power iteration from ones converges
    # from below; the 2% margin keeps the FISTA step below 1/lambda_max.
    x = torch.ones(k.shape[0], dtype=k.dtype, device=k.device)
    for _ in range(100):
        x = k @ x
        x = x / x.norm()
    return 1.02 * float(x @ (k @ x))


class KMM(DensityRatioEstimator):
    """Kernel mean matching, KMM (Huang et al., 2007).

    Huang, Smola, Gretton, Borgwardt & Schoelkopf, "Correcting sample selection bias by
    unlabeled data", NIPS 2007. Solves

        min_b 1/2 b^T K b - kappa^T b   s.t.  0 <= b_i <= B,  |sum_i b_i - n_tr| <= n_tr * eps,

    with ``K = k(Z_tr, Z_tr) + 1e-5 I`` (the DIW code's jitter, which keeps the QP strictly
    convex) and ``kappa_i = (n_tr / n_v) sum_j k(z_i^tr, z_j^v)``; the weights b estimate
    p_v/p_tr at the training points. Solved by FISTA with adaptive restart (O'Donoghue & Candes 2015), step
    ``1/lambda_max(K)``, exact projection onto box-and-slab, starting from uniform weights.
    K is nearly singular, so b is ill-determined along its near-null directions and the objective
    converges long before b does: at the default tol the objective was within ~1e-6 (relative) of
    the optimum in our checks, near where a default-tolerance QP solver (cvxopt, used by DIW)
    stops; solving to machine precision gives spikier, less ratio-like weights. O(n_tr^2) memory.

    At scale (ours, beyond the paper): with ``centers = m`` (or by default above ``max_train`` training points,
    with m = 2000) KMM is solved on a quantised training set: m training points drawn as centres (seeded), every
    training point assigned to its nearest centre (faiss), and all points of a cell share one weight. That is
    exact KMM for the cells' centres with multiplicities: O(m^2) memory and work per iteration, O(n m) once for
    the assignment, so 10^6 training points take seconds in 1-D or 2-D transform spaces. ``benchmarks/
    estimator_scale.py`` reports its error against exact KMM on a problem small enough for both.

    Args:
        width: Kernel width rule: "median" (median heuristic on pooled standardised data),
            "diw" (DIW's 1%-distance-quantile used as gamma), or a fixed sigma.
        bound: Upper bound B on each weight.
        eps: Slab half-width; None uses (sqrt(n_tr) - 1) / sqrt(n_tr) as in the DIW code.
        tol: Stop when the max weight change is below tol * max(1, max weight).
        max_iter: Maximum number of FISTA iterations.
        max_train: Largest training set solved exactly (the kernel matrix is n_tr x n_tr float64); above it
            (with ``centers`` unset) KMM is quantised on 2000 centres.
        centers: Solve on this many training points as centres (quantised KMM, above); None: exact up to
            ``max_train`` points.
        seed: Seed of the centre draw.
    """

    def __init__(
        self,
        width: Union[str, float] = "median",
        bound: float = 50.0,
        eps: Optional[float] = None,
        tol: float = 1e-6,
        max_iter: int = 20000,
        max_train: int = 10_000,
        centers: Optional[int] = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if centers is not None and centers < 1:
            raise ConfigError(f"centers must be a positive number of training points or None, got {centers}")
        if not bound > 0:
            raise ConfigError(f"bound must be positive, got {bound}")
        if eps is not None and not eps >= 0:
            raise ConfigError(f"eps must be non-negative or None, got {eps}")
        self.width = _parse_width(width, ("median", "diw"))
        self.bound, self.eps, self.tol = float(bound), eps, float(tol)
        self.max_iter, self.max_train = int(max_iter), int(max_train)
        self.centers, self.seed = centers, int(seed)

    def _fit_predict(self, ztr: Tensor, zv: Tensor) -> Tensor:
        n = ztr.shape[0]
        quantised = self.centers is not None or n > self.max_train
        m = min(n, self.centers if self.centers is not None else DEFAULT_KMM_CENTERS)
        gamma, med = _resolve_gamma(self.width, ztr, zv)
        eps = (math.sqrt(n) - 1.0) / math.sqrt(n) if self.eps is None else float(self.eps)
        lo, hi = max(n * (1.0 - eps), 0.0), n * (1.0 + eps)
        if self.bound * n < lo:
            raise ConfigError(f"KMM: infeasible: n_tr * bound = {self.bound * n} < n_tr * (1 - eps) = {lo}; "
                             "increase bound or eps")
        if not quantised:
            k = gaussian_kernel(ztr, ztr, gamma)
            k.diagonal().add_(KMM_JITTER)
            kappa = gaussian_kernel(ztr, zv, gamma).sum(1) * (n / zv.shape[0])
            x, it = self._solve(k, kappa, lambda v: _project_box_slab(v, self.bound, lo, hi))
            self.last_params = {"gamma": gamma, "eps": eps, "iterations": it, "centers": None, "median": med}
            return x
        # quantised: m training points drawn as centres, every point in its nearest centre's cell; x_c is the
        # cell's total weight (count_c × the weight each of its points gets), so the QP keeps KMM's form with
        # per-cell bounds 0 <= x_c <= count_c B and the jitter 1e-5 Σ_i b_i² = Σ_c 1e-5 x_c² / count_c
        gen = torch.Generator().manual_seed(self.seed)
        cz = ztr[torch.randperm(n, generator=gen)[:m].to(ztr.device)]
        cell = nearest_centre(ztr, cz).to(ztr.device)
        counts = torch.bincount(cell, minlength=m).to(ztr.dtype)
        used = counts > 0  # a centre duplicated by another takes no points
        cz, counts = cz[used], counts[used]
        cell = (torch.cumsum(used.long(), 0) - 1)[cell]
        k = gaussian_kernel(cz, cz, gamma)
        k.diagonal().add_(KMM_JITTER / counts)
        kappa = gaussian_kernel(cz, zv, gamma).sum(1) * (n / zv.shape[0])
        x, it = self._solve(k, kappa, lambda v: _project_box_slab_vec(v, counts * self.bound, lo, hi), start=counts)
        self.last_params = {"gamma": gamma, "eps": eps, "iterations": it, "centers": int(counts.numel()), "median": med}
        return (x / counts)[cell]

    def _solve(self, k: Tensor, kappa: Tensor, project, start: Optional[Tensor] = None) -> tuple[Tensor, int]:
        """FISTA with adaptive restart on 1/2 xᵀKx − κᵀx over the feasible set of ``project``, from ``start``
        (uniform weights: ones, or each cell's count)."""
        step = 1.0 / _largest_eigenvalue(k)
        x = project(torch.ones_like(kappa) if start is None else start.clone())
        y, t, it = x, 1.0, 0
        for it in range(1, self.max_iter + 1):
            x_new = project(y - step * (k @ y - kappa))
            delta = x_new - x
            if float((y - x_new) @ delta) > 0:  # momentum points uphill: restart
                t, y = 1.0, x_new
            else:
                t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
                y, t = x_new + ((t - 1.0) / t_new) * delta, t_new
            x = x_new
            if float(delta.abs().max()) <= self.tol * max(1.0, float(x.abs().max())):
                break
        return x, it


# ----------------------------------------------------------------------------- KLIEP
def kliep_alpha(phi_v: Tensor, b: Tensor, tol: float) -> Optional[Tensor]:
    """argmax_a mean log(phi_v a) s.t. b^T a = 1, a >= 0; None if b == 0 (nothing in reach).

    With beta = b * a the feasible set is the probability simplex; a log-barrier Newton
    method on it converges in ~50-100 steps to a duality gap below ``tol``.
    """
    # A centre no training point reaches (b_l = 0) would make the problem unbounded, and a
    # validation point no centre reaches adds a constant -inf: both are left out.
    keep = b > 0
    a_mat = phi_v[:, keep] / b[keep]
    a_mat = a_mat[a_mat.sum(1) > 0]
    if a_mat.numel() == 0:
        return None
    n, dim = a_mat.shape
    beta = torch.full((dim,), 1.0 / dim, dtype=a_mat.dtype, device=a_mat.device)
    ones = torch.ones_like(beta)

    def barrier(x: Tensor, t: float) -> float:
        return float(-t * torch.log((a_mat @ x).clamp_min(1e-300)).mean() - torch.log(x).sum())

    t = 1.0
    while True:
        for _ in range(50):  # Newton on t * f - sum log beta, restricted to sum(beta) = 1
            r = a_mat @ beta
            grad = -t * (a_mat.T @ (1.0 / r)) / n - 1.0 / beta
            w = a_mat / r[:, None]
            hess = (t / n) * (w.T @ w)
            hess.diagonal().add_(1.0 / beta**2)
            sol = torch.cholesky_solve(torch.stack([grad, ones], 1), torch.linalg.cholesky(hess))
            step = -(sol[:, 0] - (sol[:, 0].sum() / sol[:, 1].sum()) * sol[:, 1])
            decrement = float(-(grad @ step))
            if decrement < 1e-9:
                break
            neg = step < 0
            s = min(1.0, 0.99 * float((-beta[neg] / step[neg]).min())) if bool(neg.any()) else 1.0
            f0 = barrier(beta, t)
            while barrier(beta + s * step, t) > f0 - 0.25 * s * decrement and s > 1e-12:
                s *= 0.5
            beta = beta + s * step
        if dim / t < tol:  # the central path's duality gap is (number of bounds) / t
            break
        t *= 20.0
    alpha = torch.zeros_like(b)
    alpha[keep] = beta / b[keep]
    return alpha


class KLIEP(DensityRatioEstimator):
    """Kullback-Leibler importance estimation procedure, KLIEP (Sugiyama et al., 2008).

    Sugiyama, Suzuki, Nakajima, Kashima, von Buenau & Kawanabe, "Direct importance estimation
    for covariate shift adaptation", AISM 60(4), 2008 (NeurIPS 2007). With Gaussian kernels
    centred on validation points c_l,

        r(z) = sum_l alpha_l exp(-|z - c_l|^2 / (2 sigma^2)),
        max_alpha mean_j log r(z_j^v)   s.t.  mean_i r(z_i^tr) = 1,  alpha >= 0.

    The reference MATLAB/R/Python loop (ascent step
    eps * A^T(1/(A alpha)), heuristic projection, eps = 1e3 ... 1e-3 each while improving) can
    stop far from the optimum (mean log r = -0.63 where the optimum is 0.24 for a narrow kernel),
    which also biases its CV; the same concave problem is solved here to a duality gap ``tol``
    (``kliep_alpha``). ``width="cv"`` picks sigma from ``median * sigma_grid`` by n_folds-fold
    likelihood CV on the validation set (fit on the other folds, score mean held-out log r);
    it raises ``min_val`` to n_folds. Above ``cv_max_val`` validation points the CV runs on a
    random subset of that many (its len(sigma_grid) * n_folds solves dominate the cost: at
    N_v = 10⁴ each Newton step of each solve would take a [10⁴, n_centers] product); the final
    fit uses every validation point.

    Args:
        width: "cv" (cross-validate over sigma_grid), "median", "diw", or a fixed sigma.
        sigma_grid: Candidate sigmas for "cv", as multiples of the median heuristic.
        n_folds: Number of cross-validation folds over the validation set.
        n_centers: Maximum number of kernel centres (drawn from the validation set).
        tol: Duality-gap tolerance on the mean log-likelihood.
        seed: Seed for the centre draw, the CV subset and the fold split.
        cv_max_val: Most validation points the width CV uses (a seeded random subset above it);
            None uses all.
    """

    def __init__(
        self,
        width: Union[str, float] = "cv",
        sigma_grid: Sequence[float] = DEFAULT_SIGMA_GRID,
        n_folds: int = 5,
        n_centers: int = 100,
        tol: float = 1e-6,
        seed: int = 0,
        cv_max_val: Optional[int] = 2000,
    ) -> None:
        super().__init__()
        self.width = _parse_width(width, ("cv", "median", "diw"))
        if self.width == "cv":
            if n_folds < 2:
                raise ConfigError(f"n_folds must be >= 2 for width='cv', got {n_folds}")
            if not sigma_grid or min(sigma_grid) <= 0:
                raise ConfigError(f"sigma_grid must be non-empty and positive, got {sigma_grid}")
            self.min_val = max(type(self).min_val, int(n_folds))
        self.sigma_grid = tuple(float(s) for s in sigma_grid)
        self.n_folds, self.n_centers, self.tol, self.seed = int(n_folds), int(n_centers), float(tol), int(seed)
        if cv_max_val is not None and cv_max_val < max(self.n_folds, type(self).min_val):
            raise ConfigError(f"cv_max_val must be >= n_folds ({self.n_folds}) or None, got {cv_max_val}")
        self.cv_max_val = cv_max_val

    def _min_val_hint(self) -> str:
        return " or lower n_folds / use a fixed width" if self.width == "cv" else ""

    def _fit_predict(self, ztr: Tensor, zv: Tensor) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        centers = _pick_centers(zv, self.n_centers, gen)
        # training points enter only through mean φ and the final φ @ α: both in chunks (n may be 10⁶); mean φ of
        # every width comes from one pass
        med, scores, mean_phi_tr = None, {}, {}
        if self.width == "cv":
            zcv = zv
            if self.cv_max_val is not None and zv.shape[0] > self.cv_max_val:
                zcv = zv[torch.randperm(zv.shape[0], generator=gen)[: self.cv_max_val].to(zv.device)]
            folds = torch.empty(zcv.shape[0], dtype=torch.long)
            folds[torch.randperm(zcv.shape[0], generator=gen)] = torch.arange(zcv.shape[0]) % self.n_folds
            folds = folds.to(zv.device)
            med = median_heuristic(torch.cat([ztr, zv]))
            gammas = [sigma_to_gamma(m * med) for m in self.sigma_grid]
            sums, _ = kernel_stats(ztr, centers, gammas)  # one pass over the training points for all widths
            for m, g, total in zip(self.sigma_grid, gammas, sums):
                mean_phi_tr[g] = total / ztr.shape[0]
                scores[m * med] = self._cv_score(gaussian_kernel(zcv, centers, g), mean_phi_tr[g], folds)
            gamma = sigma_to_gamma(max(scores, key=lambda s: scores[s]))  # first maximum wins
        else:
            gamma, med = _resolve_gamma(self.width, ztr, zv)
        b = mean_phi_tr[gamma] if gamma in mean_phi_tr else kernel_sum(ztr, centers, gamma) / ztr.shape[0]
        alpha = kliep_alpha(gaussian_kernel(zv, centers, gamma), b, self.tol)
        if alpha is None:
            raise ConfigError("KLIEP: no training point is within reach of any kernel centre; use a larger width")
        self.last_params = {"gamma": gamma, "cv_scores": scores, "median": med}
        return kernel_apply(ztr, centers, gamma, alpha)

    def _cv_score(self, phi_v: Tensor, b: Tensor, folds: Tensor) -> float:
        """Mean held-out log r over the folds of the validation rows ``phi_v`` (mean training φ: ``b``)."""
        total = 0.0
        for k in range(self.n_folds):
            alpha = kliep_alpha(phi_v[folds != k], b, self.tol)
            if alpha is None:
                return -math.inf
            total += float(torch.log((phi_v[folds == k] @ alpha).clamp_min(1e-300)).mean())
        return total / self.n_folds


# ----------------------------------------------------------------------------- RuLSIF
def rulsif_theta(phi_tr: Tensor, phi_v: Tensor, alpha: float, lambda_: float) -> Tensor:
    """RuLSIF coefficients ``max(0, (H + lambda I)^-1 h)`` from kernel features ``[n, b]``."""
    return _rulsif_theta(phi_tr.T @ phi_tr / phi_tr.shape[0], phi_v, alpha, lambda_)


def _rulsif_theta(mean_gram_tr: Tensor, phi_v: Tensor, alpha: float, lambda_: float) -> Tensor:
    """:func:`rulsif_theta` with the training features given as mean φφᵀ [b, b] (computed in chunks at scale)."""
    h_mat = alpha * phi_v.T @ phi_v / phi_v.shape[0] + (1 - alpha) * mean_gram_tr
    h_mat.diagonal().add_(lambda_)
    return torch.linalg.solve(h_mat, phi_v.mean(0)).clamp_min(0.0)


def rulsif_loo_score(phi_tr: Tensor, phi_v: Tensor, alpha: float, lambda_: float) -> float:
    """Exact closed-form leave-one-out score of RuLSIF; held-out pairs = first min(n_tr, n_v) rows.

    Pair i's rows are removed, ``theta_-i = max(0, (H_-i + lambda I)^-1 h_-i)`` refitted and
    scored by the RuLSIF loss ``alpha/2 r(v_i)^2 + (1-alpha)/2 r(tr_i)^2 - r(v_i)``. Removing a
    pair is a rank-2 downdate of ``G = alpha/(n_v-1) Psi^T Psi + (1-alpha)/(n_tr-1) Phi^T Phi +
    lambda I``: Woodbury with one 2x2 system per pair, so all refits cost a few [b, n] products.

    At alpha = 0 this equals Kanamori et al.'s (2009) uLSIF formula in R ``densratio``
    (``B = H + lambda (n_tr-1)/n_tr I``, B0, B1, B2). For alpha > 0 R reuses that rank-1 formula
    with the mixed H (rescaling its validation part, removing only the training row) and scores
    with the alpha = 0 loss; here both are exact. The Python port (``densratio`` on PyPI,
    ``search_sigma_and_lambda``) also drops ``/ denom`` (the Sherman-Morrison denominator of the
    removed training row) from ``B1 = B^-1 X_nu + B^-1 X_de diag(1^T (X_nu * B^-1 X_de) / denom)``,
    which R and the original MATLAB keep.
    """
    m = min(phi_tr.shape[0], phi_v.shape[0])
    return _rulsif_loo(phi_tr.T @ phi_tr, phi_tr.shape[0], phi_tr[:m], phi_v, alpha, lambda_)


def _rulsif_loo(gram_tr: Tensor, n_tr: int, phi_tr_held: Tensor, phi_v: Tensor, alpha: float,
                lambda_: float) -> float:
    """:func:`rulsif_loo_score` from Σ φφᵀ over all training rows [b, b] and the features of the first
    min(n_tr, n_v) training rows only (so n_tr may be 10⁶)."""
    n_v = phi_v.shape[0]
    m = min(n_tr, n_v)
    c_v, c_tr = alpha / (n_v - 1), (1 - alpha) / (n_tr - 1)
    g = c_v * phi_v.T @ phi_v + c_tr * gram_tr
    g.diagonal().add_(lambda_)
    psi, phi = phi_v[:m].T, phi_tr_held[:m].T  # [b, m] held-out columns
    chol = torch.linalg.cholesky(g)
    sol = torch.cholesky_solve(torch.cat([phi_v.sum(0, keepdim=True).T, psi, phi], 1), chol)
    g_sum, p_v, p_tr = sol[:, :1], sol[:, 1 : m + 1], sol[:, m + 1 :]
    y = (g_sum - p_v) / (n_v - 1)  # G^-1 h_{-i}
    s_vv, s_vt, s_tt = (psi * p_v).sum(0), (psi * p_tr).sum(0), (phi * p_tr).sum(0)
    u_v, u_t = (psi * y).sum(0), (phi * y).sum(0)
    # (I - C S) z = C U^T y with C = diag(c_v, c_tr), S = U^T G^-1 U, U = [psi_i, phi_i]
    m11, m12, m21, m22 = 1 - c_v * s_vv, -c_v * s_vt, -c_tr * s_vt, 1 - c_tr * s_tt
    r1, r2 = c_v * u_v, c_tr * u_t
    det = m11 * m22 - m12 * m21
    z1, z2 = (m22 * r1 - m12 * r2) / det, (m11 * r2 - m21 * r1) / det
    theta = (y + p_v * z1 + p_tr * z2).clamp_min(0.0)
    r_v, r_tr = (psi * theta).sum(0), (phi * theta).sum(0)
    return float((alpha / 2 * r_v**2 + (1 - alpha) / 2 * r_tr**2 - r_v).mean())


class RuLSIF(DensityRatioEstimator):
    """Relative unconstrained least-squares importance fitting, RuLSIF (Yamada et al., 2011).

    Yamada, Suzuki, Kanamori, Hachiya & Sugiyama, "Relative density-ratio estimation for robust
    distribution comparison", NeurIPS 2011; ``alpha=0`` is uLSIF (Kanamori, Hido & Sugiyama,
    "A least-squares approach to direct importance estimation", JMLR 2009). Estimates the
    alpha-relative ratio (bounded by 1/alpha) with Gaussian kernels phi centred on validation
    points:

        r_a(z) = p_v / (alpha p_v + (1 - alpha) p_tr) ~ phi(z)^T theta,
        theta = max(0, (H + lambda I)^-1 h),   h = mean_v phi,
        H = alpha/n_v sum_v phi phi^T + (1 - alpha)/n_tr sum_tr phi phi^T.

    (sigma, lambda) not given are chosen by exact closed-form leave-one-out cross-validation
    (see ``rulsif_loo_score``) over ``median * sigma_grid`` x ``lambda_grid``.

    Args:
        alpha: Relative parameter in [0, 1); 0 gives plain uLSIF (unbounded ratio).
        sigma: Fixed kernel width (standardised units); None cross-validates sigma_grid.
        lambda_: Fixed ridge parameter; None cross-validates lambda_grid.
        sigma_grid: Candidate sigmas as multiples of the median heuristic.
        lambda_grid: Candidate ridge parameters.
        n_centers: Maximum number of kernel centres (drawn from the validation set).
        seed: Seed for the centre draw and the leave-one-out pairing.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        sigma: Optional[float] = None,
        lambda_: Optional[float] = None,
        sigma_grid: Sequence[float] = DEFAULT_SIGMA_GRID,
        lambda_grid: Sequence[float] = DEFAULT_LAMBDA_GRID,
        n_centers: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha < 1.0:
            raise ConfigError(f"alpha must be in [0, 1), got {alpha}")
        if sigma is not None and not sigma > 0:
            raise ConfigError(f"sigma must be positive or None, got {sigma}")
        if lambda_ is not None and not lambda_ > 0:
            raise ConfigError(f"lambda_ must be positive or None, got {lambda_}")
        if not sigma_grid or min(sigma_grid) <= 0 or not lambda_grid or min(lambda_grid) <= 0:
            raise ConfigError("sigma_grid and lambda_grid must be non-empty and positive")
        self.alpha, self.sigma, self.lambda_ = float(alpha), sigma, lambda_
        self.sigma_grid = tuple(float(s) for s in sigma_grid)
        self.lambda_grid = tuple(float(v) for v in lambda_grid)
        self.n_centers, self.seed = int(n_centers), int(seed)

    def _fit_predict(self, ztr: Tensor, zv: Tensor) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        centers = _pick_centers(zv, self.n_centers, gen)
        med = None
        if self.sigma is not None:
            sigmas = [float(self.sigma)]
        else:
            med = median_heuristic(torch.cat([ztr, zv]))
            sigmas = [m * med for m in self.sigma_grid]
        lambdas = [float(self.lambda_)] if self.lambda_ is not None else list(self.lambda_grid)
        best, best_score = (sigmas[0], lambdas[0]), math.inf
        grams_tr = {}  # Σ φφᵀ over the training points per sigma, from the CV's one pass (if it runs)
        if len(sigmas) * len(lambdas) > 1:
            if ztr.shape[0] < 2:
                raise ConfigError("RuLSIF: leave-one-out CV needs >= 2 training points; pass sigma and lambda_")
            # Held-out pairs are the first min(n_tr, n_v) rows, so shuffle: inputs may be sorted.
            ztr_cv = ztr[torch.randperm(ztr.shape[0], generator=gen).to(ztr.device)]
            zv_cv = zv[torch.randperm(zv.shape[0], generator=gen).to(zv.device)]
            m = min(ztr.shape[0], zv.shape[0])
            # Σ φφᵀ over all training rows does not depend on their order: one pass over ztr (n may be 10⁶) for
            # every width, which the final fit reuses.
            _, grams = kernel_stats(ztr, centers, [sigma_to_gamma(s) for s in sigmas], gram=True)
            grams_tr = dict(zip(sigmas, grams))
            for s in sigmas:
                phi_held = gaussian_kernel(ztr_cv[:m], centers, sigma_to_gamma(s))
                phi_v = gaussian_kernel(zv_cv, centers, sigma_to_gamma(s))
                for lam in lambdas:
                    score = _rulsif_loo(grams_tr[s], ztr.shape[0], phi_held, phi_v, self.alpha, lam)
                    if score < best_score:  # strict: first minimum wins, NaN never does
                        best, best_score = (s, lam), score
        sigma, lam = best
        gamma = sigma_to_gamma(sigma)
        gram_tr = grams_tr[sigma] if sigma in grams_tr else kernel_gram(ztr, centers, gamma)[0]
        theta = _rulsif_theta(gram_tr / ztr.shape[0], gaussian_kernel(zv, centers, gamma), self.alpha, lam)
        self.last_params = {"sigma": sigma, "lambda": lam, "loo_score": None if math.isinf(best_score) else best_score,
                            "median": med}
        return kernel_apply(ztr, centers, gamma, theta)
