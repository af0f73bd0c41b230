"""Credit model of the senior loans: the sizing rule and the fitted default and recovery decisions.

Two things are computed here, both once, before any scenario of a run is valued:

1. **Debt sizing** (:func:`size_debt`, applied by the loader through :func:`resolve_debt`):
   a development project's loan is the largest amount whose *base case* keeps a minimum
   debt-service cover ratio (``debt.sizing.min_dscr``, CFADS over scheduled interest and
   principal) in every repayment year after completion, capped at
   ``debt.sizing.max_gearing`` of the budgeted initial capex. The base case is the lenders'
   case at financial close: every price and EUR/USD on its expected path ``E[S_t]``
   (:func:`fundmodel.market.simulate_market` with ``risk_on=False``), durations at their
   mode, budgeted capex, opex and recovery, development certain, no political event. With
   equal principal instalments the binding year is usually the first repayment year; the
   search evaluates 256 candidate amounts at a time in one vectorised engine call and
   narrows the bracket once (to 1/65,536 of four times the cap), then rounds down to USD 0.01 m.
   A loan given in the project file (``debt.amount_musd``) is kept: a producing mine's
   existing facility, a term sheet under negotiation, a synthetic pipeline's draw.

2. **Credit policies** (:func:`fit_credit_policies`): per project with a loan, the sponsors'
   walk-away rule and the going-concern value of the project, both least-squares
   regressions on the current state (:data:`fundmodel.valuation.CREDIT_STATE`,
   :data:`~fundmodel.valuation.CREDIT_TERMS`), fitted on a *pilot sample* of
   :data:`PILOT_SCENARIOS` scenarios drawn from streams of their own (seed derived from the
   run seed and the key ``"credit/pilot"``), so the fit does not depend on the chunk size,
   the worker count or the number of scenarios of the run, and no scenario of the run is
   used to fit the rule applied to it (no foresight). The pilot is valued with the sponsors
   always supporting the loan (:class:`~fundmodel.valuation.CreditRecord`); then, backwards
   (Longstaff and Schwartz 2001, :func:`fundmodel.lsm.fit_stopping`), the continuation value
   of the equity is regressed on the state where a voluntary injection is needed, the
   sponsors walk away where it is below the injection, and the realised equity value is
   carried back; equity flows are discounted at the cost of equity, the project's
   unlevered flows (going-concern value, :func:`fundmodel.lsm.fit_value`) at the asset rate
   (:func:`fundmodel.rates.market_rates`), both per year. Rates are nominal EUR rates
   applied to nominal USD flows (the fund's convention for USD projects).

The policies of a run are fitted on the run's assumptions and held fixed in its risk
attribution and tornado variants (as the loan amount is): a variant changes the world the
rules are applied to, not the rules.

References
----------
Longstaff, F. A., and Schwartz, E. S. (2001). Valuing American options by simulation: a
simple least-squares approach. *Review of Financial Studies* 14(1), 113-147.
Moody's Investors Service (2017). Default and Recovery Rates for Project Finance Bank Loans,
1983-2015.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from .assumptions.model import content_fingerprint
from .assumptions.schema import Copula, Project, SamplingMethod, SizedDebt, Stage
from .engine import PerProcessCache, spread_by_project
from .lsm import fit_stopping, fit_value
from .market import simulate_market
from .political import draw_political_events, geopolitical_factor, no_political_events
from .sampling import ScenarioStreams, stream_key
from .schedule import SCHEDULE_DRAWS, draw_schedule
from .valuation import CREDIT_TERMS, CreditPolicy, project_cash_flows

#: Scenarios of the pilot sample the credit regressions are fitted on (about 20 paths per
#: basis function in the distressed region of a typical year; two Sobol' blocks).
PILOT_SCENARIOS = 8192
#: Stream key from which the pilot's seed is derived.
PILOT_STREAM = "credit/pilot"
#: Ridge penalty of the credit regressions (per observation, standardised basis).
RIDGE = 1e-6
#: Candidate amounts per round of the sizing search, and rounds.
_GRID, _ROUNDS = 256, 2

__all__ = ["PILOT_SCENARIOS", "size_debt", "resolve_debt", "base_case", "pilot_seed", "fit_credit_policy",
           "fit_credit_policies", "credit_policies"]


# ----------------------------------------------------------------------------- sizing
def base_case(a, project_id: str, n: int = 1):
    """The lenders' base case of a project, repeated ``n`` times.

    Returns
    -------
    market : MarketPaths
        Every price and EUR/USD on its expected path ``E[S_t]``, no export restriction.
    schedule : ScheduleDraws
        Durations at their mode, no overrun, budgeted opex and recovery, development certain.
    politics : PoliticalTimeline
        No political event.
    """
    p = a.projects[project_id]
    n_years = a.fund.horizon_years
    country = a.countries.countries[p.country]
    market = simulate_market(a.markets, ScenarioStreams(0), 0, n, n_years, a.fund.inflation,
                             np.zeros((n, n_years)), risk_on=False)
    schedule = draw_schedule(p, country.permitting_years, np.full((n, len(SCHEDULE_DRAWS)), 0.5), risk_on=False)
    return market, schedule, no_political_events(country, n, n_years)


def lenders_case(a, project_id: str, n: int = 1):
    """The base case at the lenders' price deck: every price times ``debt.sizing.price_deck``.

    Lenders size a loan on a banking case whose prices sit below the sponsors' expected path
    (Yescombe, *Principles of Project Finance*, 2nd ed. 2014, ch. 12-13: the banking case uses
    conservative price assumptions), so that the loan survives prices some way below the
    long-run level: with estimated, not known, long-run levels (parameter uncertainty,
    :func:`fundmodel.market.draw_price_parameters`) a loan sized on the expected path defaults
    far more often than project-finance history.
    """
    market, schedule, politics = base_case(a, project_id, n)
    deck = a.projects[project_id].debt.sizing.price_deck
    if deck != 1.0:
        market = dataclasses.replace(market, price_usd_per_t=market.price_usd_per_t * deck)
    return market, schedule, politics


def _repayment_dscr(p: Project, inflation: float, case, amounts: np.ndarray) -> np.ndarray:
    """Lowest base-case DSCR over the repayment years after completion, per candidate amount."""
    market, schedule, politics = case
    rec = project_cash_flows(p, inflation, market, schedule, politics, debt_musd=amounts, record=True).credit_record
    years = rec.completed & (rec.principal_due > 1e-9)
    ratio = np.where(years, rec.cfads / np.where(years, rec.service_due, 1.0), np.inf)
    dscr = ratio.min(axis=0)
    return np.where(years.any(axis=0), dscr, -np.inf)  # never repaid after completion: not bankable


def size_debt(a, project_id: str) -> SizedDebt:
    """Size a project's senior loan by its ``debt.sizing`` rule on the base case.

    Parameters
    ----------
    a : Assumptions
    project_id : str

    Returns
    -------
    SizedDebt
        The amount (USD m, rounded down to 0.01), which limit binds, both limits and the
        base-case minimum DSCR at the amount.

    Notes
    -----
    ``DSCR(D)`` falls with the amount ``D`` (debt service grows in proportion to ``D``, CFADS
    only by the interest tax shield), so the feasible amounts form an interval ``[0, D*]``.
    Candidates up to 4x the gearing cap are searched; ``dscr_limit_musd`` is ``D*`` (or that
    bound when even it keeps the cover).
    """
    p = a.projects[project_id]
    n_years = a.fund.horizon_years
    country = a.countries.countries[p.country]
    context = json.dumps([a.markets.model_dump(mode="json"), country.model_dump(mode="json"), n_years],
                         sort_keys=True)
    return _size_cached(p.model_dump_json(), context, a, project_id)


_SIZED: dict[tuple[str, str], SizedDebt] = {}


def _size_cached(project_json: str, context: str, a, project_id: str) -> SizedDebt:
    key = (hashlib.sha256(project_json.encode()).hexdigest(),
           hashlib.sha256(f"{context}|{a.fund.inflation!r}".encode()).hexdigest())
    hit = _SIZED.get(key)
    if hit is None:
        if len(_SIZED) > 512:
            _SIZED.clear()
        hit = _SIZED[key] = _size_project(a, project_id)
    return hit


def _size_project(a, project_id: str) -> SizedDebt:
    p = a.projects[project_id]
    rule = p.debt.sizing
    cap = rule.max_gearing * p.capex.initial_musd
    inflation = a.fund.inflation
    case = lenders_case(a, project_id, _GRID)
    target = rule.min_dscr
    if cap <= 0:
        return SizedDebt(amount_musd=0.0, binding="gearing", dscr_limit_musd=0.0, gearing_limit_musd=0.0,
                         base_case_min_dscr=None)
    lo, hi = 0.0, 4.0 * cap
    for _ in range(_ROUNDS):  # loop over refinements of the bracket [lo, hi]
        grid = lo + (hi - lo) * np.arange(1, _GRID + 1) / _GRID
        ok = _repayment_dscr(p, inflation, case, grid) >= target
        if ok.all():
            lo = hi = float(grid[-1])
            break
        k = int(np.argmin(ok))  # first infeasible candidate: the feasible ones form [0, D*]
        lo, hi = (float(grid[k - 1]) if k > 0 else lo), float(grid[k])
    dscr_limit = lo
    amount = np.floor(min(dscr_limit, cap) * 100.0) / 100.0
    at_amount = None
    if amount > 0:
        value = float(_repayment_dscr(p, inflation, lenders_case(a, project_id, 1), np.array([amount]))[0])
        at_amount = value if np.isfinite(value) else None
    return SizedDebt(amount_musd=float(amount), binding="gearing" if dscr_limit >= cap else "dscr",
                     dscr_limit_musd=float(min(dscr_limit, 1e5)), gearing_limit_musd=float(cap),
                     base_case_min_dscr=None if at_amount is None else float(min(max(at_amount, 0.0), 1e6)))


def resolve_debt(a):
    """The assumptions with every loan that the files leave open sized by its rule.

    A project whose ``debt.amount_musd`` is omitted gets the sized amount there and the
    sizing outcome in ``debt.sized``; a producing mine without an amount has no loan
    (there is nothing to build, its existing debt is a fact of the file). Projects with an
    amount are returned unchanged.

    Parameters
    ----------
    a : Assumptions

    Returns
    -------
    Assumptions
        ``a`` itself when nothing was open, else a changed copy.
    """
    projects = dict(a.projects)
    changed = False
    for pid, p in a.projects.items():  # loop over projects
        if p.debt.amount_musd is not None:
            continue
        if p.stage is Stage.PRODUCTION or p.capex.initial_musd <= 0:
            debt = p.debt.model_copy(update={"amount_musd": 0.0})
        else:
            sized = size_debt(a, pid)
            debt = p.debt.model_copy(update={"amount_musd": sized.amount_musd, "sized": sized})
        projects[pid] = p.model_copy(update={"debt": debt})
        changed = True
    return dataclasses.replace(a, projects=projects) if changed else a


# ----------------------------------------------------------------------------- policies
def pilot_seed(seed: int) -> int:
    """Seed of a run's pilot sample: derived from the run seed and :data:`PILOT_STREAM`.

    Examples
    --------
    >>> pilot_seed(1) == pilot_seed(1) != pilot_seed(2)
    True
    """
    ss = np.random.SeedSequence(int(seed), spawn_key=(stream_key(PILOT_STREAM),))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def fit_credit_policy(a, project_id: str, market, schedule, politics) -> CreditPolicy:
    """Fit one project's credit policy on given pilot draws (see the module docstring).

    Parameters
    ----------
    a : Assumptions
    project_id : str
    market, schedule, politics
        Pilot scenarios of the project (:class:`~fundmodel.market.MarketPaths`,
        :class:`~fundmodel.schedule.ScheduleDraws`, :class:`~fundmodel.political.PoliticalTimeline`).

    Returns
    -------
    CreditPolicy
        With ``equity`` and ``going_concern`` fitted; a project without a loan gets the
        empty policy.
    """
    from .rates import market_rates

    p = a.projects[project_id]
    reference = a.markets.materials[p.materials[0]].long_run_usd_per_t
    if not p.debt.amount_musd:
        return CreditPolicy(reference_price_usd_per_t=reference)
    flows = project_cash_flows(p, a.fund.inflation, market, schedule, politics,
                               CreditPolicy(reference_price_usd_per_t=reference), record=True)
    rec = flows.credit_record
    rates = market_rates(a, project_id)
    equity = fit_stopping(rec.state, rec.equity_flow, rec.equity_flow + rec.voluntary, rec.voluntary > 1e-9,
                          1.0 / (1.0 + rates.equity), mask=rec.live, terms=CREDIT_TERMS, ridge=RIDGE)
    going_concern = fit_value(rec.state, np.ascontiguousarray(flows.project_fcf_musd.T), 1.0 / (1.0 + rates.asset),
                              mask=rec.live, terms=CREDIT_TERMS, ridge=RIDGE)
    return CreditPolicy(reference_price_usd_per_t=reference, equity=equity, going_concern=going_concern)


def fit_credit_policies(a, seed: int, sampling: SamplingMethod | str = SamplingMethod.SOBOL, *,
                        copula: Copula | str = Copula.GAUSSIAN, copula_dof: float = 5.0,
                        n_pilot: int = PILOT_SCENARIOS, projects: list[str] | None = None) -> dict[str, CreditPolicy]:
    """Fit the credit policy of every project with a loan on the run's pilot sample.

    Parameters
    ----------
    a : Assumptions
    seed : int
        Run seed (the pilot uses :func:`pilot_seed` of it).
    sampling : SamplingMethod
        The run's sampling method (the pilot is drawn the same way).
    copula, copula_dof
        Dependence of the market shocks, as in the run.
    n_pilot : int, default PILOT_SCENARIOS
    projects : list of str, optional
        Fit only these (default all); each project's policy depends on its own draws and the
        market only, not on which other projects are fitted.

    Returns
    -------
    dict
        ``{project_id: CreditPolicy}`` for every project fitted.
    """
    streams = ScenarioStreams(pilot_seed(seed), sampling)
    n_years = a.fund.horizon_years
    geo_params = a.countries.geopolitical_factor
    geo = geopolitical_factor(streams, geo_params, 0, n_pilot, n_years)
    market = None
    out: dict[str, CreditPolicy] = {}
    for pid in (projects if projects is not None else list(a.projects)):  # loop over projects
        p = a.projects[pid]
        reference = a.markets.materials[p.materials[0]].long_run_usd_per_t
        if not p.debt.amount_musd:
            out[pid] = CreditPolicy(reference_price_usd_per_t=reference)
            continue
        if market is None:
            market = simulate_market(a.markets, streams, 0, n_pilot, n_years, a.fund.inflation, geo,
                                     copula=Copula(copula), copula_dof=copula_dof,
                                     parameter_uncertainty=a.fund.simulation.parameter_uncertainty)
        country = a.countries.countries[p.country]
        uniforms = streams.uniforms(f"schedule/{pid}", 0, n_pilot, len(SCHEDULE_DRAWS), sobol=False)
        schedule = draw_schedule(p, country.permitting_years, uniforms)
        ratio = market.real_price_ratio[market.index(p.materials[0])]
        politics = draw_political_events(streams, pid, country, geo, geo_params.hazard_loading, ratio, 0, n_pilot)
        out[pid] = fit_credit_policy(a, pid, market, schedule, politics)
    return out


_POLICIES = PerProcessCache()


def _fit_task(shared: tuple, projects: list[str]) -> dict[str, CreditPolicy]:
    """Fit some projects' policies as an engine task (:mod:`fundmodel.engine`)."""
    a, seed, sampling, copula, copula_dof = shared
    return fit_credit_policies(a, seed, sampling, copula=copula, copula_dof=copula_dof, projects=projects)


