"""Instrument payoffs at market rates, against hand-built scenarios and independent formulas.

Every expected figure is computed here from the published inputs (rates from the YAML
figures, discounting with explicit ``(1 + r) ** -(t + 1)``), never read back from the code
under test: the market rates (asset, levered cost of equity, loan, country), a guarantee's
premium and write-off at the loan's rate, a secondary and a primary equity entry at the
discounted pre-money value, MIGA-style cover in force, a floor from first delivery on
payable tonnes, and the concession. Terms are read from the YAML files as written
(``sheet``, not through the loader); the OECD minimum premium from the Arrangement's
published coefficients; the negotiated discount on scenarios whose value is known exactly.
"""

from __future__ import annotations

from pathlib import Path

import dataclasses

import numpy as np
import pytest
import yaml

from fundmodel.assumptions import load_assumptions
from fundmodel.instruments import (
    entry_prices,
    guarantee_pricing,
    oecd_minimum_premium_rate,
    primary_round_flows,
    project_payoffs,
)
from fundmodel.rates import market_rates
from fundmodel.scenarios import YEARLY_FIELDS, MarketScenarios, ProjectScenarios, ScenarioSet

ROOT = Path(__file__).resolve().parent.parent
PID = "kz_tungsten"  # construction stage, senior debt, tungsten has a price floor, secondary entry
FX = 1.25


@pytest.fixture(scope="module")
def a():
    return load_assumptions(ROOT / "assumptions")


@pytest.fixture(scope="module")
def sheet():
    """The published inputs as the YAML files write them, read without the loader.

    ``instruments`` (the term sheet), ``countries`` (by code), ``fx_spot`` (markets.yaml) and
    ``projects`` (the project files of the projects these tests price).
    """
    def read(rel: str) -> dict:
        return yaml.safe_load((ROOT / "assumptions" / rel).read_text(encoding="utf-8"))

    return {"instruments": read("instruments.yaml"), "countries": read("countries.yaml")["countries"],
            "fx_spot": float(read("markets.yaml")["fx"]["spot"]),
            "projects": {pid: read(f"projects/{pid}.yaml") for pid in (PID, "gh_lithium")}}


def df(rate: float, n_years: int) -> np.ndarray:
    """End-of-year discount factors, written out."""
    return np.array([(1.0 + rate) ** -(t + 1) for t in range(n_years)])


def hand_rates(a, pid: str) -> dict:
    """The market rates of a project from the YAML inputs (fund.yaml: market_rates, countries.yaml)."""
    m, p = a.fund.market_rates, a.projects[pid]
    crp = a.countries.countries[p.country].country_risk_premium
    debt, capex = p.debt.amount_musd, p.capex.initial_musd
    asset = m.risk_free_eur + m.mining_asset_beta * m.equity_risk_premium + crp
    loan = m.risk_free_eur + crp / m.equity_to_bond_volatility + m.project_finance_spread
    # Harris & Pringle: E r_e + D r_d = (D + E) r_a, capped at the maximum equity beta
    equity = min((asset * capex - loan * debt) / (capex - debt), m.risk_free_eur + m.max_equity_beta * m.equity_risk_premium + crp)
    return {"asset": asset, "equity": equity, "debt": loan,
            "country": m.risk_free_eur + crp, "risk_free": m.risk_free_eur, "policy": a.fund.discount_rate_nominal}


