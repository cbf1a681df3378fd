"""Simulated (n_seeds, n_test) correctness matrices with known population truth.

Latent threshold model. Run r, seed s, test doc d is right when

    L[r, s, d] = m_r + H[d] + V[r, d] + U[r, s] + E[r, s, d] > 0

H[d]       per-doc difficulty shared by every run       N(0, difficulty_sd^2): with a large sd many docs
                                                         are right (or wrong) for every head
V[r, d]    each run's own per-doc effect                 N(0, doc_sd^2), correlated across runs (doc_corr);
                                                         this is what makes docs differ in a - b
U[r, s]    per-seed shift (each seed: own split, own     N(0, sigma_u^2), correlated across runs
           training)                                     (seed_corr); sigma_u is calibrated so that the
                                                         per-seed population difference of the contrast
                                                         has sd `seed_sd` in accuracy units
E[r, s, d] seed x doc interaction: a seed's head         N(0, inter_sd^2), correlated across runs
           flipping single docs                          (inter_corr): near 1 for runs that share weights

m_r is set so that the population accuracy (new seed, new doc) of run r is exactly acc[r]:
P(L > 0) = Phi(m_r / tau_r), tau_r^2 = difficulty_sd^2 + doc_sd^2 + sigma_u^2 + inter_sd^2.

Truth reported
* population: acc[r] (expected accuracy over new seeds AND new docs); a difference is acc[a] - acc[b].
* conditional ("these seeds, new docs"): for each simulated replicate, the mean over its seeds of
  Phi((m_r + U[r, s]) / kappa_r), kappa_r^2 = tau_r^2 - sigma_u^2.
* the variance components of any contrast sum_r c_r y_r on the accuracy scale (seed, doc, interaction),
  by Gauss-Hermite quadrature (seed and doc parts) and bivariate-normal orthant probabilities (total),
  so that the true standard error of a mean over S seeds and N docs is known exactly:
  Var = var_seed / S + var_doc / N + var_inter / (S N).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from w2s_gguf.core.distributions import normal_quantile

_erfc = np.frompyfunc(math.erfc, 1, 1)


def phi_cdf(x) -> np.ndarray:
    """Standard normal CDF, elementwise (exact: math.erfc)."""
    return 0.5 * _erfc(-np.asarray(x, dtype=np.float64) / math.sqrt(2.0)).astype(np.float64)


def _corr_matrix(corr, n: int) -> np.ndarray:
    if np.ndim(corr) == 0:
        m = np.full((n, n), float(corr))
        np.fill_diagonal(m, 1.0)
        return m
    m = np.asarray(corr, dtype=np.float64)
    assert m.shape == (n, n)
    return m


def _gauss_expect(f, cov: np.ndarray, n_nodes: int = 40) -> float:
    """E f(X), X ~ N(0, cov) in k dims, by a tensor Gauss-Hermite rule. f maps (points, k) -> (points,)."""
    k = cov.shape[0]
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * k), indexing="ij")
    xi = np.stack([g.ravel() for g in grids], axis=1)
    wts = np.prod(np.stack(np.meshgrid(*([w] * k), indexing="ij")).reshape(k, -1), axis=0)
    vals, vecs = np.linalg.eigh(cov)
    root = vecs * np.sqrt(np.clip(vals, 0, None))  # cov = root @ root.T, also when singular
    return float(wts @ f(xi @ root.T))


def _orthant(a: float, b: float, rho: float) -> float:
    """P(X > -a, Y > -b) for standard bivariate normal (X, Y) with correlation rho."""
    if rho >= 1 - 1e-12:
        return float(phi_cdf(min(a, b)))
    x = np.linspace(-a, 12.0, 40001)
    f = np.exp(-x * x / 2) / math.sqrt(2 * math.pi) * phi_cdf((b + rho * x) / math.sqrt(1 - rho * rho))
    return float(np.sum((f[1:] + f[:-1]) / 2 * np.diff(x)))


@dataclass(frozen=True)
class Design:
    """Knobs of the simulation (module docstring). acc: population accuracy of each run."""

    acc: tuple[float, ...]
    seed_sd: float = 0.0  # sd over seeds of the per-seed population difference acc[c0] - acc[c1] (accuracy units)
    contrast: tuple[int, int] = (0, 1)  # the pair of runs seed_sd refers to
    difficulty_sd: float = 2.5
    doc_sd: float = 1.0
    inter_sd: float = 1.0
    doc_corr: float | tuple = 0.3
    seed_corr: float | tuple = 0.5
    inter_corr: float | tuple = 0.3

    @property
    def n_runs(self) -> int:
        return len(self.acc)

    # -- latent parameters ------------------------------------------------------------------------

    @cached_property
    def sigma_u(self) -> float:
        """Latent per-seed sd giving sd `seed_sd` of the contrast's per-seed population difference."""
        if self.seed_sd <= 0:
            return 0.0
        lo, hi = 0.0, 5.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if math.sqrt(self._seed_var_of([1.0, -1.0], mid, runs=self.contrast)) < self.seed_sd:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    def _kappa2(self) -> float:
        return self.difficulty_sd ** 2 + self.doc_sd ** 2 + self.inter_sd ** 2

    def _means(self, sigma_u: float) -> np.ndarray:
        tau = math.sqrt(self._kappa2() + sigma_u ** 2)
        return np.array([tau * normal_quantile(a) for a in self.acc])

    def _seed_var_of(self, c, sigma_u: float, runs=None) -> float:
        runs = list(range(self.n_runs)) if runs is None else list(runs)
        c = np.asarray(c, dtype=np.float64)
        m = self._means(sigma_u)[runs]
        kappa = math.sqrt(self._kappa2())
        cov = sigma_u ** 2 * _corr_matrix(self.seed_corr, self.n_runs)[np.ix_(runs, runs)]
        f = lambda u: phi_cdf((m + u) / kappa) @ c
        mean = _gauss_expect(f, cov)
        return max(_gauss_expect(lambda u: f(u) ** 2, cov) - mean * mean, 0.0)

    @cached_property
    def m(self) -> np.ndarray:
        return self._means(self.sigma_u)

    @cached_property
    def kappa(self) -> float:
        return math.sqrt(self._kappa2())

    @cached_property
    def _chol(self) -> dict[str, np.ndarray]:
        out = {}
        for name, corr in (("doc", self.doc_corr), ("seed", self.seed_corr), ("inter", self.inter_corr)):
            c = _corr_matrix(corr, self.n_runs)
            vals, vecs = np.linalg.eigh(c)
            out[name] = (vecs * np.sqrt(np.clip(vals, 0, None))).astype(np.float32)
        return out

    # -- truth ------------------------------------------------------------------------------------

    def components(self, c) -> dict[str, float]:
        """Variance components (accuracy scale, per seed-doc cell) of the contrast sum_r c_r y_r."""
        c = np.asarray(c, dtype=np.float64)
        nr = self.n_runs
        m, su = self.m, self.sigma_u
        seed = self._seed_var_of(c, su)
        # Doc part: given doc effects D_r = H + V_r, P(right) = Phi((m_r + D_r) / sqrt(sigma_u^2 + inter_sd^2)).
        cov_d = self.difficulty_sd ** 2 + self.doc_sd ** 2 * _corr_matrix(self.doc_corr, nr)
        sd_rest = math.sqrt(su ** 2 + self.inter_sd ** 2)
        f = lambda d: phi_cdf((m + d) / sd_rest) @ c
        mean = _gauss_expect(f, cov_d, 30 if nr == 3 else 60)
        doc = max(_gauss_expect(lambda d: f(d) ** 2, cov_d, 30 if nr == 3 else 60) - mean * mean, 0.0)
        # Total: sum_rq c_r c_q Cov(y_r, y_q) from latent correlations.
        cov_l = (self.difficulty_sd ** 2 + self.doc_sd ** 2 * _corr_matrix(self.doc_corr, nr)
                 + su ** 2 * _corr_matrix(self.seed_corr, nr) + self.inter_sd ** 2 * _corr_matrix(self.inter_corr, nr))
        tau = np.sqrt(np.diag(cov_l))
        acc = np.asarray(self.acc)
        total = 0.0
        for r in range(nr):
            for q in range(nr):
                if c[r] == 0 or c[q] == 0:
                    continue
                if r == q:
                    cov = acc[r] * (1 - acc[r])
                else:
                    rho = cov_l[r, q] / (tau[r] * tau[q])
                    cov = _orthant(m[r] / tau[r], m[q] / tau[q], rho) - acc[r] * acc[q]
                total += c[r] * c[q] * cov
        return {"var_seed": seed, "var_doc": doc, "var_inter": total - seed - doc, "var_total": total,
                "mean": float(c @ acc)}

    def se(self, c, n_seeds: int, n_test: int) -> float:
        """True standard error of the mean of the contrast over n_seeds x n_test."""
        k = self.components(c)
        return math.sqrt(k["var_seed"] / n_seeds + k["var_doc"] / n_test + k["var_inter"] / (n_seeds * n_test))

    # -- sampling ---------------------------------------------------------------------------------

    def simulate(self, n_seeds: int, n_test: int, n_reps: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """n_reps independent replicates: correct (n_reps, n_runs, n_seeds, n_test) bool, and
        cond (n_reps, n_runs): each replicate's accuracy for its own seeds on new docs."""
        nr, f32 = self.n_runs, np.float32
        ch = self._chol
        m = self.m.astype(f32)[None, :, None, None]
        h = self.difficulty_sd * rng.standard_normal((n_reps, 1, 1, n_test), dtype=f32)
        v = self.doc_sd * np.einsum("rk,bdk->brd", ch["doc"], rng.standard_normal((n_reps, n_test, nr), dtype=f32))
        u = self.sigma_u * np.einsum("rk,bsk->brs", ch["seed"], rng.standard_normal((n_reps, n_seeds, nr), dtype=f32))
        e = np.einsum("rk,bsdk->brsd", ch["inter"], rng.standard_normal((n_reps, n_seeds, n_test, nr), dtype=f32))
        latent = e
        latent *= f32(self.inter_sd)
        latent += m + h + v[:, :, None, :] + u[:, :, :, None]
        correct = latent > 0
        cond = phi_cdf((self.m[None, :, None] + u.astype(np.float64)) / self.kappa).mean(axis=2)
        return correct, cond


# -- the three settings the comparison uses -----------------------------------------------------------

def gap_design(gap: float, seed_sd: float, weak_acc: float = 0.70, **kw) -> Design:
    """Strong ceiling (run 0) vs weak ceiling (run 1): different models, same splits."""
    return Design(acc=(weak_acc + gap, weak_acc), seed_sd=seed_sd, doc_corr=0.3, seed_corr=0.5, inter_corr=0.3, **kw)


def vs_xent_design(diff: float, seed_sd: float, xent_acc: float = 0.75, **kw) -> Design:
    """A method (run 0) vs xent (run 1): the same strong model and weak labels, another loss, so the two
    heads agree on most docs (latent correlations near 1)."""
    return Design(acc=(xent_acc + diff, xent_acc), seed_sd=seed_sd, doc_corr=0.97, seed_corr=0.9,
                  inter_corr=0.95, **kw)


PGR_CORR = ((1.0, 0.3, 0.6), (0.3, 1.0, 0.6), (0.6, 0.6, 1.0))


def pgr_design(gap: float, seed_sd: float, true_pgr: float = 0.5, weak_acc: float = 0.70, **kw) -> Design:
    """Runs (weak, strong, transfer): transfer is the strong model trained on the weak model's labels, so
    it correlates with both. seed_sd refers to the per-seed gap strong - weak."""
    return Design(acc=(weak_acc, weak_acc + gap, weak_acc + true_pgr * gap), seed_sd=seed_sd, contrast=(1, 0),
                  doc_corr=PGR_CORR, seed_corr=PGR_CORR, inter_corr=PGR_CORR, **kw)
