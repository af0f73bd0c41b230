"""Market models: correlated commodity prices, EUR/USD and the Chinese export-restriction regime.

Price convention (one for every material; ``markets.yaml`` header):

- ``spot_usd_per_t`` and ``long_run_usd_per_t`` are **benchmark prices without the ex-China
  premium** (real USD per tonne of the priced product): the international price where one
  exists (LME, Pink Sheet), else the China-domestic or FOB-China quote (SMM, Fastmarkets,
  Argus) converted to USD, i.e. the price a buyer pays when China does not restrict exports.
- The **export-restriction regime carries the premium**: while a restriction is in force the
  ex-China price of every affected material is the benchmark times ``1 + price_uplift``.
  Simulated restrictions start from year 1, so a premium paid on the valuation date is in
  no starting price.
- ``long_run_usd_per_t`` is the **median** of the stationary distribution of the benchmark
  price, ``exp(alpha)`` of the log-OU model (what ``fundmodel calibrate prices`` estimates:
  ``alpha`` is the AR(1) intercept over ``1 - phi``); the stationary **mean** is
  ``long_run x exp(sigma^2 / (4 kappa))``, and the mean ex-China price adds the regime,
  ``x (1 + pi u)`` with ``pi`` the stationary restricted share (:func:`restricted_share`).

Each log price ``X = ln S`` (real USD per tonne) follows either

- the Schwartz (1997) one-factor mean-reverting model
  ``dX = kappa (alpha - X) dt + sigma dW`` with ``alpha = ln(long-run price)``,
  simulated with its exact annual transition
  ``X_{t+1} = alpha + (X_t - alpha) e^{-kappa} + sigma sqrt((1 - e^{-2 kappa}) / (2 kappa)) eps``,
  stationary law ``N(alpha, sigma^2 / (2 kappa))``; or
- geometric Brownian motion ``dX = (mu - sigma^2/2) dt + sigma dW``.

The annual shocks ``eps`` of all materials and EUR/USD are dependent through a
Gaussian copula with the correlation matrix of ``markets.yaml`` or, optionally,
a Student-t copula (same correlation, symmetric tail dependence); their
marginals stay standard normal either way.

The export-restriction regime is a switch per scenario and year: it starts with
an annual probability that rises with the common geopolitical factor, lasts a
triangular number of years (rounded up), and while on it lifts the ex-China
price of every affected material at once by its ``price_uplift``. The stationary
joint law of the regime, the geopolitical factor and each price ratio
(:class:`PriceRatioLaw`) normalises the price-sensitive political hazards
(:mod:`fundmodel.political`).

Parameter uncertainty (``fund.yaml: simulation.parameter_uncertainty``, issue 14): each
scenario may draw its own ``(alpha, kappa)`` of a material (:func:`draw_price_parameters`)
from the estimated covariance of the calibration (:func:`parameter_law`), the bivariate
normal of the estimates truncated to ``kappa > 0``, centred on ``markets.yaml``'s
``ln(long_run_usd_per_t)`` and ``mean_reversion_per_year``. The drawn ``exp(alpha)`` is that
scenario's long-run **median** (the convention above holds scenario by scenario, and the
shipped level is the median of the drawn medians; the mean long-run level over scenarios is
``long_run x exp(se^2 / 2)``, higher by Jensen's inequality). Draws come from a stream of
their own per material (``market/parameters/<material>``), so no other draw moves; with the
switch off every path is bit-for-bit the one of the fixed parameters. The price ratio of a
material with drawn parameters is taken over the scenario's own long-run median (a boom is a
price above the scenario's normal level); the political hazards keep the normalisation of
the central parameters (:class:`PriceRatioLaw`; see :func:`price_ratio_law`).

References
----------
Schwartz, E. S. (1997). The stochastic behavior of commodity prices.
*Journal of Finance* 52(3), 923-973.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from .assumptions.schema import Copula, MarketsFile, PriceModel, PriceProcess, Triangular
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
    #: drawn ``(ln long-run median, kappa)`` per scenario of the materials with parameter uncertainty
    parameters: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

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


def _log_paths(process: PriceProcess, log_spot: float, log_long_run: float | np.ndarray,
               shocks: np.ndarray | None, n: int, n_years: int, kappa: np.ndarray | None = None) -> np.ndarray:
    """Log-price paths, year-major (n_years, n); year 0 is the spot.

    ``shocks`` is year-major (n_years - 1, n); None gives the expected path ``ln E[S_t]``.
    ``kappa`` (shape (n,), with ``log_long_run`` of shape (n,)): per-scenario parameters
    (log-OU only, with shocks), see :func:`draw_price_parameters`.
    """
    if kappa is not None:
        out = np.empty((n_years, n))
        out[0] = log_spot
        phi = np.exp(-kappa)
        # -expm1: exact for the small kappa a truncated draw can give (random walk in the limit)
        step_sd = process.volatility * np.sqrt(-np.expm1(-2 * kappa) / (2 * kappa))
        for t in range(1, n_years):  # loop over years; vectorised over scenarios
            out[t] = log_long_run + (out[t - 1] - log_long_run) * phi + step_sd * shocks[t - 1]
        return out
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


#: Numerical floor of a drawn mean reversion (per year): the law is truncated at 0; a draw at the
#: floor is a random walk over any horizon (half-life 7e8 years).
KAPPA_FLOOR = 1e-9


@dataclass(frozen=True)
class ParameterLaw:
    """Law of one material's ``(alpha, kappa) = (ln long-run median, mean reversion per year)``.

    The bivariate normal ``N(mean, cov)`` truncated to ``kappa > 0`` (truncation of the joint
    law: ``kappa`` from its truncated marginal, then ``alpha`` from its normal law given ``kappa``).

    Attributes
    ----------
    mean : (float, float)
        ``(ln long_run_usd_per_t, mean_reversion_per_year)`` of ``markets.yaml``.
    sd : (float, float)
        Standard errors (fitted) or analyst standard deviations.
    correlation : float
    origin : str
        ``"fitted"`` (calibration covariance) or ``"analyst"`` (``parameter_uncertainty``).
    """

    mean: tuple[float, float]
    sd: tuple[float, float]
    correlation: float
    origin: str

    @property
    def covariance(self) -> np.ndarray:
        """Untruncated covariance of ``(alpha, kappa)``."""
        sa, sk = self.sd
        r = self.correlation
        return np.array([[sa * sa, r * sa * sk], [r * sa * sk, sk * sk]])

    @property
    def truncated_share(self) -> float:
        """Probability mass of ``kappa <= 0`` under the untruncated law (cut off)."""
        mk, sk = self.mean[1], self.sd[1]
        return float(stats.norm.cdf(-mk / sk)) if sk > 0 else 0.0

    def sample(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha, kappa)`` from uniforms ``u`` of shape (n, 2) by inverse CDFs.

        ``kappa = m_k + s_k z_k`` with ``z_k = isf((1 - u_0) P(Z > -m_k/s_k))`` (the normal
        truncated below at ``-m_k / s_k``, i.e. ``kappa > 0``); ``alpha = m_a + s_a (r z_k +
        sqrt(1 - r^2) ppf(u_1))``.
        """
        (ma, mk), (sa, sk), r = self.mean, self.sd, self.correlation
        n = u.shape[0]
        if sk > 0:
            z_k = stats.norm.isf((1.0 - u[:, 0]) * stats.norm.sf(-mk / sk))
        else:
            z_k = np.zeros(n)
        kappa = np.maximum(mk + sk * z_k, KAPPA_FLOOR)
        alpha = ma + sa * (r * z_k + math.sqrt(max(1.0 - r * r, 0.0)) * stats.norm.ppf(u[:, 1]))
        return alpha, kappa


