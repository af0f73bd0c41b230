"""Tornado data (sensitivity.csv), price fans and first-production distributions."""

from __future__ import annotations

import ast
import dataclasses
import shutil
from pathlib import Path

import numpy as np
import numpy_financial as npf
import pandas as pd
import pytest
from conftest import slow_fixture

from fundmodel.assumptions import load_assumptions
from fundmodel.memo.wording import tornado_in_words
from fundmodel.pipeline import simulate_to_directory
from fundmodel.results import FIRST_PRODUCTION_COLUMNS, PRICE_FAN_COLUMNS
from fundmodel.perturb import scale_development_durations, scale_political_hazards
from fundmodel.sampling import ScenarioStreams
from fundmodel.sensitivity import (
    DRIVERS,
    SENSITIVITY_COLUMNS,
    default_variants,
    sensitivity_chunk,
    sensitivity_table,
    variant_values,
)
from fundmodel.simulation import RunSettings, load_scenarios, simulate_chunk

ROOT = Path(__file__).resolve().parent.parent
SUBSET = ("mn_ree", "kz_tungsten", "cd_cobalt")  # feasibility, construction, production
N_SCENARIOS = 2048
N_SENS = 1024
N_EXACT = 512  # scenarios of the bit-for-bit checks of the variant shortcuts


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The shipped assumptions with three projects (different stages, countries, debt)."""
    target = tmp_path_factory.mktemp("assumptions")
    shutil.copytree(ROOT / "assumptions", target, dirs_exist_ok=True)
    for f in (target / "projects").glob("*.yaml"):
        if f.stem not in SUBSET:
            f.unlink()
    return load_assumptions(target)


def _settings(a, **kw) -> RunSettings:
    base = dict(scenarios=N_SCENARIOS, seed=11, chunk_size=1024, workers=2, risk_attribution=True,
                attribution_scenarios=N_SENS)
    base.update(kw)
    return RunSettings.from_assumptions(a, **base)


@slow_fixture(scope="module")
def run(small, tmp_path_factory):
    """One simulation of the small portfolio written to disk, with its new result files."""
    out = tmp_path_factory.mktemp("out")
    result, _ = simulate_to_directory(small, _settings(small), out)
    sim = out / "simulation"
    return {
        "dir": sim,
        "result": result,
        "sensitivity": pd.read_csv(sim / "sensitivity.csv"),
        "price_fan": pd.read_csv(sim / "price_fan.csv"),
        "first_production": pd.read_csv(sim / "first_production.csv", dtype={"year": str}),
        "arrays": load_scenarios(sim / "scenarios"),
    }


@pytest.fixture(scope="module")
def base_chunk(small):
    streams = ScenarioStreams(11, _settings(small).sampling)
    return streams, simulate_chunk(small, streams, 0, N_SENS, with_irr=False)


@pytest.fixture(scope="module")
def exact_chunk(small):
    streams = ScenarioStreams(11, _settings(small).sampling)
    return streams, simulate_chunk(small, streams, 0, N_EXACT, with_irr=False)


def _row(df: pd.DataFrame, pid: str, driver: str) -> pd.Series:
    rows = df[(df.project == pid) & (df.driver == driver)]
    assert len(rows) == 1, (pid, driver)
    return rows.iloc[0]


# ----------------------------------------------------------------------------- sensitivity.csv


@pytest.mark.slow
def test_sensitivity_csv_layout(run, small):
    df = run["sensitivity"]
    assert list(df.columns) == SENSITIVITY_COLUMNS
    assert list(dict.fromkeys(df.project)) == list(small.projects)
    for pid, rows in df.groupby("project", sort=False):
        assert sorted(rows.driver) == sorted(DRIVERS), pid
        assert (np.diff(rows.swing_meur.to_numpy()) <= 0).all(), f"{pid}: rows not ordered by swing"
        np.testing.assert_array_equal(rows.swing_meur, (rows.high_equity_npv_meur - rows.low_equity_npv_meur).abs())
        assert rows.base_equity_npv_meur.nunique() == 1 and rows.base_project_npv_meur.nunique() == 1
    assert (df.se_meur >= 0).all() and (df.scenarios == N_SENS).all()
    assert not df.drop(columns=["label", "low_setting", "high_setting"]).isna().any().any()
    assert _row(df, "mn_ree", "political").label == "Political hazards, Mongolia"
    price = _row(df, "kz_tungsten", "price")
    assert (price.low_setting, price.high_setting) == ("-20 %", "+20 %")
    assert _row(df, "cd_cobalt", "discount_rate").high_setting == "10.0 %"


def test_base_column_is_the_main_run_on_the_same_scenarios(run):
    # common random numbers: the sensitivity's base run is the simulation itself, bit for bit
    df, r = run["sensitivity"], run["result"]
    for pid in SUBSET:
        row = _row(df, pid, "price")
        assert row.base_equity_npv_meur == float(r.scalars[pid]["equity_npv_meur"][:N_SENS].mean())
        assert row.base_project_npv_meur == float(r.scalars[pid]["project_npv_meur"][:N_SENS].mean())


def test_signs_and_monotonicity(run):
    df = run["sensitivity"]
    for pid in SUBSET:
        for kind in ("equity", "project"):
            def value(driver, which, kind=kind):
                return _row(df, pid, driver)[f"{which}_{kind}_npv_meur"]

            assert value("price", "low") < value("price", "base") < value("price", "high"), (pid, kind)
            assert value("capex", "low") > value("capex", "base") > value("capex", "high"), (pid, kind)
            assert value("opex", "low") > value("opex", "base") > value("opex", "high"), (pid, kind)
            assert value("political", "low") > value("political", "base") > value("political", "high"), (pid, kind)
    # producing mine: nothing left to build, no schedule effect at all; longer build costs value
    assert _row(df, "cd_cobalt", "schedule").swing_meur == 0.0
    tungsten = _row(df, "kz_tungsten", "schedule")
    assert tungsten.low_equity_npv_meur > tungsten.base_equity_npv_meur > tungsten.high_equity_npv_meur
    # a stronger euro lowers the EUR value of a producing mine's USD income
    cobalt = _row(df, "cd_cobalt", "fx")
    assert cobalt.low_project_npv_meur > cobalt.base_project_npv_meur > cobalt.high_project_npv_meur
    # the CRN standard error is far below the price swing
    assert (df[df.driver == "price"].swing_meur > 10 * df[df.driver == "price"].se_meur).all()


@pytest.mark.slow
def test_discount_rate_variant_equals_revaluation_of_saved_flows(run, small, base_chunk):
    df, arrays = run["sensitivity"], run["arrays"]
    rate = small.fund.discount_rate_nominal
    fx0 = np.asarray(arrays.market.fx_usd_per_eur[:N_SENS, 0], dtype=float)
    _, chunk = base_chunk
    for pid in SUBSET:
        eq = np.asarray(arrays.projects[pid].equity_cf_meur[:N_SENS], dtype=float)  # float32 on disk
        entry = small.projects[pid].capex.acquisition_musd / fx0
        pc = chunk.projects[pid]
        project_eur = pc.flows.project_fcf_musd / chunk.market.fx_usd_per_eur
        row = _row(df, pid, "discount_rate")
        for which, shift in (("low", -0.02), ("high", 0.02)):
            r = rate + shift
            equity = np.array([npf.npv(r, np.r_[-e, cf]) for e, cf in zip(entry, eq)])  # independent, per scenario
            assert row[f"{which}_equity_npv_meur"] == pytest.approx(equity.mean(), rel=1e-5, abs=1e-3), (pid, which)
            project = np.array([npf.npv(r, np.r_[0.0, cf]) for cf in project_eur])
            assert row[f"{which}_project_npv_meur"] == pytest.approx(project.mean(), rel=1e-9, abs=1e-9), (pid, which)


@pytest.mark.slow
def test_neutral_variant_reproduces_base_exactly(small, exact_chunk):
    streams, chunk = exact_chunk
    for key, d in DRIVERS.items():
        b = d.perturb(small, d.neutral)
        values = variant_values(small, chunk, b, streams, reuse=False)  # everything re-simulated
        for pid in SUBSET:
            for name in ("project_npv_meur", "equity_npv_meur"):
                np.testing.assert_array_equal(getattr(values[pid], name), getattr(chunk.projects[pid].values, name),
                                              err_msg=f"{key}: {pid} {name}")


@pytest.mark.slow
def test_shortcuts_equal_a_full_resimulation(small, exact_chunk):
    # the variants reuse the base chunk's pieces and draws: same numbers as re-simulating
    # the changed assumptions from scratch on the run's streams (with the run's credit
    # policies, which the variants hold fixed as they hold the loan amounts)
    streams, base = exact_chunk
    fast = sensitivity_chunk(small, _settings(small), 0, N_EXACT, default_variants())["npv"]
    for name, (key, setting) in default_variants().items():
        full = simulate_chunk(DRIVERS[key].perturb(small, setting), streams, 0, N_EXACT, with_irr=False,
                              credit=base.credit)
        for pid in SUBSET:
            np.testing.assert_array_equal(fast[name][pid][0], full.projects[pid].values.project_npv_meur,
                                          err_msg=f"{name}: {pid} project NPV")
            np.testing.assert_array_equal(fast[name][pid][1], full.projects[pid].values.equity_npv_meur,
                                          err_msg=f"{name}: {pid} equity NPV")


@pytest.mark.slow
def test_same_seed_same_file_whatever_the_workers(run, small):
    written = (run["dir"] / "sensitivity.csv").read_text()  # two worker processes
    again = tornado_in_words(small, sensitivity_table(small, _settings(small, workers=1)))
    assert again.to_csv(index=False) == written


def test_perturbations_leave_the_input_alone(small):
    before = small.countries.countries["MN"].events.expropriation.annual_probability
    doubled = scale_political_hazards(small, 2.0)
    assert small.countries.countries["MN"].events.expropriation.annual_probability == before
    after = doubled.countries.countries["MN"].events.expropriation.annual_probability
    assert after == pytest.approx(1 - (1 - before) ** 2)
    slower = scale_development_durations(small, 1.25)
    tri = slower.projects["kz_tungsten"].schedule.construction_years
    tri0 = small.projects["kz_tungsten"].schedule.construction_years
    assert (tri.min, tri.mode, tri.max) == (tri0.min * 1.25, tri0.mode * 1.25, tri0.max * 1.25)
    permitting, permitting0 = (x.countries.countries["MN"].permitting_years for x in (slower, small))
    assert permitting.mode == 1.25 * permitting0.mode


def test_sensitivity_does_not_depend_on_the_portfolio():
    tree = ast.parse((ROOT / "fundmodel" / "sensitivity.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "portfolio" in m or "instruments" in m or "memo" in m]


@pytest.mark.slow
def test_no_attribution_or_switched_off_means_no_sensitivity(small, tmp_path):
    simulate_to_directory(small, _settings(small, scenarios=1024, risk_attribution=False, workers=1), tmp_path / "a")
    assert not (tmp_path / "a" / "simulation" / "sensitivity.csv").exists()
    assert (tmp_path / "a" / "simulation" / "price_fan.csv").is_file()
    off = dataclasses.replace(small, fund=small.fund.model_copy(update={
        "simulation": small.fund.simulation.model_copy(update={"sensitivity": False})}))
    simulate_to_directory(off, _settings(off, scenarios=1024, workers=1), tmp_path / "b")
    assert not (tmp_path / "b" / "simulation" / "sensitivity.csv").exists()
    assert (tmp_path / "b" / "simulation" / "first_production.csv").is_file()


# ----------------------------------------------------------------------------- price fan, first production


def test_price_fan_equals_numpy_percentiles_of_the_saved_arrays(run, small):
    fan, market = run["price_fan"], run["arrays"].market
    assert list(fan.columns) == PRICE_FAN_COLUMNS
    years = small.fund.valuation_date.year + np.arange(small.fund.horizon_years)
    series = {m: market.price_usd_per_t[i] for i, m in enumerate(small.markets.materials)}
    series["EURUSD"] = market.fx_usd_per_eur
    assert list(dict.fromkeys(fan.material)) == list(series)
    for name, arr in series.items():
        rows = fan[fan.material == name]
        x = np.asarray(arr, dtype=float)
        assert x.shape == (N_SCENARIOS, small.fund.horizon_years)
        np.testing.assert_array_equal(rows.year, years)
        for q in (5, 25, 50, 75, 95):
            np.testing.assert_allclose(rows[f"p{q}"], np.percentile(x, q, axis=0), rtol=1e-12, err_msg=f"{name} p{q}")
        np.testing.assert_allclose(rows["mean"], x.mean(axis=0), rtol=1e-12)
        assert (rows.p5 <= rows.p25).all() and (rows.p25 <= rows.p50).all() and (rows.p75 <= rows.p95).all()
        assert set(rows.unit) == {"USD per EUR" if name == "EURUSD" else "USD/t nominal"}
    ndpr = fan[fan.material == "ndpr"].iloc[0]
    spot = small.markets.materials["ndpr"].spot_usd_per_t
    assert ndpr.p5 == ndpr.p95 == pytest.approx(spot, rel=1e-6)  # year 0 is priced at spot


def test_first_production_shares(run, small):
    fp, r = run["first_production"], run["result"]
    assert list(fp.columns) == FIRST_PRODUCTION_COLUMNS
    assert list(dict.fromkeys(fp.project)) == list(small.projects)
    for pid, rows in fp.groupby("project", sort=False):
        assert rows.share.sum() == pytest.approx(1.0, abs=1e-12), pid
        assert rows.year.iloc[-1] == "never" and rows.cumulative_share.iloc[-1] == 1.0
        first = r.scalars[pid]["first_production_year"]
        assert rows.share.iloc[-1] == np.mean(first >= r.n_years)
        for year, share in zip(rows.year.iloc[:-1].astype(int), rows.share.iloc[:-1]):
            assert share == np.mean(first == year - r.valuation_year) > 0
        np.testing.assert_allclose(rows.cumulative_share.iloc[:-1], rows.share.iloc[:-1].cumsum(), rtol=1e-12)
    cobalt = fp[fp.project == "cd_cobalt"]
    assert cobalt.year.iloc[0] == str(small.fund.valuation_date.year)  # a producing mine produces now
