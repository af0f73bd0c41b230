"""Credit model (issue 13, item 3): sizing, strategic default, standstill, completion support, recovery.

Each mechanism is checked against an independent computation on a tiny deterministic
project (hand-built flows, numpy-financial present values), the sizing rule against its
closed form, the fitted policies for chunk-size and scenario-count invariance, and the
shipped defaults against the project-finance benchmarks (Moody's 2017).
"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import numpy_financial as npf
import pytest

from conftest import copy_assumptions
from fundmodel import lsm
from fundmodel.assumptions import load_assumptions
from fundmodel.credit import credit_policies, fit_credit_policies, size_debt
from fundmodel.errors import AssumptionError
from fundmodel.results import DEFAULT_WINDOW_YEARS, _loan_ratio, credit_statistics
from fundmodel.simulation import RunSettings, simulate
from fundmodel.valuation import CREDIT_STATE, CREDIT_TERMS, CreditPolicy, project_cash_flows
from test_valuation import N_YEARS, market, new_mine, no_politics, schedule

R_EQUITY, R_ASSET = 0.15, 0.10
N = 4  # identical deterministic scenarios: the pilot's regressions are then exact means

# the tiny project: 300 USD m built in years 0-1 (80 + 80 drawn pro rata with the budget), 18,000 t/yr
# from year 2 for 10 years, no tax, no inflation; loan 160 at 10 %, 6 equal instalments from year 2,
# no reserve (equity-first drawing is checked in test_valuation.test_debt_schedule_interest_and_equal_principal)
DEBT = {"amount_musd": 160.0, "interest_rate": 0.1, "tenor_years": 8, "grace_years": 2, "reserve_months": 0,
        "distress_cost_share": 0.15, "drawdown": "pro_rata"}


def prices(*levels: tuple[int, float]) -> np.ndarray:
    """Price path (USD/t) of N identical scenarios: ``(first_year, price)`` steps."""
    path = np.empty(N_YEARS)
    for year, level in levels:
        path[year:] = level
    return np.tile(path, (N, 1))


def hand_cfads(price: np.ndarray) -> np.ndarray:
    """CFADS of the tiny project by hand: 18,000 t x 95 % payable x price, 5 % royalty, USD 90 m opex,
    USD 5 m sustaining while producing (years 2-11), USD 30 m closure in year 12."""
    years = np.arange(N_YEARS)
    producing = (years >= 2) & (years <= 11)
    revenue = 18_000 * 0.95 * price / 1e6 * producing
    return revenue * 0.95 - 95.0 * producing - 30.0 * (years == 12)


def pilot_policy(project, price) -> CreditPolicy:
    """The credit policy fitted (fundmodel.lsm) on the deterministic scenario itself."""
    flows = project_cash_flows(project, 0.0, market(price), schedule(N, construction=(0.0, 2.0)), no_politics(N),
                               CreditPolicy(), record=True)
    rec = flows.credit_record
    equity = lsm.fit_stopping(rec.state, rec.equity_flow, rec.equity_flow + rec.voluntary, rec.voluntary > 1e-9,
                              1 / (1 + R_EQUITY), mask=rec.live, terms=CREDIT_TERMS)
    going_concern = lsm.fit_value(rec.state, np.ascontiguousarray(flows.project_fcf_musd.T), 1 / (1 + R_ASSET),
                                  mask=rec.live, terms=CREDIT_TERMS)
    return CreditPolicy(1.0, equity, going_concern)


def constant_value(value: float) -> lsm.RegressionValue:
    """A hand-made regression object: the same value in every state and year."""
    return lsm.RegressionValue(terms=((),), coef=np.full((N_YEARS, 1), value), mean=np.zeros((N_YEARS, 9)),
                               scale=np.ones((N_YEARS, 9)), lower=np.full(N_YEARS, -1e18),
                               upper=np.full(N_YEARS, 1e18), n_fit=np.ones(N_YEARS, dtype=np.int64))


def fall_in_year_3(recovery_usd_per_t: float):
    """The new mine with DEBT; the price falls from 12,000 to 5,000 in year 3, then stays at the
    recovery level; flows under the fitted pilot policy."""
    project = new_mine(debt=DEBT)
    price = prices((0, 12_000.0), (3, 5_000.0), (4, recovery_usd_per_t))
    flows = project_cash_flows(project, 0.0, market(price), schedule(N, construction=(0.0, 2.0)), no_politics(N),
                               pilot_policy(project, price))
    return project, price, flows


def test_hand_computed_strategic_default_and_recovery():
    """Prices fall to 5,000 in year 3 and stay at 7,000: the sponsors walk away in year 3."""
    project, price, flows = fall_in_year_3(recovery_usd_per_t=7_000.0)
    cfads = hand_cfads(price[0])
    # the loan by hand: 80 + 80 drawn, interest on the opening balance + half the draws, 160/6 a year from year 2
    balance, service = [], []
    b = 0.0
    for t in range(N_YEARS):
        draw = 80.0 if t < 2 else 0.0
        interest = 0.1 * (b + 0.5 * draw)
        b += draw
        principal = min(b, 160.0 / 6) if t >= 2 else 0.0
        balance.append(b)  # after the year's draws, before its instalment
        service.append(interest + principal)
        b -= principal
    service, balance = np.array(service), np.array(balance)
    voluntary = np.maximum(service - cfads, 0.0) * (np.arange(N_YEARS) >= 2)

    # the sponsors' decision by backward induction: walk when the cure exceeds the value of continuing
    equity_flow = (cfads - service) * (np.arange(N_YEARS) >= 2)  # years 0-1 are funded by the guarantee
    value_next = 0.0
    walk = np.zeros(N_YEARS, dtype=bool)
    for t in range(N_YEARS - 1, 1, -1):
        cont = value_next / (1 + R_EQUITY) if t < N_YEARS - 1 else 0.0
        walk[t] = voluntary[t] > 0 and voluntary[t] > cont
        value_next = equity_flow[t] + voluntary[t] if walk[t] else equity_flow[t] + cont
    first_walk = int(np.argmax(walk))
    assert first_walk == 3, "the hand-built case must walk in year 3"

    t = 3
    assert (flows.default_year == t).all(), f"default year {flows.default_year[0]}, expected {t}"
    dscr = cfads[2:4] / service[2:4]
    assert flows.min_dscr[0] == pytest.approx(dscr.min(), rel=1e-12), "lowest DSCR (years 2 and 3)"
    gcv = npf.npv(R_ASSET, np.r_[0.0, cfads[t + 1:]])  # unlevered flows after the default, at the asset rate
    claim = balance[t] + 0.1 * balance[t]  # the balance and the year's unpaid interest
    cash = service[t] - voluntary[t]  # = CFADS of the year (no reserve)
    recovered = min(claim, max(cash + 0.85 * max(gcv, 0.0), max(cash, 0.0)))
    assert 0 < recovered < claim, "the case must recover part of the claim"
    assert flows.default_value_musd[0] == pytest.approx(gcv, rel=1e-9), "going-concern value = npf.npv"
    assert flows.default_claim_musd[0] == pytest.approx(claim, rel=1e-12)
    assert flows.default_recovery_musd[0] == pytest.approx(recovered, rel=1e-9)
    assert flows.lender_cf_musd[0, t] == pytest.approx(recovered, rel=1e-9), "lenders get the recovery"
    assert flows.lender_loss_musd[0, t] == pytest.approx(claim - recovered, rel=1e-9), "the rest is written off"
    assert flows.lender_loss_musd[0].sum() == pytest.approx(claim - recovered, rel=1e-9)
    assert (flows.debt_outstanding_musd[0, t:] == 0).all() and (flows.lender_cf_musd[0, t + 1:] == 0).all()
    assert (flows.equity_cf_musd[0, t:] == 0).all(), "the sponsors' equity ends (nothing paid in the default year)"
    # the project keeps producing for its new owners: flows and tonnes as without any loan
    free = project_cash_flows(new_mine(), 0.0, market(price), schedule(N, construction=(0.0, 2.0)), no_politics(N))
    np.testing.assert_array_equal(flows.project_fcf_musd, free.project_fcf_musd)
    np.testing.assert_array_equal(flows.tonnes_produced_t, free.tonnes_produced_t)
    np.testing.assert_allclose(flows.project_fcf_musd[0, 2:], cfads[2:], atol=1e-9, err_msg="hand-built CFADS")


def test_sponsors_cure_a_project_worth_keeping():
    """Same fall in year 3, but prices recover to 12,000: the sponsors pay the cure, no default."""
    project, price, flows = fall_in_year_3(recovery_usd_per_t=12_000.0)
    cfads = hand_cfads(price[0])
    assert (flows.default_year == N_YEARS).all()
    assert flows.lender_cf_musd[0, 3] == pytest.approx(0.1 * (160 - 160 / 6) + 160 / 6), "service paid in full"
    assert flows.equity_cf_musd[0, 3] == pytest.approx(cfads[3] - flows.lender_cf_musd[0, 3]), "the cure"
    # a policy that values the equity below the cure walks away: the engine follows the policy object
    walk = CreditPolicy(1.0, lsm.StoppingPolicy(constant_value(10.0)), constant_value(0.0))
    flows = project_cash_flows(project, 0.0, market(price), schedule(N, construction=(0.0, 2.0)), no_politics(N), walk)
    assert (flows.default_year == 3).all()


def test_completion_guarantee_then_standby_then_default():
    """A 50 % overrun before completion: guarantee 50, standby 25 % of the loan, then the sponsors decide."""
    debt = {**DEBT, "completion_guarantee_musd": 50.0, "standby_share": 0.25}
    project = new_mine(debt=debt)
    price = prices((0, 12_000.0))
    args = (project, 0.0, market(price), schedule(N, construction=(0.0, 2.0), capex_multiplier=1.5), no_politics(N))
    # year 0: interest 0.1 x 40 = 4 and overrun 75 -> guarantee 50, standby 29
    # year 1: interest 0.1 x (109 + 40) = 14.9 and overrun 75 -> standby 11 (the rest of 40), 78.9 voluntary
    stay = project_cash_flows(*args, CreditPolicy(1.0, lsm.StoppingPolicy(constant_value(1e6)), constant_value(0.0)))
    np.testing.assert_allclose(stay.lender_cf_musd[0, :2], [4 - 80 - 29, 14.9 - 80 - 11], atol=1e-9)
    np.testing.assert_allclose(stay.equity_cf_musd[0, :2], [-(70 + 50), -(70 + 78.9)], atol=1e-9,
                               err_msg="base equity, then the guarantee, then the voluntary injection")
    np.testing.assert_allclose(stay.debt_outstanding_musd[0, :2], [109, 200], atol=1e-9)
    assert stay.lender_cf_musd[0, 2] == pytest.approx(0.1 * 200 + 200 / 6), "standby repaid with the instalments"
    assert (stay.default_year == N_YEARS).all()
    # the same with sponsors who value their equity below the injection: default before completion
    gcv = 200.0
    go = project_cash_flows(*args, CreditPolicy(1.0, lsm.StoppingPolicy(constant_value(50.0)), constant_value(gcv)))
    assert (go.default_year == 1).all()
    claim = 200 + 14.9
    cash = 14.9 - 78.9  # the overrun nobody funds reduces what the lenders take over
    recovered = min(claim, max(cash + 0.85 * gcv, 0.0))
    assert go.default_claim_musd[0] == pytest.approx(claim)
    assert go.lender_cf_musd[0, 1] == pytest.approx(recovered - 80 - 11)
    assert go.lender_loss_musd[0, 1] == pytest.approx(claim - recovered)
    assert go.equity_cf_musd[0, 1] == pytest.approx(-70), "the sponsors still pay their base equity that year"
    assert (go.equity_cf_musd[0, 2:] == 0).all()


def test_temporary_event_brings_a_standstill_not_a_default():
    """Transfer restriction in years 4-5: the lenders take what CFADS pays, interest first, and reschedule.

    The sponsors' policy here walks away whenever they would have to pay anything: the
    standstill asks nothing of them (CFADS stays positive), so there is no default.
    """
    project = new_mine(debt=DEBT)
    price = prices((0, 12_000.0), (4, 7_000.0), (5, 6_400.0), (6, 12_000.0))
    restricted = np.zeros((N, N_YEARS), dtype=bool)
    restricted[:, 4:6] = True
    walk_at_once = CreditPolicy(1.0, lsm.StoppingPolicy(constant_value(-1e6)), constant_value(0.0))
    flows = project_cash_flows(project, 0.0, market(price), schedule(N, construction=(0.0, 2.0)),
                               no_politics(N, transfer_restricted=restricted), walk_at_once)
    cfads = hand_cfads(price[0])
    assert (flows.default_year == N_YEARS).all(), "no default for a temporary political event"
    b3 = 160 - 2 * 160 / 6  # balance after the instalments of years 2 and 3
    # year 4: CFADS 18.7 < service 10.7 + 26.7: interest paid, principal partly deferred
    assert flows.lender_cf_musd[0, 4] == pytest.approx(cfads[4])
    b4 = b3 - (cfads[4] - 0.1 * b3)
    assert flows.debt_outstanding_musd[0, 4] == pytest.approx(b4)
    # year 5: CFADS 9.0 < interest 9.9: all of it to the lenders, the rest of the interest capitalised
    assert 0 < cfads[5] < 0.1 * b4
    assert flows.lender_cf_musd[0, 5] == pytest.approx(cfads[5])
    b5 = b4 + 0.1 * b4 - cfads[5]
    assert flows.debt_outstanding_musd[0, 5] == pytest.approx(b5)
    np.testing.assert_allclose(flows.equity_cf_musd[0, 4:6], 0.0, atol=1e-9, err_msg="nothing asked of the sponsors")
    # afterwards equal instalments resume on the larger balance: the maturity extends
    assert flows.lender_cf_musd[0, 6] == pytest.approx(0.1 * b5 + 160 / 6)
    last = int(np.flatnonzero(flows.debt_outstanding_musd[0] > 1e-9).max())
    assert last > 7, "repaid after the original maturity (year 7)"
    assert flows.lender_loss_musd.sum() == 0.0


def sizing_case(tmp_path, max_gearing: float, rate: float = 0.08, repayment_years: int = 6):
    """kz_tungsten made deterministic: constant price and costs, no tax or royalty, built in year 0."""
    def fund(d):
        d["inflation"] = 0.0

    def markets(d):
        w = d["materials"]["tungsten"]
        w["long_run_usd_per_t"] = w["spot_usd_per_t"]
        w["volatility"] = 0.0

    def project(d):
        d["fiscal"] = {"royalty_rate": 0.0, "tax_rate": 0.0}
        d["capex"].update(sustaining_musd_per_year=0.0, closure_musd=0.0)
        d["operations"]["fixed_opex_musd_per_year"] = 190.0  # a thin margin: the cover ratio binds
        d["schedule"]["construction_years"] = {"min": 1, "mode": 1, "max": 1}
        d["schedule"]["rampup_years"] = {"min": 0, "mode": 0, "max": 0}
        d["debt"] = {"interest_rate": rate, "grace_years": 1, "tenor_years": 1 + repayment_years,
                     "sizing": {"min_dscr": 1.4, "max_gearing": max_gearing}}

    directory = copy_assumptions(tmp_path / f"a{max_gearing}", ["kz_tungsten"],
                                 {"fund.yaml": fund, "markets.yaml": markets, "projects/kz_tungsten.yaml": project})
    return load_assumptions(directory)


def test_sizing_rule_matches_the_closed_form(tmp_path):
    """Constant CFADS C, equal instalments over n years at rate r: D* = C / (DSCR (r + 1/n))."""
    a = sizing_case(tmp_path, max_gearing=0.9)
    p = a.projects["kz_tungsten"]
    w = a.markets.materials["tungsten"]
    ops, prod = p.operations, p.products["tungsten"]
    tonnes = ops.ore_mtpa * 1e6 * prod.grade_pct / 100 * prod.product_factor * prod.recovery
    cfads = tonnes * prod.payability * w.spot_usd_per_t / 1e6 - ops.ore_mtpa * ops.opex_usd_per_t_ore \
        - ops.fixed_opex_musd_per_year
    closed_form = cfads / (1.4 * (0.08 + 1 / 6))
    assert closed_form < 0.9 * p.capex.initial_musd, "the case must be bound by the cover ratio"
    sized = p.debt.sized
    assert sized is not None and sized.binding == "dscr"
    assert closed_form - 0.05 <= p.debt.amount_musd <= closed_form + 1e-9, (p.debt.amount_musd, closed_form)
    assert sized.base_case_min_dscr == pytest.approx(1.4, abs=1e-3)
    assert size_debt(a, "kz_tungsten") == sized  # a pure function of the assumptions
    capped = sizing_case(tmp_path, max_gearing=0.05).projects["kz_tungsten"]
    assert capped.debt.amount_musd == pytest.approx(0.05 * p.capex.initial_musd)
    assert capped.debt.sized.binding == "gearing"
    # the cover-ratio limit is searched up to 4x the cap: reported as that bound when it lies beyond
    assert capped.debt.sized.dscr_limit_musd == pytest.approx(min(4 * 0.05 * p.capex.initial_musd, closed_form))


def test_loader_sizes_open_loans_and_keeps_given_ones(shipped_assumptions_dir):
    a = load_assumptions(shipped_assumptions_dir)
    assert a.projects["cd_cobalt"].debt.amount_musd == 100 and a.projects["cd_cobalt"].debt.sized is None, \
        "a producing mine keeps its loan"
    assert a.projects["au_nickel"].debt.amount_musd == 0, "no loan at exploration stage"
    for pid, p in a.projects.items():
        if p.debt.sized is not None:
            assert p.debt.amount_musd == p.debt.sized.amount_musd
            assert p.debt.amount_musd <= p.debt.sizing.max_gearing * p.capex.initial_musd + 1e-9, pid
            dscr = p.debt.sized.base_case_min_dscr
            if p.debt.amount_musd == 0:  # no debt service the base case could cover: no loan, no DSCR
                assert dscr is None and p.debt.sized.dscr_limit_musd == 0, (pid, dscr)
                continue
            assert dscr is not None and dscr >= p.debt.sizing.min_dscr - 1e-9, (pid, dscr)


def test_retired_and_computed_debt_fields_are_refused(tmp_path):
    def old(d):
        d["debt"]["recovery_rate"] = 0.4

    def computed(d):
        d["debt"]["sized"] = {"amount_musd": 1.0, "binding": "dscr", "dscr_limit_musd": 1.0,
                              "gearing_limit_musd": 1.0, "base_case_min_dscr": 2.0}

    for change, fragment in ((old, "recovery_rate: no longer used"), (computed, "is computed from debt.sizing")):
        directory = copy_assumptions(tmp_path / change.__name__, ["mn_ree"], {"projects/mn_ree.yaml": change})
        with pytest.raises(AssumptionError, match=fragment):
            load_assumptions(directory)


# ----------------------------------------------------------------------------- whole simulation
CREDIT_SCALARS = ("default_year", "debt_close_year", "default_claim_musd", "default_recovery_musd",
                  "default_value_musd", "lender_npv_meur", "equity_npv_meur", "min_dscr")


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three projects: a junior with a capped guarantee, a producing mine, a first-of-kind plant."""
    return load_assumptions(copy_assumptions(tmp_path_factory.mktemp("credit") / "assumptions",
                                             ["br_ree", "cd_cobalt", "mn_ree"]))


