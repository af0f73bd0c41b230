"""Cash-flow engine against hand-built, independent computations and numpy-financial."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy_financial as npf
import pytest

from fundmodel.assumptions.schema import Country, Project
from fundmodel.market import MarketPaths
from fundmodel.political import no_political_events
from fundmodel.schedule import ScheduleDraws
from fundmodel.operations import spread_over
from fundmodel.valuation import project_cash_flows, value_cash_flows

N_YEARS = 20
INFLATION = 0.02
RATE = 0.08

COUNTRY = Country.model_validate({
    "name": "Testland", "iso3": "TST", "oecd_category": 3, "sovereign_rating": "Baa2", "country_risk_premium": 0.02,
    "permitting_years": {"min": 1, "mode": 2, "max": 3},
    "events": {
        "expropriation": {"annual_probability": 0.01, "compensation_share": 0.4},
        "forced_participation": {"annual_probability": 0.01, "state_share": 0.34, "compensation_share": 0.5},
        "fiscal_grab": {"annual_probability": 0.02, "royalty_increase": 0.02, "tax_increase": 0.0},
        "transfer_restriction": {"annual_probability": 0.01, "duration_years": 2,
                                 "trapped_cash_haircut": 0.25, "sales_blocked_share": 0.0},
        "unrest": {"annual_probability": 0.02, "production_loss_share": 0.2},
        "licence_suspension": {"annual_probability": 0.01, "duration_years": 1},
    },
    "source": "test",
})


def make_project(**overrides) -> Project:
    """A copper mine with simple numbers; ``overrides`` replace whole top-level blocks."""
    data = {
        "id": "test_mine", "name": "Test mine", "country": "TL", "stage": "production",
        "products": {"copper": {"grade_pct": 1.0, "recovery": 0.9, "payability": 0.95}},
        "operations": {"ore_mtpa": 2.0, "mine_life_years": 10, "opex_usd_per_t_ore": 40.0,
                       "fixed_opex_musd_per_year": 10.0},
        "schedule": {"rampup_years": {"min": 0, "mode": 0, "max": 0}},
        "capex": {"initial_musd": 0.0, "sustaining_musd_per_year": 5.0, "closure_musd": 30.0,
                  "depreciation_years": 5},
        "fiscal": {"royalty_rate": 0.05, "tax_rate": 0.0},
        "debt": {"amount_musd": 0.0, "interest_rate": 0.08, "tenor_years": 8, "grace_years": 2},
        "offtake": {"eu_share": 0.5},
        "sources": {"all": "test"},
    }
    if overrides.get("stage", "production") != "production":
        data["entry"] = {"kind": "secondary", "discount": 0.1, "source": "test"}
    data.update(overrides)
    return Project.model_validate(data)


def new_mine(**overrides) -> Project:
    """A mine under construction: 300 USD m over two years, then operating from year 2."""
    blocks = {
        "stage": "construction",
        "schedule": {"construction_years": {"min": 2, "mode": 2, "max": 2},
                     "rampup_years": {"min": 0, "mode": 0, "max": 0}},
        "capex": {"initial_musd": 300.0, "sustaining_musd_per_year": 5.0, "closure_musd": 30.0,
                  "depreciation_years": 5},
    }
    blocks.update(overrides)
    return make_project(**blocks)


def market(price_usd_per_t: np.ndarray, fx: float = 1.1) -> MarketPaths:
    """One-material market with given nominal price paths of shape (n, N_YEARS)."""
    price = np.asarray(price_usd_per_t, dtype=float)
    n = price.shape[0]
    return MarketPaths(
        materials=["copper"],
        price_usd_per_t=price[None],
        real_price_ratio=np.ones((1, n, N_YEARS)),
        fx_usd_per_eur=np.full((n, N_YEARS), fx),
        export_restriction=np.zeros((n, N_YEARS), dtype=bool),
    )


def schedule(n: int, construction=(0.0, 0.0), rampup=0.0, studies_end=0.0, capex_multiplier=1.0,
             developed=True) -> ScheduleDraws:
    return ScheduleDraws(
        developed=np.full(n, developed),
        studies_end=np.full(n, studies_end),
        construction_start=np.full(n, construction[0]),
        construction_end=np.full(n, construction[1]),
        rampup_years=np.full(n, rampup),
        capex_multiplier=np.full(n, capex_multiplier),
        opex_multiplier=np.ones(n),
        recovery_shift=np.zeros(n),
    )


def no_politics(n: int, **arrays):
    base = no_political_events(COUNTRY, n, N_YEARS)
    return dataclasses.replace(base, **arrays)


def test_spread_over_closed_form():
    out = spread_over(np.array([10.0, 6.0, 4.0]), np.array([0.5, 1.0, 2.5]), np.array([2.5, 4.0, 2.5]), 5)
    np.testing.assert_allclose(out.T, [[2.5, 5, 2.5, 0, 0], [0, 2, 2, 2, 0], [0, 0, 4, 0, 0]])
    np.testing.assert_allclose(out.sum(axis=0), [10, 6, 4], err_msg="spread amounts must sum to the total")


def test_deterministic_production_mine_equals_numpy_financial_npv():
    """Operating mine, no debt or tax, known prices: NPV equals npf.npv of hand-built flows."""
    n = 3
    price = np.linspace(8000.0, 11000.0, N_YEARS)[None, :] * np.array([[1.0], [0.9], [1.2]])
    project = make_project()
    flows = project_cash_flows(project, INFLATION, market(price), schedule(n), no_politics(n))
    values = value_cash_flows(flows, np.full((n, N_YEARS), 1.1), RATE)

    years = np.arange(N_YEARS)
    esc = (1 + INFLATION) ** years
    operating = years < 10  # reserve = 2 Mt/y x 10 y, no ramp-up
    ore = 2.0 * operating
    tonnes = ore * 1e6 * 0.01 * 0.9
    for i in range(n):
        revenue = tonnes * 0.95 * price[i] / 1e6
        royalty = 0.05 * revenue
        opex = (ore * 40.0 + 10.0 * operating) * esc
        sustaining = 5.0 * operating * esc
        closure = 30.0 * (years == 10) * esc
        fcf = revenue - royalty - opex - sustaining - closure
        np.testing.assert_allclose(flows.project_fcf_musd[i], fcf, rtol=1e-12, atol=1e-9,
                                   err_msg="project cash flow differs from the hand-built one")
        expected = npf.npv(RATE, np.r_[0.0, fcf / 1.1])
        assert values.project_npv_meur[i] == pytest.approx(expected, rel=1e-12), "NPV differs from npf.npv"
        # without debt, tax or political events the sponsors get the project's cash flow
        assert values.equity_npv_meur[i] == pytest.approx(expected, rel=1e-12)
        np.testing.assert_allclose(flows.tonnes_produced_t[0, i], tonnes)
        np.testing.assert_allclose(flows.tonnes_eu_t[0, i], 0.5 * tonnes)
    assert (flows.first_production_year == 0).all()


def scalar_tax(ebitda, capex_capitalised, producing, rate, dep_years):
    """Independent scalar implementation of straight-line depreciation and loss carry-forward."""
    tax, pool, capitalised, loss = [], 0.0, 0.0, 0.0
    for e, c, prod in zip(ebitda, capex_capitalised, producing):
        capitalised += c
        pool += c
        dep = min(pool, capitalised / dep_years) if prod else 0.0
        pool -= dep
        taxable = e - dep
        used = min(loss, max(taxable, 0.0))
        tax.append(rate * max(taxable - used, 0.0) if taxable > 0 else 0.0)
        loss = loss - used if taxable > 0 else loss - taxable
    return np.array(tax)


def test_tax_with_depreciation_and_loss_carry_forward():
    """A new mine with early low prices: tax equals an independent scalar computation."""
    n = 1
    price = np.full((n, N_YEARS), 14000.0)
    price[:, 2:4] = 2500.0  # losses in the first operating years, carried forward
    project = new_mine(fiscal={"royalty_rate": 0.05, "tax_rate": 0.3})
    flows = project_cash_flows(project, INFLATION, market(price), schedule(n, construction=(0.0, 2.0)),
                               no_politics(n))
    ebitda = flows.revenue_musd[0] - flows.royalty_musd[0] - flows.opex_musd[0]
    years = np.arange(N_YEARS)
    esc = (1 + INFLATION) ** years
    initial = np.where(years < 2, 150.0, 0.0) * esc
    sustaining = 5.0 * (flows.revenue_musd[0] > 0) * esc
    expected = scalar_tax(ebitda, initial + sustaining, years >= 2, 0.3, 5)
    np.testing.assert_allclose(flows.tax_musd[0], expected, rtol=1e-12, atol=1e-9,
                               err_msg="tax differs from the scalar depreciation/loss carry-forward model")
    assert expected[2:4].sum() == 0 and expected.sum() > 0, "test case must exercise loss carry-forward"


@pytest.mark.parametrize("drawdown, loan, draws", [("pro_rata", 160.0, (80.0, 80.0)),
                                                  ("equity_first", 160.0, (10.0, 150.0)),
                                                  ("equity_first", 140.0, (0.0, 140.0))])
def test_debt_schedule_interest_and_equal_principal(drawdown, loan, draws):
    """Drawn with the capex budget (pro rata, or after the sponsors' share of the 300 budget), interest on
    opening balance + half draws, equal instalments from financial close (year 0, construction start)
    plus grace, also when the first draw comes later (a 140 loan: the sponsors' 160 fills year 0)."""
    n = 1
    price = np.full((n, N_YEARS), 12000.0)
    project = new_mine(debt={"amount_musd": loan, "interest_rate": 0.1, "tenor_years": 8, "grace_years": 2,
                             "reserve_months": 0, "drawdown": drawdown})
    flows = project_cash_flows(project, INFLATION, market(price), schedule(n, construction=(0.0, 2.0)),
                               no_politics(n))
    # independent schedule: budget 150 + 150 in years 0-1; pro rata 160/300 of it, equity first
    # 150 - 140 then 150; instalment 160/6 from year 2 (first draw 0 + grace 2)
    balance, expected_lender, expected_balance = 0.0, [], []
    for t in range(N_YEARS):
        draw = draws[t] if t < 2 else 0.0
        interest = 0.1 * (balance + 0.5 * draw)
        balance += draw
        principal = min(balance, loan / 6) if t >= 2 else 0.0
        balance -= principal
        expected_lender.append(-draw + interest + principal)
        expected_balance.append(balance)
    np.testing.assert_allclose(flows.lender_cf_musd[0], expected_lender, atol=1e-9,
                               err_msg="lender cash flows differ from the loan schedule")
    np.testing.assert_allclose(flows.debt_outstanding_musd[0], expected_balance, atol=1e-9)
    assert flows.default_year[0] == N_YEARS
    assert flows.debt_close_year[0] == 0, "financial close at construction start, not at the first draw"
    assert flows.min_dscr[0] > 1.0


def test_expropriation_compensation_and_end_of_flows():
    n = 1
    price = np.full((n, N_YEARS), 10000.0)
    project = new_mine(capex={"initial_musd": 300.0, "sustaining_musd_per_year": 0.0, "closure_musd": 30.0,
                              "depreciation_years": 10})
    politics = no_politics(n, expropriation_year=np.array([5]))
    flows = project_cash_flows(project, INFLATION, market(price), schedule(n, construction=(0.0, 2.0)), politics)
    clean = project_cash_flows(project, INFLATION, market(price), schedule(n, construction=(0.0, 2.0)),
                               no_politics(n))
    capitalised = 150.0 * (1 + (1 + INFLATION))
    book = capitalised - 4 * capitalised / 10  # depreciated in years 2, 3, 4, 5
    expected_comp = COUNTRY.events.expropriation.compensation_share * book
    assert flows.project_fcf_musd[0, 5] - clean.project_fcf_musd[0, 5] == pytest.approx(expected_comp)
    assert (flows.project_fcf_musd[0, 6:] == 0).all() and (flows.tonnes_produced_t[0, 0, 6:] == 0).all()
    # political-risk cover would pay the uncompensated book equity (no debt: book equity = net book value)
    assert flows.insurable_loss_musd[0, 5] == pytest.approx(book - expected_comp)
    assert flows.insurable_loss_musd[0].sum() == pytest.approx(book - expected_comp)
    assert (flows.equity_cf_musd[0, 6:] == 0).all()


def test_forced_participation_and_trapped_cash():
    n = 1
    price = np.full((n, N_YEARS), 10000.0)
    project = make_project()
    state_share = np.zeros((n, N_YEARS))
    state_share[:, 4:] = 0.34
    event = np.zeros((n, N_YEARS), dtype=bool)
    event[:, 4] = True
    restricted = np.zeros((n, N_YEARS), dtype=bool)
    restricted[:, 1:3] = True
    clean = project_cash_flows(project, INFLATION, market(price), schedule(n), no_politics(n))
    flows = project_cash_flows(project, INFLATION, market(price), schedule(n),
                               no_politics(n, state_share=state_share, participation_event=event,
                                           transfer_restricted=restricted))
    eq, ref = flows.equity_cf_musd[0], clean.equity_cf_musd[0]
    assert (eq[1:3] == 0).all(), "distributions are trapped while the restriction lasts"
    assert eq[3] == pytest.approx(ref[3] + 0.75 * ref[1:3].sum()), "trapped cash is released with a 25 % haircut"
    # book equity at the event = net book value (no debt); compensation 50 % of the share taken
    assert eq[5] == pytest.approx(ref[5] * 0.66), "after forced participation the sponsors keep 66 %"
    assert eq[4] > ref[4] * 0.66, "the participation year includes the compensation"
    insurable = flows.insurable_loss_musd[0]
    assert insurable[3] == pytest.approx(0.25 * ref[1:3].sum()), "trapped cash lost to the haircut is insurable"
    compensation = eq[4] - 0.66 * ref[4]  # 50 % of the book equity taken
    assert insurable[4] == pytest.approx(compensation), "the uncompensated other 50 % is insurable"
    assert insurable[[0, 1, 2]].sum() == 0 and insurable[5:].sum() == 0


def test_entry_price_of_a_producing_mine_enters_npv_and_irr_at_time_zero():
    """Equity NPV and IRR of a producing mine are measured against its price today."""
    n = 1
    price = np.full((n, N_YEARS), 10000.0)
    base = make_project()
    bought = make_project(capex={"initial_musd": 0.0, "acquisition_musd": 300.0, "sustaining_musd_per_year": 5.0,
                                 "closure_musd": 30.0, "depreciation_years": 5})
    fx = np.full((n, N_YEARS), 1.1)
    flows = project_cash_flows(bought, INFLATION, market(price), schedule(n), no_politics(n))
    free = value_cash_flows(project_cash_flows(base, INFLATION, market(price), schedule(n), no_politics(n)), fx, RATE)
    paid = value_cash_flows(flows, fx, RATE)
    assert paid.equity_npv_meur[0] == pytest.approx(free.equity_npv_meur[0] - 300.0 / 1.1), "entry price at t = 0"
    expected_irr = npf.irr(np.r_[-300.0 / 1.1, flows.equity_cf_musd[0] / 1.1])
    assert paid.equity_irr[0] == pytest.approx(expected_irr, abs=1e-9), "IRR of [-entry, year-end flows]"
    assert npf.npv(expected_irr, np.r_[-300.0 / 1.1, flows.equity_cf_musd[0] / 1.1]) == pytest.approx(0, abs=1e-6)


def test_licence_suspension_brings_a_debt_standstill():
    """While suspended, interest is capitalised and instalments wait; service resumes after."""
    n = 1
    price = np.full((n, N_YEARS), 12000.0)
    project = new_mine(debt={"amount_musd": 160.0, "interest_rate": 0.1, "tenor_years": 8, "grace_years": 2,
                             "reserve_months": 6})
    suspended = np.zeros((n, N_YEARS), dtype=bool)
    suspended[:, 4] = True
    flows = project_cash_flows(project, INFLATION, market(price), schedule(n, construction=(0.0, 2.0)),
                               no_politics(n, suspended=suspended))
    balance = flows.debt_outstanding_musd[0]
    assert flows.lender_cf_musd[0, 4] == 0.0, "no debt service during the standstill"
    assert balance[4] == pytest.approx(balance[3] * 1.1), "interest is capitalised"
    assert flows.lender_cf_musd[0, 5] == pytest.approx(0.1 * balance[4] + 160.0 / 6), "service resumes"
    assert flows.default_year[0] == N_YEARS and flows.tonnes_produced_t[0, 0, 4] == 0
