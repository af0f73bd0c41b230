"""Real options of every project: the investment decision (FID) and the operating options.

The committed valuation (``npv_mean_meur``, ``npv_market_mean_meur``, ...) follows today's plan:
develop at the scheduled date, produce every year until the reserve is used up. This module
values, on top of it, the project *with* its options, by least-squares Monte Carlo
(Longstaff and Schwartz 2001), at the project's market **asset rate** (:mod:`fundmodel.rates`),
on the project's own cash-flow model (:func:`fundmodel.valuation.project_cash_flows`):

1. **Investment decision** (exploration and feasibility projects with an initial capex):
   geological and permitting success stays a probability (``schedule.developed``). After it,
   at the earliest investment date ``c`` (the scheduled construction start) and each year after,
   up to ``options.licence_years`` decisions, the owner invests (the whole plan, construction,
   ramp-up and operations, starts ``k`` years late), waits (pays the licence holding cost of the
   year) or gives the licence up; after the last date the licence lapses. The value of
   investing at delay ``k`` is the realised present value (asset rate, EUR) of the project's
   free cash flow with the plan shifted by ``k`` years minus that of the undeveloped project
   (studies only); its conditional expectation and that of waiting are regressions on the
   state known at the decision (log real price of the primary material in the year before,
   relative to its long-run level; the decision date) per delay (:class:`~fundmodel.mine_options.LevelRegression`,
   hinge basis in the price).
2. **Operating options** (every project, once producing): each year the mine runs, goes to
   care and maintenance (pays the closing cost, then the care-and-maintenance cost per year),
   reopens (pays the reopening cost) or is abandoned for good (pays ``capex.closure_musd`` now).
   :func:`fundmodel.mine_options.fit_switching` with ``OPEN`` = the year's operating cash flow
   after tax, ``revenue - opex - royalty - tax - sustaining capex - closure`` of the plan,
   ``CLOSED`` = minus the care-and-maintenance cost; state: the log price ratio of the year
   before and the years left to the plan's closure.

Both policies are fitted once per run on a pilot sample of :data:`PILOT_SCENARIOS` scenarios
from streams of their own (key ``"options/pilot"``), and applied out of sample to every
scenario: decisions use the current state only, each scenario's numbers do not depend on the
chunk or on the scenario count, and nothing loops over scenarios.

Simplifications (stated in ``docs/operating_options.md``):

- a closed year's output is **lost**, not deferred: the mine plan keeps its calendar (ramp-up,
  depletion year and closure year of the plan), so closing does not extend the mine's life;
- the tax of an open year is the plan's tax of that year (depreciation and loss carry-forward
  as planned); a closed year pays no tax and earns no tax credit;
- options end at expropriation (no flows after it in either valuation); the expropriation
  compensation stays as planned;
- the operating policy is fitted on the plan at its scheduled date and applied to the plan the
  investment policy chose (a feasible, so low-biased, policy); capex once committed is spent
  (no abandonment during construction);
- construction-stage and producing projects have taken their investment decision.

The value with options of a scenario is the realised present value of the policy's flows;
``option_value`` = with options minus committed, per scenario, so its standard error is that of
a difference on common random numbers.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from threadpoolctl import threadpool_limits

from .assumptions.model import content_fingerprint
from .assumptions.schema import Copula, SamplingMethod, Stage
from .lsm import polynomial_terms
from .market import simulate_market
from .engine import PerProcessCache, spread_by_project
from .mine_options import LevelRegression, Mode, ModeFlows, SwitchCosts, SwitchingPolicy, _LevelFitter, apply_switching, fit_switching
from .political import draw_political_events, geopolitical_factor
from .sampling import ScenarioStreams, stream_key
from .schedule import SCHEDULE_DRAWS, draw_schedule
from .valuation import project_cash_flows

#: Scenarios of the pilot sample the option policies are fitted on.
PILOT_SCENARIOS = 4096
#: Stream key from which the pilot's seed is derived.
PILOT_STREAM = "options/pilot"
#: Scenarios of the validation sample (own stream) on which a fitted policy must beat the plan.
VALIDATION_SCENARIOS = 2048
VALIDATION_STREAM = "options/validation"
#: Hinge knots of the regressions (in the price).
KNOTS = 8
#: Monomials of the operating regressions (state: price, years left to the plan's closure, last-year
#: flag), with the price hinges: the value falls steeply as the plan's end (and its closure cost) nears.
OPERATING_TERMS = ((), (0,), (1,), (1, 1), (0, 1), (2,), (0, 2))
#: A switch that is not available costs this much (USD/EUR m): never chosen.
_NEVER = 1e9

#: Per-scenario outputs (names of :data:`fundmodel.simulation.SCALARS`).
OPTION_SCALARS = {
    "npv_options_market_meur": float,     # value with options, asset rate, EUR m
    "option_value_fid_meur": float,       # part from the investment decision (timing, giving up)
    "option_value_operating_meur": float,  # part from care and maintenance, reopening, abandonment
    "option_developed": bool,              # the project is built (invested, or already committed)
    "option_closed": bool,                 # care and maintenance at least once
    "option_abandoned": bool,              # abandoned before the plan's closure
}

__all__ = ["PILOT_SCENARIOS", "OPTION_SCALARS", "ProjectOptionPolicy", "has_fid_option", "fit_option_policy",
           "fit_option_policies", "option_policies", "option_values"]


@dataclasses.dataclass(frozen=True)
class ProjectOptionPolicy:
    """The fitted option policies of one project.

    Attributes
    ----------
    operating : SwitchingPolicy
        Open / care and maintenance / abandon, per calendar year.
    fid : LevelRegression or None
        Per delay ``k``: level 1 = value of investing now, level 2 = value of waiting
        (money of the decision date, EUR m); None: no investment decision.
    licence_years : int
    expected_open : LevelRegression or None
        ``E[OPEN flow of year t | X_t]`` per year: a year's cash flow is known only at its end,
        so the decision at its start sees this, not the realised flow (no foresight).
    operating_adopted : bool
        False when the fitted operating policy did not beat running the plan on the validation
        sample (:func:`fit_option_policies`): the mine then runs as planned.
    """

    operating: SwitchingPolicy
    fid: LevelRegression | None
    licence_years: int
    expected_open: LevelRegression | None = None
    operating_adopted: bool = True


def _fit_expected_open(states: np.ndarray, mode_flows: ModeFlows, window: np.ndarray) -> LevelRegression:
    """Per year, the regression of the realised OPEN flow on the state known at the year's start."""
    n_years, _, n_vars = states.shape
    fitter = _LevelFitter(n_years, 1, n_vars, OPERATING_TERMS, KNOTS, 0, 1e-6)
    with threadpool_limits(1):
        for t in range(n_years):  # loop over years
            rows = np.flatnonzero(window[t])
            if rows.size:
                fitter.fit(t, states[t][rows], mode_flows.open[t][rows][None, :], 2 * (len(OPERATING_TERMS) + KNOTS))
    return fitter.result()