def credit_policies(a, seed: int, sampling: SamplingMethod | str = SamplingMethod.SOBOL, *,
                    copula: Copula | str = Copula.GAUSSIAN, copula_dof: float = 5.0,
                    engine=None) -> dict[str, CreditPolicy]:
    """:func:`fit_credit_policies`, kept per process for the same assumptions and run settings.

    A run fits its policies once (:func:`fundmodel.simulation.simulate`, before its chunks),
    spread over the engine's workers when one is given (each project's fit depends on its own
    draws and the market only, so the grouping changes no number); worker processes forked
    afterwards inherit them, others fit them once each (the same numbers: the fit is a pure
    function of the assumptions and these settings).
    """
    key = (content_fingerprint(a), int(seed), SamplingMethod(sampling).value, Copula(copula).value, float(copula_dof))

    def fit() -> dict[str, CreditPolicy]:
        shared = (a, int(seed), SamplingMethod(sampling), Copula(copula), float(copula_dof))
        with_debt = [pid for pid, p in a.projects.items() if p.debt.amount_musd]
        found = spread_by_project(_fit_task, shared, with_debt, engine)
        empty = fit_credit_policies(a, seed, sampling, projects=[p for p in a.projects if p not in found])
        return {pid: found.get(pid, empty.get(pid)) for pid in a.projects}

    return _POLICIES.get_or_make(key, fit)
