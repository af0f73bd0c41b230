"""Named stress scenarios (``stress.yaml``) applied to a chosen portfolio.

A stress changes the assumptions (prices today or in the long run, political hazards of
a country, a forced Chinese export restriction, EUR/USD), the projects are re-simulated on
the same seed and scenario count as a base run without the stress, and the portfolio's
positions are re-valued. The difference is the stress P&L, in total and by instrument.
"""

from __future__ import annotations

import dataclasses
import tempfile

import numpy as np

from ..assumptions.model import Assumptions
from ..perturb import apply_stress
from .fund import build_fund_problem


def _position_values(a: Assumptions, settings, names: list[str], x: np.ndarray,
                     entry: dict | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Per-scenario PV of each named position of the portfolio, on a fresh simulation, and the entry terms.

    ``entry``: the equity entry terms of the base case (a stake is bought once, at the base
    case's price; default: priced on this simulation, and returned for the stresses).

    Only the projects the portfolio holds are simulated: every random stream is keyed by
    its source (market, project), so their scenarios are those of a run of every project.
    """
    from ..simulation import load_scenarios, simulate

    sizes = {n: size for n, size in zip(names, x) if abs(size) > 1e-12}
    held = {n.split("/")[0] for n in sizes}
    if not held:
        return {}, dict(entry or {})
    sub = dataclasses.replace(a, projects={pid: p for pid, p in a.projects.items() if pid in held})
    with tempfile.TemporaryDirectory() as tmp:
        result = simulate(sub, settings, scenario_dir=tmp)
        scenarios = load_scenarios(tmp).with_results(result.scalars)  # the per-scenario results beside the yearly arrays
        problem = build_fund_problem(sub, scenarios, entry=None if entry is None else {
            pid: entry[pid] for pid in sub.projects})
        index = {n: k for k, n in enumerate(problem.names)}
        return {n: problem.values_meur[:, index[n]] * size for n, size in sizes.items()}, problem.entry


def stress_scenario_count(a: Assumptions, scenarios: int) -> int:
    """Scenarios of the stressed runs: ``stress.yaml: stress_scenarios``, at most the run's ``scenarios``.

    The stresses re-simulate the first scenarios of the run itself (scenarios do not depend
    on the count), so the run's own rows are the base case and a small run is not stressed
    on more scenarios than it has.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> stress_scenario_count(SimpleNamespace(stress=SimpleNamespace(stress_scenarios=4096)), 1000)
    1000
    """
    return min(a.stress.stress_scenarios, int(scenarios))


def _stress_task(shared: tuple, stressed: Assumptions) -> dict[str, np.ndarray]:
    """One stressed re-simulation as an engine task: ``shared = (settings, names, x, entry)``."""
    run, names, x, entry = shared
    return _position_values(stressed, run, names, x, entry)[0]


def stress_test(a: Assumptions, settings, names: list[str], x: np.ndarray, base_values: np.ndarray | None = None,
                engine=None, entry: dict | None = None):
    """P&L of a portfolio under every scenario of ``stress.yaml``.

    Parameters
    ----------
    a : Assumptions
        With ``stress.yaml``, ``instruments.yaml`` and the fund's limits.
    settings : RunSettings
        Seed, sampling, copula, scenario count of the run; the stresses use
        :func:`stress_scenario_count` scenarios. The
        stressed runs simulate only the projects held, one stress per engine task
        (:mod:`fundmodel.engine`); the numbers do not depend on the engine or its workers.
    names : list of str
        Column names of the portfolio (``FundProblem.names``).
    x : ndarray
        Size of every column.
    base_values : ndarray of shape (stress_scenario_count, len(names)), optional
        PV per unit of every column in the first :func:`stress_scenario_count` scenarios of a run on
        the same assumptions, seed, sampling and copula (e.g. ``FundProblem.values_meur`` of
        the optimisation): the base case, which is then not simulated again. Scenarios do not
        depend on the scenario count, so this is the base run itself.
    engine : SerialEngine or DaskEngine, optional
        Open engine to use (default: one made from ``settings``).
    entry : dict of str to EntryPrice, optional
        Equity entry terms of the base case (``FundProblem.entry``): the stressed stakes are
        bought at the base case's price (default: priced on the base simulation of this call).

    Returns
    -------
    pandas.DataFrame
        One row per stress: expected PV of the portfolio, change against the base run on the
        same seed, CVaR at the fund's level, and the change by instrument
        (``change_<instrument>_meur``).
    """
    import pandas as pd

    from .measures import cvar_from_losses

    n_stress = stress_scenario_count(a, settings.scenarios)
    run = dataclasses.replace(settings, scenarios=n_stress, risk_attribution=False, workers=1, engine="serial",
                              scheduler=None)  # each stress runs inside one task
    beta = a.fund.portfolio.cvar_beta
    if base_values is not None:
        if entry is None:
            raise ValueError("base_values need the entry terms they were priced with (entry=FundProblem.entry)")
        base_values = np.asarray(base_values, dtype=float)
        if base_values.shape != (n_stress, len(names)):
            raise ValueError(f"base_values must have shape ({n_stress}, {len(names)}), got {base_values.shape}")
        base = {n: base_values[:, k] * size for k, (n, size) in enumerate(zip(names, x)) if abs(size) > 1e-12}
    else:
        base, priced = _position_values(a, run, names, x, entry)
        entry = entry if entry is not None else priced  # the stressed stakes are bought at the base price
    instruments = sorted({n.split("/")[1].split(":")[0] for n in base})

    def summary(values: dict[str, np.ndarray]) -> dict:
        total = sum(values.values(), np.zeros(n_stress))
        row = {"expected_pv_meur": float(total.mean()), "cvar_meur": float(cvar_from_losses(-total, beta))}
        for inst in instruments:
            row[f"pv_{inst}_meur"] = float(sum(v.mean() for n, v in values.items() if n.split("/")[1].startswith(inst)))
        return row

    reference = summary(base)
    rows = [{"stress": "base", "description": "", **reference,  # worded by fundmodel.memo.wording
             "change_meur": 0.0, **{f"change_{inst}_meur": 0.0 for inst in instruments}}]
    stressed = [apply_stress(a, stress) for stress in a.stress.scenarios.values()]
    from ..engine import engine_for

    with engine_for(settings, engine) as eng:  # one stress per task, each simulating in its worker
        values = list(eng.map(_stress_task, (run, names, x, entry), stressed))
    for (name, stress), stressed_values in zip(a.stress.scenarios.items(), values):
        row = summary(stressed_values)
        row = {"stress": name, "description": stress.description, **row,
               "change_meur": row["expected_pv_meur"] - reference["expected_pv_meur"]}
        for inst in instruments:
            row[f"change_{inst}_meur"] = row[f"pv_{inst}_meur"] - reference[f"pv_{inst}_meur"]
        rows.append(row)
    return pd.DataFrame(rows)