def _decision_flows(expected: LevelRegression, states: np.ndarray, mode_flows: ModeFlows, window: np.ndarray,
                    at_end: np.ndarray) -> ModeFlows:
    """What the start-of-year decision knows: the expected OPEN flow where the mine can switch
    (and in the plan's closure year, where both modes pay it), the known care-and-maintenance cost."""
    n_years = states.shape[0]
    expect = np.array(mode_flows.open, dtype=float)
    for t in range(n_years):  # loop over years
        rows = np.flatnonzero(window[t] | at_end[t])
        if rows.size and expected.n_fit[t] > 0:
            expect[t, rows] = expected.predict(t, states[t][rows], 1)
    closed = np.where(at_end, expect, mode_flows.closed)
    return ModeFlows(open=expect, closed=closed)


def has_fid_option(p) -> bool:
    """Whether the project's investment decision is still to be taken."""
    return p.stage in (Stage.EXPLORATION, Stage.FEASIBILITY) and p.capex.initial_musd > 0


def _discount(rate: float, n_years: int) -> np.ndarray:
    """PV factor of the end of year ``j`` (as :func:`fundmodel.rates.present_value`)."""
    return (1.0 + rate) ** -np.arange(1, n_years + 1, dtype=float)


def _pv(x: np.ndarray, df: np.ndarray) -> np.ndarray:
    """PV of (n, n_years) year-end flows, a fixed year-by-year sum (chunk invariant)."""
    total = np.zeros(x.shape[0])
    for t in range(x.shape[1]):  # loop over years
        total += df[t] * x[:, t]
    return total


