"""One-at-a-time sensitivity of every project's value to its main inputs (tornado data).

For each *driver* (prices, initial capex, operating cost, political hazards, development
time, EUR/USD, discount rate) the assumptions are changed to a low and a high setting with
pydantic ``model_copy`` and the first ``attribution_scenarios`` scenarios are re-simulated
on the same seed and random streams as the run (common random numbers), so the change of a
project's mean NPV is the driver's effect, not sampling noise. A driver is applied to the
whole portfolio at once (every material's price, every project's capex, every country's
hazards, ...): projects only interact through the market, so each project's row shows the
effect of *its own* inputs (its materials' prices, its capex, its host country's hazards)
and one re-simulation per variant serves all projects.

=============  ==========================================================  =============
driver         change                                                      low / high
=============  ==========================================================  =============
price          spot and long-run price of every material (real USD/t)      -20 % / +20 %
capex          initial capex budget (``capex.initial_musd``)                -20 % / +20 %
opex           unit and fixed operating cost                               -20 % / +20 %
political      every political-event hazard ``p -> 1 - (1 - p)^m``         x0.5 / x2
schedule       exploration, permitting and construction durations          x0.75 / x1.25
fx             EUR/USD spot (USD per EUR)                                  -10 % / +10 %
discount_rate  fund's nominal discount rate                                -2 pp / +2 pp
=============  ==========================================================  =============

A variant recomputes only what its change reaches, and reuses the base run's pieces whose
inputs are bit-for-bit unchanged (market paths, schedule draws, political timelines, cash
flows): the discount-rate variant only re-discounts, the EUR/USD variant re-simulates the
market and re-converts the same USD flows, the capex and opex variants re-run the cash-flow
engine on the base draws. The result is identical to a full re-simulation of the changed
assumptions (tested).

This module depends on the simulation layers only (assumptions, market, political,
schedule, valuation, simulation), never on the portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .assumptions.model import Assumptions
from .assumptions.schema import Copula, SamplingMethod
from .perturb import (
    scale_development_durations,
    scale_fx_spot,
    scale_initial_capex,
    scale_opex,
    scale_political_hazards,
    scale_prices,
    shift_discount_rate,
)
from .market import MarketPaths, price_ratio_law, simulate_market
from .political import draw_political_events, geopolitical_factor
from .sampling import BLOCK, ScenarioStreams
from .schedule import SCHEDULE_DRAWS, draw_schedule
from .simulation import Chunk, RunSettings, chunk_rows, simulate_chunk
from .valuation import ProjectValues, project_cash_flows, value_cash_flows

# ----------------------------------------------------------------------------- drivers


@dataclass(frozen=True)
class Driver:
    """An input of the tornado: how to change it (its words are in :mod:`fundmodel.memo.wording`).

    Attributes
    ----------
    key : str
        Identifier (``driver`` column of ``sensitivity.csv``).
    perturb : callable
        ``perturb(a, setting) -> Assumptions``, a changed copy of the assumptions.
    low, high : float
        Settings of the low and high variants.
    neutral : float
        Setting that leaves the assumptions unchanged (1 for multipliers, 0 for shifts).
    setting : {"change", "multiple", "rate_shift"}
        What a setting is: a multiplier read as a change (0.8: -20 %), a multiple of an
        intensity or duration (2: x2), or a shift of the fund's rate (+0.02: the rate + 2 pp).
    """

    key: str
    perturb: Callable[[Assumptions, float], Assumptions]
    low: float
    high: float
    neutral: float
    setting: str


#: The drivers of ``sensitivity.csv``, in tie-break order.
DRIVERS: dict[str, Driver] = {d.key: d for d in (
    Driver("price", scale_prices, 0.8, 1.2, 1.0, "change"),
    Driver("capex", scale_initial_capex, 0.8, 1.2, 1.0, "change"),
    Driver("opex", scale_opex, 0.8, 1.2, 1.0, "change"),
    Driver("political", scale_political_hazards, 0.5, 2.0, 1.0, "multiple"),
    Driver("schedule", scale_development_durations, 0.75, 1.25, 1.0, "multiple"),
    Driver("fx", scale_fx_spot, 0.9, 1.1, 1.0, "change"),
    Driver("discount_rate", shift_discount_rate, -0.02, 0.02, 0.0, "rate_shift"),
)}

#: A variant: (driver key, setting).
Variant = tuple[str, float]


def default_variants(drivers: dict[str, Driver] | None = None) -> dict[str, Variant]:
    """The low and high variant of every driver.

    Parameters
    ----------
    drivers : dict, optional
        Drivers by key (default :data:`DRIVERS`).

    Returns
    -------
    dict
        ``{"<driver>/low": (driver, low), "<driver>/high": (driver, high)}``.

    Examples
    --------
    >>> default_variants()["political/high"]
    ('political', 2.0)
    """
    drivers = DRIVERS if drivers is None else drivers
    out: dict[str, Variant] = {}
    for key, d in drivers.items():
        out[f"{key}/low"] = (key, d.low)
        out[f"{key}/high"] = (key, d.high)
    return out


# ----------------------------------------------------------------------------- engine


def _same_rows(x: np.ndarray, y: np.ndarray) -> bool:
    return x is y or np.array_equal(x, y)


def variant_values(a: Assumptions, base: Chunk, b: Assumptions, streams: ScenarioStreams, *,
                   copula: Copula = Copula.GAUSSIAN, copula_dof: float = 5.0,
                   reuse: bool = True) -> dict[str, ProjectValues]:
    """Values of every project under changed assumptions ``b``, on the base chunk's draws.

    Parameters
    ----------
    a : Assumptions
        Assumptions of the base chunk.
    base : Chunk
        :func:`~fundmodel.simulation.simulate_chunk` of ``a`` on the same scenarios.
    b : Assumptions
        Changed assumptions (same projects and horizon).
    streams : ScenarioStreams
        Random streams of the run (same seed and sampling as the base chunk).
    copula, copula_dof
        Dependence of the market shocks (as in the base chunk).
    reuse : bool, default True
        Reuse the base chunk's market, schedule, political timeline and cash flows where
        their inputs are unchanged; False recomputes everything (same numbers, slower).

    Returns
    -------
    dict
        ``{project_id: ProjectValues}`` (no IRRs), identical to
        ``simulate_chunk(b, streams, start, stop, with_irr=False)``.
    """
    start, stop = base.start, base.stop
    n_years = b.fund.horizon_years
    if n_years != a.fund.horizon_years:
        raise ValueError("a sensitivity variant cannot change the horizon")
    geo_params = b.countries.geopolitical_factor
    geo = (base.geo_factor if reuse and geo_params == a.countries.geopolitical_factor
           else geopolitical_factor(streams, geo_params, start, stop, n_years))
    same_market = (reuse and geo is base.geo_factor and b.markets == a.markets and b.fund.inflation == a.fund.inflation
                   and b.fund.simulation.parameter_uncertainty == a.fund.simulation.parameter_uncertainty)
    market: MarketPaths = base.market if same_market else simulate_market(
        b.markets, streams, start, stop, n_years, b.fund.inflation, geo, copula=copula, copula_dof=copula_dof,
        parameter_uncertainty=b.fund.simulation.parameter_uncertainty)
    fx_same = reuse and _same_rows(market.fx_usd_per_eur, base.market.fx_usd_per_eur)
    rate = b.fund.discount_rate_nominal
    out: dict[str, ProjectValues] = {}
    for pid, p in b.projects.items():  # loop over projects; vectorised over scenarios
        pc = base.projects[pid]
        p0 = a.projects[pid]
        country, country0 = b.countries.countries[p.country], a.countries.countries[p0.country]
        if reuse and p == p0 and country.permitting_years == country0.permitting_years:
            schedule = pc.schedule
        else:
            uniforms = streams.uniforms(f"schedule/{pid}", start, stop, len(SCHEDULE_DRAWS), sobol=False)
            schedule = draw_schedule(p, country.permitting_years, uniforms)
        primary = market.index(p.materials[0])
        law = price_ratio_law(b.markets, p.materials[0], geo_params.persistence)
        if (reuse and geo is base.geo_factor and country.events == country0.events
                and geo_params.hazard_loading == a.countries.geopolitical_factor.hazard_loading
                and law == price_ratio_law(a.markets, p0.materials[0], a.countries.geopolitical_factor.persistence)
                and _same_rows(market.real_price_ratio[primary], base.market.real_price_ratio[primary])):
            politics = pc.politics
        else:
            politics = draw_political_events(streams, pid, country, geo, geo_params.hazard_loading,
                                             market.real_price_ratio[primary], start, stop,
                                             price_law=law)
        prices_same = all(_same_rows(market.price_usd_per_t[market.index(m)],
                                     base.market.price_usd_per_t[base.market.index(m)]) for m in p.materials)
        if (reuse and schedule is pc.schedule and politics is pc.politics and p == p0 and prices_same
                and b.fund.inflation == a.fund.inflation):
            flows = pc.flows
        else:
            # the run's credit policies, as the loan amounts, are held fixed in the variants
            flows = project_cash_flows(p, b.fund.inflation, market, schedule, politics, base.credit.get(pid))
        if flows is pc.flows and fx_same and rate == a.fund.discount_rate_nominal:
            out[pid] = pc.values
        else:
            out[pid] = value_cash_flows(flows, market.fx_usd_per_eur, rate, with_irr=False)
    return out


class _ReusedStreams(ScenarioStreams):
    """Streams that keep every draw they hand out, for the many re-runs of one chunk.

    Every draw is a pure function of (seed, stream, scenario rows), so handing the same
    (read-only) array to each variant changes no number; it saves re-drawing the market
    shocks, schedule uniforms and political uniforms once per variant.
    """

    def __init__(self, seed: int, method: SamplingMethod | str) -> None:
        super().__init__(seed, method)
        self._kept: dict[tuple, np.ndarray] = {}

    def _keep(self, key: tuple, draw: Callable[[], np.ndarray]) -> np.ndarray:
        out = self._kept.get(key)
        if out is None:
            out = draw()
            out.flags.writeable = False  # shared by every variant: nobody may change it
            self._kept[key] = out
        return out

    def uniforms(self, name: str, start: int, stop: int, dim: int, *, quasi: bool = True,
                 sobol: bool = True) -> np.ndarray:  # noqa: D102 - as ScenarioStreams.uniforms
        return self._keep(("u", name, start, stop, dim, quasi, sobol),
                          lambda: super(_ReusedStreams, self).uniforms(name, start, stop, dim, quasi=quasi,
                                                                       sobol=sobol))

    def normals(self, name: str, start: int, stop: int, dim: int, *, quasi: bool = True,
                sobol: bool = True) -> np.ndarray:  # noqa: D102 - as ScenarioStreams.normals
        return self._keep(("n", name, start, stop, dim, quasi, sobol),
                          lambda: super(_ReusedStreams, self).normals(name, start, stop, dim, quasi=quasi,
                                                                      sobol=sobol))

    def pseudo_uniforms_by_dim(self, name: str, start: int, stop: int, dim: int,
                               dtype=np.float64) -> np.ndarray:  # noqa: D102 - as ScenarioStreams
        return self._keep(("p", name, start, stop, dim, np.dtype(dtype).str),
                          lambda: super(_ReusedStreams, self).pseudo_uniforms_by_dim(name, start, stop, dim,
                                                                                     dtype=dtype))


def sensitivity_chunk(a: Assumptions, settings: RunSettings, start: int, stop: int,
                      variants: dict[str, Variant], streams: ScenarioStreams | None = None,
                      *, reuse: bool = True) -> dict:
    """Project and equity NPVs of scenarios ``[start, stop)`` in the base run and every variant.

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
        Seed, sampling and copula of the run.
    start, stop : int
        Scenario rows (``start`` on a multiple of :data:`~fundmodel.sampling.BLOCK`).
    variants : dict
        ``{name: (driver key, setting)}``, drivers from :data:`DRIVERS`.
    streams : ScenarioStreams, optional
        The run's streams (created from ``settings`` when omitted). The draws of
        ``[start, stop)`` are kept for the variants (a private copy of the streams is used).
    reuse : bool, default True
        See :func:`variant_values`.

    Returns
    -------
    dict
        ``start``, ``stop`` and ``npv``: ``{variant: {project: (project_npv_meur,
        equity_npv_meur)}}`` with the base run under ``"base"``.
    """
    streams = _ReusedStreams(settings.seed if streams is None else streams.seed,
                             settings.sampling if streams is None else streams.method)
    base = simulate_chunk(a, streams, start, stop, copula=settings.copula, copula_dof=settings.copula_dof,
                          with_irr=False)
    npv = {"base": {pid: (v.values.project_npv_meur, v.values.equity_npv_meur) for pid, v in base.projects.items()}}
    for name, (key, setting) in variants.items():
        b = DRIVERS[key].perturb(a, setting)
        values = variant_values(a, base, b, streams, copula=settings.copula, copula_dof=settings.copula_dof,
                                reuse=reuse)
        npv[name] = {pid: (v.project_npv_meur, v.equity_npv_meur) for pid, v in values.items()}
    return {"start": start, "stop": stop, "npv": npv}


def _sensitivity_task(shared: tuple, bounds: tuple[int, int]) -> dict:
    """One part of the sensitivity runs as an engine task: ``shared = (a, settings, variants)``."""
    a, settings, variants = shared
    return sensitivity_chunk(a, settings, bounds[0], bounds[1], variants)


def sensitivity_scenarios(settings: RunSettings) -> int:
    """Number of scenarios the sensitivity re-runs: the first ``attribution_scenarios`` of the run.

    Parameters
    ----------
    settings : RunSettings

    Returns
    -------
    int
        ``min(attribution_scenarios, scenarios)``.
    """
    return min(settings.attribution_scenarios, settings.scenarios)


def sensitivity_npvs(a: Assumptions, settings: RunSettings, *, n_scenarios: int | None = None,
                     variants: dict[str, Variant] | None = None,
                     engine=None) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """Per-scenario NPVs of every project in the base run and each variant.

    The first ``n_scenarios`` scenarios are split into at most one part per engine worker
    (whole random blocks, at most ``settings.chunk_size`` scenarios each), tasks of the
    engine (:mod:`fundmodel.engine`); the numbers do not depend on the split or the engine.

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
        Seed, sampling, copula, chunk size and workers of the run.
    n_scenarios : int, optional
        Default :func:`sensitivity_scenarios`.
    variants : dict, optional
        ``{name: (driver key, setting)}``; default :func:`default_variants`.
    engine : SerialEngine or DaskEngine, optional
        Open engine to use (default: one made from ``settings``).

    Returns
    -------
    dict
        ``{variant: {project: {"project_npv_meur": ndarray, "equity_npv_meur": ndarray}}}``,
        arrays of shape (n_scenarios,), the base run under ``"base"``.
    """
    n = sensitivity_scenarios(settings) if n_scenarios is None else min(n_scenarios, settings.scenarios)
    variants = default_variants() if variants is None else variants
    n_blocks = -(-n // BLOCK)
    max_blocks = chunk_rows(settings.chunk_size, len(a.projects)) // BLOCK
    from .engine import engine_for

    with engine_for(settings, engine) as eng:
        per_part = min(-(-n_blocks // eng.workers), max_blocks) * BLOCK
        bounds = [(lo, min(lo + per_part, n)) for lo in range(0, n, per_part)]
        parts = list(eng.map(_sensitivity_task, (a, settings, variants), bounds))
    return {
        name: {
            pid: {
                "project_npv_meur": np.concatenate([r["npv"][name][pid][0] for r in parts]),
                "equity_npv_meur": np.concatenate([r["npv"][name][pid][1] for r in parts]),
            }
            for pid in a.projects
        }
        for name in ["base", *variants]
    }


#: Columns of ``sensitivity.csv`` that are words (:func:`fundmodel.memo.wording.tornado_in_words`).
WORDED_COLUMNS = ("label", "low_setting", "high_setting")
#: Columns of ``sensitivity.csv``, in order.
SENSITIVITY_COLUMNS = [
    "project", "driver", "label", "low_setting", "high_setting",
    "base_equity_npv_meur", "low_equity_npv_meur", "high_equity_npv_meur",
    "base_project_npv_meur", "low_project_npv_meur", "high_project_npv_meur",
    "swing_meur", "se_meur", "scenarios",
]


def sensitivity_table(a: Assumptions, settings: RunSettings, *, n_scenarios: int | None = None,
                      drivers: dict[str, Driver] | None = None, engine=None) -> pd.DataFrame:
    """Tornado data: per project and driver, mean NPVs in the base run and both variants.

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
    n_scenarios : int, optional
        Scenarios re-run (default :func:`sensitivity_scenarios`).
    drivers : dict, optional
        Subset of :data:`DRIVERS` (default all).
    engine : SerialEngine or DaskEngine, optional
        Open engine to use (default: one made from ``settings``).

    Returns
    -------
    pandas.DataFrame
        :data:`SENSITIVITY_COLUMNS` but the :data:`WORDED_COLUMNS` (keys and numbers only: the
        words are :func:`fundmodel.memo.wording.tornado_in_words`); projects in assumption order, within a project the
        drivers by decreasing ``swing_meur`` (ties in :data:`DRIVERS` order).
        ``swing_meur = |high - low|`` of the mean equity NPV (EUR m) and ``se_meur`` the
        standard error of the mean of ``high - low`` over the common scenarios.
    """
    drivers = DRIVERS if drivers is None else drivers
    npvs = sensitivity_npvs(a, settings, n_scenarios=n_scenarios, variants=default_variants(drivers),
                            engine=engine)
    rows = []
    for pid in a.projects:
        base = npvs["base"][pid]
        n = base["equity_npv_meur"].size
        project_rows = []
        for key, d in drivers.items():
            low, high = npvs[f"{key}/low"][pid], npvs[f"{key}/high"][pid]
            diff = high["equity_npv_meur"] - low["equity_npv_meur"]
            low_mean, high_mean = float(low["equity_npv_meur"].mean()), float(high["equity_npv_meur"].mean())
            project_rows.append({
                "project": pid,
                "driver": key,
                "base_equity_npv_meur": float(base["equity_npv_meur"].mean()),
                "low_equity_npv_meur": low_mean,
                "high_equity_npv_meur": high_mean,
                "base_project_npv_meur": float(base["project_npv_meur"].mean()),
                "low_project_npv_meur": float(low["project_npv_meur"].mean()),
                "high_project_npv_meur": float(high["project_npv_meur"].mean()),
                "swing_meur": abs(high_mean - low_mean),
                "se_meur": float(diff.std(ddof=1) / np.sqrt(n)) if n > 1 else 0.0,
                "scenarios": n,
            })
        project_rows.sort(key=lambda r: -r["swing_meur"])  # stable: ties keep the driver order
        rows.extend(project_rows)
    return pd.DataFrame(rows, columns=[c for c in SENSITIVITY_COLUMNS if c not in WORDED_COLUMNS])