@pytest.mark.slow
def test_results_do_not_depend_on_chunk_size_or_scenario_count(three):
    def run(n, chunk):
        return simulate(three, RunSettings.from_assumptions(three, scenarios=n, chunk_size=chunk, seed=5,
                                                            risk_attribution=False, workers=1))

    small, large = run(2500, 1024), run(4096, 4096)
    for pid in three.projects:
        for name in CREDIT_SCALARS:
            assert np.array_equal(small.scalars[pid][name], large.scalars[pid][name][:2500], equal_nan=True), \
                f"{pid}.{name}: the first 2,500 scenarios differ between 2,500 scenarios in chunks of 1,024 " \
                "and 4,096 in one chunk"
        assert (small.scalars[pid]["default_year"] < small.n_years).any(), f"{pid}: no default to compare"


@pytest.mark.slow
def test_policies_fitted_once_are_the_same_in_another_process(three):
    """The pilot fit is a pure function of the assumptions and settings (what a worker refits)."""
    fitted = fit_credit_policies(three, 5, "sobol")
    again = credit_policies(pickle.loads(pickle.dumps(three)), 5, "sobol")
    for pid, policy in fitted.items():
        for model in ("equity", "going_concern"):
            mine, theirs = getattr(policy, model), getattr(again[pid], model)
            if mine is None:
                assert theirs is None
                continue
            fit = mine.continuation if model == "equity" else mine
            fit2 = theirs.continuation if model == "equity" else theirs
            for field in dataclasses.fields(fit):
                if field.name != "terms":
                    assert np.array_equal(getattr(fit, field.name), getattr(fit2, field.name)), (pid, model, field)
    assert len(CREDIT_STATE) == fitted["mn_ree"].equity.continuation.mean.shape[1]