def _price_state(a, p, market) -> np.ndarray:
    """(n_years, n): ln(real price / long-run level) of the primary material in the year before (t = 0: spot)."""
    material = p.materials[0]
    ratio = market.real_price_ratio[market.index(material)]  # (n, n_years)
    m = a.markets.materials[material]
    x = np.empty(ratio.shape[::-1])
    x[0] = np.log(m.spot_usd_per_t / m.long_run_usd_per_t)
    x[1:] = np.log(ratio[:, :-1].T)
    return x


def _shifted(schedule, delay: np.ndarray, invest: np.ndarray | None = None):
    """The schedule with construction (and everything after it) ``delay`` years later."""
    developed = schedule.developed if invest is None else schedule.developed & invest
    return dataclasses.replace(schedule, developed=developed, construction_start=schedule.construction_start + delay,
                               construction_end=schedule.construction_end + delay)


def _operating_problem(a, p, flows, fx: np.ndarray, politics, price_x: np.ndarray, rate: float):
    """Flows, costs, states of the operating options (EUR, year-start money) and the plan's closure year."""
    n, n_years = fx.shape
    terms = p.options.resolved(p.operations, p.capex)
    esc = (1.0 + a.fund.inflation) ** np.arange(n_years)
    to_start = 1.0 / (1.0 + rate)  # year-end flow -> start of the year (the date of the decision)
    fxt = fx.T
    open_usd = (flows.revenue_musd - flows.opex_musd - flows.royalty_musd - flows.tax_musd
                - flows.sustaining_musd - flows.closure_musd).T  # (n_years, n)
    fo = open_usd / fxt * to_start
    jj = np.arange(n_years)[:, None]
    first = flows.first_production_year
    has_closure = flows.closure_musd.T > 0
    end = np.where(has_closure.any(axis=0), np.argmax(has_closure, axis=0), n_years)  # plan's closure year
    alive = jj <= politics.expropriation_year
    window = (jj >= first) & (jj < end) & alive   # producing or able to (care and maintenance possible)
    at_end = (jj == end) & alive
    unit = esc[:, None] / fxt
    fc = np.where(window, -terms["care_maintenance_musd_per_year"] * unit * to_start, 0.0)
    fc = np.where(at_end, fo, fc)  # the closure year: closure cost in either mode
    kc = np.where(window, terms["closing_cost_musd"] * unit, _NEVER)
    kr = np.where(window, terms["reopening_cost_musd"] * unit, _NEVER)
    ka = np.where(window, p.capex.closure_musd * unit, _NEVER)
    # years of nameplate output left in the reserve at the year's start (what the decision knows:
    # the plan's closure year itself depends on future suspensions, unrest and expropriation)
    ops = p.operations
    mined_before = np.cumsum(flows.ore_mined_mt.T, axis=0) - flows.ore_mined_mt.T
    years_left = np.clip((ops.ore_mtpa * ops.mine_life_years - mined_before) / ops.ore_mtpa, 0.0, float(n_years))
    states = np.stack([price_x, years_left, (years_left <= 1.0).astype(float)], axis=-1)
    return ModeFlows(open=fo, closed=fc), SwitchCosts(close=kc, reopen=kr, abandon=ka), states, window, at_end


