"""Monte Carlo driver: scenario chunks -> per-project cash flows -> per-scenario results.

Scenarios are processed in chunks (a memory knob only: every draw is a pure
function of seed, stream and scenario index, see :mod:`fundmodel.sampling`).
For each chunk the market is simulated once, then each project's schedule,
political events and cash flows. Per-scenario scalars (NPVs, IRR, first
production, default) are kept in memory; year-by-scenario arrays go to
:class:`ScenarioWriter` when one is given.

Risk attribution re-runs every chunk with one risk class switched off on the
*same* random numbers (common random numbers), so the differences of mean NPVs
are not blurred by sampling noise:

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

from .assumptions import Assumptions
from .assumptions.schema import Copula, SamplingMethod
from .market import MarketPaths, simulate_market
from .political import (
    EVENT_BITS,
    PoliticalTimeline,
    draw_political_events,
    geopolitical_factor,
    no_political_events,
)
from .sampling import BLOCK, ScenarioStreams
from .schedule import SCHEDULE_DRAWS, ScheduleDraws, draw_schedule
from .valuation import ProjectCashFlows, ProjectValues, project_cash_flows, value_cash_flows


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

    @classmethod
    def from_assumptions(cls, a: Assumptions, **overrides) -> "RunSettings":
        """Defaults from ``fund.yaml``; keyword overrides that are not None win."""
        s = a.fund.simulation
        values = dict(
            scenarios=s.scenarios, seed=s.seed, sampling=s.sampling, chunk_size=s.chunk_size,
            copula=s.copula, copula_dof=s.copula_dof, risk_attribution=s.risk_attribution,
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


#: Variants of the risk attribution: the risk class switched off in each.
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


@dataclass(frozen=True)
class Chunk:
    """Outcomes for scenarios ``[start, stop)``."""

    start: int
    stop: int
    market: MarketPaths
    projects: dict[str, ProjectChunk]


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

    Returns
    -------
    Chunk
    """
    n_years = a.fund.horizon_years
    geo_params = a.countries.geopolitical_factor
    geo = geopolitical_factor(streams, geo_params, start, stop, n_years)
    market = simulate_market(
        a.markets, streams, start, stop, n_years, a.fund.inflation, geo,
        copula=copula, copula_dof=copula_dof, risk_on=switches.price,
    )
    n = stop - start
    projects: dict[str, ProjectChunk] = {}
    for pid, project in a.projects.items():  # loop over projects; vectorised over scenarios
        country = a.countries.countries[project.country]
        uniforms = streams.uniforms(f"schedule/{pid}", start, stop, len(SCHEDULE_DRAWS))
        schedule = draw_schedule(project, country.permitting_years, uniforms, risk_on=switches.schedule)
        if switches.political:
            ratio = market.real_price_ratio[market.index(project.materials[0])]
            politics = draw_political_events(
                streams, pid, country, geo, geo_params.hazard_loading, ratio, start, stop)
        else:
            politics = no_political_events(country, n, n_years)
        flows = project_cash_flows(project, a.fund.inflation, market, schedule, politics)
        values = value_cash_flows(flows, market.fx_usd_per_eur, a.fund.discount_rate_nominal,
                                  with_irr=with_irr)
        projects[pid] = ProjectChunk(schedule, politics, flows, values)
    return Chunk(start, stop, market, projects)


