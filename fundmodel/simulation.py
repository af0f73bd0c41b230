"""Monte Carlo driver: scenario chunks -> per-project cash flows -> per-scenario results.

Scenarios are processed in chunks (a memory knob only: every draw is a pure
function of seed, stream and scenario index, see :mod:`fundmodel.sampling`).
For each chunk the market is simulated once, then each project's schedule,
political events and cash flows. Chunks are independent tasks of an engine
(:mod:`fundmodel.engine`: this process, local worker processes, or a Dask cluster) with
identical results wherever they run. Per-scenario scalars
(NPVs, IRR, first production, default) come back to the caller; year-by-scenario
arrays go to memory-mapped files (:class:`ScenarioWriter`) when a directory is given.

Risk attribution re-runs the first ``attribution_scenarios`` scenarios with one risk
class switched off on the *same* random numbers (common random numbers), so the
differences of mean NPVs are not blurred by sampling noise:

- ``price``: every price and EUR/USD at its expected path ``E[S_t]``, no export restriction;
- ``political``: no political events;
- ``schedule``: durations at their mode, no overrun, budgeted opex and recovery,
  development certain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .assumptions.model import Assumptions
from .assumptions.schema import Copula, SamplingMethod
from .credit import credit_policies
from .operating_options import OPTION_SCALARS, ProjectOptionPolicy, option_policies, option_values
from .market import MarketPaths, price_ratio_law, simulate_market
from .political import (
    EVENT_BITS,
    PoliticalTimeline,
    draw_political_events,
    first_occurrence_counts,
    geopolitical_factor,
    no_political_events,
)
from ._years import first_year
from .sampling import BLOCK, ScenarioStreams
from .scenarios import ScenarioSet, ScenarioWriter, shrink_scenario_files
from .schedule import SCHEDULE_DRAWS, ScheduleDraws, draw_schedule
from .rates import market_rates, market_values
from .valuation import CreditPolicy, ProjectCashFlows, ProjectValues, project_cash_flows, value_cash_flows


@dataclass(frozen=True)
class RunSettings:
    """Resolved Monte Carlo settings of one run (fund.yaml defaults + command-line overrides)."""

    scenarios: int
    seed: int
    sampling: SamplingMethod
    chunk_size: int  #: scenarios per chunk, rounded up to a multiple of sampling.BLOCK
    copula: Copula
    copula_dof: float
    risk_attribution: bool
    attribution_scenarios: int = 4096  #: attribution uses the first N scenarios (whatever the chunk size)
    workers: int = 1  #: worker processes; results do not depend on it
    engine: str = "serial"  #: ``serial`` (this machine) or ``dask``, see :mod:`fundmodel.engine`
    scheduler: str | None = None  #: Dask scheduler address (``dask`` only; none = local cluster)
    #: ``--precision``: run batches until every project's ``npv_mean_se_meur`` is at most this (EUR m);
    #: ``scenarios`` is then the maximum (:mod:`fundmodel.precision`)
    precision_meur: float | None = None
    precision_rel: float | None = None  #: ``--precision-rel``: the same for SE / |mean|
    #: the requested maximum, in the settings a ``--precision`` run returns (``scenarios``: those used)
    scenarios_max: int | None = None

    @classmethod
    def from_assumptions(cls, a: Assumptions, **overrides) -> "RunSettings":
        """Defaults from ``fund.yaml``; keyword overrides that are not None win."""
        s = a.fund.simulation
        values = dict(
            scenarios=s.scenarios, seed=s.seed, sampling=s.sampling, chunk_size=s.chunk_size,
            copula=s.copula, copula_dof=s.copula_dof, risk_attribution=s.risk_attribution,
            attribution_scenarios=s.attribution_scenarios, workers=s.workers,
        )
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["sampling"] = SamplingMethod(values["sampling"])
        values["copula"] = Copula(values["copula"])
        return cls(**values)


@dataclass(frozen=True)
class RiskSwitches:
    """Which risk classes are simulated (all by default)."""

    price: bool = True
    political: bool = True
    schedule: bool = True


#: Variants of the risk attribution: the risk class switched off in each
#: (computed by :func:`attribution_chunk`, equal to :func:`simulate_chunk` with these switches).
ATTRIBUTION = {
    "price": RiskSwitches(price=False),
    "political": RiskSwitches(political=False),
    "schedule": RiskSwitches(schedule=False),
}


@dataclass(frozen=True)
class ProjectChunk:
    """One project's outcomes for a chunk of scenarios."""

    schedule: ScheduleDraws
    politics: PoliticalTimeline
    flows: ProjectCashFlows
    values: ProjectValues
    #: each claim at its market rate per scenario, EUR m (:func:`fundmodel.rates.market_values`)
    market_npv: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class Chunk:
    """Outcomes for scenarios ``[start, stop)``; ``credit``: the run's credit policies used."""

    start: int
    stop: int
    geo_factor: np.ndarray
    market: MarketPaths
    projects: dict[str, ProjectChunk]
    credit: dict[str, CreditPolicy] = field(default_factory=dict)