def hand_built(a, n=3):
    """Three scenarios: healthy, a debt default in year 4, an expropriation in year 6."""
    h = a.fund.horizon_years
    mats = list(a.markets.materials)
    price = np.full((len(mats), n, h), 60000.0)
    price[mats.index("tungsten"), 1, :] = 20000.0  # scenario 1: tungsten below the floor
    market = {"price_usd_per_t": price, "fx_usd_per_eur": np.full((n, h), FX),
              "export_restriction": np.zeros((n, h), dtype=bool)}
    equity = np.zeros((n, h))
    equity[:, 0], equity[:, 1:10] = -100.0, 30.0
    equity[1, 5:] = 0.0  # the debt defaults in year 4: the sponsors' equity ends
    equity[2, 7:] = 0.0  # expropriated at the end of year 6
    outstanding = np.zeros((n, h))
    outstanding[:, 0:8] = 200.0
    lender_loss = np.zeros((n, h))
    lender_loss[1, 4] = 120.0          # scenario 1 defaults in year 4, lenders write off 120
    outstanding[1, 4:] = 0.0
    insurable = np.zeros((n, h))
    insurable[2, 6] = 80.0             # scenario 2: insured loss of 80 in year 6
    events = np.zeros((n, h), dtype=np.uint8)
    events[2, 6] = 1                   # expropriation bit
    tonnes = np.zeros((1, n, h))
    tonnes[0, 0, 2:20] = 1000.0        # first delivery in year 2 ...
    tonnes[0, 1, 5:20] = 1000.0        # ... in year 5
    tonnes[0, 2, 2:7] = 1000.0
    project = {"equity_cf_meur": equity, "debt_outstanding_musd": outstanding, "lender_loss_musd": lender_loss,
               "insurable_loss_musd": insurable, "tonnes_eu_t": tonnes, "political_events": events,
               "default_year": np.array([h, 4, h]), "first_production_year": np.array([2, 5, 2])}
    return {"market": market, PID: project}


def as_set(raw: dict) -> ScenarioSet:
    """Hand-built arrays (``{"market": {...}, project: {...}}``) as the simulation's scenario contract.

    Yearly arrays go to the project's fields (lender flows, not used by the instruments, are
    zero), everything else to its per-scenario ``results``.
    """
    projects = {}
    for pid, arrays in raw.items():
        if pid == "market":
            continue
        yearly = {k: v for k, v in arrays.items() if k in YEARLY_FIELDS}
        yearly.setdefault("lender_cf_meur", np.zeros_like(arrays["equity_cf_meur"]))
        projects[pid] = ProjectScenarios(**yearly, results={k: v for k, v in arrays.items() if k not in YEARLY_FIELDS})
    return ScenarioSet(MarketScenarios(**raw["market"]), projects)


def by_instrument(payoffs):
    return {(x.instrument, x.material): x for x in payoffs}


def hand_guarantee(sheet, scen, rate_debt: float, h: int):
    """Premium and covered write-off of one unit of the loan guarantee, PV per scenario (EUR m).

    From the term sheet (``instruments.yaml``: the premium rate of the host country's OECD
    category in ``countries.yaml``) on the hand-built balances: the premium on the balance
    outstanding at the start of each year, the lenders' write-off when it happens, both
    converted at the scenario's EUR/USD and discounted at the loan's market rate.
    """
    category = sheet["countries"][sheet["projects"][PID]["country"]]["oecd_category"]
    rate = sheet["instruments"]["loan_guarantee"]["premium_rate_by_oecd_category"][category]
    n = scen[PID]["debt_outstanding_musd"].shape[0]
    opening = np.concatenate([np.zeros((n, 1)), scen[PID]["debt_outstanding_musd"][:, :-1]], axis=1)
    premium = rate * opening / FX @ df(rate_debt, h)
    loss = scen[PID]["lender_loss_musd"] / FX @ df(rate_debt, h)
    return premium, loss


def test_market_rates_are_built_from_the_published_inputs(a):
    for pid in ("kz_tungsten", "mn_ree", "au_nickel"):
        r, want = market_rates(a, pid), hand_rates(a, pid)
        for key in ("asset", "equity", "debt", "country", "risk_free", "policy"):
            assert getattr(r, key) == pytest.approx(want[key], abs=1e-12), (pid, key)
    # the country risk premium orders the asset rates; leverage raises the cost of equity
    assert market_rates(a, "mn_ree").asset > market_rates(a, "kz_tungsten").asset > market_rates(a, "au_nickel").asset
    assert market_rates(a, "kz_tungsten").equity > market_rates(a, "kz_tungsten").asset
    assert market_rates(a, "au_nickel").equity == market_rates(a, "au_nickel").asset  # no debt


