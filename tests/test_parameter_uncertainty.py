"""Parameter uncertainty of the price processes and the break-even long-run price (issue 14 item 2).

- the drawn ``(ln long-run, kappa)`` pairs have the mean and covariance of the calibration's
  estimates (computed here independently: statsmodels OLS of the AR(1) and the delta method),
  under the truncation ``kappa > 0`` (moments of the truncated law computed here from scipy's
  truncated normal); ``kappa > 0`` always;
- switched off, the simulation is the fixed-parameter one bit for bit, and switched on no stream
  of the other materials moves;
- the break-even long-run price zeroes the mean project NPV at the asset rate when re-simulated
  (same scenarios: to the root's tolerance; fresh scenarios: within the Monte Carlo error), and
  the mean NPV rises with the long-run price;
- the P5-P95 range of the NPV widens when parameter uncertainty is on.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from fundmodel.assumptions import load_assumptions
from fundmodel.assumptions.schema import SamplingMethod
from fundmodel.market import KAPPA_FLOOR, draw_price_parameters, parameter_law, simulate_market
from fundmodel.sampling import ScenarioStreams
from fundmodel.simulation import simulate_chunk

from conftest import SHIPPED_ASSUMPTIONS, copy_assumptions, slow_fixture

SEED = 20260101


@pytest.fixture(scope="module")
def shipped():
    return load_assumptions(SHIPPED_ASSUMPTIONS)


def _with(a, *, on: bool | None = None, markets=None):
    """``a`` with the switch set and/or other markets (assumptions are frozen: copies)."""
    fund = a.fund
    if on is not None:
        fund = fund.model_copy(update={"simulation": fund.simulation.model_copy(update={"parameter_uncertainty": on})})
    return dataclasses.replace(a, fund=fund, markets=markets if markets is not None else a.markets)


def _material(a, mid: str, **update):
    mats = dict(a.markets.materials)
    mats[mid] = mats[mid].model_copy(update=update)
    return a.markets.model_copy(update={"materials": mats})


def _independent_covariance(log_price: np.ndarray, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, kappa) and their covariance from an OLS AR(1) fit, by the delta method (no fundmodel code)."""
    y, x = log_price[1:], log_price[:-1]
    res = sm.OLS(y, sm.add_constant(x)).fit()
    c, phi = res.params
    v = np.asarray(res.cov_params())
    jac = np.array([[1 / (1 - phi), c / (1 - phi) ** 2],  # d alpha / d(c, phi), alpha = c / (1 - phi)
                    [0.0, -1 / (phi * dt)]])              # d kappa / d(c, phi), kappa = -ln(phi) / dt
    return np.array([c / (1 - phi), -np.log(phi) / dt]), jac @ v @ jac.T


def _truncated_moments(mean: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of N(mean, cov) truncated to kappa > 0 (scipy's truncated normal + regression)."""
    ma, mk = mean
    sa, sk = np.sqrt(np.diag(cov))
    beta = cov[0, 1] / cov[1, 1]
    tk = stats.truncnorm(-mk / sk, np.inf, loc=mk, scale=sk)
    ek, vk = tk.mean(), tk.var()
    ea = ma + beta * (ek - mk)
    va = beta ** 2 * vk + sa ** 2 - beta ** 2 * sk ** 2
    return np.array([ea, ek]), np.array([[va, beta * vk], [beta * vk, vk]])


@slow_fixture(scope="module")
def fitted(shipped):
    """Per fitted material: independent (alpha, kappa) estimates and covariance from the Pink Sheet."""
    from fundmodel.calibration.prices import calibrate_prices

    r = calibrate_prices(shipped, series=["COPPER", "NICKEL"], regimes=False, fitted_on="2026-11-25")
    return {f.material: _independent_covariance(f.log_price, f.dt) for f in r.fits}


def test_shipped_covariance_is_the_calibration_fit(shipped, fitted):
    """markets.yaml carries the fit's covariance (to its 4 written decimals), centred on the shipped levels."""
    for mid, (est, cov) in fitted.items():
        law = parameter_law(shipped.markets.materials[mid])
        assert law is not None and law.origin == "fitted"
        np.testing.assert_allclose(law.mean, [math.log(round(math.exp(est[0]))), round(est[1], 4)], atol=1e-4)
        np.testing.assert_allclose(law.sd, np.sqrt(np.diag(cov)), rtol=2e-3)
        assert law.correlation == pytest.approx(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]), abs=1e-4)
    # hand-set materials: no parameter uncertainty (documented in markets.yaml)
    for mid in ("ndpr", "lithium", "cobalt", "graphite", "tungsten", "gallium"):
        assert parameter_law(shipped.markets.materials[mid]) is None


