"""Calibration from public data: parameter recovery, agreement with independent OLS, --write, bad data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from fundmodel.assumptions import load_assumptions
from fundmodel.calibration import data as d
from fundmodel.calibration.countries import EVENTS, calibrate_countries, hazard_from_score
from fundmodel.calibration.data import CalibrationDataError
from fundmodel.calibration.prices import (calibrate_prices, fit_gbm, fit_ou, nearest_correlation,
                                          written_values)
from fundmodel.cli import main
from fundmodel.errors import AssumptionError

ROOT = Path(__file__).resolve().parents[1]
ASSUMPTIONS = ROOT / "assumptions"


def _ou_path(rng: np.random.Generator, n: int, dt: float, kappa: float, alpha: float, sigma: float) -> np.ndarray:
    """Exact log-OU path (vectorised AR(1) recursion through a linear filter)."""
    phi = np.exp(-kappa * dt)
    sd = sigma * np.sqrt((1 - phi * phi) / (2 * kappa))
    eps = sd * rng.standard_normal(n)
    eps[0] = 0.0
    return alpha + lfilter([1.0], [1.0, -phi], eps)


@pytest.fixture(scope="module")
def assumptions():
    return load_assumptions(ASSUMPTIONS)


@pytest.fixture(scope="module")
def calibration(assumptions):
    return calibrate_prices(assumptions, series=["COPPER", "NICKEL", "Zinc"], regimes=False,
                            fitted_on="2026-01-01")


# ----------------------------------------------------------------------------- recovery
@pytest.mark.parametrize("dt, n", [(1 / 12, 12 * 300), (1.0, 400)])
def test_ou_parameters_recovered_within_standard_errors(dt, n):
    kappa, alpha, sigma = 0.6, np.log(9000.0), 0.25
    x = _ou_path(np.random.default_rng(20260101), n, dt, kappa, alpha, sigma)
    fit = fit_ou(x, dt)
    assert abs(fit.kappa - kappa) < 2 * fit.kappa_se
    assert abs(fit.log_long_run - alpha) < 2 * fit.log_long_run_se
    assert abs(fit.sigma - sigma) < 2 * fit.sigma_se
    assert fit.kappa_ci[0] < kappa < fit.kappa_ci[1]
    assert fit.long_run_ci[0] < 9000.0 < fit.long_run_ci[1]
    assert fit.half_life == pytest.approx(np.log(2) / fit.kappa)
    assert fit.kappa_se > 0 and fit.sigma_se > 0 and fit.long_run_se > 0


def test_gbm_parameters_recovered_within_standard_errors():
    mu, sigma, dt, n = 0.03, 0.3, 1 / 12, 12 * 400
    rng = np.random.default_rng(7)
    x = np.log(100.0) + np.concatenate([[0.0], np.cumsum((mu - sigma ** 2 / 2) * dt
                                                         + sigma * np.sqrt(dt) * rng.standard_normal(n - 1))])
    fit = fit_gbm(x, dt)
    assert abs(fit.sigma - sigma) < 2 * fit.sigma_se
    assert abs(fit.drift - mu) < 2 * fit.drift_se
    # OU on a random walk: AIC does not prefer OU by much, and kappa is not significant
    ou = fit_ou(x, dt)
    assert ou.kappa_ci[0] < 0.05


def test_ou_fit_refuses_a_random_walk_without_mean_reversion():
    x = np.log(100.0) + np.cumsum(np.full(200, 0.01))  # trending: phi >= 1
    with pytest.raises(CalibrationDataError, match="no mean reversion"):
        fit_ou(x, 1 / 12, name="trend")


# ----------------------------------------------------------------------------- real data
@pytest.mark.parametrize("name", ["COPPER", "NICKEL"])
def test_pinksheet_fit_agrees_with_independent_ols(calibration, name):
    fit = next(f for f in calibration.fits if f.name == name)
    x = fit.log_price
    design = np.column_stack([np.ones(x.size - 1), x[:-1]])
    (a, b), *_ = np.linalg.lstsq(design, np.diff(x), rcond=None)
    resid = np.diff(x) - design @ np.array([a, b])
    s2 = resid @ resid / (x.size - 3)
    phi = 1 + b
    kappa = -12 * np.log(phi)
    assert fit.ou.kappa == pytest.approx(kappa, rel=1e-8)
    assert fit.ou.long_run == pytest.approx(np.exp(-a / b), rel=1e-8)
    assert fit.ou.sigma == pytest.approx(np.sqrt(s2 * 2 * kappa / 12 / (1 - phi ** 2) * 12), rel=1e-8)
    # the shared/data README sanity figures: annualised volatility of monthly log returns
    assert fit.gbm.sigma == pytest.approx({"COPPER": 0.21, "NICKEL": 0.29}[name], abs=0.01)
    assert fit.sample.startswith("2000-01")


def test_copper_zinc_residual_correlation_near_log_return_correlation(calibration):
    fits = {f.name: f for f in calibration.fits}
    returns = np.corrcoef(np.diff(fits["COPPER"].log_price), np.diff(fits["Zinc"].log_price))[0, 1]
    resid = calibration.correlation_monthly.loc["COPPER", "Zinc"]
    assert resid == pytest.approx(returns, abs=0.02)
    assert resid == pytest.approx(0.72, abs=0.03)  # README sanity figure
    assert calibration.correlation_annual.loc["COPPER", "Zinc"] == pytest.approx(resid, abs=0.02)
    assert np.linalg.eigvalsh(calibration.correlation_annual.to_numpy()).min() > 0


def test_nearest_correlation_reports_how_much_it_moved():
    c = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    fixed, fro, mx = nearest_correlation(c)
    assert np.linalg.eigvalsh(fixed).min() > -1e-10
    assert np.allclose(np.diag(fixed), 1.0)
    assert fro == pytest.approx(np.linalg.norm(fixed - c)) and 0 < mx <= fro
    same, fro0, mx0 = nearest_correlation(np.eye(3))
    assert fro0 == mx0 == 0.0 and np.array_equal(same, np.eye(3))


def test_deflator_is_cpi_u(assumptions):
    cpi = d.cpi_u_annual(d.USGS_LITHIUM_FILE, 163.0, {2022: 292.655})
    assert cpi[2021] == pytest.approx(270.97, rel=0.003)  # BLS CPI-U 2021 annual average
    assert cpi[2022] == 292.655


# ----------------------------------------------------------------------------- --write
@pytest.fixture()
def tmp_assumptions(tmp_path):
    target = tmp_path / "assumptions"
    shutil.copytree(ASSUMPTIONS, target)
    return target


@pytest.mark.slow
def test_write_prices_round_trips(tmp_assumptions, tmp_path, capsys):
    before = (tmp_assumptions / "markets.yaml").read_text()
    old = load_assumptions(tmp_assumptions)
    rc = main(["calibrate", "prices", "--series", "COPPER,NICKEL", "--write", "--assumptions", str(tmp_assumptions),
               "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    new = load_assumptions(tmp_assumptions)  # validates
    result = calibrate_prices(new, series=["COPPER", "NICKEL"], regimes=False)
    for fit in result.fits:
        m = new.markets.materials[fit.material]
        for key, value in written_values(fit, "log_ou").items():
            got = getattr(m, key)
            assert (got.value if hasattr(got, "value") else got) == value, (fit.material, key)
        assert m.calibration is not None and m.calibration.series == fit.name
        assert m.calibration.sample == fit.sample and m.calibration.observations == fit.n_obs
    # materials without public series keep their hand-set values; comments survive
    for mat in ("ndpr", "lithium", "cobalt", "graphite", "tungsten", "gallium"):
        assert new.markets.materials[mat] == old.markets.materials[mat]
    after = (tmp_assumptions / "markets.yaml").read_text()
    comments = [line.strip() for line in before.splitlines() if line.strip().startswith("#")]
    for line in comments:
        assert line in after
    c = np.asarray(new.markets.correlation.matrix)
    f = new.markets.correlation.factors
    fits = {x.material: x for x in result.fits}
    assert c[f.index("copper"), f.index("nickel")] == pytest.approx(
        result.correlation_annual.loc[fits["copper"].name, fits["nickel"].name], abs=0.005)
    # a second write is idempotent
    rc = main(["calibrate", "prices", "--series", "COPPER,NICKEL", "--write", "--assumptions", str(tmp_assumptions),
               "--out", str(tmp_path / "out")])
    assert rc == 0 and (tmp_assumptions / "markets.yaml").read_text().count("calibration:") == after.count("calibration:")
    report = tmp_path / "out" / "calibration" / "prices"
    for name in ("report.html", "prices.csv", "prices.json", "chart_COPPER.png", "old_vs_new.csv"):
        assert (report / name).is_file(), name


@pytest.mark.slow
def test_write_countries_round_trips(tmp_assumptions, tmp_path, capsys):
    before = (tmp_assumptions / "countries.yaml").read_text()
    rc = main(["calibrate", "countries", "--write", "--assumptions", str(tmp_assumptions),
               "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert rc == 0 and "old vs new" in out
    new = load_assumptions(tmp_assumptions)
    result = calibrate_countries(new)
    for row in result.hazards.itertuples():
        assert getattr(new.countries.countries[row.country].events, row.event).annual_probability == row.new
    assert new.countries.countries["CD"].calibration.cpi_score == 20
    after = (tmp_assumptions / "countries.yaml").read_text()
    for line in before.splitlines():
        if line.strip().startswith("#"):
            assert line.strip() in after
    assert (tmp_path / "out" / "calibration" / "countries" / "countries.csv").is_file()


def test_country_mapping_is_monotone(assumptions):
    result = calibrate_countries(assumptions)
    s = assumptions.calibration.countries
    for event in EVENTS:
        grid = np.linspace(-3, 3, 61)
        p = hazard_from_score(grid, s.events[event])
        assert np.all(np.diff(p) <= 1e-15), event
    # without overlays, a better-governed country never has a higher hazard
    h = result.hazards
    for event in EVENTS:
        sub = h[h.event == event].sort_values("score")
        assert np.all(np.diff(sub["mapped"].to_numpy()) <= 1e-12), event
    au, cd = (h[(h.country == c) & (h.event == "expropriation")]["new"].item() for c in ("AU", "CD"))
    assert au < cd


def test_non_monotone_mapping_is_rejected(tmp_assumptions):
    path = tmp_assumptions / "calibration.yaml"
    text = path.read_text().replace("best: {score: 1.8, annual_probability: 0.001}",
                                    "best: {score: 1.8, annual_probability: 0.05}", 1)
    path.write_text(text)
    with pytest.raises(AssumptionError, match=r"calibration.yaml: countries.events.expropriation.*monotone"):
        load_assumptions(tmp_assumptions)


# ----------------------------------------------------------------------------- bad data
def _csv(tmp_path: Path, rows: dict[str, list], months: list[str]) -> Path:
    path = tmp_path / "prices.csv"
    lines = ["month," + ",".join(rows)]
    for i, m in enumerate(months):
        lines.append(m + "," + ",".join("" if v[i] is None else str(v[i]) for v in rows.values()))
    path.write_text("\n".join(lines) + "\n")
    return path


def _months(n: int, start: int = 2000) -> list[str]:
    return [f"{start + i // 12}-{i % 12 + 1:02d}" for i in range(n)]


@pytest.mark.parametrize("series, values, message", [
    ("COPPER", None, "no observations"),
    ("SHORT", "short", "only 30 observations"),
    ("FLAT", "flat", "constant"),
    ("GAPPY", "gap", "missing value"),
    ("COPPR", None, "unknown series 'COPPR' (did you mean 'COPPER'?)"),
])
def test_bad_series_give_a_clear_error(tmp_path, capsys, series, values, message):
    n = 200
    rng = np.random.default_rng(3)
    good = list(np.round(np.exp(np.log(5000) + np.cumsum(0.05 * rng.standard_normal(n))), 2))
    cols = {"COPPER": [None] * n, "SHORT": [None] * (n - 30) + good[:30], "FLAT": [100.0] * n,
            "GAPPY": good[:50] + [None] + good[51:]}
    path = _csv(tmp_path, cols, _months(n))
    rc = main(["calibrate", "prices", "--data", str(path), "--series", series, "--out", str(tmp_path / "out"),
               "--assumptions", str(ASSUMPTIONS)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(path) in err and message in err
    assert "nan" not in err.lower()
    assert not (tmp_path / "out" / "calibration").exists()


def test_missing_data_file_and_bad_start(tmp_path, capsys):
    rc = main(["calibrate", "prices", "--data", str(tmp_path / "nope.csv"), "--assumptions", str(ASSUMPTIONS)])
    assert rc == 2 and "nope.csv: price data file does not exist" in capsys.readouterr().err
    rc = main(["calibrate", "prices", "--start", "2000-13", "--assumptions", str(ASSUMPTIONS)])
    assert rc == 2 and "--start must be YYYY-MM" in capsys.readouterr().err
    rc = main(["calibrate"])
    assert rc == 2 and "prices" in capsys.readouterr().err