def test_loan_guarantee_at_the_loans_market_rate(a, sheet):
    scen = hand_built(a)
    g = by_instrument(project_payoffs(a, as_set(scen), PID))[("loan_guarantee", "")]
    r = hand_rates(a, PID)
    h = a.fund.horizon_years
    rate = sheet["instruments"]["loan_guarantee"]["premium_rate_by_oecd_category"][5]  # Kazakhstan: OECD category 5
    assert a.countries.countries[a.projects[PID].country].oecd_category == 5
    opening = np.concatenate([np.zeros((3, 1)), scen[PID]["debt_outstanding_musd"][:, :-1]], axis=1)
    premium = rate * opening / FX @ df(r["debt"], h)
    loss = np.array([0.0, 120.0 / FX * df(r["debt"], h)[4], 0.0])
    np.testing.assert_allclose(g.pv_meur, premium - loss, rtol=1e-12,
                               err_msg="guarantee PV: premium less the covered write-off, at the loan's rate")
    assert g.expected_loss_pv_meur == pytest.approx(loss.mean())
    assert g.market_rate == pytest.approx(r["debt"])
    at_policy = (rate * opening / FX @ df(r["policy"], h) - np.array([0, 120 / FX * df(r["policy"], h)[4], 0])).mean()
    assert g.concession_meur == pytest.approx(at_policy - (premium - loss).mean()), "policy value - market value"
    assert g.max_units == a.instruments.loan_guarantee.max_cover == 0.8
    assert g.contingent_meur == pytest.approx(a.projects[PID].debt.amount_musd / a.markets.fx.spot)


def test_secondary_stake_is_bought_at_the_discounted_pre_money_value(a):
    scen = hand_built(a)
    r = hand_rates(a, PID)
    h = a.fund.horizon_years
    d = a.projects[PID].entry.discount
    value = scen[PID]["equity_cf_meur"] @ df(r["equity"], h)  # 100 % of the equity, per scenario
    price = (1 - d) * value.mean()
    eq = by_instrument(project_payoffs(a, as_set(scen), PID))[("equity", "")]
    assert eq.entry.kind == "secondary" and eq.entry.price_meur == pytest.approx(price)
    np.testing.assert_allclose(eq.pv_meur, value - price, rtol=1e-12)
    # (that the fund earns its negotiated discount: test_the_fund_earns_its_negotiated_discount)
    cash_calls = np.maximum(-scen[PID]["equity_cf_meur"], 0) @ df(r["risk_free"], h)
    np.testing.assert_allclose(eq.capital_meur, price + cash_calls, err_msg="capital = price + cash calls (risk-free)")
    assert eq.max_units == 0.5
    # offtake pro rata of the stake, out of the EU-available volume (not the whole output)
    window = a.instruments.supply_window_years
    np.testing.assert_allclose(eq.tonnes_t["tungsten"], scen[PID]["tonnes_eu_t"][0][:, :window].mean(axis=1))
    assert eq.eu_available_t["tungsten"] == pytest.approx(scen[PID]["tonnes_eu_t"][0][:, :window].mean())


def test_a_stake_without_positive_pre_money_value_is_unavailable(a):
    scen = hand_built(a)
    scen[PID]["equity_cf_meur"] = -np.abs(scen[PID]["equity_cf_meur"])  # the equity never pays back
    eq = by_instrument(project_payoffs(a, as_set(scen), PID))[("equity", "")]
    assert eq.max_units == 0.0 and not eq.entry.available
    assert "no positive value at the cost of equity" in eq.reason and "pre-money value EUR -" in eq.reason