def _draws(markets, n: int, sampling=SamplingMethod.PSEUDO, seed: int = SEED):
    return draw_price_parameters(ScenarioStreams(seed, sampling), markets, 0, n)


def _assert_moments(draws: np.ndarray, mean: np.ndarray, cov: np.ndarray, z: float = 4.5) -> None:
    """Sample mean and covariance of (n, 2) draws within z Monte Carlo standard errors."""
    n = draws.shape[0]
    m = draws.mean(axis=0)
    s = np.cov(draws.T)
    np.testing.assert_array_less(np.abs(m - mean), z * np.sqrt(np.diag(cov) / n))
    for i in range(2):
        for j in range(2):
            prod = (draws[:, i] - m[i]) * (draws[:, j] - m[j])
            assert abs(s[i, j] - cov[i, j]) < z * prod.std() / math.sqrt(n), (i, j, s[i, j], cov[i, j])


@pytest.mark.parametrize("sampling", [SamplingMethod.PSEUDO, SamplingMethod.SOBOL])
def test_draws_reproduce_truncated_calibration_law(shipped, fitted, sampling):
    """The drawn pairs have the calibration covariance's truncated-normal mean and covariance."""
    n = 1 << 16
    got = _draws(shipped.markets, n, sampling)
    for mid, (est, cov) in fitted.items():
        centre = np.array([math.log(shipped.markets.materials[mid].long_run_usd_per_t),
                           shipped.markets.materials[mid].mean_reversion_per_year])
        mean, tcov = _truncated_moments(centre, cov)
        _assert_moments(np.column_stack(got[mid]), mean, tcov)


def test_draws_reproduce_calibration_covariance_when_truncation_is_negligible(shipped, fitted):
    """With kappa far from 0 (its SE halved: P(kappa < 0) < 0.1 %) the draws have the untruncated moments."""
    est, cov = fitted["copper"]
    cov = cov.copy()
    cov[1, :] /= 2
    cov[:, 1] /= 2
    sd = np.sqrt(np.diag(cov))
    cal = shipped.markets.materials["copper"].calibration.model_copy(update={
        "log_long_run_se": float(sd[0]), "mean_reversion_se": float(sd[1]),
        "log_long_run_mean_reversion_correlation": float(cov[0, 1] / (sd[0] * sd[1]))})
    markets = _material(shipped, "copper", calibration=cal, long_run_usd_per_t=float(np.exp(est[0])),
                        mean_reversion_per_year=float(est[1]))
    assert stats.norm.cdf(-est[1] / sd[1]) < 1e-3
    got = np.column_stack(_draws(markets, 1 << 16)["copper"])
    _assert_moments(got, est, cov)