def simulate_chunk(
    a: Assumptions,
    streams: ScenarioStreams,
    start: int,
    stop: int,
    *,
    copula: Copula = Copula.GAUSSIAN,
    copula_dof: float = 5.0,
    switches: RiskSwitches = RiskSwitches(),
    with_irr: bool = True,
    credit: dict[str, CreditPolicy] | None = None,
) -> Chunk:
    """Simulate every project for scenarios ``[start, stop)``.

    Parameters
    ----------
    a : Assumptions
        Validated assumptions.
    streams : ScenarioStreams
        Random streams of the run.
    start, stop : int
        Scenario rows.
    copula, copula_dof
        Dependence of the market shocks.
    switches : RiskSwitches
        Risk classes to simulate.
    with_irr : bool
        Compute equity IRRs (not needed by the attribution re-runs).
    credit : dict, optional
        Credit policies per project (:func:`fundmodel.credit.fit_credit_policies`); default
        those of ``a`` and the streams' seed and sampling (:func:`fundmodel.credit.credit_policies`).

    Returns
    -------
    Chunk
    """
    n_years = a.fund.horizon_years
    if credit is None:
        credit = credit_policies(a, streams.seed, streams.method, copula=copula, copula_dof=copula_dof)
    geo_params = a.countries.geopolitical_factor
    geo = geopolitical_factor(streams, geo_params, start, stop, n_years)
    market = simulate_market(
        a.markets, streams, start, stop, n_years, a.fund.inflation, geo,
        copula=copula, copula_dof=copula_dof, risk_on=switches.price,
        parameter_uncertainty=a.fund.simulation.parameter_uncertainty,
    )
    n = stop - start
    projects: dict[str, ProjectChunk] = {}
    for pid, project in a.projects.items():  # loop over projects; vectorised over scenarios
        country = a.countries.countries[project.country]
        # Latin hypercube under Sobol' runs: one Sobol' sequence per run (the market shocks)
        uniforms = streams.uniforms(f"schedule/{pid}", start, stop, len(SCHEDULE_DRAWS), sobol=False)
        schedule = draw_schedule(project, country.permitting_years, uniforms, risk_on=switches.schedule)
        if switches.political:
            ratio = market.real_price_ratio[market.index(project.materials[0])]
            politics = draw_political_events(
                streams, pid, country, geo, geo_params.hazard_loading, ratio, start, stop,
                price_law=price_ratio_law(a.markets, project.materials[0], geo_params.persistence))
        else:
            politics = no_political_events(country, n, n_years)
        flows = project_cash_flows(project, a.fund.inflation, market, schedule, politics, credit.get(pid))
        values = value_cash_flows(flows, market.fx_usd_per_eur, a.fund.discount_rate_nominal,
                                  with_irr=with_irr)
        market_npv = market_values(flows, market.fx_usd_per_eur, market_rates(a, pid))
        projects[pid] = ProjectChunk(schedule, politics, flows, values, market_npv)
    return Chunk(start, stop, geo, market, projects, credit)


