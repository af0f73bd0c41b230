"""Instrument payoffs against hand-built scenarios, and guarantee pricing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.finance import discount_factors
from fundmodel.instruments import guarantee_pricing, oecd_minimum_premium_rate, project_payoffs

ROOT = Path(__file__).resolve().parent.parent
PID = "kz_tungsten"  # construction stage, senior debt, tungsten has a price floor in the terms


@pytest.fixture(scope="module")
def a():
    return load_assumptions(ROOT / "assumptions")


def hand_built(a, n=3):
    """Three scenarios: healthy, a debt default in year 4, an expropriation-style loss in year 6."""
    h = a.fund.horizon_years
    mats = list(a.markets.materials)
    price = np.full((len(mats), n, h), 60000.0)
    price[mats.index("tungsten"), 1, :] = 20000.0  # scenario 1: tungsten below the floor
    market = {"price_usd_per_t": price, "fx_usd_per_eur": np.full((n, h), 1.25),
              "export_restriction": np.zeros((n, h), dtype=bool)}
    equity = np.zeros((n, h))
    equity[:, 0], equity[:, 1:10] = -100.0, 30.0
    outstanding = np.zeros((n, h))
    outstanding[:, 0:8] = 200.0
    lender_loss = np.zeros((n, h))
    lender_loss[1, 4] = 120.0          # scenario 1 defaults in year 4, lenders write off 120
    outstanding[1, 4:] = 0.0
    insurable = np.zeros((n, h))
    insurable[2, 6] = 80.0             # scenario 2: uninsured loss of 80 in year 6
    tonnes = np.zeros((1, n, h))
    tonnes[0, :, 2:20] = 1000.0
    project = {"equity_cf_meur": equity, "equity_npv_meur": equity @ discount_factors(a.fund.discount_rate_nominal, h),
               "debt_outstanding_musd": outstanding, "lender_loss_musd": lender_loss,
               "insurable_loss_musd": insurable, "tonnes_eu_t": tonnes}
    return {"market": market, PID: project}


def by_instrument(payoffs):
    return {(x.instrument, x.material): x for x in payoffs}


def test_loan_guarantee_pays_the_covered_write_off(a):
    scen = hand_built(a)
    g = by_instrument(project_payoffs(a, scen, PID))[("loan_guarantee", "")]
    df = discount_factors(a.fund.discount_rate_nominal, a.fund.horizon_years)
    rate = a.instruments.loan_guarantee.premium_rate_by_oecd_category[5]  # Kazakhstan: OECD category 5
    assert a.countries.countries[a.projects[PID].country].oecd_category == 5
    opening = np.concatenate([np.zeros((3, 1)), scen[PID]["debt_outstanding_musd"][:, :-1]], axis=1)
    premium = rate * opening / 1.25 @ df
    loss = np.array([0.0, 120.0 / 1.25 * df[4], 0.0])
    np.testing.assert_allclose(g.pv_meur, premium - loss, rtol=1e-12,
                               err_msg="guarantee PV must be premium less the covered write-off")
    assert g.expected_loss_pv_meur == pytest.approx(loss.mean())
    assert g.max_units == a.instruments.loan_guarantee.max_cover == 0.8
    assert g.contingent_meur == pytest.approx(a.projects[PID].debt.amount_musd / a.markets.fx.spot)
    # 50 % cover pays 50 % of the write-off: payoffs are linear in the decision variable
    assert 0.5 * g.pv_meur[1] == pytest.approx(0.5 * premium[1] - 0.5 * 120.0 / 1.25 * df[4])


def test_equity_stake_and_political_risk_cover(a):
    scen = hand_built(a)
    x = by_instrument(project_payoffs(a, scen, PID))
    eq = x[("equity", "")]
    df = discount_factors(a.fund.discount_rate_nominal, a.fund.horizon_years)
    np.testing.assert_allclose(eq.pv_meur, scen[PID]["equity_npv_meur"])
    np.testing.assert_allclose(eq.capital_meur, 100.0 * df[0], err_msg="capital = PV of the cash calls")
    assert eq.max_units == 0.5
    pri = x[("political_risk_cover", "")]
    invested = np.array([100.0 - 30.0 * k for k in range(5)])  # net investment at the start of years 1..4
    premium = a.instruments.political_risk_cover.premium_rate_by_oecd_category[5] * (invested[:4] @ df[1:5])
    assert pri.pv_meur[0] == pytest.approx(premium), "premium on the insured net investment"
    assert pri.pv_meur[2] == pytest.approx(premium - 80.0 / 1.25 * df[6]), "pays the insured loss"


def test_price_floor_pays_shortfall_and_earns_upside_share(a):
    scen = hand_built(a)
    floor = by_instrument(project_payoffs(a, scen, PID))[("price_floor", "tungsten")]
    terms = a.instruments.price_floor
    h = a.fund.horizon_years
    df = discount_factors(a.fund.discount_rate_nominal, h)
    years = np.arange(h)
    f = terms.floors_usd_per_t["tungsten"] * (1 + a.fund.inflation) ** years
    vol = scen[PID]["tonnes_eu_t"][0] * (years < terms.tenor_years)
    for i, price in enumerate((60000.0, 20000.0, 60000.0)):
        cash = vol[i] * (terms.upside_share * np.maximum(price - f, 0) - np.maximum(f - price, 0)) / 1e6
        assert floor.pv_meur[i] == pytest.approx(cash / 1.25 @ df), f"scenario {i}: floor payoff"
    assert floor.pv_meur[1] < 0 < floor.pv_meur[0], "below the floor the fund pays, above it earns"
    assert floor.tonnes_t["tungsten"][0] == pytest.approx(vol[0][:a.instruments.supply_window_years].mean())


def test_oecd_minimum_premium_and_subsidy_flag(a):
    assert oecd_minimum_premium_rate(None, 10) is None and oecd_minimum_premium_rate(0, 10) is None
    assert oecd_minimum_premium_rate(7, 8.0) == pytest.approx((1.1 * 8 + 1.8) / 100)
    rows = guarantee_pricing(a, project_payoffs(a, hand_built(a), PID))
    g = next(r for r in rows if r["instrument"] == "loan_guarantee")
    assert g["oecd_category"] == 5 and g["oecd_minimum_premium_pv_meur_per_unit"] > 0
    assert g["subsidised"] == (g["premium_pv_meur_per_unit"] < g["expected_loss_pv_meur_per_unit"])


def test_payoffs_from_a_simulation_run(a, tmp_path):
    from fundmodel.results import simulate_to_directory
    from fundmodel.simulation import RunSettings, load_scenarios

    settings = RunSettings.from_assumptions(a, scenarios=1024, workers=1, risk_attribution=False)
    result, _ = simulate_to_directory(a, settings, tmp_path)
    scen = load_scenarios(tmp_path / "simulation" / "scenarios")
    for pid, project in a.projects.items():
        payoffs = by_instrument(project_payoffs(a, scen, pid))
        assert ("equity", "") in payoffs and ("political_risk_cover", "") in payoffs
        assert (("loan_guarantee", "") in payoffs) == (project.debt.amount_musd > 0)
        np.testing.assert_allclose(payoffs[("equity", "")].pv_meur, result.scalars[pid]["equity_npv_meur"])
        for x in payoffs.values():
            assert x.pv_meur.shape == (1024,) and np.isfinite(x.pv_meur).all(), f"{pid} {x.instrument}"
            assert x.expected_loss_pv_meur >= 0 and x.premium_pv_meur >= 0
        if ("loan_guarantee", "") in payoffs:
            g = payoffs[("loan_guarantee", "")]
            defaulted = result.scalars[pid]["default_year"] < a.fund.horizon_years
            assert (g.expected_loss_pv_meur > 0) == defaulted.any(), f"{pid}: guarantee loss iff some default"


def test_premium_rate_graded_by_oecd_category(a):
    g = a.instruments.loan_guarantee
    assert g.rate_for(None) == g.premium_rate_per_year and g.rate_for(0) == g.premium_rate_per_year
    assert g.rate_for(6) == g.premium_rate_by_oecd_category[6]
    rates = [g.rate_for(c) for c in (3, 4, 5, 6)]
    assert rates == sorted(rates), "riskier categories pay at least as much (3..6)"


def test_default_loan_guarantee_premiums_cover_oecd_minimum_and_expected_loss(tmp_path_factory):
    """On a 4,096-scenario run, every default loan guarantee earns at least max(MPR, EL)."""
    from fundmodel.results import simulate_to_directory
    from fundmodel.simulation import RunSettings, load_scenarios

    a = load_assumptions(ROOT / "assumptions")
    out = tmp_path_factory.mktemp("pricing")
    simulate_to_directory(a, RunSettings.from_assumptions(a, scenarios=4096, workers=1, risk_attribution=False), out)
    scenarios = load_scenarios(out / "simulation" / "scenarios")
    payoffs = [x for pid in a.projects for x in project_payoffs(a, scenarios, pid)]
    rows = guarantee_pricing(a, payoffs)
    for r in rows:
        if r["instrument"] == "loan_guarantee":
            assert not r["subsidised"], r
            mpr = r["oecd_minimum_premium_pv_meur_per_unit"]
            assert mpr is None or r["premium_pv_meur_per_unit"] >= mpr, r
        if r["instrument"] == "political_risk_cover":
            assert not r["subsidised"], r
    # the flag is the plain comparison of the two PVs
    assert all(r["subsidised"] == (r["premium_pv_meur_per_unit"] < r["expected_loss_pv_meur_per_unit"]) for r in rows)
