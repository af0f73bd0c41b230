"""Market model: log-OU (Schwartz 1997) and GBM moments, shock correlation, copulas, export regime."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fundmodel.assumptions.schema import (
    Copula,
    CorrelationMatrix,
    ExchangeRate,
    ExportRestriction,
    MarketsFile,
    Material,
    PriceModel,
    SamplingMethod,
    Triangular,
)
from fundmodel.market import log_price_moments, simulate_market
from fundmodel.sampling import ScenarioStreams

METHODS = list(SamplingMethod)
N = 2**14
SEED = 99
INFLATION = 0.02
CORR = [
    [1.0, 0.6, 0.3, -0.2],
    [0.6, 1.0, 0.5, 0.1],
    [0.3, 0.5, 1.0, 0.0],
    [-0.2, 0.1, 0.0, 1.0],
]


def _material(name: str, model: PriceModel, spot: float, long_run: float, kappa: float, sigma: float,
              drift: float = 0.0) -> Material:
    return Material(
        name=name, product=f"{name} product", spot_usd_per_t=spot, long_run_usd_per_t=long_run,
        model=model, mean_reversion_per_year=kappa if model is PriceModel.LOG_OU else 0.0,
        volatility=sigma, drift_per_year=drift, source="test",
    )


def _markets(model_a: PriceModel = PriceModel.LOG_OU, onset: float = 0.0, duration: float = 3.0,
             loading: float = 0.0, uplift: dict | None = None) -> MarketsFile:
    """Three materials and EUR/USD; material 'a' takes the parametrised model."""
    return MarketsFile(
        materials={
            "a": _material("a", model_a, 100.0, 150.0, 0.4, 0.35, drift=0.03),
            "b": _material("b", PriceModel.GBM, 50.0, 50.0, 0.0, 0.25, drift=-0.02),
            "c": _material("c", PriceModel.LOG_OU, 2000.0, 1200.0, 1.2, 0.5),
        },
        fx=ExchangeRate(spot=1.10, long_run=1.15, model=PriceModel.LOG_OU, mean_reversion_per_year=0.3,
                        volatility=0.08, source="test"),
        correlation=CorrelationMatrix(factors=["a", "b", "c", "EURUSD"], matrix=CORR, source="test"),
        export_restriction=ExportRestriction(
            annual_onset_probability=onset,
            duration_years=Triangular(min=duration, mode=duration, max=duration),
            geopolitical_loading=loading,
            price_uplift={"a": 0.8, "c": 0.5} if uplift is None else uplift,
            source="test",
        ),
    )


def _geo(n: int, n_years: int, seed: int = 5) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, n_years))


def _simulate(markets, method=SamplingMethod.SOBOL, n=N, n_years=11, seed=SEED, **kw):
    streams = ScenarioStreams(seed, method)
    return simulate_market(markets, streams, 0, n, n_years, INFLATION, _geo(n, n_years), **kw)


def _log_real(paths, material: str) -> np.ndarray:
    n_years = paths.price_usd_per_t.shape[2]
    return np.log(paths.price_usd_per_t[paths.index(material)] / (1 + INFLATION) ** np.arange(n_years))


def _textbook_moments(process, x0: float, alpha: float, t: np.ndarray):
    """Written out here, independent of market.log_price_moments."""
    if process.model is PriceModel.LOG_OU:
        k, s = process.mean_reversion_per_year, process.volatility
        return alpha + (x0 - alpha) * np.exp(-k * t), s**2 * (1 - np.exp(-2 * k * t)) / (2 * k)
    s = process.volatility
    return x0 + (process.drift_per_year - s**2 / 2) * t, s**2 * t


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("model", list(PriceModel), ids=lambda m: m.value)
def test_log_price_moments_equal_textbook_formula(model):
    m = _material("x", model, 80.0, 120.0, 0.55, 0.42, drift=0.04)
    t = np.array([0.0, 0.5, 1, 2, 5, 10, 40])
    x0, alpha = math.log(80.0), math.log(120.0)
    mean, var = log_price_moments(m, x0, alpha, t)
    e_mean, e_var = _textbook_moments(m, x0, alpha, t)
    np.testing.assert_allclose(mean, e_mean, rtol=1e-14, err_msg=f"{model.value}: log_price_moments mean != textbook")
    np.testing.assert_allclose(var, e_var, rtol=1e-14, atol=1e-16, err_msg=f"{model.value}: variance != textbook")
    if model is PriceModel.LOG_OU:  # stationary limit sigma^2 / (2 kappa)
        assert var[-1] == pytest.approx(0.42**2 / 1.1, rel=1e-9), "log-OU variance does not tend to sigma^2/(2 kappa)"


# --------------------------------------------------------------------------- simulated moments
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
@pytest.mark.parametrize("model", list(PriceModel), ids=lambda m: m.value)
def test_simulated_log_price_moments_match_closed_form(model, method):
    mk = _markets(model_a=model)
    n_years = 11
    paths = _simulate(mk, method, n_years=n_years)
    for name in ("a", "b", "c"):
        mat = mk.materials[name]
        x = _log_real(paths, name)
        assert np.allclose(paths.price_usd_per_t[paths.index(name)][:, 0], mat.spot_usd_per_t, rtol=1e-12), (
            f"{name}: year-0 price is not the spot"
        )
        mean, var = log_price_moments(mat, math.log(mat.spot_usd_per_t), math.log(mat.long_run_usd_per_t),
                                      np.arange(n_years))
        for t in (1, 2, 5, 10):
            se_m = math.sqrt(var[t] / N)
            se_v = var[t] * math.sqrt(2 / N)
            got_m, got_v = x[:, t].mean(), x[:, t].var()
            assert abs(got_m - mean[t]) < 4 * se_m, (
                f"{mat.model.value} {name} ({method.value}), year {t}: mean log real price {got_m:.5f} vs closed form "
                f"{mean[t]:.5f} (4 SE {4 * se_m:.5f})"
            )
            assert abs(got_v - var[t]) < 4 * se_v, (
                f"{mat.model.value} {name} ({method.value}), year {t}: variance {got_v:.5f} vs closed form "
                f"{var[t]:.5f} (4 SE {4 * se_v:.5f})"
            )
    fx = mk.fx
    lx = np.log(paths.fx_usd_per_eur)
    mean, var = log_price_moments(fx, math.log(fx.spot), math.log(fx.long_run), np.arange(n_years))
    assert np.allclose(paths.fx_usd_per_eur[:, 0], fx.spot), "FX year 0 is not spot"
    for t in (1, 5, 10):
        assert abs(lx[:, t].mean() - mean[t]) < 4 * math.sqrt(var[t] / N), f"FX year {t}: mean log rate off"
        assert abs(lx[:, t].var() - var[t]) < 4 * var[t] * math.sqrt(2 / N), f"FX year {t}: variance off"


def test_prices_are_nominal_and_ratio_is_real_over_long_run():
    mk = _markets()
    n_years = 8
    paths = _simulate(mk, SamplingMethod.PSEUDO, n=2048, n_years=n_years)
    for name in ("a", "b", "c"):
        i = paths.index(name)
        real = paths.real_price_ratio[i] * mk.materials[name].long_run_usd_per_t
        np.testing.assert_allclose(
            paths.price_usd_per_t[i], real * (1 + INFLATION) ** np.arange(n_years), rtol=1e-12,
            err_msg=f"{name}: nominal price != real ratio x long run x (1+inflation)^year",
        )
    assert paths.price_usd_per_t.shape == (3, 2048, n_years) and paths.fx_usd_per_eur.shape == (2048, n_years)


def _recovered_shocks(paths, mk: MarketsFile) -> np.ndarray:
    """eps[scenario, step, factor] from consecutive log real prices via the exact annual transition."""
    out = []
    series = [(mk.materials[f], _log_real(paths, f)) for f in ("a", "b", "c")]
    series.append((mk.fx, np.log(paths.fx_usd_per_eur)))
    for proc, x in series:
        s = proc.volatility
        if proc.model is PriceModel.LOG_OU:
            k = proc.mean_reversion_per_year
            alpha = math.log(proc.long_run_usd_per_t if isinstance(proc, Material) else proc.long_run)
            phi = math.exp(-k)
            eps = (x[:, 1:] - alpha - (x[:, :-1] - alpha) * phi) / (s * math.sqrt((1 - phi**2) / (2 * k)))
        else:
            eps = (x[:, 1:] - x[:, :-1] - (proc.drift_per_year - s**2 / 2)) / s
        out.append(eps)
    return np.stack(out, axis=2)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
@pytest.mark.parametrize("model", list(PriceModel), ids=lambda m: m.value)
def test_annual_shock_correlation_equals_input_matrix(model, method):
    mk = _markets(model_a=model)
    paths = _simulate(mk, method, n_years=6)
    eps = _recovered_shocks(paths, mk).reshape(-1, 4)  # pooled over scenarios and years (independent steps)
    m = eps.shape[0]
    assert np.abs(eps.mean(axis=0)).max() < 4 / math.sqrt(m), f"recovered shocks have mean {eps.mean(axis=0)}"
    assert np.abs(eps.var(axis=0) - 1).max() < 4 * math.sqrt(2 / m), f"recovered shocks have variance {eps.var(axis=0)}"
    got = np.corrcoef(eps.T)
    target = np.array(CORR)
    se = (1 - target**2) / math.sqrt(m)
    worst = np.abs(got - target) - 4 * se
    assert (worst < 1e-12).all(), (
        f"{method.value}: realised shock correlation differs from the input matrix by more than 4 SE "
        f"((1-rho^2)/sqrt({m})):\n{np.round(got, 4)}\nvs\n{np.array(CORR)}"
    )
    # shocks of different years are independent
    by_year = _recovered_shocks(paths, mk)[:, :, 0]
    lag1 = np.corrcoef(by_year[:, :-1].ravel(), by_year[:, 1:].ravel())[0, 1]
    assert abs(lag1) < 4 / math.sqrt(by_year[:, 1:].size), f"shocks of consecutive years correlate ({lag1:.4f})"


def test_student_t_copula_normal_marginals_and_heavier_joint_lower_tail():
    mk = _markets()
    dof = 4.0
    n_years = 11
    gauss = _recovered_shocks(_simulate(mk, SamplingMethod.PSEUDO, n_years=n_years), mk).reshape(-1, 4)
    tcop = _recovered_shocks(
        _simulate(mk, SamplingMethod.PSEUDO, n_years=n_years, copula=Copula.STUDENT_T, copula_dof=dof), mk
    ).reshape(-1, 4)
    m = tcop.shape[0]
    # marginals stay standard normal
    assert np.abs(tcop.mean(axis=0)).max() < 4 / math.sqrt(m), f"t-copula shocks have mean {tcop.mean(axis=0)}"
    assert np.abs(tcop.var(axis=0) - 1).max() < 4 * math.sqrt(2 / m), f"t-copula shock variance {tcop.var(axis=0)}"
    ks = stats.kstest(tcop[:, 0], "norm").pvalue
    assert ks > 1e-4, f"t-copula marginal of 'a' is not standard normal (KS p = {ks:.2e})"

    q = stats.norm.ppf(0.01)
    rho = CORR[0][1]
    cov = [[1, rho], [rho, 1]]
    p_gauss = stats.multivariate_normal(mean=[0, 0], cov=cov).cdf([q, q])
    tq = stats.t.ppf(0.01, dof)
    p_t = stats.multivariate_t(loc=[0, 0], shape=cov, df=dof).cdf([tq, tq], random_state=0)
    joint_g = np.mean((gauss[:, 0] < q) & (gauss[:, 1] < q))
    joint_t = np.mean((tcop[:, 0] < q) & (tcop[:, 1] < q))
    se_g, se_t = math.sqrt(p_gauss / m), math.sqrt(p_t / m)
    assert abs(joint_g - p_gauss) < 4 * se_g, (
        f"Gaussian copula: P(eps_a < q01, eps_b < q01) = {joint_g:.5f}, bivariate normal gives {p_gauss:.5f}"
    )
    assert abs(joint_t - p_t) < 4 * se_t + 2e-4, (
        f"t copula (dof {dof}): P(eps_a < q01, eps_b < q01) = {joint_t:.5f}, bivariate t gives {p_t:.5f}"
    )
    assert joint_t - joint_g > 4 * math.hypot(se_g, se_t), (
        f"t copula joint lower tail {joint_t:.5f} is not above the Gaussian copula's {joint_g:.5f}"
    )


# --------------------------------------------------------------------------- export restriction
def _active_probability_by_year(p: float, d: int, n_years: int) -> np.ndarray:
    """Exact P(restricted in year t) of the regime's Markov chain (state = years remaining)."""
    dist = np.zeros(d + 1)
    dist[0] = 1.0  # year 0: nothing in force
    out = np.zeros(n_years)
    for t in range(1, n_years):
        new = np.zeros(d + 1)
        new[d - 1] += dist[0] * p  # onset: d years including this one -> d - 1 left afterwards
        new[0] += dist[0] * (1 - p)
        for r in range(1, d + 1):
            new[r - 1] += dist[r]  # in force this year, one fewer left
        out[t] = dist[0] * p + dist[1:].sum()
        dist = new
    return out


