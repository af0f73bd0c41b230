"""The stages of a run, each writing its folder atomically: simulation, portfolio (the memos: :mod:`fundmodel.memo`).

- :func:`simulate_to_directory`: the Monte Carlo simulation (:func:`fundmodel.simulation.simulate`),
  the break-even prices (:mod:`fundmodel.breakeven`) and the tornado (:mod:`fundmodel.sensitivity`)
  on one engine, the tables of :mod:`fundmodel.results`, into ``OUT/simulation/``;
- :func:`optimize_to_directory`: the fund's allocation (:mod:`fundmodel.portfolio.fund`), its
  frontiers (in a background process) and the named stresses (:mod:`fundmodel.portfolio.stress`),
  into ``OUT/portfolio/``.

The modules they call are pure (arrays and tables in, arrays and tables out); the stages own the
engine, the staging folders and the order of the steps. :mod:`fundmodel.pipeline.run` chains them
under the output folder's lock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..assumptions.model import Assumptions
from ..breakeven import breakevens
from ..credit import credit_policies
from ..engine import BackgroundTask, engine_for
from ..io import staged_directory, write_csv, write_json_atomic
from ..memo.wording import stress_base_description, tornado_in_words
from ..portfolio.frontier import efficient_frontiers
from ..portfolio.fund import _selected, build_fund_problem, evaluate_on, first_scenarios, frontier_job, optimize_fund
from ..portfolio.report import (
    allocation_table,
    frontier_table,
    fund_metrics,
    portfolio_standard_errors,
    sample_gap,
    supply_table,
)
from ..portfolio.stress import stress_scenario_count, stress_test
from ..results import (
    add_breakevens,
    first_production_table,
    price_fan_table,
    project_statistics,
    simulation_metrics,
    summary_table,
    tonnes_table,
)
from ..scenarios import ScenarioSet
from ..sensitivity import sensitivity_table
from ..simulation import simulate
from .current import run_manifest

__all__ = ["simulate_to_directory", "optimize_to_directory"]


def simulate_to_directory(a: Assumptions, settings, out_dir, *, progress=None, command: str | None = None,
                          keep_scenarios: bool = True, engine=None):
    """Simulate and write ``OUT/simulation/`` atomically.

    Writes ``summary.csv`` (one row per project), ``tonnes.csv`` (expected tonnes per
    project, material and year), ``first_production.csv``, ``price_fan.csv`` (with the
    scenario files), ``sensitivity.csv`` (when ``settings.risk_attribution`` and
    ``fund.yaml: simulation.sensitivity``), ``metrics.json`` (all figures),
    ``manifest.json`` (provenance) and ``scenarios/`` (year-by-scenario arrays, see
    :class:`~fundmodel.scenarios.ScenarioWriter`); the module docstring lists the formats.

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
    out_dir : str or Path
        Output root (``reports/`` by default on the command line).
    progress : callable, optional
        Called with the number of scenarios done after each chunk.
    command : str, optional
        Command line recorded in the manifest.
    keep_scenarios : bool, default True
        Write the scenario-level arrays.
    engine : SerialEngine or DaskEngine, optional
        Open engine (:mod:`fundmodel.engine`); default one made from ``settings``.

    Returns
    -------
    result : SimulationResult
    summary : pandas.DataFrame
    """
    target = Path(out_dir) / "simulation"
    with staged_directory(target) as stage, engine_for(settings, engine) as engine:  # one engine for all steps
        result = simulate(a, settings, scenario_dir=stage / "scenarios" if keep_scenarios else None,
                          progress=progress, engine=engine)
        if keep_scenarios:
            for pid, values in result.scalars.items():  # per-scenario results beside the yearly arrays
                for name, arr in values.items():
                    np.save(stage / "scenarios" / pid / f"{name}.npy", arr)
        stats = project_statistics(a, result)
        if settings.risk_attribution and a.fund.simulation.breakeven:
            credit = credit_policies(a, settings.seed, settings.sampling, copula=settings.copula,
                                     copula_dof=settings.copula_dof)  # the run's, kept in this process
            base = {pid: v["project_npv_market_meur"] for pid, v in result.scalars.items()}
            add_breakevens(a, stats, breakevens(a, settings, credit, engine=engine, base_npv=base))
        else:
            add_breakevens(a, stats, None, "not computed (fund.yaml simulation.breakeven off or --no-attribution)")
        summary = summary_table(stats)
        write_csv(summary, stage / "summary.csv")
        write_csv(tonnes_table(a, result), stage / "tonnes.csv")
        write_csv(first_production_table(a, result), stage / "first_production.csv")
        if keep_scenarios:
            market_dir = stage / "scenarios" / "market"
            write_csv(price_fan_table(a, np.load(market_dir / "price_usd_per_t.npy", mmap_mode="r"),
                                      np.load(market_dir / "fx_usd_per_eur.npy", mmap_mode="r"),
                                      result.valuation_year), stage / "price_fan.csv")
        if settings.risk_attribution and a.fund.simulation.sensitivity:
            write_csv(tornado_in_words(a, sensitivity_table(a, result.settings, engine=engine)),
                      stage / "sensitivity.csv")
        write_json_atomic(stage / "metrics.json", simulation_metrics(a, settings, result, stats))
        write_json_atomic(stage / "manifest.json", run_manifest(a, result.settings, command))
    return result, summary


def _frontier_task(job: dict) -> dict:
    """:func:`fundmodel.portfolio.frontier.efficient_frontiers` on plain arrays (a picklable job), one BLAS thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return efficient_frontiers(**job)