def test_primary_round_funds_the_cash_calls_and_dilutes(a):
    # the round's cash pays the cash calls as they come; what is left goes back at first production
    flows = primary_round_flows(np.array([[-30.0, -50.0, -10.0, 40.0, 40.0]]), 70.0, np.array([3]))
    np.testing.assert_allclose(flows, [[0.0, -10.0, -10.0, 40.0, 40.0]])
    flows = primary_round_flows(np.array([[-30.0, -50.0, 0.0, 40.0, 40.0]]), 100.0, np.array([3]))
    np.testing.assert_allclose(flows, [[0.0, 0.0, 0.0, 60.0, 40.0]])
    pid = "gh_lithium"
    p = a.projects[pid]
    assert p.entry.kind == "primary"
    scen = hand_built(a)
    scen[pid] = scen.pop(PID)
    scen[pid]["tonnes_eu_t"] = np.repeat(scen[pid]["tonnes_eu_t"], len(p.products), axis=0)
    cf = scen[pid]["equity_cf_meur"]
    scen[pid]["equity_cf_meur"] = np.where(cf > 0, 2.0 * cf, cf)  # worth buying at Ghana's cost of equity
    r = hand_rates(a, pid)
    h = a.fund.horizon_years
    pre_money = (scen[pid]["equity_cf_meur"] @ df(r["equity"], h)).mean()
    assert pre_money > 0
    raise_eur = p.entry.raise_musd / a.markets.fx.spot
    stake = raise_eur / ((1 - p.entry.discount) * pre_money + raise_eur)  # new shares at the discounted price
    eq = by_instrument(project_payoffs(a, as_set(scen), pid))[("equity", "")]
    assert eq.entry.stake_per_unit == pytest.approx(stake)
    # post-money = pre-money + the cash raised, at face (Modigliani-Miller): per scenario
    np.testing.assert_allclose(eq.pv_meur, stake * (scen[pid]["equity_cf_meur"] @ df(r["equity"], h) + raise_eur)
                               - raise_eur, rtol=1e-12)
    # (the expected PV is the negotiated discount on the stake's pre-money share:
    # test_the_fund_earns_its_negotiated_discount) and zero at a zero discount, on the scenarios
    # the price was set on
    zero = {**scen, pid: scen[pid]}
    fair = dataclasses.replace(a, projects={**a.projects, pid: p.model_copy(update={
        "entry": p.entry.model_copy(update={"discount": 0.0})})})
    eq0 = by_instrument(project_payoffs(fair, as_set(zero), pid))[("equity", "")]
    assert abs(eq0.pv_meur.mean()) < 1e-9 * raise_eur
    assert eq.max_units == pytest.approx(min(1.0, 0.5 / stake))


ROUND_VALUES = np.array([100.0, 200.0, 300.0])  # EUR m: 100 % of the equity at the cost of equity, per scenario


def round_value_scenarios(a, pid: str, r_equity: float, year: int = 3) -> dict:
    """The hand-built scenarios with one equity flow per scenario, worth exactly ``ROUND_VALUES``.

    A single distribution at the end of year ``year`` of ``V (1 + r_e)^(year + 1)`` is worth
    ``V`` at the cost of equity ``r_e``, so the pre-money value is 200 (the mean of 100, 200
    and 300) by construction, with no discounting left to the code.
    """
    scen = hand_built(a)
    if pid != PID:
        scen[pid] = scen.pop(PID)
        scen[pid]["tonnes_eu_t"] = np.repeat(scen[pid]["tonnes_eu_t"], len(a.projects[pid].products), axis=0)
    cf = np.zeros_like(scen[pid]["equity_cf_meur"])
    cf[:, year] = ROUND_VALUES * (1.0 + r_equity) ** (year + 1)
    scen[pid]["equity_cf_meur"] = cf
    return scen