@pytest.mark.parametrize("p, d", [(0.15, 3), (0.3, 2), (0.08, 1)])
def test_export_restriction_share_spells_and_uplift(p, d):
    n_years, n_scen = 40, 2**13  # fewer scenarios: 40 years each
    on = _markets(onset=p, duration=d)
    off = _markets(onset=0.0, duration=d)
    paths = _simulate(on, SamplingMethod.PSEUDO, n=n_scen, n_years=n_years)
    base = _simulate(off, SamplingMethod.PSEUDO, n=n_scen, n_years=n_years)
    r = paths.export_restriction
    assert r.shape == (n_scen, n_years) and r.dtype == bool
    assert not r[:, 0].any(), "year 0 (priced at spot) must never be restricted"
    assert not base.export_restriction.any(), "onset probability 0 must give no restriction"

    # long-run share: renewal argument, spell d years, gap geometric with mean (1 - p)/p
    share = d / (d + (1 - p) / p)
    exact = _active_probability_by_year(p, d, n_years)
    assert abs(exact[20:].mean() - share) < 1e-3, "reference Markov chain should have converged by year 20"
    per_scen = r[:, 20:].mean(axis=1)
    se = per_scen.std() / math.sqrt(n_scen)
    assert abs(per_scen.mean() - share) < 4 * se + 1e-3, (
        f"share of restricted years 20-39 = {per_scen.mean():.4f}, renewal value d/(d + (1-p)/p) = {share:.4f} "
        f"(4 SE {4 * se:.4f})"
    )
    freq = r.mean(axis=0)
    se_t = np.sqrt(exact * (1 - exact) / n_scen)
    assert (np.abs(freq - exact) < 4 * se_t + 1e-12).all(), (
        f"year-by-year restriction frequency departs from the exact chain: worst year "
        f"{int(np.argmax(np.abs(freq - exact) / np.maximum(se_t, 1e-12)))}"
    )

    # spells: runs of restricted years are whole numbers of d-year spells; a run is one spell with prob 1 - p
    padded = np.concatenate([np.zeros((n_scen, 1), bool), r, np.zeros((n_scen, 1), bool)], axis=1).astype(np.int8)
    edges = np.diff(padded, axis=1)
    starts = np.argwhere(edges == 1)
    ends = np.argwhere(edges == -1)
    lengths = ends[:, 1] - starts[:, 1]
    complete = ends[:, 1] < n_years  # runs cut by the horizon excluded
    # a run starting at s with s + d < n_years has its following year observed: it is a single spell iff
    # that year's fresh onset draw fails (probability 1 - p), whatever happens later
    early = starts[:, 1] + d < n_years
    assert (lengths[complete] % d == 0).all(), (
        f"restricted runs of length {np.unique(lengths[complete] % d)} mod {d}: spells no longer last exactly {d} years"
    )
    single = (lengths[early] == d).mean()
    se_s = math.sqrt(p * (1 - p) / early.sum())
    assert abs(single - (1 - p)) < 4 * se_s, (
        f"share of runs that are a single {d}-year spell {single:.4f} vs 1 - p = {1 - p:.4f} (4 SE {4 * se_s:.4f})"
    )

    # prices: affected materials x (1 + uplift) in restricted years, same scenario; others untouched
    for name, uplift in (("a", 0.8), ("c", 0.5)):
        i = paths.index(name)
        expected = base.price_usd_per_t[i] * np.where(r, 1 + uplift, 1.0)
        np.testing.assert_allclose(paths.price_usd_per_t[i], expected, rtol=1e-12,
                                   err_msg=f"{name}: restricted price != (1 + {uplift}) x unrestricted price")
        np.testing.assert_allclose(paths.real_price_ratio[i], base.real_price_ratio[i] * np.where(r, 1 + uplift, 1.0),
                                   rtol=1e-12, err_msg=f"{name}: real price ratio does not carry the uplift")
    i = paths.index("b")
    np.testing.assert_array_equal(paths.price_usd_per_t[i], base.price_usd_per_t[i],
                                  err_msg="unaffected material 'b' changed when the regime is switched on")
    np.testing.assert_array_equal(paths.fx_usd_per_eur, base.fx_usd_per_eur, err_msg="FX changed with the regime")