def optimize_to_directory(a: Assumptions, scenarios: ScenarioSet, out_dir, *, n_frontier: int = 15, settings=None,
                          engine=None):
    """Optimise and write ``OUT/portfolio/`` atomically.

    Writes ``allocation.csv`` (see :func:`allocation_table`), ``frontier.csv`` (expected PV vs
    minimal CVaR under the same limits, ``n_frontier`` points, and beside it the supply-vs-CVaR
    frontier, see :func:`frontier_table`) and ``metrics.json`` (expected PV, VaR and CVaR,
    limits used, supply secured per material, binding limits with shadow prices, premium vs
    expected loss of every guarantee-like instrument, go/no-go decisions, probability of
    loss, both frontiers) and, when the assumptions have ``stress.yaml`` and ``settings`` are
    given, ``stress.csv`` (P&L of the optimal portfolio under every named stress, in total
    and by instrument).

    With ``settings.workers > 1`` the frontiers are traced in a second process while this
    one solves the allocation and runs the stresses (on ``engine``, see
    :mod:`fundmodel.engine`); the numbers do not depend on it.

    Runs with more than ``portfolio.optimization_scenarios`` scenarios take the CVaR of the
    solve on the first ``optimization_scenarios`` scenarios (:func:`first_scenarios`; every
    expectation and limit uses all scenarios) and the allocation's VaR and CVaR are then
    recomputed on all of them (:func:`evaluate_on`): ``allocation.csv`` and the headline
    figures of ``metrics.json`` are those of all scenarios, ``metrics.json:
    optimization_sample`` holds both and the gap (:func:`sample_gap`); the frontiers' CVaRs
    are those of the solve sample.

    Returns
    -------
    result : CVaRResult
    allocation : pandas.DataFrame
    """
    full = build_fund_problem(a, scenarios)
    limits = a.fund.portfolio
    n_all = full.values_meur.shape[0]
    problem = full if n_all <= limits.optimization_scenarios else first_scenarios(full, limits.optimization_scenarios)
    parallel = settings is not None and settings.workers > 1
    background = None
    if not limits.go_no_go:  # the frontiers do not depend on the optimum: start them now
        background = BackgroundTask(_frontier_task, frontier_job(a, problem, n_frontier), parallel)
    try:
        result = optimize_fund(a, problem)
        if background is None:
            selection = _selected(problem, result.x)
            background = BackgroundTask(_frontier_task, frontier_job(a, problem, n_frontier, selection), parallel)
        solved = result
        if problem is not full:
            result = evaluate_on(a, full, solved)
        allocation = allocation_table(a, full, result)
        stress = None
        if a.stress is not None and settings is not None:
            n_stress = stress_scenario_count(a, settings.scenarios)
            base = full.values_meur[:n_stress] if n_all >= n_stress else None
            stress = stress_test(a, settings, full.names, result.x, base_values=base, engine=engine,
                                 entry=full.entry)
            stress.loc[stress["stress"] == "base", "description"] = stress_base_description(n_stress)
        frontiers = background.get()
    except BaseException:
        if background is not None:
            background.cancel()
        raise
    metrics = fund_metrics(a, full, result, frontiers)
    metrics.update(portfolio_standard_errors(a, full, result, settings.sampling if settings is not None
                                             else a.fund.simulation.sampling))
    if problem is not full:
        metrics["optimization_sample"] = sample_gap(a, (problem, solved), (full, result))
    if stress is not None:
        metrics["stress"] = stress.drop(columns=["description"]).to_dict(orient="records")
    with staged_directory(Path(out_dir) / "portfolio") as stage:
        write_csv(allocation, stage / "allocation.csv")
        write_csv(supply_table(full, result), stage / "supply.csv")
        if stress is not None:
            write_csv(stress, stage / "stress.csv")
        write_csv(frontier_table(a, problem, frontiers), stage / "frontier.csv")
        write_json_atomic(stage / "metrics.json", metrics)
    return result, allocation