def test_kappa_always_positive_and_paths_finite(shipped):
    """Even a law with most of its mass below 0 gives kappa > 0 and finite prices."""
    cal = shipped.markets.materials["copper"].calibration.model_copy(update={"mean_reversion_se": 0.5})
    markets = _material(shipped, "copper", calibration=cal, mean_reversion_per_year=0.01)
    alpha, kappa = _draws(markets, 8192)["copper"]
    assert (kappa >= KAPPA_FLOOR).all() and kappa.min() > 0
    assert np.isfinite(alpha).all()
    # the truncated law keeps the shape above 0: share below the mean = (P(0<k<m)) / P(k>0)
    lo = stats.norm.cdf(-0.01 / 0.5)
    expected = (stats.norm.cdf(0) - lo) / (1 - lo)
    assert abs((kappa < 0.01).mean() - expected) < 4 * math.sqrt(expected * (1 - expected) / kappa.size)
    streams = ScenarioStreams(SEED, SamplingMethod.SOBOL)
    n = 2048
    m = simulate_market(markets, streams, 0, n, 40, 0.02, np.zeros((n, 40)), parameter_uncertainty=True)
    assert np.isfinite(m.price_usd_per_t).all() and (m.price_usd_per_t > 0).all()


def test_draws_chunk_invariant(shipped):
    """Parameters are a pure function of (seed, material, scenario index)."""
    whole = _draws(shipped.markets, 3000, SamplingMethod.LHS)
    part = draw_price_parameters(ScenarioStreams(SEED, SamplingMethod.LHS), shipped.markets, 1100, 2500)
    for mid in whole:
        for w, p in zip(whole[mid], part[mid]):
            np.testing.assert_array_equal(w[1100:2500], p)


@pytest.mark.slow
def test_switch_off_is_the_fixed_parameter_model(shipped):
    """Off: bit-for-bit the simulation without any parameter law; on: only copper and nickel paths move."""
    from fundmodel.credit import credit_policies

    streams = ScenarioStreams(SEED, SamplingMethod.SOBOL)
    # the credit policies fitted with the switch off (one pilot fit for the three runs; the fixed-law
    # run would fit the very same ones)
    credit = credit_policies(_with(shipped, on=False), SEED, SamplingMethod.SOBOL)
    off = simulate_chunk(_with(shipped, on=False), streams, 0, 1024, credit=credit)
    mats = dict(shipped.markets.materials)
    for mid in ("copper", "nickel"):
        mats[mid] = mats[mid].model_copy(update={"calibration": None})
    fixed = simulate_chunk(_with(shipped, on=True, markets=shipped.markets.model_copy(update={"materials": mats})),
                           ScenarioStreams(SEED, SamplingMethod.SOBOL), 0, 1024, credit=credit)
    np.testing.assert_array_equal(off.market.price_usd_per_t, fixed.market.price_usd_per_t)
    assert off.market.parameters is None
    for pid in shipped.projects:
        for key, v in off.projects[pid].market_npv.items():
            np.testing.assert_array_equal(v, fixed.projects[pid].market_npv[key])
        np.testing.assert_array_equal(off.projects[pid].values.project_npv_meur,
                                      fixed.projects[pid].values.project_npv_meur)
    on = simulate_chunk(_with(shipped, on=True), ScenarioStreams(SEED, SamplingMethod.SOBOL), 0, 1024, credit=credit)
    for k, mid in enumerate(on.market.materials):
        same = np.array_equal(on.market.price_usd_per_t[k], off.market.price_usd_per_t[k])
        assert same == (mid not in ("copper", "nickel")), mid
    np.testing.assert_array_equal(on.market.fx_usd_per_eur, off.market.fx_usd_per_eur)
    np.testing.assert_array_equal(on.market.export_restriction, off.market.export_restriction)
    # the price ratio of a drawn material is over the scenario's own long-run median
    k = on.market.index("copper")
    alpha, _ = on.market.parameters["copper"]
    np.testing.assert_allclose(on.market.real_price_ratio[k][:, 0],
                               shipped.markets.materials["copper"].spot_usd_per_t / np.exp(alpha))


@pytest.fixture(scope="module")
def one_project(tmp_path_factory):
    """pe_copper alone (copper: fitted, drawn parameters) and kz_tungsten (hand-set tungsten)."""
    d = copy_assumptions(tmp_path_factory.mktemp("be") / "assumptions", projects=["pe_copper", "kz_tungsten"])
    return load_assumptions(d)