@pytest.mark.parametrize("discount", [0.0, "yaml", 0.3])
@pytest.mark.parametrize("pid", [PID, "gh_lithium"])  # a secondary and a primary entry
def test_the_fund_earns_its_negotiated_discount(a, sheet, pid, discount):
    """Expected PV of one unit of the equity column on scenarios whose values are 100, 200, 300.

    By hand (pre-money value ``V = 200``, discount ``d``; the round ``R`` of a primary entry):

    - secondary: the fund pays ``(1 - d) V`` for 100 % of the equity worth ``V``: it earns ``d V``
      (0, 20 and 60 at d = 0, 0.1, 0.3);
    - primary: ``R`` buys new shares at the discounted pre-money value, a stake
      ``s = R / ((1 - d) V + R)`` of the post-money equity; the fund earns ``s d V``, the
      discount on its share of the pre-money value, and nothing at ``d = 0``.
    """
    entry = sheet["projects"][pid]["entry"]
    d = float(entry["discount"]) if discount == "yaml" else discount
    p = a.projects[pid]
    sub = dataclasses.replace(a, projects={**a.projects, pid: p.model_copy(update={
        "entry": p.entry.model_copy(update={"discount": d})})})
    scen = round_value_scenarios(sub, pid, hand_rates(a, pid)["equity"])
    eq = by_instrument(project_payoffs(sub, as_set(scen), pid))[("equity", "")]
    value = 200.0
    if entry["kind"] == "secondary":
        assert eq.entry.price_meur == pytest.approx((1 - d) * value, rel=1e-12)
        want = d * value
    else:
        assert entry["kind"] == "primary"
        raise_eur = entry["raise_musd"] / sheet["fx_spot"]
        stake = raise_eur / ((1 - d) * value + raise_eur)
        assert eq.entry.stake_per_unit == pytest.approx(stake, rel=1e-12)
        want = stake * d * value
    assert eq.entry.pre_money_meur == pytest.approx(value, rel=1e-12)
    assert eq.pv_meur.mean() == pytest.approx(want, rel=1e-9, abs=1e-9 * value), (
        f"{pid} ({entry['kind']}) at a {d:.0%} discount: the fund earns its negotiated discount")


@pytest.mark.slow
def test_zero_discount_stake_is_worth_zero_out_of_sample(a, tmp_path):
    """Priced on one seed, valued on another: at a zero discount the stake's expected PV is zero
    within its Monte Carlo standard error (no value from the entry)."""
    from fundmodel.pipeline import simulate_to_directory
    from fundmodel.simulation import RunSettings, load_scenarios

    import dataclasses

    # a low equity risk premium makes the stake worth buying (at the shipped rates its pre-money
    # value is negative and it is unavailable); the identity tested holds at any rate
    rates = a.fund.market_rates.model_copy(update={"equity_risk_premium": 0.01})
    sub = dataclasses.replace(a, fund=a.fund.model_copy(update={"market_rates": rates}), projects={
        PID: a.projects[PID].model_copy(update={"entry": a.projects[PID].entry.model_copy(update={"discount": 0.0})})})
    scen = {}
    for seed in (11, 12):
        out = tmp_path / f"seed{seed}"
        settings = RunSettings.from_assumptions(sub, scenarios=16384, seed=seed, workers=1, risk_attribution=False)
        result, _ = simulate_to_directory(sub, settings, out)
        scen[seed] = load_scenarios(out / "simulation" / "scenarios")
        scen[seed] = scen[seed].with_results({PID: result.scalars[PID]})
    priced = entry_prices(sub, scen[11])
    assert priced[PID].available, priced[PID]
    eq = by_instrument(project_payoffs(sub, scen[12], PID, entry=priced[PID]))[("equity", "")]
    se = eq.pv_meur.std(ddof=1) / np.sqrt(eq.pv_meur.size)
    assert abs(eq.pv_meur.mean()) <= 3 * se, (eq.pv_meur.mean(), se)
    # and it has the power to see the project's own 10 % discount (three standard errors below it)
    assert 3 * se < 0.10 * priced[PID].price_meur, (se, priced[PID].price_meur)


