"""Price-model calibration: log-OU (AR(1) on log prices) and GBM fits with diagnostics.

For a log price ``x_t`` observed every ``dt`` years, the exact discretisation of the
Schwartz (1997) model ``dX = kappa (alpha - X) dt + sigma dW`` is the AR(1)

``x_{t+1} = c + phi x_t + e_t``, ``e_t ~ N(0, s^2)``, with
``phi = exp(-kappa dt)``, ``c = alpha (1 - phi)`` and
``s^2 = sigma^2 (1 - phi^2) / (2 kappa)``,

so that an OLS fit (statsmodels) gives ``kappa = -ln(phi) / dt``, ``alpha = c / (1 - phi)``
and ``sigma = sqrt(2 kappa s^2 / (1 - phi^2))``; their standard errors follow from the OLS
covariance of ``(c, phi)`` and ``Var(s^2) = 2 s^4 / (n - 2)`` by the delta method, and the
95 % confidence intervals are Wald intervals (the long-run level's on the log scale, the
half-life's mapped from kappa's). GBM ``dX = (mu - sigma^2/2) dt + sigma dW`` is the
regression of ``dx`` on a constant. Both are Gaussian conditional likelihoods of the same
``n`` transitions, so their log-likelihoods and AICs compare directly.

Monthly Pink Sheet prices are monthly averages: their returns are slightly autocorrelated
(Working 1960), which the Ljung-Box test on the residuals shows; the volatility is that of
the averages, as in the README sanity figures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import jarque_bera
from statsmodels.tsa.stattools import adfuller

from ..errors import UsageError
from .data import CalibrationDataError, PriceSeries, excerpt

Z95 = 1.959963984540054


@dataclass(frozen=True)
class OUFit:
    """Log-OU fit of one series (annual units; prices in real USD of the valuation date).

    Attributes
    ----------
    kappa, kappa_se, kappa_ci : float, float, (float, float)
        Mean reversion per year.
    long_run, long_run_se, long_run_ci
        ``exp(alpha)``: the long-run median price (the median of the stationary log-normal law,
        ``markets.yaml``'s ``long_run_usd_per_t`` as is; the mean is ``exp(alpha + sigma^2 / (4 kappa))``).
    log_long_run, log_long_run_se
        ``alpha`` and its standard error.
    sigma, sigma_se, sigma_ci
        Annual volatility of the log price.
    half_life, half_life_ci
        ``ln 2 / kappa`` in years (upper bound ``None`` when kappa's interval reaches 0).
    phi, phi_se, const
        AR(1) coefficient, its standard error and intercept (per observation).
    loglik, aic : float
        Conditional Gaussian log-likelihood (MLE variance) and ``2 k - 2 loglik`` (k = 3).
    residuals, fitted : ndarray
        AR(1) residuals and one-step-ahead predictions of the log price (length n).
    log_long_run_kappa_corr : float
        Correlation of the estimates of ``alpha`` and ``kappa`` (delta method from the OLS
        covariance of ``(c, phi)``: ``J Cov(c, phi) J'`` with ``J = [[1/(1-phi), c/(1-phi)^2],
        [0, -1/(phi dt)]]``). With ``log_long_run_se`` and ``kappa_se`` it is the covariance of
        ``(ln long-run, kappa)`` that the simulation draws parameters from (:attr:`parameter_covariance`).
    """

    kappa: float
    kappa_se: float
    kappa_ci: tuple[float, float]
    long_run: float
    long_run_se: float
    long_run_ci: tuple[float, float]
    log_long_run: float
    log_long_run_se: float
    sigma: float
    sigma_se: float
    sigma_ci: tuple[float, float]
    half_life: float
    half_life_ci: tuple[float, float | None]
    phi: float
    phi_se: float
    const: float
    loglik: float
    aic: float
    residuals: np.ndarray = field(repr=False)
    fitted: np.ndarray = field(repr=False)
    log_long_run_kappa_corr: float = 0.0

    @property
    def parameter_covariance(self) -> np.ndarray:
        """Estimated covariance of ``(alpha, kappa)`` = ``(ln long-run median, mean reversion per year)``."""
        sa, sk, r = self.log_long_run_se, self.kappa_se, self.log_long_run_kappa_corr
        return np.array([[sa * sa, r * sa * sk], [r * sa * sk, sk * sk]])


@dataclass(frozen=True)
class GBMFit:
    """GBM fit (annual units): ``drift`` is ``mu`` of ``dX = (mu - sigma^2/2) dt + sigma dW``."""

    drift: float
    drift_se: float
    log_drift: float
    sigma: float
    sigma_se: float
    sigma_ci: tuple[float, float]
    loglik: float
    aic: float
    residuals: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class Regime:
    """A run of observations in the high-variance Markov regime."""

    start: str
    end: str
    months: int
    log_return: float
    kind: str  #: "crash" (price fell over the episode) or "boom"


@dataclass(frozen=True)
class Diagnostics:
    """Residual and regime diagnostics of one series."""

    ljung_box_lags: int
    ljung_box_stat: float
    ljung_box_pvalue: float
    jarque_bera_stat: float
    jarque_bera_pvalue: float
    skewness: float
    excess_kurtosis: float
    adf_stat: float
    adf_pvalue: float
    aic_ou: float
    aic_gbm: float
    preferred: str  #: model with the lower AIC
    regime_sigma: tuple[float, float] | None = None  #: annualised sigma of the calm / turbulent regime
    regime_share_turbulent: float | None = None
    regimes: tuple[Regime, ...] = ()
    turbulent_probability: np.ndarray | None = field(default=None, repr=False)
    regime_note: str = ""


@dataclass(frozen=True)
class SeriesCalibration:
    """Everything fitted on one series."""

    name: str
    material: str | None
    file: str
    source: str
    frequency: str
    dt: float
    periods: np.ndarray = field(repr=False)
    log_price: np.ndarray = field(repr=False)  #: real log prices used (valuation-date money)
    ou: OUFit | None = None
    gbm: GBMFit | None = None
    diagnostics: Diagnostics | None = None
    write: bool = False  #: ``--write`` updates the material in markets.yaml

    @property
    def sample(self) -> str:
        """``first..last`` period of the sample."""
        return f"{self.periods[0]}..{self.periods[-1]}"

    @property
    def n_obs(self) -> int:
        """Number of price observations (transitions + 1)."""
        return int(self.log_price.size)

    @property
    def spot(self) -> float:
        """Last observed price in real valuation-date money."""
        return float(np.exp(self.log_price[-1]))


# ----------------------------------------------------------------------------- sample
def prepare_series(series: PriceSeries, start: str | None, min_obs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The usable sample of a series: from ``start``, trimmed of leading/trailing gaps.

    Returns
    -------
    periods, time, values : ndarray
        Labels, decimal years, nominal prices (all positive, no gap).

    Raises
    ------
    CalibrationDataError
        No data, gaps inside the sample, non-positive values, too few observations, or a
        constant series — each naming the file and series.
    """
    where = f"{series.file}: series {excerpt(series.name)}"
    keep = np.ones(series.values.size, dtype=bool)
    if start is not None:
        first = start if series.frequency == "monthly" else start[:4]
        keep = series.periods >= first
    periods, time, values = series.periods[keep], series.time[keep], series.values[keep]
    lines = series.lines[keep] if series.lines is not None else None

    def at(mask: np.ndarray) -> str:
        """``2004-03`` or ``2004-03, line 53`` for the first True of ``mask``."""
        i = int(np.flatnonzero(mask)[0])
        return f"{periods[i]}" + (f", line {int(lines[i])}" if lines is not None else "")
    present = np.isfinite(values)
    if not present.any():
        raise CalibrationDataError(f"{where}: no observations" + (f" from {start}" if start else "")
                                   + " (the column is empty or missing)")
    lo, hi = np.flatnonzero(present)[[0, -1]]
    periods, time, values = periods[lo:hi + 1], time[lo:hi + 1], values[lo:hi + 1]
    lines = lines[lo:hi + 1] if lines is not None else None
    gaps = ~np.isfinite(values)
    if gaps.any():
        raise CalibrationDataError(f"{where}: {int(gaps.sum())} missing value(s) inside {periods[0]}..{periods[-1]} "
                                   f"(first {at(gaps)}); the AR(1) needs consecutive observations: "
                                   "choose a --start after the gap")
    if (values <= 0).any():
        raise CalibrationDataError(f"{where}: prices must be > 0, got {float(values[values <= 0][0]):g} "
                                   f"at {at(values <= 0)}")
    if values.size < min_obs:
        raise CalibrationDataError(f"{where}: only {values.size} observations in {periods[0]}..{periods[-1]}, "
                                   f"need at least {min_obs}")
    if np.ptp(np.log(values)) < 1e-12:
        raise CalibrationDataError(f"{where}: constant at {float(values[0]):g} over {periods[0]}..{periods[-1]}; "
                                   "no volatility can be estimated")
    return periods, time, values


# ----------------------------------------------------------------------------- fits
def fit_ou(log_price: np.ndarray, dt: float, name: str = "series") -> OUFit:
    """Fit the log-OU model by OLS of ``x_{t+1}`` on ``(1, x_t)`` (statsmodels).

    Parameters
    ----------
    log_price : ndarray
        Log prices at equal steps of ``dt`` years.
    dt : float
        Years per step (1/12 for monthly data, 1 for annual).
    name : str
        For error messages.

    Returns
    -------
    OUFit

    Raises
    ------
    CalibrationDataError
        When ``phi >= 1`` (no mean reversion in the sample: use the GBM model) or ``phi <= 0``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> x = np.empty(5000); x[0] = 0.0
    >>> for t in range(1, x.size):
    ...     x[t] = 0.9 * x[t - 1] + 0.1 * rng.standard_normal()
    >>> round(fit_ou(x, 1.0).phi, 2)
    0.9
    """
    x = np.asarray(log_price, dtype=float)
    y, lag = x[1:], x[:-1]
    n = y.size
    res = sm.OLS(y, sm.add_constant(lag, has_constant="add")).fit()
    c, phi = (float(v) for v in res.params)
    cov = np.asarray(res.cov_params(), dtype=float)
    if not np.isfinite(phi) or phi >= 1.0 - 1e-9:
        raise CalibrationDataError(
            f"{name}: no mean reversion in the sample (AR(1) coefficient phi = {phi:.4f} >= 1, i.e. kappa <= 0); "
            "use --model gbm or a longer sample")
    if phi <= 0.0:
        raise CalibrationDataError(f"{name}: AR(1) coefficient phi = {phi:.4f} <= 0: the step is too long "
                                   "for a mean-reverting fit")
    phi_se = float(np.sqrt(cov[1, 1]))
    s2 = float(res.scale)  # unbiased residual variance SSR / (n - 2)
    s2_se = s2 * np.sqrt(2.0 / (n - 2))
    k_step = -np.log(phi)
    kappa = k_step / dt
    kappa_se = phi_se / (phi * dt)
    alpha = c / (1 - phi)
    grad_a = np.array([1 / (1 - phi), c / (1 - phi) ** 2])
    alpha_se = float(np.sqrt(grad_a @ cov @ grad_a))
    grad_k = np.array([0.0, -1.0 / (phi * dt)])
    ak_corr = float((grad_a @ cov @ grad_k) / (alpha_se * kappa_se)) if alpha_se > 0 and kappa_se > 0 else 0.0
    sigma = float(np.sqrt(s2 * 2 * k_step / (1 - phi * phi) / dt))
    dsig_dphi = sigma / 2 * (1 / (phi * np.log(phi)) + 2 * phi / (1 - phi * phi))
    dsig_ds2 = sigma / (2 * s2)
    sigma_se = float(np.sqrt(dsig_dphi ** 2 * cov[1, 1] + dsig_ds2 ** 2 * s2_se ** 2))
    k_lo, k_hi = kappa - Z95 * kappa_se, kappa + Z95 * kappa_se
    half_life = np.log(2) / kappa
    hl_ci = (float(np.log(2) / k_hi), float(np.log(2) / k_lo) if k_lo > 0 else None)
    llf = float(res.llf)  # with the MLE variance: comparable with GBM's
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        values = (kappa, kappa_se, alpha, alpha_se, sigma, sigma_se, llf, phi_se, c, hl_ci[0],
                  np.exp(alpha - Z95 * alpha_se), np.exp(alpha + Z95 * alpha_se), np.exp(alpha) * alpha_se)
    finite = bool(np.all(np.isfinite(values))) and (hl_ci[1] is None or np.isfinite(hl_ci[1]))
    if s2 <= 0 or not finite or abs(alpha) > 700:
        raise CalibrationDataError(f"{name}: degenerate fit (residual variance {s2:.3g}, kappa {kappa:.3g}, "
                                   f"log long-run level {alpha:.3g} +- {alpha_se:.3g}): the long-run level or "
                                   "its interval is not a finite positive price; check the series")
    return OUFit(
        kappa=float(kappa), kappa_se=float(kappa_se), kappa_ci=(float(k_lo), float(k_hi)),
        long_run=float(np.exp(alpha)), long_run_se=float(np.exp(alpha) * alpha_se),
        long_run_ci=(float(np.exp(alpha - Z95 * alpha_se)), float(np.exp(alpha + Z95 * alpha_se))),
        log_long_run=float(alpha), log_long_run_se=alpha_se,
        sigma=sigma, sigma_se=sigma_se, sigma_ci=(sigma - Z95 * sigma_se, sigma + Z95 * sigma_se),
        half_life=float(half_life), half_life_ci=hl_ci, phi=phi, phi_se=phi_se, const=c,
        loglik=llf, aic=float(2 * 3 - 2 * llf),
        residuals=np.asarray(res.resid, dtype=float), fitted=np.asarray(res.fittedvalues, dtype=float),
        log_long_run_kappa_corr=float(np.clip(ak_corr, -1.0, 1.0)),
    )


def fit_gbm(log_price: np.ndarray, dt: float, name: str = "series") -> GBMFit:
    """Fit GBM by OLS of ``dx`` on a constant (statsmodels).

    Returns
    -------
    GBMFit
        ``drift = mean(dx)/dt + sigma^2/2`` (the ``mu`` of ``markets.yaml``'s ``drift_per_year``).

    Raises
    ------
    CalibrationDataError
        Fewer than three observations, returns without variation (a price path growing at a
        constant rate) or a non-finite estimate.
    """
    r = np.diff(np.asarray(log_price, dtype=float))
    n = r.size
    if n < 2:
        raise CalibrationDataError(f"{name}: at least three observations are needed for a GBM fit")
    if np.ptp(r) <= 1e-12 * max(1.0, float(np.abs(r).max())):
        raise CalibrationDataError(f"{name}: every log return is the same ({float(r[0]):.3g}); no volatility "
                                   "can be estimated")
    res = sm.OLS(r, np.ones((n, 1))).fit()
    m = float(res.params[0])
    m_se = float(res.bse[0])
    s2 = float(res.scale)
    sigma = float(np.sqrt(s2 / dt))
    sigma_se = sigma / np.sqrt(2.0 * (n - 1))
    log_drift = m / dt
    drift = log_drift + sigma * sigma / 2
    drift_se = float(np.sqrt((m_se / dt) ** 2 + (sigma * sigma_se) ** 2))
    llf = float(res.llf)
    if not (np.all(np.isfinite([m, m_se, s2, sigma, sigma_se, drift, drift_se, llf])) and sigma > 0):
        raise CalibrationDataError(f"{name}: degenerate GBM fit (sigma {sigma:.3g}, drift {drift:.3g}); "
                                   "check the series")
    return GBMFit(drift=float(drift), drift_se=drift_se, log_drift=float(log_drift), sigma=sigma,
                  sigma_se=float(sigma_se), sigma_ci=(sigma - Z95 * sigma_se, sigma + Z95 * sigma_se),
                  loglik=llf, aic=float(2 * 2 - 2 * llf), residuals=np.asarray(res.resid, dtype=float))


def regime_check(log_price: np.ndarray, periods: np.ndarray, dt: float) -> dict:
    """Two-regime Markov switching on returns with switching mean and variance (statsmodels).

    The turbulent regime is the one with the larger variance; runs of at least two
    observations with a smoothed probability above 0.5 are reported as episodes, labelled
    ``crash`` or ``boom`` by the sign of the log return over the run (export bans, the 2008
    crash, the 2022 nickel squeeze ...).

    Returns
    -------
    dict
        ``regime_sigma`` (calm, turbulent; annualised), ``regime_share_turbulent``,
        ``regimes`` (tuple of :class:`Regime`), ``turbulent_probability`` (per return) and
        ``regime_note``; only the note when the fit fails.
    """
    r = np.diff(np.asarray(log_price, dtype=float))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = sm.tsa.MarkovRegression(r, k_regimes=2, trend="c", switching_variance=True)
            res = model.fit(disp=False)
        names = list(model.param_names)
        params = np.asarray(res.params, dtype=float)
        var = np.array([params[names.index("sigma2[0]")], params[names.index("sigma2[1]")]])
        hi = int(np.argmax(var))
        prob = np.asarray(res.smoothed_marginal_probabilities, dtype=float)
        prob = prob[:, hi] if prob.ndim == 2 else prob
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not stop the calibration
        return {"regime_note": f"Markov-switching fit failed: {type(exc).__name__}: {exc}"}
    if not (np.all(np.isfinite(var)) and np.all(np.isfinite(prob))):
        return {"regime_note": "Markov-switching fit did not converge (non-finite parameters)"}
    on = prob > 0.5
    edges = np.diff(np.concatenate([[0], on.astype(int), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    regimes = []
    for a, b in zip(starts, stops):
        if b - a < 2:
            continue
        ret = float(r[a:b].sum())
        regimes.append(Regime(start=str(periods[a + 1]), end=str(periods[b]), months=int(b - a),
                              log_return=ret, kind="crash" if ret < 0 else "boom"))
    sig = np.sqrt(var / dt)
    return {"regime_sigma": (float(sig[1 - hi]), float(sig[hi])), "regime_share_turbulent": float(on.mean()),
            "regimes": tuple(regimes), "turbulent_probability": prob,
            "regime_note": f"turbulent regime sigma {sig[hi]:.2f} vs calm {sig[1 - hi]:.2f} per year, "
                           f"{on.mean():.0%} of the sample, {len(regimes)} episode(s)"}


def diagnose(log_price: np.ndarray, periods: np.ndarray, dt: float, ou: OUFit | None, gbm: GBMFit,
             regimes: bool = True) -> Diagnostics:
    """Ljung-Box, Jarque-Bera, ADF, AIC OU vs GBM and the Markov regime check."""
    resid = ou.residuals if ou is not None else gbm.residuals
    lags = 12 if dt < 1 else 5
    lags = max(1, min(lags, resid.size // 4))
    lb = acorr_ljungbox(resid, lags=[lags], return_df=True)
    jb, jb_p, skew, kurt = jarque_bera(resid)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        adf_stat, adf_p, *_ = adfuller(log_price, maxlag=lags, regression="c", autolag="AIC")
    aic_ou = ou.aic if ou is not None else float("nan")
    extra = regime_check(log_price, periods, dt) if regimes else {"regime_note": "regime check skipped"}
    return Diagnostics(
        ljung_box_lags=lags, ljung_box_stat=float(lb["lb_stat"].iloc[0]), ljung_box_pvalue=float(lb["lb_pvalue"].iloc[0]),
        jarque_bera_stat=float(jb), jarque_bera_pvalue=float(jb_p), skewness=float(skew),
        excess_kurtosis=float(kurt - 3.0), adf_stat=float(adf_stat), adf_pvalue=float(adf_p),
        aic_ou=aic_ou, aic_gbm=gbm.aic,
        preferred="log_ou" if ou is not None and ou.aic < gbm.aic else "gbm", **extra)


def calibrate_series(series: PriceSeries, log_deflator: np.ndarray | None, *, start: str | None, min_obs: int,
                     model: str = "log_ou", material: str | None = None, regimes: bool = True) -> SeriesCalibration:
    """Fit OU and GBM (and diagnostics) to one series.

    Parameters
    ----------
    series : PriceSeries
        Nominal prices.
    log_deflator : ndarray or None
        ``ln(CPI(valuation)/CPI(t))`` at ``series.time`` (None: prices are already real).
    start : str or None
        First period (``YYYY-MM``; the year for annual data).
    min_obs : int
        Minimum number of observations.
    model : {"log_ou", "gbm"}
        The model whose fit is required; the OU fit is skipped (not an error) under ``gbm``
        when the sample shows no mean reversion.
    material : str or None
        Material of ``markets.yaml`` it calibrates.
    regimes : bool
        Run the Markov-switching check.
    """
    periods, time, values = prepare_series(series, start, min_obs)
    x = np.log(values)
    if log_deflator is not None:
        full = dict(zip(series.periods, log_deflator))
        x = x + np.array([full[p] for p in periods])
    where = f"{series.file}: series {excerpt(series.name)}"
    gbm = fit_gbm(x, series.dt, name=where)
    if model == "log_ou":
        ou = fit_ou(x, series.dt, name=where)
    else:
        try:
            ou = fit_ou(x, series.dt, name=where)
        except CalibrationDataError:
            ou = None
    diag = diagnose(x, periods, series.dt, ou, gbm, regimes=regimes)
    for v in (gbm.sigma, gbm.drift) + ((ou.kappa, ou.sigma, ou.long_run) if ou else ()):
        if not np.isfinite(v):  # pragma: no cover - guarded by fit_ou and fit_gbm
            raise CalibrationDataError(f"{where}: the fit produced a non-finite parameter")
    return SeriesCalibration(name=series.name, material=material, file=series.file, source=series.source,
                             frequency=series.frequency, dt=series.dt, periods=periods, log_price=x,
                             ou=ou, gbm=gbm, diagnostics=diag)


# ----------------------------------------------------------------------------- correlation
def nearest_correlation(corr: np.ndarray, tol: float = 1e-10) -> tuple[np.ndarray, float, float]:
    """Nearest positive semi-definite correlation matrix (eigenvalue clipping, unit diagonal).

    Returns
    -------
    fixed : ndarray
        ``corr`` itself when already PSD.
    frobenius, max_abs : float
        Size of the change (0 when none was needed).

    Examples
    --------
    >>> c = np.array([[1, .9, -.9], [.9, 1, .9], [-.9, .9, 1]])
    >>> fixed, fro, mx = nearest_correlation(c)
    >>> bool(np.linalg.eigvalsh(fixed).min() > -1e-12), fro > 0
    (True, True)
    """
    c = (np.asarray(corr, dtype=float) + np.asarray(corr, dtype=float).T) / 2
    if np.linalg.eigvalsh(c).min() >= -tol:
        return c, 0.0, 0.0
    x = c.copy()
    for _ in range(100):  # alternate: clip eigenvalues, restore the unit diagonal
        w, v = np.linalg.eigh(x)
        x = (v * np.clip(w, 1e-8, None)) @ v.T
        d = np.sqrt(np.diag(x))
        x = x / np.outer(d, d)
        if np.linalg.eigvalsh(x).min() >= -tol:
            break
    np.fill_diagonal(x, 1.0)
    diff = x - c
    return x, float(np.linalg.norm(diff)), float(np.abs(diff).max())


def residual_correlation(fits: list[SeriesCalibration]) -> tuple[pd.DataFrame, pd.DataFrame, float, float, int]:
    """Correlation of the monthly residuals of several series, and its annual equivalent.

    Residuals are aligned on their periods (pairwise-complete), made PSD when needed, then
    mapped to the correlation of the model's ANNUAL shocks: with AR coefficients
    ``phi_i`` and ``m`` steps a year, an annual OU shock is ``sum_j phi_i^j e_{t-j}``, so
    ``rho_annual = rho S(phi_i phi_j) / sqrt(S(phi_i^2) S(phi_j^2))`` with
    ``S(q) = (1 - q^m) / (1 - q)`` (= ``rho`` for GBM).

    Returns
    -------
    monthly, annual : DataFrame
        Correlations (series x series).
    frobenius, max_abs : float
        PSD adjustment of the monthly matrix.
    n_common : int
        Observations common to all series.
    """
    cols = {}
    phis = []
    for f in fits:
        res = f.ou.residuals if f.ou is not None else f.gbm.residuals
        cols[f.name] = pd.Series(res, index=f.periods[1:])
        phis.append(f.ou.phi if f.ou is not None else 1.0)
    frame = pd.DataFrame(cols)
    raw = frame.corr(min_periods=24).to_numpy()
    if not np.all(np.isfinite(raw)):
        bad = [frame.columns[i] for i in range(len(fits)) if not np.all(np.isfinite(raw[i]))]
        raise CalibrationDataError(f"too few common observations (< 24) to correlate series {bad}")
    fixed, fro, mx = nearest_correlation(raw)
    m = int(round(1 / fits[0].dt))
    phi = np.array(phis)
    q = np.outer(phi, phi)

    def s(qq: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.isclose(qq, 1.0), float(m), (1 - qq ** m) / (1 - qq))

    sq = s(q)
    d = np.sqrt(np.diag(sq))
    annual = fixed * sq / np.outer(d, d)
    names = list(frame.columns)
    return (pd.DataFrame(fixed, index=names, columns=names), pd.DataFrame(annual, index=names, columns=names),
            fro, mx, int(frame.dropna().shape[0]))


@dataclass(frozen=True)
class PriceCalibration:
    """Result of ``fundmodel calibrate prices``."""

    fits: list[SeriesCalibration]
    model: str
    start: str
    data_file: str
    correlation_monthly: pd.DataFrame | None
    correlation_annual: pd.DataFrame | None
    correlation_common_obs: int
    psd_frobenius: float
    psd_max_abs: float
    warnings: list[str]
    fitted_on: str
    deflator_note: str


def _decimal_year(date) -> float:
    start = pd.Timestamp(year=date.year, month=1, day=1)
    days = (pd.Timestamp(date) - start).days
    return date.year + days / (366 if pd.Timestamp(date).is_leap_year else 365)


def calibrate_prices(assumptions, *, data: str | None = None, series: list[str] | None = None,
                     start: str | None = None, model: str | None = None, regimes: bool | None = None,
                     fitted_on: str | None = None) -> PriceCalibration:
    """Fit every requested series and the correlation of their residuals.

    Parameters
    ----------
    assumptions : Assumptions
        Validated assumptions with a ``calibration.yaml`` (series -> material map, deflator).
    data : str, optional
        Pink Sheet CSV to use instead of the shipped extract.
    series : list of str, optional
        Series names (case-insensitive; default: every series of ``calibration.yaml``). A
        Pink Sheet code not in ``calibration.yaml`` is fitted for the report only.
    start : str, optional
        ``YYYY-MM`` first month for every series (default: per series, else
        ``calibration.yaml: prices.start``).
    model : {"log_ou", "gbm"}, optional
        Model to fit and write (default ``calibration.yaml: prices.model``).
    regimes : bool, optional
        Markov-switching regime check (default ``calibration.yaml: prices.regime_check``).
    fitted_on : str, optional
        Date stamp ``YYYY-MM-DD`` (default: today). Data of a month after it (or after
        today) are refused as not yet observable.

    Returns
    -------
    PriceCalibration

    Raises
    ------
    CalibrationDataError
        Unknown series, missing/short/constant data, no mean reversion under ``log_ou``,
        months after ``fitted_on`` or today.
    """
    import datetime as _dt

    from . import data as d

    cal = assumptions.calibration
    if cal is None:
        raise CalibrationDataError(f"{assumptions.directory}/calibration.yaml: file is missing "
                                   "(it maps data series to materials)")
    settings = cal.prices
    model = model or settings.model.value
    regimes = settings.regime_check if regimes is None else regimes
    today = _dt.date.today()
    if fitted_on is None:
        fitted_on = today.isoformat()
    try:
        latest = min(today, _dt.date.fromisoformat(str(fitted_on)))
    except ValueError:
        raise UsageError(f"calibrate prices: fitted_on must be a date YYYY-MM-DD, got {excerpt(fitted_on)}") from None
    pink_path = data or str(d.PINKSHEET_FILE)
    specs = {k.casefold(): (k, v) for k, v in settings.series.items()}
    wanted = series if series else list(settings.series)
    cpi = d.cpi_u_annual(d.USGS_LITHIUM_FILE, settings.deflator.cpi_u_1998, settings.deflator.cpi_u_annual)
    valuation_time = _decimal_year(assumptions.fund.valuation_date)
    inflation = assumptions.fund.inflation
    pink = None
    usgs = None
    fits: list[SeriesCalibration] = []
    warn: list[str] = []
    seen = set()
    fitted: dict[str, str] = {}  # series name (casefold) -> the --series entry that asked for it
    for name in wanted:
        key, spec = specs.get(name.strip().casefold(), (name.strip(), None))
        if key.casefold() in seen:
            continue
        seen.add(key.casefold())
        dataset = spec.dataset if spec is not None else "pinksheet"
        if dataset == "pinksheet":
            pink = d.read_pinksheet(pink_path, latest=latest) if pink is None else pink
            ser = d.pinksheet_series(pink, spec.column if spec is not None else key, pink_path)
        else:
            usgs = d.read_usgs_lithium(d.USGS_LITHIUM_FILE) if usgs is None else usgs
            ser = replace(d.usgs_series(usgs, spec.column, d.USGS_LITHIUM_FILE), name=key)
        if ser.name.casefold() in fitted:
            raise UsageError(f"calibrate prices: series {excerpt(ser.name)} is requested twice (as "
                             f"{excerpt(fitted[ser.name.casefold()])} and {excerpt(key)})")
        fitted[ser.name.casefold()] = key
        first = start or (spec.start if spec is not None and spec.start else settings.start)
        min_obs = settings.min_observations_monthly if ser.dt < 1 else settings.min_observations_annual
        keep = ser.periods >= (first if ser.dt < 1 else first[:4])
        deflator = np.full(ser.time.size, np.nan)
        deflator[keep] = d.log_deflator(ser.time[keep], cpi, inflation, valuation_time)
        fit = calibrate_series(ser, deflator, start=first, min_obs=min_obs, model=model,
                               material=spec.material if spec is not None else None, regimes=regimes)
        fit = replace(fit, write=bool(spec is not None and spec.write and spec.material))
        fits.append(fit)
        if fit.ou is not None and fit.ou.kappa_ci[0] <= 0:
            warn.append(f"{fit.name}: mean reversion not significant at 95 % (kappa {fit.ou.kappa:.3f}, "
                        f"CI {fit.ou.kappa_ci[0]:.3f}..{fit.ou.kappa_ci[1]:.3f}); the half-life is uncertain")
        if fit.diagnostics is not None and fit.diagnostics.ljung_box_pvalue < 0.05:
            warn.append(f"{fit.name}: residuals autocorrelated (Ljung-Box p = {fit.diagnostics.ljung_box_pvalue:.3g}, "
                        f"{fit.diagnostics.ljung_box_lags} lags); monthly averages smooth returns")
    vd = assumptions.fund.valuation_date
    for f in fits:
        last = str(f.periods[-1])
        first_day = _dt.date(int(last[:4]), int(last[5:7]) if f.dt < 1 else 1, 1)
        if first_day > vd:
            warn.append(f"{f.name}: the sample ends {last}, after the valuation date {vd} (fund.yaml): the spot "
                        "and the fit use prices observed after it")
    monthly = [f for f in fits if f.dt < 1]
    corr_m = corr_a = None
    fro = mx = 0.0
    n_common = 0
    if len(monthly) >= 2:
        corr_m, corr_a, fro, mx, n_common = residual_correlation(monthly)
        if fro > 0:
            warn.append(f"residual correlation matrix was not positive semi-definite: moved to the nearest "
                        f"PSD matrix (Frobenius norm of the change {fro:.4f}, largest entry change {mx:.4f})")
    if any(f.dt >= 1 for f in fits):
        warn.append("annual series are not in the residual correlation (different frequency)")
    note = (f"real USD of {assumptions.fund.valuation_date}: US CPI-U implied by USGS DS140 (to "
            f"{int(cpi.index.max()) if not settings.deflator.cpi_u_annual else max(settings.deflator.cpi_u_annual)}), "
            f"BLS CPI-U annual averages, then fund.yaml inflation {inflation:.1%}")
    return PriceCalibration(fits=fits, model=model, start=start or settings.start, data_file=pink_path,
                            correlation_monthly=corr_m, correlation_annual=corr_a, correlation_common_obs=n_common,
                            psd_frobenius=fro, psd_max_abs=mx, warnings=warn, fitted_on=fitted_on,
                            deflator_note=note)


# ----------------------------------------------------------------------------- --write
def _round_price(v: float) -> int:
    """Whole USD per tonne."""
    return int(round(v))


def written_values(fit: SeriesCalibration, model: str) -> dict[str, Any]:
    """The ``markets.yaml`` values ``--write`` sets for one fitted material (rounded as written)."""
    out: dict[str, Any] = {"model": model, "spot_usd_per_t": _round_price(fit.spot)}
    if model == "log_ou":
        out.update(mean_reversion_per_year=round(fit.ou.kappa, 4), volatility=round(fit.ou.sigma, 4),
                   long_run_usd_per_t=_round_price(fit.ou.long_run))
    else:
        out.update(volatility=round(fit.gbm.sigma, 4), drift_per_year=round(fit.gbm.drift, 4))
    return out


def update_markets(result: PriceCalibration, directory: str | Path, valuation_date, write_correlation: bool = True
                   ) -> tuple[str, list[dict[str, Any]], list[str]]:
    """New text of ``markets.yaml`` with the fitted materials updated (comments kept).

    Returns
    -------
    text : str
        The updated file.
    changes : list of dict
        ``material, parameter, old, new`` for every value written.
    notes : list of str
        Skipped series and correlation adjustments.
    """
    import datetime as _dt

    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    from .yamlio import dump_round_trip, load_round_trip, set_eol_comment

    directory = Path(directory)
    doc = load_round_trip(directory / "markets.yaml")
    mats = doc["materials"]
    changes: list[dict[str, Any]] = []
    notes: list[str] = []

    def fitted_on() -> _dt.date:  # a new object per record: ruamel would alias a shared one
        return _dt.date.fromisoformat(result.fitted_on)

    written: list[SeriesCalibration] = []
    for fit in result.fits:
        if not fit.write:
            continue
        if fit.material not in mats:
            notes.append(f"{fit.name}: material '{fit.material}' is not in markets.yaml; not written")
            continue
        if result.model == "log_ou" and fit.ou is None:  # pragma: no cover - fit_ou raised already
            continue
        m = mats[fit.material]
        new = written_values(fit, result.model)
        for key, value in new.items():
            old = m.get(key)
            if key == "model":
                old = str(old) if old is not None else "log_ou"
            if key not in m:
                m.insert(list(m).index("volatility") + 1 if "volatility" in m else len(m), key, value)
            else:
                m[key] = value
            changes.append({"material": fit.material, "parameter": key, "old": old, "new": value})
        o, g = fit.ou, fit.gbm
        set_eol_comment(m, "spot_usd_per_t", f"Pink Sheet {fit.name} {fit.periods[-1]} in real USD of "
                        f"{valuation_date} (fundmodel calibrate prices)" if fit.dt < 1 else
                        f"{fit.name} {fit.periods[-1]} in real USD of {valuation_date}")
        if result.model == "log_ou":
            # exp(alpha) is the MEDIAN of the stationary price: the convention of long_run_usd_per_t
            # (markets.yaml header, fundmodel.market), written as fitted, no mean conversion
            set_eol_comment(m, "long_run_usd_per_t", f"fitted exp(alpha) = long-run median, 95 % CI "
                            f"{o.long_run_ci[0]:,.0f}-{o.long_run_ci[1]:,.0f} (fundmodel calibrate prices)")
            set_eol_comment(m, "mean_reversion_per_year", f"fitted, SE {o.kappa_se:.3f}; half-life "
                            f"{o.half_life:.1f} y")
            set_eol_comment(m, "volatility", f"fitted, SE {o.sigma_se:.4f}")
        else:
            set_eol_comment(m, "volatility", f"fitted GBM, SE {g.sigma_se:.4f}")
            if "mean_reversion_per_year" in m:
                set_eol_comment(m, "mean_reversion_per_year", "not used by model gbm")
            set_eol_comment(m, "drift_per_year", f"fitted GBM, SE {g.drift_se:.3f}")
        rec = CommentedMap()
        rec["source"] = (f"{fit.source}; fundmodel calibrate prices: "
                         + ("AR(1) on log prices (exact log-OU discretisation, statsmodels OLS)"
                            if result.model == "log_ou" else "GBM, OLS of log returns on a constant")
                         + f", {fit.frequency} data deflated to real USD of {valuation_date} by US CPI-U")
        rec["series"] = fit.name
        rec["sample"] = fit.sample
        rec["observations"] = fit.n_obs
        rec["frequency"] = fit.frequency
        rec["fitted_on"] = fitted_on()
        rec["model"] = result.model
        if result.model == "log_ou":
            rec["mean_reversion_se"] = round(o.kappa_se, 4)
            rec["half_life_years"] = round(o.half_life, 2)
            ci = CommentedSeq([_round_price(o.long_run_ci[0]), _round_price(o.long_run_ci[1])])
            ci.fa.set_flow_style()
            rec["long_run_ci_usd_per_t"] = ci
            # covariance of (ln long_run, kappa): drawn per scenario when fund.yaml
            # simulation.parameter_uncertainty is on (fundmodel.market.draw_price_parameters)
            rec["log_long_run_se"] = round(o.log_long_run_se, 4)
            rec["log_long_run_mean_reversion_correlation"] = round(o.log_long_run_kappa_corr, 4)
            rec["volatility_se"] = round(o.sigma_se, 4)
        else:
            rec["volatility_se"] = round(g.sigma_se, 4)
            rec["drift_se"] = round(g.drift_se, 4)
        if o is not None:
            rec["aic_ou_minus_gbm"] = round(o.aic - g.aic, 2)
        m["calibration"] = rec
        written.append(fit)
    if write_correlation and len(written) >= 2 and result.correlation_annual is not None:
        corr = doc["correlation"]
        factors = list(corr["factors"])
        names = [f for f in written if f.dt < 1 and f.name in result.correlation_annual.index]
        pairs = []
        for i, fi in enumerate(names):
            for fj in names[i + 1:]:
                a, b = factors.index(fi.material), factors.index(fj.material)
                value = round(float(result.correlation_annual.loc[fi.name, fj.name]), 2)
                changes.append({"material": f"{fi.material}-{fj.material}", "parameter": "correlation",
                                "old": float(corr["matrix"][a][b]), "new": value})
                corr["matrix"][a][b] = value
                corr["matrix"][b][a] = value
                pairs.append(f"{fi.material}-{fj.material}")
        full = np.array([[float(v) for v in row] for row in corr["matrix"]])
        fixed, fro, mx = nearest_correlation(full)
        if fro > 0:
            for i in range(full.shape[0]):
                for j in range(full.shape[0]):
                    if abs(fixed[i, j] - full[i, j]) > 5e-4:
                        corr["matrix"][i][j] = round(float(fixed[i, j]), 3)
            notes.append(f"markets.yaml correlation matrix not positive semi-definite after the update: moved to "
                         f"the nearest PSD matrix (Frobenius {fro:.4f}, largest change {mx:.4f})")
        if pairs:
            rec = CommentedMap()
            fac = CommentedSeq([f.material for f in names])
            fac.fa.set_flow_style()
            rec["factors"] = fac
            rec["sample"] = f"{result.start}..{names[0].periods[-1]}"
            rec["fitted_on"] = fitted_on()
            rec["method"] = ("correlation of the monthly log-OU residuals, mapped to annual shocks "
                             "(rho S(phi_i phi_j) / sqrt(S(phi_i^2) S(phi_j^2)))")
            rec["source"] = names[0].source
            if "calibration" in corr:
                corr["calibration"] = rec
            else:  # before `source`, which carries the blank line that ends the block
                corr.insert(list(corr).index("source") if "source" in corr else len(corr), "calibration", rec)
    return dump_round_trip(doc), changes, notes


def write_markets(result: PriceCalibration, assumptions, write_correlation: bool | None = None
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """Update ``markets.yaml`` in place (validated first, written atomically).

    Returns
    -------
    changes, notes
        As :func:`update_markets`.
    """
    from .yamlio import replace_validated

    if write_correlation is None:
        write_correlation = assumptions.calibration.prices.write_correlation
    text, changes, notes = update_markets(result, assumptions.directory, assumptions.fund.valuation_date,
                                          write_correlation)
    replace_validated(assumptions.directory, "markets.yaml", text)
    return changes, notes
