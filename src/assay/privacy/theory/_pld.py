"""dp_accounting's privacy-loss pieces that assay extends: the Poisson-subsampled
Gaussian's loss under remove/add neighbouring, and an FFT self-composition of a
privacy-loss PMF (`assay.privacy.theory.accounting.dpsgd` composes DP-SGD's steps with them)."""

from __future__ import annotations

import math

import numpy as np
from dp_accounting.pld import pld_pmf
from dp_accounting.pld import privacy_loss_mechanism as pl_mech
from scipy import fft as sp_fft
from scipy import special


class _SubsampledGaussianLoss(pl_mech.GaussianPrivacyLoss):
    """dp_accounting's subsampled Gaussian privacy loss with a vectorised δ(ε).

    dp_accounting inverts the privacy loss one ε at a time in Python, which is most
    of the cost of building a PLD (one call per lattice point). The inverse below is
    the same closed form applied to the whole array: x(ε) is the Gaussian inverse of
    the unsubsampled loss ℓ = log(1 + (e^{±ε} − 1)/q), and δ is read exactly as
    dp_accounting reads it. The PLD built from it equals dp_accounting's to float
    rounding (tests/privacy/test_accounting.py checks this).
    """

    def get_delta_for_epsilon(self, epsilon):
        eps = np.atleast_1d(np.asarray(epsilon, dtype=float))
        q, s, var = self.sampling_prob, self.sensitivity, self._standard_deviation ** 2
        if q == 1.0 or self.adjacency_type not in (pl_mech.AdjacencyType.ADD,
                                                   pl_mech.AdjacencyType.REMOVE):
            return super().get_delta_for_epsilon(epsilon)
        add = self.adjacency_type == pl_mech.AdjacencyType.ADD
        edge = -math.log1p(-q) if add else math.log1p(-q)
        deltas = np.zeros_like(eps)
        inside = eps < edge if add else eps > edge
        if not add:
            deltas[~inside] = -np.expm1(eps[~inside])
        e = eps[inside]
        # log(e^{b}/q + 1 − 1/q) with b = ∓ε, as dp_accounting's log_a_times_exp_b_plus_c
        d = (-e if add else e) + math.log(1 / q)
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = d + np.log1p(-np.exp(math.log(1 / q - 1) - d))
        # at the edge itself the unsubsampled loss is ±∞ (dp_accounting's isclose case)
        at_edge = np.isclose(e, edge, rtol=1e-9, atol=0.0)
        if add:
            loss = np.where(at_edge, math.inf, -loss)
            x = s + (-0.5 * s - loss * var / s)
        else:
            loss = np.where(at_edge, -math.inf, loss)
            x = -0.5 * s - loss * var / s
        deltas[inside] = self.mu_upper_cdf(x) - np.exp(e + self.mu_lower_log_cdf(x))
        deltas = np.clip(deltas, 0, 1)
        return float(deltas[0]) if np.ndim(epsilon) == 0 else deltas


_TAIL_MASS_TRUNCATION = 1e-15  # dp_accounting's default for self_compose


def _self_compose(pmf: pld_pmf.PLDPmf, num_times: int) -> pld_pmf.PLDPmf:
    """dp_accounting's ``self_compose`` of one PMF, with its Chernoff bounds vectorised.

    dp_accounting bounds the support of the T-fold convolution with 40 separate
    ``logsumexp`` calls, which dominate small compositions; here they are one call.
    The bounds, the FFT, the truncation and the infinity mass (the truncated tail is
    added to it: pessimistic) are dp_accounting's, unchanged.
    """
    if num_times == 1 or (isinstance(pmf, pld_pmf.SparsePLDPmf)
                          and pmf.size ** num_times <= pld_pmf._MAX_PMF_SPARSE_SIZE):
        return pmf.self_compose(num_times, _TAIL_MASS_TRUNCATION)
    dense = pmf.to_dense_pmf()
    probs = np.asarray(dense._probs, dtype=float)
    n, tail = probs.size, _TAIL_MASS_TRUNCATION
    orders = np.concatenate((np.arange(-20, 0), np.arange(1, 21))) / n
    log_mgf = np.empty(orders.size)
    for rows in np.array_split(np.arange(orders.size), max(1, orders.size * n // 4_000_000)):
        log_mgf[rows] = special.logsumexp(np.arange(n)[None, :] * orders[rows, None],
                                          b=probs[None, :], axis=1)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bound = (num_times * log_mgf + math.log(2 / tail)) / orders
    finite = np.isfinite(bound)
    upper, lower = (n - 1) * num_times, 0
    if (finite & (orders > 0)).any():
        upper = min(upper, int(np.ceil(bound[finite & (orders > 0)]).min()))
    if (finite & (orders < 0)).any():
        lower = max(lower, int(np.floor(bound[finite & (orders < 0)]).max()))
    out_len = upper - lower + 1
    fast_len = sp_fft.next_fast_len(max(out_len, n))
    out = np.real(sp_fft.ifft(sp_fft.fft(probs, fast_len) ** num_times))
    out = np.roll(out, -lower)[:out_len]
    inf_mass = tail - math.expm1(num_times * math.log1p(-dense._infinity_mass))
    return pld_pmf.DensePLDPmf(dense._discretization, dense._lower_loss * num_times + lower,
                               out, inf_mass, dense._pessimistic_estimate)