@slow_fixture(scope="module")
def breakeven_run(one_project):
    from fundmodel.breakeven import breakevens
    from fundmodel.credit import credit_policies
    from fundmodel.simulation import RunSettings

    a = one_project
    st = RunSettings.from_assumptions(a, scenarios=20000)
    credit = credit_policies(a, st.seed, st.sampling, copula=st.copula, copula_dof=st.copula_dof)
    return a, st, credit, breakevens(a, st, credit, scenarios=2048)


def _mean_npv(a, st, credit, pid: str, level: float, start: int, stop: int) -> tuple[float, float]:
    """Full re-simulation with the primary material's long-run level at ``level``."""
    material = a.projects[pid].materials[0]
    b = _with(a, markets=_material(a, material, long_run_usd_per_t=level))
    c = simulate_chunk(b, ScenarioStreams(st.seed, st.sampling), start, stop, credit=credit, with_irr=False)
    npv = c.projects[pid].market_npv["project_npv_market_meur"]
    return float(npv.mean()), float(npv.std(ddof=1) / math.sqrt(npv.size))


def _evaluator(a, st, credit, pid: str, n: int = 2048):
    from fundmodel.breakeven import _Evaluator
    from fundmodel.political import geopolitical_factor

    streams = ScenarioStreams(st.seed, st.sampling)
    geo = geopolitical_factor(streams, a.countries.geopolitical_factor, 0, n, a.fund.horizon_years)
    market = simulate_market(a.markets, streams, 0, n, a.fund.horizon_years, a.fund.inflation, geo,
                             parameter_uncertainty=a.fund.simulation.parameter_uncertainty)
    return _Evaluator(a, pid, streams, n, market, geo, credit[pid])


@pytest.mark.slow
def test_breakeven_zeroes_mean_npv_when_resimulated(breakeven_run):
    from fundmodel.breakeven import XTOL_LOG

    a, st, credit, found = breakeven_run
    for pid, b in found.items():
        assert np.isfinite(b.price_usd_per_t) and b.reason == "", (pid, b.reason)
        assert b.scenarios == 2048 and b.se_usd_per_t > 0
        # same scenarios, full re-simulation (parameters drawn around the new level): the solver's
        # rescaled paths are the re-simulated ones, and the mean is zero to the root's tolerance
        same, se_same = _mean_npv(a, st, credit, pid, b.price_usd_per_t, 0, 2048)
        f = _evaluator(a, st, credit, pid)
        solver = f(math.log(b.price_usd_per_t))
        assert same == pytest.approx(solver, rel=1e-6, abs=1e-6), (pid, same, solver)
        # at the shipped level the solver is the run itself (simulate_to_directory passes the run's values)
        shipped, _ = _mean_npv(a, st, credit, pid, b.shipped_usd_per_t, 0, 2048)
        assert f(f.x0) == shipped, (pid, f(f.x0), shipped)
        lo, _ = _mean_npv(a, st, credit, pid, b.price_usd_per_t * 0.99, 0, 2048)
        hi, _ = _mean_npv(a, st, credit, pid, b.price_usd_per_t * 1.01, 0, 2048)
        assert lo < 0 < hi, (pid, lo, same, hi)
        slope = (hi - lo) / math.log(1.01 / 0.99)  # d mean NPV / d ln L
        assert abs(same) <= XTOL_LOG * slope, (pid, same, slope)
        # fresh scenarios: zero within the Monte Carlo error of both samples
        fresh, se_fresh = _mean_npv(a, st, credit, pid, b.price_usd_per_t, 2048, 6144)
        assert abs(fresh) < 4 * math.hypot(se_same, se_fresh), (pid, fresh, se_same, se_fresh)