def test_export_restriction_geopolitical_loading_raises_onset_with_factor():
    """With loading l, onset probability in a free year is 1 - (1-p)^exp(l g - l^2/2)."""
    p, l, n_years = 0.1, 1.0, 12
    mk = _markets(onset=p, duration=1, loading=l)
    g = _geo(N, n_years)
    paths = simulate_market(mk, ScenarioStreams(SEED, SamplingMethod.PSEUDO), 0, N, n_years, INFLATION, g)
    r = paths.export_restriction
    # with d = 1 every year is free at its start, so every year t >= 1 is an onset draw
    x = g[:, 1:].ravel()
    hit = r[:, 1:].ravel()
    prob = 1 - (1 - p) ** np.exp(l * x - l * l / 2)
    for lo, hi in ((-5, -1), (-1, 0), (0, 1), (1, 5)):
        sel = (x >= lo) & (x < hi)
        expected = prob[sel].mean()
        se = math.sqrt(expected * (1 - expected) / sel.sum())
        assert abs(hit[sel].mean() - expected) < 4 * se, (
            f"onset frequency for g in [{lo}, {hi}) = {hit[sel].mean():.4f}, expected {expected:.4f} (4 SE {4 * se:.4f})"
        )


# --------------------------------------------------------------------------- price risk off
@pytest.mark.parametrize("model", list(PriceModel), ids=lambda m: m.value)
def test_price_risk_off_gives_expected_paths(model):
    mk = _markets(model_a=model, onset=0.3)
    n_years = 15
    off = _simulate(mk, SamplingMethod.SOBOL, n_years=n_years, risk_on=False)
    on = _simulate(mk, SamplingMethod.SOBOL, n_years=n_years)
    mk_no_regime = _markets(model_a=model, onset=0.0)
    on_no_regime = _simulate(mk_no_regime, SamplingMethod.SOBOL, n_years=n_years)
    assert not off.export_restriction.any(), "risk off must switch the export restriction off"
    assert on.export_restriction.any()
    t = np.arange(n_years)
    esc = (1 + INFLATION) ** t
    for name in ("a", "b", "c"):
        mat = mk.materials[name]
        mean, var = _textbook_moments(mat, math.log(mat.spot_usd_per_t), math.log(mat.long_run_usd_per_t), t)
        expected = np.exp(mean + var / 2) * esc  # E[S_t] of a lognormal, nominal
        got = off.price_usd_per_t[off.index(name)]
        np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), rtol=1e-12,
                                   err_msg=f"{name} ({mat.model.value}): risk-off path != exp(mean + var/2) x escalation")
        # and it is the Monte Carlo mean of the risky paths (regime off)
        sim = on_no_regime.price_usd_per_t[on_no_regime.index(name)]
        for year in (1, 5, 14):
            sd = expected[year] * math.sqrt(math.expm1(var[year]))
            assert abs(sim[:, year].mean() - expected[year]) < 4 * sd / math.sqrt(N), (
                f"{name} year {year}: Monte Carlo mean price {sim[:, year].mean():.3f} vs E[S_t] {expected[year]:.3f}"
            )
    fx = mk.fx
    mean, var = _textbook_moments(fx, math.log(fx.spot), math.log(fx.long_run), t)
    np.testing.assert_allclose(off.fx_usd_per_eur, np.broadcast_to(np.exp(mean + var / 2), (N, n_years)), rtol=1e-12,
                               err_msg="risk-off FX != E[FX_t] (FX is not escalated)")


def test_chunks_reassemble_the_full_market():
    """Scenario rows [a, b) of a chunked run equal those of one big run (all random streams)."""
    mk = _markets(onset=0.2, duration=2)
    n_years, n = 9, 5000
    g = _geo(n, n_years)
    for method in METHODS:
        whole = simulate_market(mk, ScenarioStreams(SEED, method), 0, n, n_years, INFLATION, g,
                                copula=Copula.STUDENT_T)
        part = simulate_market(mk, ScenarioStreams(SEED, method), 1000, 3333, n_years, INFLATION, g[1000:3333],
                               copula=Copula.STUDENT_T)
        np.testing.assert_array_equal(part.price_usd_per_t, whole.price_usd_per_t[:, 1000:3333],
                                      err_msg=f"{method.value}: prices of a chunk differ from the big run")
        np.testing.assert_array_equal(part.export_restriction, whole.export_restriction[1000:3333],
                                      err_msg=f"{method.value}: export regime of a chunk differs")