@pytest.mark.parametrize("boost", [1.0, 2.0], ids=["no-stake-bought", "stake-bought"])
def test_political_risk_cover_is_a_policy_in_force(a, sheet, boost):
    """MIGA terms: premium on the net investment while in force; at expropriation the insured
    amount (purchase + contributions - distributions, the compensation being one) less claims paid.

    At ``boost = 1`` the scenarios' pre-money value at the cost of equity is negative (about
    EUR -5 m): no stake can be bought and the net investment is the contributions less the
    distributions. ``boost = 2`` doubles the healthy scenario's distributions (pre-money about
    EUR +43 m): the stake is bought at its discount and its price is part of the insured amount.
    """
    scen = hand_built(a)
    s = scen[PID]
    s["equity_cf_meur"][0, 1:] *= boost  # scenario 0: the healthy mine's distributions
    s["equity_cf_meur"][2, 1:6] = 5.0    # scenario 2: small distributions, then ...
    s["equity_cf_meur"][2, 6] = 20.0     # ... compensation of 20 at the expropriation in year 6
    s["insurable_loss_musd"][2, 3] = 11.0  # an inconvertibility loss in year 3 (a claim paid before)
    x = by_instrument(project_payoffs(a, as_set(scen), PID))
    pri, eq = x[("political_risk_cover", "")], x[("equity", "")]
    r = hand_rates(a, PID)
    h = a.fund.horizon_years
    c = sheet["instruments"]["political_risk_cover"]
    rate = c["premium_rate_by_oecd_category"][5]  # Kazakhstan: OECD category 5
    # the purchase: the secondary stake at its discount to the pre-money value of these scenarios,
    # none when that value is not positive (no seller would accept the price)
    pre_money = (s["equity_cf_meur"] @ df(r["equity"], h)).mean()
    price = (1 - sheet["projects"][PID]["entry"]["discount"]) * pre_money if pre_money > 0 else 0.0
    assert eq.entry.available is bool(pre_money > 0) is (boost > 1)
    assert eq.entry.price_meur == pytest.approx(price, rel=1e-12)
    expected = []
    for i, end in enumerate((10, 5, 7)):  # in force until the last flow (9), the default (4), the claim (6)
        cf = s["equity_cf_meur"][i]
        insured = np.maximum(price - np.cumsum(cf), 0.0)  # purchase and contributions less distributions
        opening = np.concatenate([[price], insured[:-1]])
        premium = sum(rate * opening[t] * (1 + r["country"]) ** -(t + 1) for t in range(min(end, c["tenor_years"])))
        losses = s["insurable_loss_musd"][i, :end] / FX
        if i == 2:  # the expropriation claim replaces the year-6 book loss
            losses[6] = max(insured[6] - losses[:6].sum(), 0.0)
        claim = sum(losses[t] * (1 + r["country"]) ** -(t + 1) for t in range(end))
        expected.append(premium - claim)
    # by hand, scenario 2: insured after year 6 = price + 100 - 5 x 5 - 20; less the 11 / FX paid in year 3
    assert price + 55.0 - 11.0 / FX > 0
    np.testing.assert_allclose(pri.pv_meur, expected, rtol=1e-12)
    assert pri.market_rate == pytest.approx(r["country"])


def test_price_floor_runs_from_first_delivery_on_payable_tonnes(a, sheet):
    scen = hand_built(a)
    floor = by_instrument(project_payoffs(a, as_set(scen), PID))[("price_floor", "tungsten")]
    terms = sheet["instruments"]["price_floor"]
    assert terms["contract_start"] == "first_delivery"
    h = a.fund.horizon_years
    r = hand_rates(a, PID)
    payability = sheet["projects"][PID]["products"]["tungsten"]["payability"]
    f = terms["floors_usd_per_t"]["tungsten"] * (1 + a.fund.inflation) ** np.arange(h)
    for i, (price, first) in enumerate(((60000.0, 2), (20000.0, 5), (60000.0, 2))):
        years = np.arange(h)
        contracted = scen[PID]["tonnes_eu_t"][0][i] * ((years >= first) & (years < first + terms["tenor_years"]))
        cash = contracted * payability * (terms["upside_share"] * np.maximum(price - f, 0) - np.maximum(f - price, 0))
        assert floor.pv_meur[i] == pytest.approx(cash / 1e6 / FX @ df(r["risk_free"], h)), f"scenario {i}"
    assert floor.pv_meur[1] < 0 < floor.pv_meur[0], "below the floor the fund pays, above it earns"
    window = a.instruments.supply_window_years
    assert floor.tonnes_t["tungsten"][1] == pytest.approx(
        scen[PID]["tonnes_eu_t"][0][1][5:min(15, window)].sum() / window), "contained tonnes under contract"