def parameter_law(material) -> ParameterLaw | None:
    """The law of a material's drawn parameters, or None when they are fixed.

    From the calibration's estimated covariance (``calibration.log_long_run_se``,
    ``mean_reversion_se``, ``log_long_run_mean_reversion_correlation``) or an analyst's sourced
    ``parameter_uncertainty``; None for GBM materials, for hand-set materials without one and
    for a zero spread.
    """
    if material.model is not PriceModel.LOG_OU:
        return None
    mean = (math.log(material.long_run_usd_per_t), float(material.mean_reversion_per_year))
    cal, pu = material.calibration, material.parameter_uncertainty
    if cal is not None and cal.has_covariance:
        law = ParameterLaw(mean, (float(cal.log_long_run_se), float(cal.mean_reversion_se)),
                           float(cal.log_long_run_mean_reversion_correlation), "fitted")
    elif pu is not None:
        law = ParameterLaw(mean, (float(pu.log_long_run_sd), float(pu.mean_reversion_sd)), float(pu.correlation),
                           "analyst")
    else:
        return None
    return law if law.sd[0] > 0 or law.sd[1] > 0 else None


def draw_price_parameters(streams: ScenarioStreams, markets: MarketsFile, start: int, stop: int
                          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each scenario's ``(ln long-run median, kappa)`` of every material with a :func:`parameter_law`.

    Draws are Latin hypercube (pseudo-random under ``--sampling pseudo``) from the stream
    ``market/parameters/<material>``: a pure function of (seed, material, scenario index), so
    chunk-invariant, and no other stream of the run moves.

    Returns
    -------
    dict
        ``{material: (alpha, kappa)}``, arrays of shape (stop - start,).
    """
    out = {}
    for mat_id, m in markets.materials.items():  # loop over materials; vectorised over scenarios
        law = parameter_law(m)
        if law is None:
            continue
        u = streams.uniforms(f"market/parameters/{mat_id}", start, stop, 2, sobol=False)
        out[mat_id] = law.sample(u)
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
    parameter_uncertainty: bool = False,
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
        the "price risk off" case of the risk attribution (parameters fixed at ``markets.yaml``'s:
        parameter uncertainty is price risk).
    parameter_uncertainty : bool, default False
        Draw each scenario's long-run level and mean reversion (:func:`draw_price_parameters`);
        callers pass ``fund.yaml: simulation.parameter_uncertainty``.

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
    drawn = draw_price_parameters(streams, markets, start, stop) if (risk_on and parameter_uncertainty) else {}
    for i, mat_id in enumerate(materials):  # loop over materials; vectorised over scenarios
        m = markets.materials[mat_id]
        if mat_id in drawn:
            log_lr, kappa = drawn[mat_id]
            real = np.exp(_log_paths(m, np.log(m.spot_usd_per_t), log_lr, factor_shocks(mat_id), n, n_years,
                                     kappa=kappa))
            inv_level = np.exp(-log_lr)  # over the scenario's own long-run median
        else:
            log_lr = np.log(m.long_run_usd_per_t)
            real = np.exp(_log_paths(m, np.log(m.spot_usd_per_t), log_lr, factor_shocks(mat_id), n, n_years))
            inv_level = 1.0 / m.long_run_usd_per_t
        uplift = regime.price_uplift.get(mat_id, 0.0)
        if uplift:
            real *= 1.0 + uplift * restricted_ym
        np.multiply(real, inv_level, out=ratios[i])
        np.multiply(real, escalation, out=prices[i])
    fx = markets.fx
    fx_path = np.exp(_log_paths(fx, np.log(fx.spot), np.log(fx.long_run), factor_shocks(FX_FACTOR), n, n_years))
    return MarketPaths(
        materials=materials,
        price_usd_per_t=prices.transpose(0, 2, 1),
        real_price_ratio=ratios.transpose(0, 2, 1),
        fx_usd_per_eur=fx_path.T,
        export_restriction=restricted,
        parameters=drawn or None,
    )


# --------------------------------------------------------------------------- stationary law
@dataclass(frozen=True)
class PriceRatioLaw:
    """Stationary law of a material's real price over its long-run level (hashable parameters).

    The ratio that drives price-sensitive political hazards is
    ``P = S / L = exp(X) (1 + u R)`` with

    - ``X = ln(S_benchmark / L)``: stationary ``N(0, v)`` for log-OU, ``v = sigma^2 / (2 kappa)``
      (mean 0 because ``L`` is the long-run *median*: :func:`log_price_moments` at ``t -> inf``);
      ``v = 0`` for GBM, which has no stationary law (its price term is then not normalised);
    - ``R``: the export-restriction indicator and ``u`` the material's ``price_uplift``; the
      regime's onsets load on the same geopolitical factor ``g`` as the political hazards, so
      ``(g, R)`` are dependent: :func:`regime_stationary` gives their joint law.

    The default instance is the degenerate law ``P = 1`` (no price term to normalise).
    """

    log_ratio_variance: float = 0.0
    uplift: float = 0.0
    onset_probability: float = 0.0
    duration_years: tuple[float, float, float] = (1.0, 1.0, 1.0)
    regime_loading: float = 0.0
    geo_persistence: float = 0.0

    @property
    def has_regime(self) -> bool:
        """True when the export-restriction regime moves this material's price."""
        return self.uplift > 0 and self.onset_probability > 0

    @property
    def degenerate(self) -> bool:
        """True when ``P = 1`` in every stationary state."""
        return self.log_ratio_variance == 0 and not self.has_regime


def stationary_log_variance(process: PriceProcess) -> float:
    """Variance of the stationary log price, ``sigma^2 / (2 kappa)`` (log-OU); 0 for GBM (none exists)."""
    if process.model is not PriceModel.LOG_OU:
        return 0.0
    s = process.volatility
    return s * s / (2 * process.mean_reversion_per_year)


def price_ratio_law(markets: MarketsFile, material: str, geo_persistence: float) -> PriceRatioLaw:
    """The stationary law of ``material``'s price ratio in the model of ``markets``.

    Parameters
    ----------
    markets : MarketsFile
    material : str
        Material id (a project's primary material).
    geo_persistence : float
        AR(1) coefficient of the common geopolitical factor (``countries.yaml``).

    Notes
    -----
    With parameter uncertainty the law is that of the central parameters (``markets.yaml``): the
    ratio is taken over each scenario's own long-run median, so its stationary median stays 1 in
    every scenario, and only its stationary variance ``sigma^2 / (2 kappa_s)`` varies with the
    drawn ``kappa_s``. A per-scenario normalisation by that variance would make the hazard of a
    scenario with a small drawn ``kappa`` (a near random walk that starts at spot and is far from
    stationary within the horizon) vanish; the central normalisation keeps the hazards of
    ``countries.yaml`` at the central parameters, and the dispersion of ``kappa`` moves the
    realised hazards only through the realised prices.

    ``forced_years`` (stress scenarios) are not part of the stationary law: a stress raises
    hazards through the prices it forces; it does not re-normalise them.
    """
    m = markets.materials[material]
    regime = markets.export_restriction
    d = regime.duration_years
    return PriceRatioLaw(
        log_ratio_variance=float(stationary_log_variance(m)),
        uplift=float(regime.price_uplift.get(material, 0.0)),
        onset_probability=float(regime.annual_onset_probability),
        duration_years=(float(d.min), float(d.mode), float(d.max)),
        regime_loading=float(regime.geopolitical_loading),
        geo_persistence=float(geo_persistence),
    )


def _triangular_cdf(x: np.ndarray, lo: float, mode: float, hi: float) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if hi == lo:
        return (x >= lo).astype(float)
    left = np.where(mode > lo, (x - lo) ** 2 / ((hi - lo) * max(mode - lo, 1e-300)), 0.0)
    right = np.where(hi > mode, 1 - (hi - x) ** 2 / ((hi - lo) * max(hi - mode, 1e-300)), 1.0)
    return np.where(x <= lo, 0.0, np.where(x >= hi, 1.0, np.where(x <= mode, left, right)))


def regime_duration_pmf(duration: tuple[float, float, float]) -> np.ndarray:
    """``P(d = k)``, ``k = 1, 2, ...``, of the simulated episode length ``max(ceil(T), 1)``, T triangular.

    Examples
    --------
    >>> regime_duration_pmf((3.0, 3.0, 3.0)).tolist()
    [0.0, 0.0, 1.0]
    """
    lo, mode, hi = duration
    k_max = max(int(np.ceil(hi)), 1)
    cdf = _triangular_cdf(np.arange(1, k_max + 1), lo, mode, hi)
    return np.diff(np.concatenate([[0.0], cdf]))


#: Grid of the geopolitical factor for the stationary law (spacing 0.15 on [-9, 9]). The trapezoid rule on
#: normal densities errs by ~exp(-2 pi^2 s^2 / h^2) for a density of width s: < 1e-7 for the AR(1)
#: transition up to persistence 0.99 (s = 0.14), ~1e-300 for the N(0, 1) marginal.
GEO_GRID = np.linspace(-9.0, 9.0, 121)


@lru_cache(maxsize=64)
def _regime_stationary(onset: float, duration: tuple[float, float, float], loading: float,
                       persistence: float) -> tuple[np.ndarray, np.ndarray]:
    x = GEO_GRID
    normal = np.exp(-0.5 * x * x)
    normal /= normal.sum()
    if onset <= 0:
        weights = np.vstack([normal, np.zeros_like(normal)])
        weights.setflags(write=False)
        return x, weights
    sd = np.sqrt(1 - persistence**2)
    # transition g_t = x_i -> g_{t+1} = x_j: the conditional normal density on the grid (trapezoid
    # rule, exponentially accurate while sd >> grid spacing), rows normalised
    kernel = np.exp(-0.5 * ((x[None, :] - persistence * x[:, None]) / sd) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    q = -np.expm1(np.log1p(-onset) * np.exp(loading * x - loading**2 / 2))  # onset probability given g_t
    pmf = regime_duration_pmf(duration)
    powers = [np.eye(x.size)]
    for _ in pmf:
        powers.append(powers[-1] @ kernel)
    # a(g): mass free at the start of a year with factor g (row vector). Renewal: a year later it is
    # free again after no onset (1 step) or after an episode of j years (j steps):
    # a = a diag(1 - q) K + sum_j p_j a diag(q) K^j
    step = (1 - q)[:, None] * kernel + q[:, None] * sum(w * powers[j] for j, w in enumerate(pmf, start=1))
    lhs = (np.eye(x.size) - step).T
    lhs[-1] = 1.0  # one balance equation replaced by a normalisation
    rhs = np.zeros(x.size)
    rhs[-1] = 1.0
    free = np.clip(np.linalg.solve(lhs, rhs), 0.0, None)
    onsets = free * q
    # years 2..j of an episode that started r = 1..j-1 years earlier
    busy = sum(w * sum(onsets @ powers[r] for r in range(1, j)) for j, w in enumerate(pmf, start=1) if j > 1)
    weights = np.vstack([free * (1 - q), onsets + busy])
    weights /= weights.sum()
    weights.setflags(write=False)
    return x, weights


def regime_stationary(law: PriceRatioLaw) -> tuple[np.ndarray, np.ndarray]:
    """Stationary joint law of the geopolitical factor ``g`` and the export restriction ``R``.

    The regime of :func:`export_restriction_regime` (onset probability
    ``1 - (1 - p)^exp(l g - l^2/2)`` when no episode runs, ``ceil``-ed triangular lengths)
    and the AR(1) factor form a Markov chain on (years left, ``g``). With ``g`` on a
    121-point grid (trapezoid rule on the normal densities: the marginal of ``g`` is
    ``N(0, 1)`` to ~1e-13, e.g. ``E[exp(l g - l^2/2)] = 1``), the stationary mass of the free
    state solves the renewal equation ``a = a diag(1-q) K + sum_j p_j a diag(q) K^j``
    (``q`` the onset probability given ``g``, ``K`` the AR(1) transition, ``p_j`` the
    probability of a ``j``-year episode); busy years follow from the onsets. Without
    geopolitical loading the restricted share is the renewal share
    ``pi = E[d] p / (1 + p (E[d] - 1))``.

    Returns
    -------
    g : ndarray of shape (121,)
        Grid of ``g``.
    weights : ndarray of shape (2, 121)
        ``weights[r, k] = P(R = r, g near g[k])`` in a stationary year; sums to 1.
    """
    onset = law.onset_probability if law.has_regime else 0.0
    return _regime_stationary(onset, law.duration_years, law.regime_loading, law.geo_persistence)


def restricted_share(law: PriceRatioLaw) -> float:
    """Stationary share of years with an export restriction in force."""
    return float(regime_stationary(law)[1][1].sum())


def mean_price_factor(law: PriceRatioLaw, elasticity: float, loading: float) -> float:
    """``E[G P^e]``: stationary mean of the hazard multiplier before normalisation.

    ``G = exp(l g - l^2/2)`` is the geopolitical multiplier (mean 1) and ``P`` the price ratio.
    Because ``X`` is independent of ``(g, R)``,
    ``E[G P^e] = exp(e^2 v / 2) (1 + ((1 + u)^e - 1) E[G 1{R}])``, and
    ``E[G 1{R}] = pi`` (the restricted share) when the regime does not load on ``g``:
    then ``E[P^e] = exp(e^2 v / 2) (1 - pi + pi (1 + u)^e)``, the closed form of the
    log-normal moment ``E[(S/L)^e] = exp(e mu + e^2 v / 2)`` (``mu = 0``: ``L`` is the median)
    times the regime mixing.
    """
    e = float(elasticity)
    if e == 0:
        return 1.0
    g, w = regime_stationary(law)
    geo = np.exp(loading * g - loading**2 / 2)
    mixed = float((geo * w[0]).sum() + (1 + law.uplift) ** e * (geo * w[1]).sum())
    log_moment = e * e * law.log_ratio_variance / 2
    return math.exp(log_moment) * mixed if log_moment < 700 else math.inf