#: Per-scenario scalars kept for every project, with their dtypes.
SCALARS = {
    "project_npv_meur": float,
    "equity_npv_meur": float,
    "lender_npv_meur": float,
    "equity_irr": float,
    "equity_total_loss": bool,  # equity never receives a positive flow
    "equity_no_investment": bool,  # first equity flow positive: IRR not meaningful
    "first_production_year": np.int64,  # year index, n_years = never
    "default_year": np.int64,  # year index, n_years = no default
    "min_dscr": float,
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
    """

    settings: RunSettings
    n_years: int
    valuation_year: int
    scalars: dict[str, dict[str, np.ndarray]]
    tonnes_mean_t: dict[str, dict[str, dict[str, np.ndarray]]]
    event_year_share: dict[str, dict[str, float]]
    export_restriction_share: float
    attribution_meur: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)


ProgressCallback = Callable[[int], None]


def simulate(
    a: Assumptions,
    settings: RunSettings,
    *,
    writer: "ScenarioWriter | None" = None,
    progress: ProgressCallback | None = None,
) -> SimulationResult:
    """Run the Monte Carlo simulation of every project.

    Parameters
    ----------
    a : Assumptions
        Validated assumptions.
    settings : RunSettings
        Scenario count, seed, sampling, chunk size, copula, attribution.
    writer : ScenarioWriter, optional
        Receives each chunk's year-by-scenario arrays.
    progress : callable, optional
        Called with the number of scenarios finished after each chunk (for a progress bar).

    Returns
    -------
    SimulationResult

    Examples
    --------
    >>> from fundmodel.assumptions import load_assumptions      # doctest: +SKIP
    >>> a = load_assumptions("assumptions")                    # doctest: +SKIP
    >>> r = simulate(a, RunSettings.from_assumptions(a, scenarios=2000))  # doctest: +SKIP
    >>> r.scalars["mn_ree"]["project_npv_meur"].shape          # doctest: +SKIP
    (2000,)
    """
    n = settings.scenarios
    n_years = a.fund.horizon_years
    streams = ScenarioStreams(settings.seed, settings.sampling)
    # variants get their own stream objects so that the Sobol' engines advance identically
    variant_streams = {k: ScenarioStreams(settings.seed, settings.sampling) for k in ATTRIBUTION}
    scalars = {pid: {name: np.empty(n, dtype=dtype) for name, dtype in SCALARS.items()}
               for pid in a.projects}
    tonnes_sum = {pid: {m: {"produced": np.zeros(n_years), "eu": np.zeros(n_years)}
                        for m in p.products} for pid, p in a.projects.items()}
    event_counts = {pid: {e: 0 for e in EVENT_BITS} for pid in a.projects}
    restriction_years = 0
    variant_npv = {pid: {risk: {"project_npv_meur": np.empty(n), "equity_npv_meur": np.empty(n)}
                         for risk in ATTRIBUTION} for pid in a.projects}
    # Chunks hold whole random blocks and sums are accumulated block by block in scenario
    # order, so every figure is bit-for-bit the same whatever the chunk size.
    step = -(-settings.chunk_size // BLOCK) * BLOCK

    for start in range(0, n, step):  # loop over chunks of scenarios
        stop = min(start + step, n)
        chunk = simulate_chunk(a, streams, start, stop, copula=settings.copula,
                               copula_dof=settings.copula_dof)
        restriction_years += int(chunk.market.export_restriction.sum())
        for pid, pc in chunk.projects.items():
            out = scalars[pid]
            v, f = pc.values, pc.flows
            out["project_npv_meur"][start:stop] = v.project_npv_meur
            out["equity_npv_meur"][start:stop] = v.equity_npv_meur
            out["lender_npv_meur"][start:stop] = v.lender_npv_meur
            out["equity_irr"][start:stop] = v.equity_irr
            out["equity_total_loss"][start:stop] = (v.equity_cf_meur <= 0).all(axis=1) & (
                v.equity_cf_meur < 0).any(axis=1)
            first_flow = np.take_along_axis(
                v.equity_cf_meur, (v.equity_cf_meur != 0).argmax(axis=1)[:, None], axis=1)[:, 0]
            out["equity_no_investment"][start:stop] = first_flow > 0
            out["first_production_year"][start:stop] = f.first_production_year
            out["default_year"][start:stop] = f.default_year
            out["min_dscr"][start:stop] = f.min_dscr
            for k, material in enumerate(a.projects[pid].products):
                _add_block_sums(tonnes_sum[pid][material]["produced"], f.tonnes_produced_t[k])
                _add_block_sums(tonnes_sum[pid][material]["eu"], f.tonnes_eu_t[k])
            for event, bit in EVENT_BITS.items():
                event_counts[pid][event] += int(np.count_nonzero(pc.politics.events & bit))
        if writer is not None:
            writer.write(chunk)
        del chunk
        if settings.risk_attribution:
            for risk, switches in ATTRIBUTION.items():
                variant = simulate_chunk(a, variant_streams[risk], start, stop, copula=settings.copula,
                                         copula_dof=settings.copula_dof, switches=switches, with_irr=False)
                for pid, pc in variant.projects.items():
                    variant_npv[pid][risk]["project_npv_meur"][start:stop] = pc.values.project_npv_meur
                    variant_npv[pid][risk]["equity_npv_meur"][start:stop] = pc.values.equity_npv_meur
                del variant
        if progress is not None:
            progress(stop - start)

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
            {pid: {"base": {m: float(scalars[pid][m].mean()) for m in ("project_npv_meur", "equity_npv_meur")},
                   **{risk: {m: float(arr.mean()) for m, arr in d.items()} for risk, d in variants.items()}}
             for pid, variants in variant_npv.items()}
            if settings.risk_attribution else {}
        ),
    )


def _add_block_sums(total: np.ndarray, rows: np.ndarray) -> None:
    """Add the column sums of ``rows`` to ``total`` one random block at a time (chunk-invariant)."""
    for lo in range(0, rows.shape[0], BLOCK):
        total += rows[lo: lo + BLOCK].sum(axis=0)


class ScenarioWriter:
    """Writes year-by-scenario arrays into ``.npy`` files, chunk by chunk (memory-mapped).

    Layout under ``directory``::

        market/price_usd_per_t.npy        float32 (n_materials, n_scenarios, n_years)
        market/fx_usd_per_eur.npy         float32 (n_scenarios, n_years)
        market/export_restriction.npy     bool    (n_scenarios, n_years)
        <project>/equity_cf_meur.npy      float32 (n_scenarios, n_years)
        <project>/lender_cf_meur.npy      float32 (n_scenarios, n_years)
        <project>/debt_outstanding_musd.npy float32 (n_scenarios, n_years)
        <project>/tonnes_eu_t.npy         float32 (n_products, n_scenarios, n_years)
        <project>/political_events.npy    uint8   (n_scenarios, n_years), bits of EVENT_BITS

    Read them back with :func:`load_scenarios`.
    """

    def __init__(self, directory: str | Path, a: Assumptions, n_scenarios: int):
        from numpy.lib.format import open_memmap

        self.directory = Path(directory)
        h = a.fund.horizon_years
        n_mat = len(a.markets.materials)

        def mm(rel: str, dtype, shape):
            path = self.directory / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            return open_memmap(path, mode="w+", dtype=dtype, shape=shape)

        self.market = {
            "price_usd_per_t": mm("market/price_usd_per_t.npy", np.float32, (n_mat, n_scenarios, h)),
            "fx_usd_per_eur": mm("market/fx_usd_per_eur.npy", np.float32, (n_scenarios, h)),
            "export_restriction": mm("market/export_restriction.npy", bool, (n_scenarios, h)),
        }
        self.projects = {
            pid: {
                "equity_cf_meur": mm(f"{pid}/equity_cf_meur.npy", np.float32, (n_scenarios, h)),
                "lender_cf_meur": mm(f"{pid}/lender_cf_meur.npy", np.float32, (n_scenarios, h)),
                "debt_outstanding_musd": mm(f"{pid}/debt_outstanding_musd.npy", np.float32, (n_scenarios, h)),
                "tonnes_eu_t": mm(f"{pid}/tonnes_eu_t.npy", np.float32, (len(p.products), n_scenarios, h)),
                "political_events": mm(f"{pid}/political_events.npy", np.uint8, (n_scenarios, h)),
            }
            for pid, p in a.projects.items()
        }

    def write(self, chunk: Chunk) -> None:
        """Store one chunk's arrays at its scenario rows."""
        s = slice(chunk.start, chunk.stop)
        self.market["price_usd_per_t"][:, s] = chunk.market.price_usd_per_t
        self.market["fx_usd_per_eur"][s] = chunk.market.fx_usd_per_eur
        self.market["export_restriction"][s] = chunk.market.export_restriction
        for pid, pc in chunk.projects.items():
            out = self.projects[pid]
            out["equity_cf_meur"][s] = pc.values.equity_cf_meur
            out["lender_cf_meur"][s] = pc.values.lender_cf_meur
            out["debt_outstanding_musd"][s] = pc.flows.debt_outstanding_musd
            out["tonnes_eu_t"][:, s] = pc.flows.tonnes_eu_t
            out["political_events"][s] = pc.politics.events

    def close(self) -> None:
        """Flush every memory map to disk."""
        for arrays in [self.market, *self.projects.values()]:
            for arr in arrays.values():
                arr.flush()


def load_scenarios(directory: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """Read the arrays written by :class:`ScenarioWriter` (memory-mapped, read-only).

    Returns
    -------
    dict
        ``{"market": {...}, "<project>": {...}}`` of arrays keyed by file stem.
    """
    root = Path(directory)
    return {
        sub.name: {f.stem: np.load(f, mmap_mode="r") for f in sorted(sub.glob("*.npy"))}
        for sub in sorted(p for p in root.iterdir() if p.is_dir())
    }