#: OECD Arrangement on Officially Supported Export Credits, Annex VI: country-risk coefficient
#: ``a_i`` and constant ``b_i`` of the minimum premium rate, per country-risk category 1..7
#: (MPR in % of principal, upfront, 95 % cover: ``a_i HOR + b_i``).
OECD_ANNEX_VI = {1: (0.090, 0.350), 2: (0.200, 0.350), 3: (0.350, 0.350), 4: (0.550, 0.350),
                 5: (0.740, 0.750), 6: (0.900, 1.200), 7: (1.100, 1.800)}


def test_oecd_minimum_premium_and_subsidy_flag(a, sheet):
    """``guarantee_pricing`` of the loan guarantee against figures computed here: premium and
    covered write-off from the term sheet on the hand-built balances, the OECD minimum premium
    from the Arrangement's published coefficients and the loan's own horizon of risk, and the
    subsidy flag from those two PVs, with and without the default in scenario 1."""
    assert oecd_minimum_premium_rate(None, 10) is None and oecd_minimum_premium_rate(0, 10) is None
    assert oecd_minimum_premium_rate(7, 8.0) == pytest.approx((1.1 * 8 + 1.8) / 100)
    for category, (coef, const) in OECD_ANNEX_VI.items():
        for hor in (2.0, 8.75, 14.0):
            assert oecd_minimum_premium_rate(category, hor) == pytest.approx((coef * hor + const) / 100), category
    project = sheet["projects"][PID]
    category = sheet["countries"][project["country"]]["oecd_category"]
    assert category == 5
    # horizon of risk: half the disbursement (construction) period plus the repayment period
    hor = project["schedule"]["construction_years"]["mode"] / 2 + (
        project["debt"]["tenor_years"] - project["debt"]["grace_years"])
    assert hor == pytest.approx(1.5 / 2 + 8)
    coef, const = OECD_ANNEX_VI[category]
    principal_eur = a.projects[PID].debt.amount_musd / sheet["fx_spot"]  # the sized loan (debt.sizing)
    r = hand_rates(a, PID)
    h = a.fund.horizon_years
    flags = []
    for defaults in (True, False):
        scen = hand_built(a)
        if not defaults:  # scenario 1 repays: no write-off, the balance runs like the others
            scen[PID]["lender_loss_musd"][:] = 0.0
            scen[PID]["debt_outstanding_musd"][1] = scen[PID]["debt_outstanding_musd"][0]
        premium, loss = hand_guarantee(sheet, scen, r["debt"], h)
        rows = guarantee_pricing(a, project_payoffs(a, as_set(scen), PID))
        g = next(row for row in rows if row["instrument"] == "loan_guarantee")
        assert g["oecd_category"] == category
        assert g["premium_pv_meur_per_unit"] == pytest.approx(premium.mean(), rel=1e-12)
        assert g["expected_loss_pv_meur_per_unit"] == pytest.approx(loss.mean(), rel=1e-12, abs=1e-15)
        assert g["oecd_minimum_premium_pv_meur_per_unit"] == pytest.approx(
            (coef * hor + const) / 100 * principal_eur, rel=1e-12)
        assert g["oecd_minimum_premium_pv_meur_per_unit"] > 0
        assert g["subsidised"] is bool(premium.mean() < loss.mean()), (defaults, premium.mean(), loss.mean())
        if defaults:
            assert g["premium_to_expected_loss"] == pytest.approx(premium.mean() / loss.mean(), rel=1e-12)
        else:
            assert g["premium_to_expected_loss"] is None, "no expected loss: no ratio"
        flags.append(g["subsidised"])
    assert flags == [True, False], "the hand scenarios put the flag on both sides"