def test_credit_statistics_by_hand():
    s = {"debt_close_year": np.array([0, 3, 3, 40, 2]), "default_year": np.array([5, 15, 40, 40, 11]),
         "default_claim_musd": np.array([100.0, 50.0, 0.0, 0.0, 80.0]),
         "default_recovery_musd": np.array([60.0, 50.0, 0.0, 0.0, 80.0]),
         "default_value_musd": np.array([50.0, 70.0, 0.0, 0.0, 90.0])}
    out = credit_statistics(s, 40, True)
    assert DEFAULT_WINDOW_YEARS == 10
    assert out["prob_debt_default_10y"] == pytest.approx(2 / 4), "years 5 and 11 are within 10 years of close"
    assert out["debt_recovery_rate_mean"] == pytest.approx((0.6 + 1 + 1) / 3)
    assert out["default_share_value_above_debt"] == pytest.approx(2 / 3)
    assert out["default_share_full_recovery"] == pytest.approx(2 / 3)
    assert out["prob_debt_default_10y_se"] == pytest.approx(np.sqrt(0.25 / 4))


@pytest.mark.slow
@pytest.mark.parametrize("parameter_uncertainty", [
    False,
    pytest.param(True, marks=pytest.mark.xfail(strict=True, reason=(
        "open deviation (docs/economics.md, 'Copper loans under parameter uncertainty'): with the copper "
        "law's estimation error drawn, mn_copper defaults 23.5 % in 10 years and the book recovers 48.7 %; "
        "strict: the test fails once the targets are met, so that the deviation is then removed"))),
])
def test_shipped_defaults_meet_the_project_finance_benchmarks(shipped_assumptions_dir, parameter_uncertainty):
    """Moody's (2017), PF bank loans 1983-2015: 10-year cumulative default 6.7 % (higher outside high-income
    countries and in early years), average ultimate recovery ~80 % over all defaulted loans, with a wide
    spread between loans (many recover in full, some little). Targets: at most 20 % per project; the
    recovery averaged over every simulated default of the book 60-90 % (the statistic Moody's reports);
    no project's mean recovery below 25 % (a loan secured on a mine is not unsecured debt).

    Under the calibrated price laws (parameter uncertainty off) and under the shipped configuration
    (on, as the memos report): the second does not meet the targets yet and is an expected failure."""
    a = load_assumptions(shipped_assumptions_dir)
    a = dataclasses.replace(a, fund=a.fund.model_copy(update={
        "simulation": a.fund.simulation.model_copy(update={"parameter_uncertainty": parameter_uncertainty})}))
    r = simulate(a, RunSettings.from_assumptions(a, scenarios=4096, risk_attribution=False, workers=1))
    problems = []
    recovered = defaults = 0.0
    for pid, p in a.projects.items():
        if not p.debt.amount_musd:
            continue
        c = credit_statistics(r.scalars[pid], r.n_years, True)
        ratio = _loan_ratio(a, p, r.scalars[pid])
        if ratio > 1.02:  # fair (priced at the market rate for its risk) or a DFI's concession, never richer
            problems.append(f"{pid}: loan worth {ratio:.3f} x its principal at its market rate: contract rate "
                            f"{p.debt.interest_rate:.2%} is above fair")
        if c["prob_debt_default_10y"] > 0.20:
            problems.append(f"{pid}: 10-year default rate {c['prob_debt_default_10y']:.1%} > 20 %")
        rate = c["debt_recovery_rate_mean"]
        if rate is not None:
            recovered += rate * c["debt_default_count"]
            defaults += c["debt_default_count"]
            if rate < 0.25:
                problems.append(f"{pid}: mean recovery {rate:.1%} < 25 %")
    assert defaults > 100, "too few defaults to compare"
    pooled = recovered / defaults
    if not 0.60 <= pooled <= 0.90:
        problems.append(f"book: mean recovery over all defaults {pooled:.1%} outside 60-90 %")
    assert not problems, "; ".join(problems)