@pytest.mark.slow
def test_mean_npv_rises_with_long_run_price(breakeven_run):
    a, st, credit, found = breakeven_run
    for pid, b in found.items():
        f = _evaluator(a, st, credit, pid)
        levels = np.log(b.price_usd_per_t) + np.linspace(-0.6, 0.6, 7)
        means = np.array([f(x) for x in levels])
        assert (np.diff(means) > 0).all(), (pid, means)
        assert means[0] < 0 < means[-1]


@pytest.mark.slow
def test_npv_range_widens_with_parameter_uncertainty(shipped):
    """P95 - P5 of the project NPV is wider on than off for every project with a drawn primary price."""
    n = 4096
    width = {}
    for on in (False, True):
        c = simulate_chunk(_with(shipped, on=on), ScenarioStreams(SEED, SamplingMethod.SOBOL), 0, n, with_irr=False)
        width[on] = {pid: np.subtract(*np.percentile(pc.values.project_npv_meur, [95, 5]))
                     for pid, pc in c.projects.items()}
    for pid, p in shipped.projects.items():
        if parameter_law(shipped.markets.materials[p.materials[0]]) is not None:
            assert width[True][pid] > width[False][pid], (pid, width[False][pid], width[True][pid])


def test_bad_parameter_laws_are_refused_naming_file_field_and_rule(tmp_path):
    from fundmodel.errors import AssumptionError

    def drop_correlation(d):
        del d["materials"]["copper"]["calibration"]["log_long_run_mean_reversion_correlation"]

    with pytest.raises(AssumptionError) as err:
        load_assumptions(copy_assumptions(tmp_path / "a", projects=["kz_tungsten"],
                                          edits={"markets.yaml": drop_correlation}))
    text = str(err.value)
    assert "markets.yaml" in text and "materials.copper.calibration" in text
    assert "missing log_long_run_mean_reversion_correlation" in text

    def negative_sd(d):
        d["materials"]["lithium"]["parameter_uncertainty"] = {"log_long_run_sd": -0.1, "mean_reversion_sd": 0.1,
                                                              "source": "analyst range"}

    with pytest.raises(AssumptionError) as err:
        load_assumptions(copy_assumptions(tmp_path / "b", projects=["kz_tungsten"], edits={"markets.yaml": negative_sd}))
    assert "materials.lithium.parameter_uncertainty.log_long_run_sd" in str(err.value)
    assert "must be >= 0, got -0.1" in str(err.value)

    def both(d):
        d["materials"]["copper"]["parameter_uncertainty"] = {"log_long_run_sd": 0.1, "mean_reversion_sd": 0.1,
                                                             "source": "analyst range"}

    with pytest.raises(AssumptionError) as err:
        load_assumptions(copy_assumptions(tmp_path / "c", projects=["kz_tungsten"], edits={"markets.yaml": both}))
    assert "materials.copper" in str(err.value) and "fitted covariance" in str(err.value)


def test_analyst_law_of_a_hand_set_material_is_drawn(tmp_path):
    """A sourced parameter_uncertainty of a hand-set material is drawn like a fitted covariance."""
    def analyst(d):
        d["materials"]["lithium"]["parameter_uncertainty"] = {
            "log_long_run_sd": 0.087, "mean_reversion_sd": 0.1, "correlation": 0.0,
            "source": "analyst incentive-price range USD 15-20k/t read as a 90 % interval"}

    a = load_assumptions(copy_assumptions(tmp_path / "a", projects=["kz_tungsten"], edits={"markets.yaml": analyst}))
    law = parameter_law(a.markets.materials["lithium"])
    assert law.origin == "analyst" and law.mean[0] == pytest.approx(math.log(16000))
    alpha, kappa = _draws(a.markets, 1 << 15)["lithium"]
    mean, cov = _truncated_moments(np.array(law.mean), law.covariance)
    _assert_moments(np.column_stack([alpha, kappa]), mean, cov)