def test_premium_rate_graded_by_oecd_category(a, sheet):
    g = a.instruments.loan_guarantee
    terms = sheet["instruments"]["loan_guarantee"]  # the term sheet as written, not the loaded model
    assert g.rate_for(None) == terms["premium_rate_per_year"] and g.rate_for(0) == terms["premium_rate_per_year"]
    for category, rate in terms["premium_rate_by_oecd_category"].items():
        assert g.rate_for(category) == rate, category
    assert g.rate_for(6) == terms["premium_rate_by_oecd_category"][6]
    rates = [g.rate_for(c) for c in (3, 4, 5, 6)]
    assert rates == sorted(rates), "riskier categories pay at least as much (3..6)"


def test_a_loan_is_fair_when_its_flows_at_its_market_rate_equal_the_principal():
    from fundmodel.rates import loan_value_ratio

    # riskless: lent at the end of year 0, interest y for four years, equal instalments: fair at y
    y, principal = 0.07, 100.0
    balance = principal - principal / 4 * np.arange(4)
    flows = np.concatenate([[-principal], y * balance + principal / 4])[None, :]
    assert loan_value_ratio(flows, y) == pytest.approx(1.0, abs=1e-12)
    assert loan_value_ratio(flows, y + 0.02) < 1.0 < loan_value_ratio(flows, y - 0.02)
    # risky: in a share p of the scenarios the borrower defaults at maturity and lenders recover R;
    # the fair rate solves (1 - p)(1 + y) + p R = 1 + r (one period after the draw)
    p, recovery, n = 0.1, 0.6, 1000
    flows = np.zeros((n, 2))
    flows[:, 0] = -principal
    flows[:, 1] = principal * (1 + y)
    flows[: int(p * n), 1] = principal * recovery
    fair = (1 - p) * (1 + y) + p * recovery - 1
    assert loan_value_ratio(flows, fair) == pytest.approx(1.0, abs=1e-12)
    # a loan outstanding at the valuation date (a producing mine's) is lent at t = 0
    assert loan_value_ratio(np.array([[y * principal, principal * (1 + y)]]), y, principal_at_start_eur=principal) \
        == pytest.approx(1.0)


@pytest.mark.parametrize("drawdown", ["pro_rata", "equity_first"])
def test_a_riskless_loan_drawn_through_the_year_at_its_market_rate_is_fair(drawdown):
    """The engine charges interest on half a year's draws (draws through the year), so
    :func:`fundmodel.rates.market_values` values a draw at mid-year: a riskless loan whose contract
    rate equals its market rate is then worth its principal, up to the gap between simple
    half-year interest and compounding, (1 + y/2) / (1 + y)^0.5 - 1 = y^2/8 < 0.2 % at 10 %."""
    from fundmodel.rates import MarketRates, market_values
    from test_valuation import N_YEARS, market, new_mine, no_politics, schedule
    from fundmodel.valuation import project_cash_flows

    y = 0.1
    project = new_mine(debt={"amount_musd": 160.0, "interest_rate": y, "tenor_years": 8, "grace_years": 2,
                             "reserve_months": 0, "drawdown": drawdown})
    flows = project_cash_flows(project, 0.0, market(np.full((1, N_YEARS), 12_000.0)),
                               schedule(1, construction=(0.0, 2.0)), no_politics(1))
    assert (flows.default_year == N_YEARS).all()
    rates = MarketRates(risk_free=y, asset=y, equity=y, debt=y, country=y, policy=y, equity_beta=1.0,
                        country_risk_premium=0.0)
    v = market_values(flows, np.ones((1, N_YEARS)), rates)
    ratio = float(v["lender_inflows_market_meur"][0] / v["lender_draws_market_meur"][0])
    assert ratio == pytest.approx(1.0, abs=y**2 / 8 + 1e-9)
    assert ratio > 1.0 - 1e-12  # simple half-year interest is a little more than compounding
    year_end = float(v["lender_inflows_market_meur"][0] / (v["lender_draws_market_meur"][0] / (1 + y) ** 0.5))
    assert year_end > 1.04, "valuing draws at the year's end would make a fair loan look ~5 % rich"
