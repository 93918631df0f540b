"""smartnoise-synth's MST at the largest budget meeting an attack-risk target, by assay's
own f-DP accounting (`assay synth-dp --generator mst`; needs ``pip install 'assay[synth]'``).

What MST spends (smartnoise-synth 1.0.8, ``snsynth.mst``), for ``d`` columns: smartnoise
turns the (ε, δ) it is given into ρ (``cdp_rho``) and splits it in three. The ``d``
1-way marginals, then the ``d − 1`` 2-way marginals of the chosen tree, are Gaussian
measurements of sensitivity 1 at noise ``σ = √(3 / (2ρ))`` spread over them (ρ/3 each
part): together exactly μ-GDP with ``μ_G = √2 / σ = √(4ρ/3)``. The tree is chosen by
``d − 1`` exponential mechanisms of parameter ``ε_EM = √(8 (ρ/3) / (d − 1))`` on a score
of sensitivity 1: each is ε_EM-DP. Those are not Gaussian, so "ρ-zCDP is √(2ρ)-GDP" does
not hold for MST; its curve here is the composition of the Gaussian part with ``d − 1``
pure ε_EM-DP curves (`assay.privacy.theory.accounting.compose`, a pessimistic PLD).

Calibration: ρ is the largest whose curve meets the target; the (ε, δ) handed to
smartnoise is the one whose ``cdp_rho`` is at most that ρ and closest to it (bisection
on ε at δ = `HAND_DELTA`); the curve reported is the one at the ρ smartnoise will use.

Two changes to smartnoise's MST (``_NoisyTotalMST``). Its sampler draws rows i.i.d. from
the model (mbi's default rounding correlates sibling columns). And smartnoise fits with
the exact number of rows (``known_total=len(data)``) and samples that many by default,
which no finite budget covers between neighbours that differ by one row. Here the total
is the inverse-variance mean of the noisy 1-way marginals' sums (post-processing), as in
assay's own generator; the rest of ``MST`` is smartnoise's code. The domain comes from
`assay.synth.marginals.check_domain` (public bounds; every cell is in the domain, so no
cell's emptiness is read from the rows). smartnoise draws its noise from OpenDP and its
decompression from NumPy's global generator: an MST release is not reproducible by seed.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from assay._serial import Serial
from assay._validation import InvalidParameterError
from assay.privacy.theory.accounting import (
    ApproxDPTradeOff,
    GaussianTradeOff,
    TradeOff,
    compose,
)
from assay.privacy.theory.calibrate import RiskTarget, largest_meeting
from assay.synth.marginals import ColumnDomain

__all__ = ["HAND_DELTA", "INSTALL", "MSTCalibration", "calibrate_mst", "check_extra",
           "fit_mst", "fit_mst_model", "mst_curve", "sample_mst"]

#: δ of the (ε, δ) handed to smartnoise (only its conversion to ρ depends on it).
HAND_DELTA = 1e-5
#: How the optional generators are installed.
INSTALL = "pip install 'assay[synth]'"


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_extra(module: str, what: str) -> None:
    """A one-line refusal naming the install command when ``module`` is not installed."""
    if not _installed(module):
        raise InvalidParameterError(f"{what} needs the optional synth extra ({INSTALL}). "
                                    f"Got no {module} installed.")


def _selection_epsilon(rho: float, n_columns: int) -> float:
    return math.sqrt(8 * (rho / 3) / (n_columns - 1))


def mst_curve(rho: float, n_columns: int) -> TradeOff:
    """MST's f-DP curve at ρ for ``n_columns`` columns (see the module's note)."""
    if n_columns < 2:
        raise InvalidParameterError(f"MST needs at least 2 columns. Got {n_columns}.")
    gaussian = GaussianTradeOff(math.sqrt(4 * rho / 3))
    selection = ApproxDPTradeOff(_selection_epsilon(rho, n_columns))
    return compose(gaussian, *[selection] * (n_columns - 1))


@dataclass
class MSTCalibration(Serial):
    """The budget an MST release spends, by assay's accounting.

    Attributes
    ----------
    rho : float
        The ρ smartnoise uses (``cdp_rho(epsilon, delta)``).
    epsilon, delta : float
        What smartnoise was handed.
    gaussian_mu : float
        μ of the Gaussian measurements together, √(4ρ/3).
    selection_epsilon : float
        ε of each exponential mechanism choosing the tree.
    n_selections : int
        Exponential mechanisms (columns − 1).
    rho_limit : float
        The largest ρ whose curve meets the target (``rho`` is at most this).
    """

    rho: float
    epsilon: float
    delta: float
    gaussian_mu: float
    selection_epsilon: float
    n_selections: int
    rho_limit: float
    accounting: str = ("Gaussian measurements (exactly μ-GDP) composed with pure ε-DP "
                       "exponential mechanisms, pessimistic PLD")

    __json_required__ = ("accounting",)

    def curve(self) -> TradeOff:
        return mst_curve(self.rho, self.n_selections + 1)


def _cdp_rho(epsilon: float, delta: float) -> float:
    from snsynth.utils import cdp_rho

    return float(cdp_rho(epsilon, delta))


def calibrate_mst(target: RiskTarget, n_columns: int) -> MSTCalibration:
    """The largest ρ meeting ``target`` and the (ε, δ) whose smartnoise ρ is just below it."""
    meets = lambda rho: target.measure(mst_curve(rho, n_columns)) <= target.value  # noqa: E731
    if not meets(1e-12):
        raise InvalidParameterError(f"--risk must allow some release. Got {target.describe()}.")
    # ρ is searched to 1e-4 of itself: 0.3 % more budget is 0.6 % more ρ.
    rho_limit = largest_meeting(meets, upper=1e4, xtol=1e-7)[0]
    # cdp_rho grows with ε: the largest ε whose ρ stays at most rho_limit.
    eps = largest_meeting(lambda e: _cdp_rho(e, HAND_DELTA) <= rho_limit, upper=1e4,
                          xtol=1e-7)[0]
    rho = _cdp_rho(eps, HAND_DELTA)
    return MSTCalibration(rho=rho, epsilon=eps, delta=HAND_DELTA,
                          gaussian_mu=math.sqrt(4 * rho / 3),
                          selection_epsilon=_selection_epsilon(rho, n_columns),
                          n_selections=n_columns - 1, rho_limit=rho_limit)


def _noisy_mst_class():
    from snsynth.mst import MSTSynthesizer
    from snsynth.mst import mst as upstream

    class _NoisyTotalMST(MSTSynthesizer):
        """smartnoise's MST with the row total estimated from its noisy 1-way marginals."""

        def MST(self, data, epsilon, delta):  # noqa: N802 (smartnoise's name)
            rho = upstream.cdp_rho(epsilon, delta)
            sigma = np.sqrt(3 / (2 * rho))
            cliques = [(col,) for col in data.domain]
            log1 = self.measure(data, cliques, sigma)
            sizes = np.array([np.asarray(m.noisy_measurement).size for m in log1], float)
            sums = np.array([float(np.sum(m.noisy_measurement)) for m in log1])
            # Every 1-way marginal has the same noise per count: weight 1 / cells.
            total = max(2.0, float((sums / sizes).sum() / (1.0 / sizes).sum()))
            data, log1, self.undo_compress_fn = self.compress_domain(data, log1)
            cliques = self.select(data, rho / 3.0, log1, total)
            log2 = self.measure(data, cliques, sigma)
            self.synthesizer = upstream.estimation.mirror_descent(
                data.domain, log1 + log2, known_total=total, iters=5000,
                marginal_oracle=upstream.marginal_oracles.message_passing_stable)
            self.num_rows, self.cliques_, self.sigma_ = int(round(total)), cliques, sigma

        def sample(self, samples=None):
            # i.i.d. draws from the model. mbi's default "round" ranks every child column by
            # row order within its parent's groups, which correlates siblings that the model
            # holds independent (about 0.5 between the numeric columns of German credit).
            data = self.synthesizer.synthetic_data(rows=samples or self.num_rows,
                                                   method="sample")
            decompressed = self.undo_compress_fn(data)
            rows = [tuple(t[1:]) for t in decompressed.df.itertuples()]
            return self._transformer.inverse_transform(rows)

    return _NoisyTotalMST