def test_a_lower_price_deck_sizes_a_smaller_loan_that_keeps_the_cover_at_the_deck(shipped_assumptions_dir):
    """``debt.sizing.price_deck``: the loan is sized on prices times the deck; the sized amount keeps
    the minimum DSCR on that case (re-computed here from the recorded cash flows), and a lower deck
    never allows a larger loan."""
    from fundmodel.credit import _repayment_dscr, lenders_case

    a = load_assumptions(shipped_assumptions_dir)
    pid = "mn_ree"  # sized by its DSCR, not its gearing cap
    amounts = {}
    for deck in (1.0, 0.8):
        p = a.projects[pid]
        sizing = p.debt.sizing.model_copy(update={"price_deck": deck})
        p = p.model_copy(update={"debt": p.debt.model_copy(update={"sizing": sizing, "amount_musd": None,
                                                                  "sized": None})})
        b = dataclasses.replace(a, projects={**a.projects, pid: p})
        sized = size_debt(b, pid)
        amounts[deck] = sized.amount_musd
        case = lenders_case(b, pid, 1)
        prices = case[0].price_usd_per_t / lenders_case(a, pid, 1)[0].price_usd_per_t
        assert np.allclose(prices, deck), "the lenders' case scales every price by the deck"
        dscr = float(_repayment_dscr(p, a.fund.inflation, case, np.array([sized.amount_musd]))[0])
        assert dscr >= p.debt.sizing.min_dscr - 1e-9
        above = float(_repayment_dscr(p, a.fund.inflation, case, np.array([sized.amount_musd * 1.01]))[0])
        assert above < p.debt.sizing.min_dscr, "the largest amount keeping the cover, not a smaller one"
    assert amounts[0.8] < amounts[1.0]