def attribution_chunk(a: Assumptions, streams: ScenarioStreams, base: Chunk) -> dict[str, dict[str, ProjectValues]]:
    """Values of every project with each risk class switched off, on the base chunk's draws.

    Each variant reuses what the switched-off risk does not change (common random
    numbers, and no work done twice): the schedule variant keeps the base market
    and political events; the political variant keeps market and schedule; the price
    variant keeps the schedule and re-draws political events on the same uniforms,
    since price-sensitive hazards follow the (now deterministic) prices.

    Returns
    -------
    dict
        ``{risk: {project_id: ProjectValues}}`` for each risk in :data:`ATTRIBUTION` (no IRRs).
    """
    n_years = a.fund.horizon_years
    start, stop = base.start, base.stop
    n = stop - start
    market_off = simulate_market(a.markets, streams, start, stop, n_years, a.fund.inflation,
                                 base.geo_factor, risk_on=False)
    loading = a.countries.geopolitical_factor.hazard_loading
    out: dict[str, dict[str, ProjectValues]] = {risk: {} for risk in ATTRIBUTION}
    rate = a.fund.discount_rate_nominal
    for pid, project in a.projects.items():  # loop over projects; vectorised over scenarios
        country = a.countries.countries[project.country]
        pc = base.projects[pid]
        ev = country.events
        price_sensitive = any(e.price_elasticity for e in (ev.expropriation, ev.forced_participation, ev.fiscal_grab))
        politics_p = pc.politics
        if price_sensitive:
            ratio = market_off.real_price_ratio[market_off.index(project.materials[0])]
            politics_p = draw_political_events(
                streams, pid, country, base.geo_factor, loading, ratio, start, stop,
                price_law=price_ratio_law(a.markets, project.materials[0], a.countries.geopolitical_factor.persistence))
        schedule_off = draw_schedule(project, country.permitting_years,
                                     np.full((n, len(SCHEDULE_DRAWS)), 0.5), risk_on=False)
        cases = {
            "price": (market_off, pc.schedule, politics_p),
            "political": (base.market, pc.schedule, no_political_events(country, n, n_years)),
            "schedule": (base.market, schedule_off, pc.politics),
        }
        for risk, (market, schedule, politics) in cases.items():
            flows = project_cash_flows(project, a.fund.inflation, market, schedule, politics, base.credit.get(pid))
            out[risk][pid] = value_cash_flows(flows, market.fx_usd_per_eur, rate, with_irr=False)
    return out


#: Per-scenario scalars kept for every project, with their dtypes.
SCALARS = {
    "project_npv_meur": float,
    "equity_npv_meur": float,
    "project_npv_market_meur": float,  # at the asset rate (fundmodel.rates)
    "equity_npv_market_meur": float,  # at the cost of equity, net of the acquisition price
    "lender_inflows_market_meur": float,  # lenders' service and recoveries at the loan's market rate
    "lender_draws_market_meur": float,  # amounts lent within the horizon at the loan's market rate
    "lender_npv_meur": float,
    "equity_irr": float,
    "equity_total_loss": bool,  # equity never receives a positive flow
    "equity_no_investment": bool,  # first equity flow positive: IRR not meaningful
    "first_production_year": np.int64,  # year index, n_years = never
    "default_year": np.int64,  # year index, n_years = no default
    "min_dscr": float,
    "debt_close_year": np.int64,  # year index of financial close (first draw), n_years = never drawn
    "default_claim_musd": float,  # lenders' claim at default (balance + the year's interest), 0 = none
    "default_recovery_musd": float,  # what they recover, 0 = no default
    "default_value_musd": float,  # going-concern value of the project at default (compensation at expropriation)
    # issue 14: the project with its investment and operating options (fundmodel.operating_options);
    # NaN / False when fund.yaml simulation.operating_options is false
    **OPTION_SCALARS,
}


