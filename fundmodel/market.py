"""Market models: correlated commodity prices, EUR/USD and the Chinese export-restriction regime.

Each log price ``X = ln S`` (real USD per tonne) follows either

- the Schwartz (1997) one-factor mean-reverting model
  ``dX = kappa (alpha - X) dt + sigma dW`` with ``alpha = ln(long-run price)``,
  simulated with its exact annual transition
  ``X_{t+1} = alpha + (X_t - alpha) e^{-kappa} + sigma sqrt((1 - e^{-2 kappa}) / (2 kappa)) eps``; or
- geometric Brownian motion ``dX = (mu - sigma^2/2) dt + sigma dW``.

The annual shocks ``eps`` of all materials and EUR/USD are dependent through a
Gaussian copula with the correlation matrix of ``markets.yaml`` or, optionally,
a Student-t copula (same correlation, symmetric tail dependence); their
marginals stay standard normal either way.

The export-restriction regime is a switch per scenario and year: it starts with
an annual probability that rises with the common geopolitical factor, lasts a
triangular number of years (rounded up), and while on it lifts the ex-China
price of every affected material at once by its ``price_uplift``.

References
----------
Schwartz, E. S. (1997). The stochastic behavior of commodity prices.
*Journal of Finance* 52(3), 923-973.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .assumptions.schema import Copula, MarketsFile, PriceModel, PriceProcess
from .sampling import ScenarioStreams, triangular_ppf

FX_FACTOR = "EURUSD"


@dataclass(frozen=True)
class MarketPaths:
    """Simulated market for a chunk of scenarios.

    Attributes
    ----------
    materials : list of str
        Material ids, the first axis of the price array.
    price_usd_per_t : ndarray of shape (n_materials, n_scenarios, n_years)
        Nominal price of each material in each year (export-restriction uplift included).
    real_price_ratio : ndarray of shape (n_materials, n_scenarios, n_years)
        Real price over its long-run level (drives price-sensitive political hazards).
    fx_usd_per_eur : ndarray of shape (n_scenarios, n_years)
        EUR/USD exchange rate, USD per EUR.
    export_restriction : ndarray of bool, shape (n_scenarios, n_years)
        True in years with a Chinese export restriction in force.
    """

    materials: list[str]
    price_usd_per_t: np.ndarray
    real_price_ratio: np.ndarray
    fx_usd_per_eur: np.ndarray
    export_restriction: np.ndarray

    def index(self, material: str) -> int:
        """Position of a material on the first axis of the price arrays."""
        return self.materials.index(material)


def correlation_root(corr: np.ndarray) -> np.ndarray:
    """Matrix ``L`` with ``L @ L.T == corr`` (Cholesky, or eigen-root when only semi-definite).

    Parameters
    ----------
    corr : ndarray of shape (n_factors, n_factors)

    Returns
    -------
    ndarray of shape (n_factors, n_factors)
    """
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(corr)
        return v * np.sqrt(np.clip(w, 0.0, None))


def log_price_moments(process: PriceProcess, log_spot: float, log_long_run: float, years: np.ndarray):
    """Closed-form mean and variance of the log price after ``years``.

    Parameters
    ----------
    process : PriceProcess
        Model and parameters.
    log_spot, log_long_run : float
        ``ln`` of the spot and long-run levels.
    years : ndarray
        Horizons in years.

    Returns
    -------
    mean, variance : ndarray
        For log-OU: ``alpha + (x0 - alpha) e^{-kappa t}`` and
        ``sigma^2 (1 - e^{-2 kappa t}) / (2 kappa)``; for GBM:
        ``x0 + (mu - sigma^2/2) t`` and ``sigma^2 t``.
    """
    t = np.asarray(years, dtype=float)
    s = process.volatility
    if process.model is PriceModel.LOG_OU:
        k = process.mean_reversion_per_year
        mean = log_long_run + (log_spot - log_long_run) * np.exp(-k * t)
        var = s * s * (1 - np.exp(-2 * k * t)) / (2 * k)
    else:
        mean = log_spot + (process.drift_per_year - s * s / 2) * t
        var = s * s * t
    return mean, var


def _log_paths(process: PriceProcess, log_spot: float, log_long_run: float,
               shocks: np.ndarray | None, n: int, n_years: int) -> np.ndarray:
    """Log-price paths, year-major (n_years, n); year 0 is the spot.

    ``shocks`` is year-major (n_years - 1, n); None gives the expected path ``ln E[S_t]``.
    """
    if shocks is None:
        mean, var = log_price_moments(process, log_spot, log_long_run, np.arange(n_years))
        return np.repeat((mean + var / 2)[:, None], n, axis=1)
    out = np.empty((n_years, n))
    out[0] = log_spot
    s = process.volatility
    if process.model is PriceModel.LOG_OU:
        k = process.mean_reversion_per_year
        phi = np.exp(-k)
        step_sd = s * np.sqrt((1 - phi * phi) / (2 * k))
        for t in range(1, n_years):  # loop over years; vectorised over scenarios
            out[t] = log_long_run + (out[t - 1] - log_long_run) * phi + step_sd * shocks[t - 1]
    else:
        drift = process.drift_per_year - s * s / 2
        out[1:] = log_spot + np.cumsum(drift + s * shocks[: n_years - 1], axis=0)
    return out


def correlated_shocks(streams: ScenarioStreams, markets: MarketsFile, start: int, stop: int,
                      n_years: int, copula: Copula, dof: float) -> np.ndarray:
    """Annual standard-normal shocks with the configured copula.

    Returns
    -------
    ndarray of shape (n_scenarios, n_years - 1, n_factors)
        Factors in ``markets.correlation.factors`` order.
    """
    factors = markets.correlation.factors
    n_f = len(factors)
    steps = max(n_years - 1, 1)
    z = streams.normals("market/shocks", start, stop, steps * n_f).reshape(-1, steps, n_f)
    root = correlation_root(np.asarray(markets.correlation.matrix, dtype=float))
    z = z @ root.T
    if copula is Copula.STUDENT_T:
        u = streams.uniforms("market/t_mixing", start, stop, steps, quasi=False)
        w = stats.chi2.ppf(u, dof) / dof
        t_draws = z / np.sqrt(w)[:, :, None]
        # back to normal marginals: the dependence (incl. tail dependence) is the t copula's
        z = stats.norm.ppf(np.clip(stats.t.cdf(t_draws, dof), 1e-16, 1 - 1e-16))
    return z


def export_restriction_regime(streams: ScenarioStreams, markets: MarketsFile, start: int, stop: int,
                              n_years: int, geo_multiplier: np.ndarray) -> np.ndarray:
    """Years under a Chinese export restriction.

    Parameters
    ----------
    geo_multiplier : ndarray of shape (n_scenarios, n_years)
        Mean-one multiplier ``exp(l g - l^2/2)`` of the onset intensity, with ``g`` the
        geopolitical factor and ``l`` the regime's ``geopolitical_loading``.

    Returns
    -------
    ndarray of bool, shape (n_scenarios, n_years)
        True when a restriction is in force; year 0 (the valuation year, priced at
        spot) is never restricted.
    """
    regime = markets.export_restriction
    n = stop - start
    u = streams.uniforms("market/export_restriction", start, stop, 2 * n_years, quasi=False)
    u = np.ascontiguousarray(u.T)  # year-major
    onset_u, duration_u = u[:n_years], u[n_years:]
    base_intensity = -np.log1p(-regime.annual_onset_probability)
    p_onset = -np.expm1(-base_intensity * geo_multiplier.T)
    durations = np.ceil(triangular_ppf(duration_u, regime.duration_years)).clip(min=1)
    active = np.zeros((n_years, n), dtype=bool)
    remaining = np.zeros(n)
    for t in range(1, n_years):  # loop over years; vectorised over scenarios
        onset = (remaining <= 0) & (onset_u[t] < p_onset[t])
        remaining = np.where(onset, durations[t], remaining)
        active[t] = remaining > 0
        remaining = remaining - 1
    forced = [t for t in regime.forced_years if t < n_years]
    active[forced] = True  # stress scenarios: a restriction in force in every scenario
    return active.T


def simulate_market(
    markets: MarketsFile,
    streams: ScenarioStreams,
    start: int,
    stop: int,
    n_years: int,
    inflation: float,
    geo_factor: np.ndarray,
    *,
    copula: Copula = Copula.GAUSSIAN,
    copula_dof: float = 5.0,
    risk_on: bool = True,
) -> MarketPaths:
    """Simulate prices, FX and the export-restriction regime for scenarios ``[start, stop)``.

    Parameters
    ----------
    markets : MarketsFile
        Validated ``markets.yaml``.
    streams : ScenarioStreams
        Random streams of the run.
    start, stop : int
        Scenario rows.
    n_years : int
        Horizon; year 0 is the valuation year, priced at spot.
    inflation : float
        Annual escalation of real prices into nominal USD.
    geo_factor : ndarray of shape (n_scenarios, n_years)
        Common geopolitical factor, standard normal in every year.
    copula, copula_dof
        Dependence of the annual shocks.
    risk_on : bool, default True
        False replaces every path by its expected value ``E[S_t]`` (no export restriction):
        the "price risk off" case of the risk attribution.

    Returns
    -------
    MarketPaths
    """
    n = stop - start
    materials = list(markets.materials)
    factors = markets.correlation.factors
    shocks = (
        correlated_shocks(streams, markets, start, stop, n_years, copula, copula_dof)
        if risk_on else None
    )

    # year-major (factor, year, scenario): every year of a factor is contiguous
    shocks_ym = None if shocks is None else np.ascontiguousarray(shocks.transpose(2, 1, 0))

    def factor_shocks(name: str):
        return None if shocks_ym is None else shocks_ym[factors.index(name)]

    regime = markets.export_restriction
    if risk_on and (regime.annual_onset_probability > 0 or regime.forced_years):
        loading = regime.geopolitical_loading
        geo_mult = np.exp(loading * geo_factor - loading * loading / 2)
        restricted = export_restriction_regime(streams, markets, start, stop, n_years, geo_mult)
    else:
        restricted = np.zeros((n, n_years), dtype=bool)

    escalation = ((1.0 + inflation) ** np.arange(n_years))[:, None]
    restricted_ym = restricted.T
    # arrays are built year-major (material, year, scenario) for contiguous per-year access
    # downstream; the public attributes are (material, scenario, year) views of them
    prices = np.empty((len(materials), n_years, n))
    ratios = np.empty_like(prices)
    for i, mat_id in enumerate(materials):  # loop over materials; vectorised over scenarios
        m = markets.materials[mat_id]
        log_lr = np.log(m.long_run_usd_per_t)
        real = np.exp(_log_paths(m, np.log(m.spot_usd_per_t), log_lr, factor_shocks(mat_id), n, n_years))
        uplift = regime.price_uplift.get(mat_id, 0.0)
        if uplift:
            real *= 1.0 + uplift * restricted_ym
        np.multiply(real, 1.0 / m.long_run_usd_per_t, out=ratios[i])
        np.multiply(real, escalation, out=prices[i])
    fx = markets.fx
    fx_path = np.exp(_log_paths(fx, np.log(fx.spot), np.log(fx.long_run), factor_shocks(FX_FACTOR), n, n_years))
    return MarketPaths(
        materials=materials,
        price_usd_per_t=prices.transpose(0, 2, 1),
        real_price_ratio=ratios.transpose(0, 2, 1),
        fx_usd_per_eur=fx_path.T,
        export_restriction=restricted,
    )