def fit_mst_model(real: pd.DataFrame, domain: list[ColumnDomain],
                  calibration: MSTCalibration) -> Any:
    """smartnoise's MST (with the changes above) fitted on the cells of ``real`` at
    ``calibration``'s (ε, δ); `sample_mst` draws from it."""
    from snsynth.transform import LabelTransformer, TableTransformer

    frame = real.rename(columns=str)
    codes = pd.DataFrame({d.name: d.encode(frame[d.name]) for d in domain})
    # The transformer learns every cell of the public domain, not only those REAL fills.
    width = max(d.size for d in domain)
    every_cell = pd.DataFrame({d.name: np.arange(width) % d.size for d in domain})
    # Missing values already have a cell of their own: no extra null cell.
    transformer = TableTransformer([LabelTransformer(nullable=False) for _ in domain])
    transformer.fit(every_cell)
    model = _noisy_mst_class()(epsilon=calibration.epsilon, delta=calibration.delta)
    model.fit(codes, transformer=transformer, categorical_columns=list(codes.columns))
    return model


def sample_mst(model: Any, domain: list[ColumnDomain], n_rows: int | None = None,
               rng: np.random.Generator | None = None) -> pd.DataFrame:
    """``n_rows`` rows (default: the noisy total) of a fitted MST, decoded from the cells."""
    rng = np.random.default_rng() if rng is None else rng
    n = model.num_rows if n_rows is None else int(n_rows)
    # smartnoise returns a frame or a list of tuples: its columns in REAL's order either way
    cells = pd.DataFrame(np.asarray(model.sample(n), dtype=float),
                         columns=[d.name for d in domain])
    return pd.DataFrame({d.name: d.decode(cells[d.name].to_numpy(np.int64), rng)
                         for d in domain})


def fit_mst(real: pd.DataFrame, domain: list[ColumnDomain],
            calibration: MSTCalibration, n_rows: int | None = None
            ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fit MST on the cells of ``real`` at ``calibration``'s (ε, δ) and sample a release.

    Returns the release (REAL's columns, values decoded from the cells) and what the fit
    chose: the noise σ, the 2-way marginals of the tree and the noisy row total.
    """
    model = fit_mst_model(real, domain, calibration)
    synth = sample_mst(model, domain, n_rows)
    names = [d.name for d in domain]
    tree = [[names[int(str(c).removeprefix("col"))] for c in clique]
            for clique in model.cliques_]
    return synth, {"sigma": float(model.sigma_), "tree": tree, "noisy_total": model.num_rows}