@dataclass
class SimulationResult:
    """Everything a simulation produced that later stages and reports need.

    Attributes
    ----------
    settings : RunSettings
    n_years : int
    valuation_year : int
        Calendar year of year index 0.
    scalars : dict
        ``scalars[project][name]``: ndarray of shape (n_scenarios,) for each name in :data:`SCALARS`.
    tonnes_mean_t : dict
        ``tonnes_mean_t[project][material]``: dict with ``produced`` and ``eu`` arrays of shape
        (n_years,), mean over scenarios.
    event_year_share : dict
        ``event_year_share[project][event]``: share of scenario-years with the event.
    export_restriction_share : float
        Share of scenario-years with a Chinese export restriction in force.
    attribution_meur : dict
        ``attribution_meur[project][risk]``: dict with the mean project and equity NPV when that
        risk class is switched off (``base`` holds the all-risks means).
    event_first_year_counts : dict
        ``event_first_year_counts[project][event]``: int64 array of shape (n_years + 1,), the
        number of scenarios whose first occurrence of the event falls in each year index
        (index ``n_years``: never), see :func:`~fundmodel.political.first_occurrence_counts`.
    """

    settings: RunSettings
    n_years: int
    valuation_year: int
    scalars: dict[str, dict[str, np.ndarray]]
    tonnes_mean_t: dict[str, dict[str, dict[str, np.ndarray]]]
    event_year_share: dict[str, dict[str, float]]
    export_restriction_share: float
    attribution_meur: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    event_first_year_counts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: outcome of a ``--precision`` run (:func:`fundmodel.precision.precision_status`), else None
    precision: dict | None = None


ProgressCallback = Callable[[int], None]


def _attribution(base: dict[str, np.ndarray], variants: dict, n_attr: int) -> dict:
    """Mean NPVs with each risk off, all-risk means on the same scenarios, and standard errors.

    The standard error is that of the mean *difference* (variant minus base) over the
    common scenarios, which is small because both use the same random numbers.
    """
    out: dict = {"scenarios": n_attr,
                 "base": {m: float(base[m][:n_attr].mean()) for m in ("project_npv_meur", "equity_npv_meur")}}
    for risk, d in variants.items():
        out[risk] = {}
        for m, arr in d.items():
            diff = arr - base[m][:n_attr]
            out[risk][m] = float(arr.mean())
            out[risk][m.replace("_meur", "_diff_se_meur")] = float(diff.std(ddof=1) / np.sqrt(n_attr)) if n_attr > 1 else 0.0
    return out


def _block_sums(rows: np.ndarray) -> list[np.ndarray]:
    """Column sums of ``rows`` per random block of scenarios (added in order by the caller)."""
    return [rows[lo: lo + BLOCK].sum(axis=0) for lo in range(0, rows.shape[0], BLOCK)]