def _fid_states(a, p, schedule, price_x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """State at the decision of delay ``k`` (n, 2) and its year index (n,)."""
    n_years = price_x.shape[0]
    year = np.clip(np.floor(schedule.construction_start).astype(np.int64) + k, 0, n_years - 1)
    x = price_x[year, np.arange(year.size)]
    return np.stack([x, schedule.construction_start + k], axis=-1), year


def _setting(a, project_id: str, market):
    """The project, its asset rate, the scenario and year counts, EUR/USD, discount factors and
    the price state: what fitting and applying the policies share."""
    from .rates import market_rates

    p = a.projects[project_id]
    rate = market_rates(a, project_id).asset
    n, n_years = market.fx_usd_per_eur.shape
    return (p, rate, n, n_years, market.fx_usd_per_eur, _discount(rate, n_years), _price_state(a, p, market))


def fit_option_policy(a, project_id: str, market, schedule, politics) -> ProjectOptionPolicy:
    """Fit one project's option policies on given pilot draws (see the module docstring)."""
    p, rate, n, n_years, fx, df, price_x = _setting(a, project_id, market)
    flows = project_cash_flows(p, a.fund.inflation, market, schedule, politics, None)
    mode_flows, costs, states, window, at_end = _operating_problem(a, p, flows, fx, politics, price_x, rate)
    # the year's flow is known at its end: decisions at its start see its expectation given the state
    expected_open = _fit_expected_open(states, mode_flows, window | at_end)
    operating = fit_switching(states, mode_flows, costs, 1.0 / (1.0 + rate), knots=KNOTS, hinge_var=0,
                              terms=OPERATING_TERMS,
                              decision_flows=_decision_flows(expected_open, states, mode_flows, window, at_end))
    licence = p.options.resolved(p.operations, p.capex)["licence_years"]
    fid = None
    if has_fid_option(p) and licence > 0:
        hold = p.options.resolved(p.operations, p.capex)["holding_cost_musd_per_year"]
        none = _pv(project_cash_flows(p, a.fund.inflation, market, _shifted(schedule, 0.0, np.zeros(n, bool)),
                                      politics, None).project_fcf_musd / fx, df)
        esc = (1.0 + a.fund.inflation) ** np.arange(n_years)
        fitter = _LevelFitter(licence, 2, 2, polynomial_terms(2, 1), KNOTS, 0, 1e-6)
        value = np.zeros(n)  # realised value (PV at 0) of holding the undeveloped licence at delay k + 1
        live = schedule.developed
        with threadpool_limits(1):
            for k in range(licence - 1, -1, -1):  # loop over decision dates, backwards
                shifted = project_cash_flows(p, a.fund.inflation, market, _shifted(schedule, float(k)), politics, None)
                gain = _pv(shifted.project_fcf_musd / fx, df) - none  # invest now (PV at 0)
                x, year = _fid_states(a, p, schedule, price_x, k)
                rows = np.arange(n)
                h = hold * esc[year] / fx[rows, year] * df[year]  # the year's holding cost (PV at 0)
                to_t = (1.0 + rate) ** year  # PV at 0 -> money of the decision date
                fitter.fit(k, x[live], np.stack([gain * to_t, value * to_t])[:, live], 4 * (2 + KNOTS))
                est = fitter.result()
                e_inv = est.predict(k, x, 1) / to_t
                e_wait = -h + est.predict(k, x, 2) / to_t
                invest = (e_inv > e_wait) & (e_inv > 0.0)
                give_up = ~invest & (0.0 > e_wait)
                value = np.where(live, np.where(invest, gain, np.where(give_up, 0.0, value - h)), 0.0)
        fid = fitter.result()
    return ProjectOptionPolicy(operating=operating, fid=fid, licence_years=licence, expected_open=expected_open)


def _pilot_draws(a, seed: int, sampling, copula, copula_dof: float, n_pilot: int, projects,
                 stream: str = PILOT_STREAM):
    streams = ScenarioStreams(pilot_seed(seed, stream), sampling)
    n_years = a.fund.horizon_years
    geo_params = a.countries.geopolitical_factor
    geo = geopolitical_factor(streams, geo_params, 0, n_pilot, n_years)
    market = simulate_market(a.markets, streams, 0, n_pilot, n_years, a.fund.inflation, geo,
                             copula=Copula(copula), copula_dof=copula_dof,
                             parameter_uncertainty=a.fund.simulation.parameter_uncertainty)
    for pid in projects:  # loop over projects
        p = a.projects[pid]
        country = a.countries.countries[p.country]
        uniforms = streams.uniforms(f"schedule/{pid}", 0, n_pilot, len(SCHEDULE_DRAWS), sobol=False)
        schedule = draw_schedule(p, country.permitting_years, uniforms)
        ratio = market.real_price_ratio[market.index(p.materials[0])]
        politics = draw_political_events(streams, pid, country, geo, geo_params.hazard_loading, ratio, 0, n_pilot)
        yield pid, market, schedule, politics


def pilot_seed(seed: int, stream: str = PILOT_STREAM) -> int:
    """Seed of a run's option pilot (or validation) sample: derived from the run seed and the stream."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(stream_key(stream),))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def fit_option_policies(a, seed: int, sampling: SamplingMethod | str = SamplingMethod.SOBOL, *,
                        copula: Copula | str = Copula.GAUSSIAN, copula_dof: float = 5.0,
                        n_pilot: int = PILOT_SCENARIOS, projects: list[str] | None = None
                        ) -> dict[str, ProjectOptionPolicy]:
    """Fit the option policies of the projects on the run's pilot sample (own streams).

    A fitted policy is adopted only where it beats the committed plan on an independent
    validation sample (:data:`VALIDATION_SCENARIOS` scenarios of their own stream): a least-squares
    policy is an estimate, and where the true option is worth about nothing its regression
    errors make it worse than the plan; management would not follow such a policy. The
    investment-timing and the operating policy are checked separately (mean value added over the
    validation sample not positive: dropped).
    """
    out = {}
    wanted = projects if projects is not None else list(a.projects)
    for pid, market, schedule, politics in _pilot_draws(a, seed, SamplingMethod(sampling), copula, copula_dof,
                                                        n_pilot, wanted):
        out[pid] = fit_option_policy(a, pid, market, schedule, politics)
    for pid, market, schedule, politics in _pilot_draws(a, seed, SamplingMethod(sampling), copula, copula_dof,
                                                        VALIDATION_SCENARIOS, wanted, VALIDATION_STREAM):
        p = a.projects[pid]
        flows = project_cash_flows(p, a.fund.inflation, market, schedule, politics, None)
        values = option_values(a, pid, out[pid], market, schedule, politics, flows,
                               np.zeros(market.fx_usd_per_eur.shape[0]))
        policy = out[pid]
        if policy.fid is not None and not values["option_value_fid_meur"].mean() > 0.0:
            policy = dataclasses.replace(policy, fid=None)
        if not values["option_value_operating_meur"].mean() > 0.0:
            policy = dataclasses.replace(policy, operating_adopted=False)
        out[pid] = policy
    return out


_POLICIES = PerProcessCache()


def _fit_task(shared: tuple, projects: list[str]) -> dict[str, ProjectOptionPolicy]:
    a, seed, sampling, copula, copula_dof = shared
    return fit_option_policies(a, seed, sampling, copula=copula, copula_dof=copula_dof, projects=projects)


def option_policies(a, seed: int, sampling: SamplingMethod | str = SamplingMethod.SOBOL, *,
                    copula: Copula | str = Copula.GAUSSIAN, copula_dof: float = 5.0,
                    engine=None) -> dict[str, ProjectOptionPolicy]:
    """:func:`fit_option_policies`, kept per process, spread over the engine's workers (as
    :func:`fundmodel.credit.credit_policies`; the grouping changes no number)."""
    key = (content_fingerprint(a), int(seed), SamplingMethod(sampling).value, Copula(copula).value, float(copula_dof))

    def fit() -> dict[str, ProjectOptionPolicy]:
        shared = (a, int(seed), SamplingMethod(sampling), Copula(copula), float(copula_dof))
        # the investment decisions cost most: deal them out first
        order = sorted(a.projects, key=lambda q: not has_fid_option(a.projects[q]))
        found = spread_by_project(_fit_task, shared, order, engine)
        return {pid: found[pid] for pid in a.projects}

    return _POLICIES.get_or_make(key, fit)


def option_values(a, project_id: str, policy: ProjectOptionPolicy, market, schedule, politics, flows,
                  committed_market_meur: np.ndarray) -> dict[str, np.ndarray]:
    """Apply a project's fitted option policies to scenarios; :data:`OPTION_SCALARS` per scenario.

    ``flows`` are the committed cash flows of these scenarios and ``committed_market_meur`` their
    present value at the asset rate (``project_npv_market_meur``).
    """
    p, rate, n, n_years, fx, df, price_x = _setting(a, project_id, market)
    developed = schedule.developed.copy() if p.stage is not Stage.PRODUCTION else np.ones(n, bool)
    fid_value = np.zeros(n)
    plan = flows
    if policy.fid is not None:
        terms = p.options.resolved(p.operations, p.capex)
        hold = terms["holding_cost_musd_per_year"]
        esc = (1.0 + a.fund.inflation) ** np.arange(n_years)
        waiting = schedule.developed.copy()
        delay = np.zeros(n)
        invested = np.zeros(n, bool)
        held = np.zeros(n)
        rows = np.arange(n)
        for k in range(policy.licence_years):  # loop over decision dates
            x, year = _fid_states(a, p, schedule, price_x, k)
            to_t = (1.0 + rate) ** year
            h = hold * esc[year] / fx[rows, year] * df[year]
            e_inv = policy.fid.predict(k, x, 1) / to_t
            e_wait = -h + policy.fid.predict(k, x, 2) / to_t
            inv = waiting & (e_inv > e_wait) & (e_inv > 0.0)
            give_up = waiting & ~inv & (0.0 > e_wait)
            invested |= inv
            delay = np.where(inv, float(k), delay)
            held += np.where(waiting & ~inv & ~give_up, h, 0.0)
            waiting &= ~(inv | give_up)
        developed = invested
        plan = project_cash_flows(p, a.fund.inflation, market, _shifted(schedule, delay, invested), politics, None)
        plan_pv = _pv(plan.project_fcf_musd / fx, df)
        fid_value = plan_pv - held - _pv(flows.project_fcf_musd / fx, df)
    mode_flows, costs, states, window, at_end = _operating_problem(a, p, plan, fx, politics, price_x, rate)
    if not policy.operating_adopted:
        none = np.zeros(n, bool)
        return {"npv_options_market_meur": committed_market_meur + fid_value,
                "option_value_fid_meur": fid_value, "option_value_operating_meur": np.zeros(n),
                "option_developed": developed, "option_closed": none, "option_abandoned": none}
    known = (None if policy.expected_open is None
             else _decision_flows(policy.expected_open, states, mode_flows, window, at_end))
    res = apply_switching(policy.operating, states, mode_flows, costs, 1.0 / (1.0 + rate), decision_flows=known)
    # the plan's value on the same per-path sum as apply_switching (bit-equal where nothing switches)
    base = np.zeros(n)
    growth = np.ones(n)
    d = 1.0 / (1.0 + rate)
    for t in range(n_years):  # loop over years
        base += growth * mode_flows.open[t]
        growth = growth * d
    switched = (res.modes != Mode.OPEN).any(axis=0)
    operating_value = np.where(switched, res.value - base, 0.0)
    closed = ((res.modes == Mode.CLOSED) & window).any(axis=0)
    abandoned = ((res.modes == Mode.ABANDONED) & window).any(axis=0)
    return {
        "npv_options_market_meur": committed_market_meur + fid_value + operating_value,
        "option_value_fid_meur": fid_value,
        "option_value_operating_meur": operating_value,
        "option_developed": developed,
        "option_closed": closed,
        "option_abandoned": abandoned,
    }