def run_chunk(a: Assumptions, settings: RunSettings, start: int, stop: int,
              scenario_dir: str | Path | None = None, streams: ScenarioStreams | None = None, *,
              return_arrays: bool = False, credit: dict[str, CreditPolicy] | None = None,
              options: dict[str, ProjectOptionPolicy] | None = None) -> dict:
    """Simulate scenarios ``[start, stop)`` and reduce them to what :func:`simulate` keeps.

    Runs the same way in the calling process, a worker process or a Dask worker:
    year-by-scenario arrays go straight into the memory-mapped files under
    ``scenario_dir`` (when the worker sees that folder), or come back under ``arrays``
    with ``return_arrays``; the small per-scenario results always come back.

    Returns
    -------
    dict
        ``scalars`` (per project, per :data:`SCALARS` name, arrays of the chunk's rows),
        ``variants`` (attribution NPVs), ``tonnes`` (per-block sums), ``events``
        (counts per project and event), ``first_events`` (per project and event, scenarios by
        first-occurrence year), ``restricted_years`` and, with ``return_arrays``,
        ``arrays`` (see :meth:`ScenarioWriter.write`).
    """
    if streams is None:
        streams = process_streams(settings.seed, settings.sampling)
    chunk = simulate_chunk(a, streams, start, stop, copula=settings.copula, copula_dof=settings.copula_dof,
                           credit=credit)
    out: dict = {"start": start, "stop": stop, "scalars": {}, "variants": {}, "tonnes": {}, "events": {},
                 "first_events": {}, "restricted_years": int(chunk.market.export_restriction.sum())}
    for pid, pc in chunk.projects.items():
        v, f = pc.values, pc.flows
        eq = v.equity_cf_meur.T  # year-major view
        first = np.minimum(first_year(eq != 0), eq.shape[0] - 1)
        first_flow = np.where(f.acquisition_musd > 0, -f.acquisition_musd, eq[first, np.arange(eq.shape[1])])
        out["scalars"][pid] = {
            "project_npv_meur": v.project_npv_meur,
            "equity_npv_meur": v.equity_npv_meur,
            **pc.market_npv,
            "lender_npv_meur": v.lender_npv_meur,
            "equity_irr": v.equity_irr,
            "equity_total_loss": (eq <= 0).all(axis=0) & ((eq < 0).any(axis=0) | (f.acquisition_musd > 0)),
            "equity_no_investment": first_flow > 0,
            "first_production_year": f.first_production_year,
            "default_year": f.default_year,
            "min_dscr": f.min_dscr,
            "debt_close_year": f.debt_close_year,
            "default_claim_musd": f.default_claim_musd,
            "default_recovery_musd": f.default_recovery_musd,
            "default_value_musd": f.default_value_musd,
        }
        if options is not None:
            out["scalars"][pid].update(option_values(a, pid, options[pid], chunk.market, pc.schedule, pc.politics, f,
                                                     pc.market_npv["project_npv_market_meur"]))
        else:
            n_rows = stop - start
            out["scalars"][pid].update({name: np.full(n_rows, np.nan) if dtype is float else np.zeros(n_rows, bool)
                                        for name, dtype in OPTION_SCALARS.items()})
        out["tonnes"][pid] = {
            material: {"produced": _block_sums(f.tonnes_produced_t[k]), "eu": _block_sums(f.tonnes_eu_t[k])}
            for k, material in enumerate(a.projects[pid].products)
        }
        out["events"][pid] = {e: int(np.count_nonzero(pc.politics.events & bit)) for e, bit in EVENT_BITS.items()}
        out["first_events"][pid] = first_occurrence_counts(pc.politics.events)
    check_finite(a, chunk, start)  # before anything is written: an overflow names its input
    if scenario_dir is not None:
        ScenarioWriter.open(scenario_dir).write(start, chunk_arrays(chunk))
    if return_arrays:
        out["arrays"] = chunk_arrays(chunk)
    if settings.risk_attribution and start < settings.attribution_scenarios:
        keep = min(stop, settings.attribution_scenarios) - start  # exactly the first N: not chunk-dependent
        for risk, values in attribution_chunk(a, streams, chunk).items():
            out["variants"][risk] = {pid: (v.project_npv_meur[:keep], v.equity_npv_meur[:keep])
                                     for pid, v in values.items()}
    return out


#: Project-scenarios per chunk at most: a chunk holds every cash-flow array of its projects
#: (about 10 KB per project-scenario over 40 years), so this bounds a worker's memory
#: near 0.5 GB whatever the number of projects.
MAX_PROJECT_SCENARIOS_PER_CHUNK = 12 * 4096


def chunk_rows(chunk_size: int, n_projects: int) -> int:
    """Scenarios per chunk: ``chunk_size`` in whole random blocks, fewer when there are many projects.

    At most :data:`MAX_PROJECT_SCENARIOS_PER_CHUNK` project-scenarios, at least one block
    of :data:`~fundmodel.sampling.BLOCK` scenarios. Results do not depend on it (every draw
    is keyed by scenario index); only memory does.

    Examples
    --------
    >>> chunk_rows(4096, 12), chunk_rows(2000, 12), chunk_rows(8192, 12), chunk_rows(4096, 200)
    (4096, 2048, 4096, 1024)
    """
    rows = -(-int(chunk_size) // BLOCK) * BLOCK
    cap = max(MAX_PROJECT_SCENARIOS_PER_CHUNK // max(int(n_projects), 1) // BLOCK, 1) * BLOCK
    return min(rows, max(cap, BLOCK))


_STREAMS: dict[tuple[int, str], ScenarioStreams] = {}


def process_streams(seed: int, sampling: SamplingMethod) -> ScenarioStreams:
    """This process's random streams of a run, kept from one chunk to the next.

    A Sobol' sequence reaches row ``start`` by fast-forwarding over every earlier row; a
    fresh :class:`ScenarioStreams` per chunk would do that from row 0 each time, which is
    quadratic in the run size (minutes at 10^6 scenarios). Kept streams continue where the
    previous chunk of this process stopped. The draws are the same either way.
    """
    key = (int(seed), SamplingMethod(sampling).value)
    streams = _STREAMS.get(key)
    if streams is None:
        _STREAMS.clear()  # one run's streams per process
        streams = _STREAMS[key] = ScenarioStreams(seed, sampling)
    return streams


def _chunk_task(shared: tuple, bounds: tuple[int, int]) -> dict:
    """One chunk as an engine task (:mod:`fundmodel.engine`): ``shared = (a, settings, dir, return_arrays, credit,
    options)``."""
    a, settings, scenario_dir, return_arrays, credit, options = shared
    return run_chunk(a, settings, bounds[0], bounds[1], scenario_dir, return_arrays=return_arrays, credit=credit,
                     options=options)


def simulate(
    a: Assumptions,
    settings: RunSettings,
    *,
    scenario_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
    engine=None,
) -> SimulationResult:
    """Run the Monte Carlo simulation of every project.

    Parameters
    ----------
    a : Assumptions
        Validated assumptions.
    settings : RunSettings
        Scenario count, seed, sampling, chunk size, copula, attribution, workers.
    scenario_dir : str or Path, optional
        Directory for the year-by-scenario arrays (see :class:`ScenarioWriter`); none written
        when omitted.
    progress : callable, optional
        Called with the number of scenarios finished after each chunk (for a progress bar).
    engine : SerialEngine or DaskEngine, optional
        Where the chunks run (:mod:`fundmodel.engine`); default an engine made from
        ``settings.engine``, ``settings.workers`` and ``settings.scheduler`` for this call.

    Returns
    -------
    SimulationResult

    Notes
    -----
    Chunks hold whole random blocks and every sum is accumulated block by block in scenario
    order, so the results are bit-for-bit the same whatever the chunk size, the number of
    worker processes, the engine and the machines. Every per-scenario result is kept, so
    percentiles and CVaR are computed exactly on all scenarios (no streaming estimate):
    about 100 bytes per project and scenario (e.g. 1.2 GB for 12 projects x 10^6 scenarios).

    With a precision target (``settings.precision_meur`` / ``precision_rel``) the scenarios run
    in batches of :data:`~fundmodel.precision.PRECISION_BATCH` until every project's
    ``npv_mean_se_meur`` meets it or ``settings.scenarios`` (the maximum) are done; the
    result is that of a plain run of the scenarios used (its ``settings.scenarios``, with
    ``scenarios_max`` the maximum) and ``precision`` records the outcome.

    Examples
    --------
    >>> from fundmodel.assumptions import load_assumptions      # doctest: +SKIP
    >>> a = load_assumptions("assumptions")                    # doctest: +SKIP
    >>> r = simulate(a, RunSettings.from_assumptions(a, scenarios=2000))  # doctest: +SKIP
    >>> r.scalars["mn_ree"]["project_npv_meur"].shape          # doctest: +SKIP
    (2000,)
    """
    from dataclasses import replace

    from .precision import PRECISION_BATCH, precision_status, precision_target

    n_max = settings.scenarios
    n_years = a.fund.horizon_years
    scalars = {pid: {name: np.empty(n_max, dtype=dtype) for name, dtype in SCALARS.items()}
               for pid in a.projects}
    tonnes_sum = {pid: {m: {"produced": np.zeros(n_years), "eu": np.zeros(n_years)}
                        for m in p.products} for pid, p in a.projects.items()}
    event_counts = {pid: {e: 0 for e in EVENT_BITS} for pid in a.projects}
    first_counts = {pid: {e: np.zeros(n_years + 1, dtype=np.int64) for e in EVENT_BITS} for pid in a.projects}
    restriction_years = 0
    step = chunk_rows(settings.chunk_size, len(a.projects))
    target = precision_target(settings)
    # --precision: batches of PRECISION_BATCH scenarios, the stop rule checked after each
    size = n_max if target is None else PRECISION_BATCH
    batches = [(lo, min(lo + size, n_max)) for lo in range(0, n_max, size)]
    # attribution on the first attribution_scenarios scenarios (as the sensitivity), whatever the chunks
    n_attr = min(settings.attribution_scenarios, n_max)
    variant_npv = {pid: {risk: {"project_npv_meur": np.empty(n_attr), "equity_npv_meur": np.empty(n_attr)}
                         for risk in ATTRIBUTION} for pid in a.projects}
    if scenario_dir is not None:
        ScenarioWriter.create(scenario_dir, a, n_max)

    from .engine import engine_for

    n = 0
    status = None
    with engine_for(settings, engine) as eng:
        # the credit policies, fitted once on the run's pilot sample (over the workers), go to every chunk
        credit = credit_policies(a, settings.seed, settings.sampling, copula=settings.copula,
                                 copula_dof=settings.copula_dof, engine=eng)
        # workers write straight into the memory-mapped files when they see the folder (this
        # machine, a local cluster, a shared file system); otherwise the rows travel back here
        direct = scenario_dir is None or eng.sees_path(scenario_dir)
        writer = None if direct else ScenarioWriter.open(scenario_dir)
        # the option policies likewise (fundmodel.operating_options), when fund.yaml switches them on
        options = (option_policies(a, settings.seed, settings.sampling, copula=settings.copula,
                                   copula_dof=settings.copula_dof, engine=eng)
                   if a.fund.simulation.operating_options else None)
        shared = (a, settings, scenario_dir if direct else None, not direct, credit, options)
        for first, last in batches:
            bounds = [(lo, min(lo + step, last)) for lo in range(first, last, step)]
            for res in eng.map(_chunk_task, shared, bounds):  # in scenario order, wherever they ran
                lo, hi = res["start"], res["stop"]
                if writer is not None:
                    writer.write(lo, res["arrays"])
                restriction_years += res["restricted_years"]
                for pid, values in res["scalars"].items():
                    for name, arr in values.items():
                        scalars[pid][name][lo:hi] = arr
                    for material, sums in res["tonnes"][pid].items():
                        for kind, blocks in sums.items():
                            for block_sum in blocks:
                                tonnes_sum[pid][material][kind] += block_sum
                    for event, count in res["events"][pid].items():
                        event_counts[pid][event] += count
                    for event, counts in res["first_events"][pid].items():
                        first_counts[pid][event] += counts
                for risk, per_project in res["variants"].items():
                    for pid, (project_npv, equity_npv) in per_project.items():
                        variant_npv[pid][risk]["project_npv_meur"][lo:lo + project_npv.size] = project_npv
                        variant_npv[pid][risk]["equity_npv_meur"][lo:lo + equity_npv.size] = equity_npv
                if progress is not None:
                    progress(hi - lo)
            n = last
            if target is not None:
                status = precision_status({pid: v["project_npv_meur"][:n] for pid, v in scalars.items()},
                                          settings.sampling, target, n_max)
                if status["precision_reached"]:
                    break
        del writer

    if n < n_max:  # the precision target was met early: keep the scenarios run
        scalars = {pid: {name: arr[:n].copy() for name, arr in values.items()} for pid, values in scalars.items()}
        n_attr = min(n_attr, n)
        variant_npv = {pid: {risk: {m: arr[:n_attr] for m, arr in d.items()} for risk, d in variants.items()}
                       for pid, variants in variant_npv.items()}
        if scenario_dir is not None:
            shrink_scenario_files(scenario_dir, n_max, n)
    if target is not None:
        settings = replace(settings, scenarios=n, scenarios_max=n_max)
    scenario_years = n * n_years
    return SimulationResult(
        settings=settings,
        n_years=n_years,
        valuation_year=a.fund.valuation_date.year,
        scalars=scalars,
        tonnes_mean_t={pid: {m: {k: arr / n for k, arr in d.items()} for m, d in mats.items()}
                       for pid, mats in tonnes_sum.items()},
        event_year_share={pid: {e: c / scenario_years for e, c in d.items()}
                          for pid, d in event_counts.items()},
        export_restriction_share=restriction_years / scenario_years,
        attribution_meur=(
            {pid: _attribution(scalars[pid], variants, n_attr) for pid, variants in variant_npv.items()}
            if settings.risk_attribution else {}
        ),
        event_first_year_counts=first_counts,
        precision=status,
    )


#: Largest magnitude a stored figure may reach: the scenario files are float32.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_finite(a: Assumptions, chunk: Chunk, start: int = 0) -> None:
    """Refuse a chunk whose prices, exchange rates, cash flows or values overflowed.

    Every input is bounded by the schema, but products of extreme inputs can still exceed
    what a float (or the float32 scenario files) holds; such a run must stop with the
    project and the input named, never write ``inf`` or a silently wrong number.

    Raises
    ------
    NonFiniteResult
        Names the material (``markets.yaml``), the exchange rate or the project file, the
        first scenario and year affected and the value.
    """
    from .io import NonFiniteResult

    def first_bad(x: np.ndarray, positive: bool = False) -> tuple | None:
        bad = ~np.isfinite(x) | (np.abs(x) > _FLOAT32_MAX)
        if positive:
            bad |= x <= 0
        if not bad.any():
            return None
        return np.unravel_index(int(np.argmax(bad)), x.shape)

    m = chunk.market
    for k, material in enumerate(m.materials):
        at = first_bad(m.price_usd_per_t[k], positive=True)
        if at is not None:
            raise NonFiniteResult(
                f"markets.yaml: materials.{material}: the simulated price reached {m.price_usd_per_t[k][at]:.3g} "
                f"USD/t (scenario {start + at[0]}, year {at[1]}); check its spot, long-run level, volatility and "
                "export-restriction uplift")
    at = first_bad(m.fx_usd_per_eur, positive=True)
    if at is not None:
        raise NonFiniteResult(f"markets.yaml: fx: the simulated EUR/USD reached {m.fx_usd_per_eur[at]:.3g} "
                              f"(scenario {start + at[0]}, year {at[1]}); check the exchange-rate parameters")
    for pid, pc in chunk.projects.items():
        for name, values in (("equity cash flow (EUR m)", pc.values.equity_cf_meur),
                             ("lender cash flow (EUR m)", pc.values.lender_cf_meur),
                             ("debt outstanding (USD m)", pc.flows.debt_outstanding_musd),
                             ("tonnes delivered", pc.flows.tonnes_eu_t),
                             ("project NPV (EUR m)", pc.values.project_npv_meur),
                             ("equity NPV (EUR m)", pc.values.equity_npv_meur)):
            at = first_bad(values)
            if at is not None:
                where = f"scenario {start + at[-2]}, year {at[-1]}" if values.ndim >= 2 else f"scenario {start + at[0]}"
                raise NonFiniteResult(
                    f"projects/{pid}.yaml: the {name} reached {values[at]:.3g} ({where}); the project's figures "
                    "(ore, grade, recovery, capex, opex) times the prices exceed what the model can represent")


def chunk_arrays(chunk: Chunk) -> dict[str, dict[str, np.ndarray]]:
    """The year-by-scenario arrays of a chunk that :class:`ScenarioWriter` stores, as stored.

    Returns
    -------
    dict
        ``{"market": {...}, "<project>": {...}}``, file stem to array in the file's dtype.
    """
    out = {"market": {
        "price_usd_per_t": chunk.market.price_usd_per_t.astype(np.float32),
        "fx_usd_per_eur": chunk.market.fx_usd_per_eur.astype(np.float32),
        "export_restriction": chunk.market.export_restriction.astype(bool),
    }}
    for pid, pc in chunk.projects.items():
        out[pid] = {
            "equity_cf_meur": pc.values.equity_cf_meur.astype(np.float32),
            "lender_cf_meur": pc.values.lender_cf_meur.astype(np.float32),
            "debt_outstanding_musd": pc.flows.debt_outstanding_musd.astype(np.float32),
            "lender_loss_musd": pc.flows.lender_loss_musd.astype(np.float32),
            "insurable_loss_musd": pc.flows.insurable_loss_musd.astype(np.float32),
            "tonnes_eu_t": pc.flows.tonnes_eu_t.astype(np.float32),
            "political_events": pc.politics.events.astype(np.uint8),
        }
    return out


def load_scenarios(directory: str | Path) -> ScenarioSet:
    """Read the arrays written by :class:`ScenarioWriter` (memory-mapped, read-only).

    Returns
    -------
    ScenarioSet
        The market and every project's yearly arrays and per-scenario results
        (:class:`fundmodel.scenarios.ScenarioSet`), checked to fit together.
    """
    return ScenarioSet.load(directory)
