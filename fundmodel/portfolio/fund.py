"""The fund's allocation problem: instrument payoffs and fund limits -> a CVaR programme.

Translates the fund's limits in ``fund.yaml`` (``portfolio``) into the linear constraints
of the generic optimiser :func:`fundmodel.portfolio.cvar.optimize_cvar`; it is the only
place that knows about mines and instruments. Decision variables are the units of each
instrument on each project (:mod:`fundmodel.instruments`): shares of equity, of senior
loans guaranteed, of equity insured, of output under a price floor.

======================  =========================================================================
constraint              linear form (x = units of every column)
======================  =========================================================================
capital budget          E[capital per unit] . x <= budget_meur
contingent limit        contingent per unit . x <= contingent_limit_meur
country concentration   exposure of the country's columns . x <= share x exposure of all columns . x
material concentration  the same per primary material of the project
minimum supply          E[tonnes of m per unit] . x >= min_supply_t_per_year[m]
return floor            E[PV per unit] . x >= return_floor_meur (objective max_supply)
instrument caps         0 <= x <= max_units (JOGMEC/DFC/MIGA caps from instruments.yaml)
CVaR limit              CVaR_beta(-PV . x) <= cvar_limit_meur
======================  =========================================================================

Exposure is capital plus contingent exposure per unit (EUR m). The objective is the expected
PV (``max_pv``) or the expected tonnes secured weighted by ``supply_weights`` (``max_supply``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..assumptions import Assumptions
from ..instruments import InstrumentPayoff, project_payoffs
from .cvar import CVaRResult, optimize_cvar


@dataclass(frozen=True)
class FundProblem:
    """Scenario matrix and per-unit figures of every decision variable.

    Attributes
    ----------
    columns : list of InstrumentPayoff
        One per decision variable.
    names : list of str
        ``"<project>/<instrument>"`` (``":<material>"`` for price floors).
    values_meur : ndarray of shape (n_scenarios, n_columns)
        PV to the fund of one unit of each column.
    capital_meur, contingent_meur : ndarray of shape (n_columns,)
        Expected capital and largest contingent exposure per unit.
    tonnes_t : dict of str to ndarray of shape (n_columns,)
        Expected tonnes per year secured per unit, per material.
    countries, materials : list of str
        Host country and primary material of each column's project.
    """

    columns: list[InstrumentPayoff]
    names: list[str]
    values_meur: np.ndarray
    capital_meur: np.ndarray
    contingent_meur: np.ndarray
    tonnes_t: dict[str, np.ndarray]
    countries: list[str]
    materials: list[str]

    @property
    def exposure_meur(self) -> np.ndarray:
        """Capital plus contingent exposure per unit, shape (n_columns,)."""
        return self.capital_meur + self.contingent_meur


def build_fund_problem(a: Assumptions, scenarios: dict) -> FundProblem:
    """Collect every instrument on every project into one problem.

    Parameters
    ----------
    a : Assumptions
        With ``instruments.yaml``.
    scenarios : dict
        Scenario arrays (:func:`fundmodel.simulation.load_scenarios`).

    Returns
    -------
    FundProblem
    """
    columns = [x for pid in a.projects for x in project_payoffs(a, scenarios, pid)]
    names = [f"{x.project}/{x.instrument}" + (f":{x.material}" if x.material else "") for x in columns]
    materials = sorted({m for x in columns for m in x.tonnes_t})
    tonnes = {m: np.array([float(x.tonnes_t[m].mean()) if m in x.tonnes_t else 0.0 for x in columns])
              for m in materials}
    return FundProblem(
        columns=columns,
        names=names,
        values_meur=np.column_stack([x.pv_meur for x in columns]),
        capital_meur=np.array([float(x.capital_meur.mean()) for x in columns]),
        contingent_meur=np.array([x.contingent_meur for x in columns]),
        tonnes_t=tonnes,
        countries=[a.projects[x.project].country for x in columns],
        materials=[a.projects[x.project].materials[0] for x in columns],
    )


def fund_constraints(a: Assumptions, problem: FundProblem) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Inequality constraints ``A x <= b`` of the fund's limits, with their names.

    Returns
    -------
    A : ndarray of shape (n_constraints, n_columns)
    b : ndarray of shape (n_constraints,)
    names : list of str
    """
    limits = a.fund.portfolio
    if limits is None:
        raise ValueError("fund.yaml has no 'portfolio' block with the fund's limits")
    rows, rhs, names = [], [], []

    def add(row, bound, name):
        rows.append(np.asarray(row, dtype=float))
        rhs.append(float(bound))
        names.append(name)

    add(problem.capital_meur, limits.budget_meur, "capital budget")
    add(problem.contingent_meur, limits.contingent_limit_meur, "contingent limit")
    exposure = problem.exposure_meur
    for label, groups, share in (("country", problem.countries, limits.max_country_share),
                                 ("material", problem.materials, limits.max_material_share)):
        if share >= 1.0:
            continue
        for g in sorted(set(groups)):
            member = np.array([x == g for x in groups], dtype=float)
            add(exposure * member - share * exposure, 0.0, f"{label} concentration {g}")
    for material, minimum in limits.min_supply_t_per_year.items():
        tonnes = problem.tonnes_t.get(material, np.zeros(len(problem.names)))
        add(-tonnes, -minimum, f"min supply {material}")
    if limits.objective == "max_supply" and limits.return_floor_meur is not None:
        add(-problem.values_meur.mean(axis=0), -limits.return_floor_meur, "return floor")
    return np.vstack(rows), np.array(rhs), names


def optimize_fund(a: Assumptions, problem: FundProblem) -> CVaRResult:
    """Solve the fund's allocation under its limits.

    Returns
    -------
    CVaRResult
        Units of every column (``names`` as in the problem), expected PV, VaR and CVaR of the
        fund's PV at ``cvar_beta``, shadow prices of the named limits.

    Raises
    ------
    InfeasibleProblem
        Naming the limits that conflict and the smallest relaxation of each.
    """
    limits = a.fund.portfolio
    A, b, names = fund_constraints(a, problem)
    bounds = [(0.0, x.max_units) for x in problem.columns]
    mean_values = None
    if limits.objective == "max_supply":
        weights = np.zeros(len(problem.names))
        for material, w in limits.supply_weights.items():
            weights += w * problem.tonnes_t.get(material, 0.0)
        mean_values = weights
    return optimize_cvar(
        problem.values_meur, beta=limits.cvar_beta, objective="max_mean",
        cvar_cap=limits.cvar_limit_meur, A_ub=A, b_ub=b, bounds=bounds,
        names=problem.names, constraint_names=names, mean_values=mean_values,
    )


def allocation_table(a: Assumptions, problem: FundProblem, result: CVaRResult):
    """One row per position with a non-zero size: size, capital, exposure, PV, CVaR share, tonnes.

    Returns
    -------
    pandas.DataFrame
        Columns ``project, instrument, material, size, unit, capital_meur, contingent_meur,
        expected_pv_meur, cvar_contribution_meur`` and ``tonnes_<material>`` per material.
    """
    import pandas as pd

    from .cvar import euler_contributions

    contributions = euler_contributions(problem.values_meur, result.x, a.fund.portfolio.cvar_beta)
    mean_pv = problem.values_meur.mean(axis=0)
    rows = []
    for k, (col, size) in enumerate(zip(problem.columns, result.x)):
        if abs(size) < 1e-9:
            continue
        row = {
            "project": col.project, "instrument": col.instrument, "material": col.material,
            "size": size, "unit": col.unit,
            "capital_meur": size * problem.capital_meur[k],
            "contingent_meur": size * problem.contingent_meur[k],
            "expected_pv_meur": size * mean_pv[k],
            "cvar_contribution_meur": contributions[k],
        }
        for material, tonnes in problem.tonnes_t.items():
            row[f"tonnes_{material}"] = size * tonnes[k]
        rows.append(row)
    return pd.DataFrame(rows)


def optimize_to_directory(a: Assumptions, scenarios: dict, out_dir, *, n_frontier: int = 15, settings=None):
    """Optimise and write ``OUT/portfolio/`` atomically.

    Writes ``allocation.csv`` (see :func:`allocation_table`), ``frontier.csv`` (expected PV vs
    minimal CVaR under the same limits, ``n_frontier`` points) and ``metrics.json`` (expected
    PV, VaR and CVaR, limits used, supply secured per material, binding limits with shadow
    prices, premium vs expected loss of every guarantee-like instrument) and, when the
    assumptions have ``stress.yaml`` and ``settings`` are given, ``stress.csv`` (P&L of the
    optimal portfolio under every named stress, in total and by instrument).

    Returns
    -------
    result : CVaRResult
    allocation : pandas.DataFrame
    """
    from pathlib import Path

    import pandas as pd

    from ..instruments import guarantee_pricing
    from ..io import staged_directory, write_json_atomic
    from .cvar import efficient_frontier

    problem = build_fund_problem(a, scenarios)
    result = optimize_fund(a, problem)
    allocation = allocation_table(a, problem, result)
    A, b, names = fund_constraints(a, problem)
    limits = a.fund.portfolio
    frontier = efficient_frontier(problem.values_meur, n_frontier, beta=limits.cvar_beta, A_ub=A, b_ub=b,
                                  bounds=[(0.0, c.max_units) for c in problem.columns],
                                  names=problem.names, constraint_names=names)
    used = A @ result.x
    metrics = {
        "objective": limits.objective,
        "cvar_beta": limits.cvar_beta,
        "expected_pv_meur": result.expected_value,
        "var_meur": result.var,
        "cvar_meur": result.cvar,
        "capital_used_meur": float(problem.capital_meur @ result.x),
        "budget_meur": limits.budget_meur,
        "contingent_used_meur": float(problem.contingent_meur @ result.x),
        "contingent_limit_meur": limits.contingent_limit_meur,
        "cvar_limit_meur": limits.cvar_limit_meur,
        "supply_secured_t_per_year": {m: float(t @ result.x) for m, t in problem.tonnes_t.items()},
        "constraints": {n: {"value": float(u), "limit": float(lim), "binding": n in result.binding,
                            "shadow_price": (result.shadow_prices or {}).get(n)}
                        for n, u, lim in zip(names, used, b)},
        "cvar_cap_shadow_price": (result.shadow_prices or {}).get("cvar cap"),
        "guarantee_pricing": guarantee_pricing(a, problem.columns),
    }
    stress = None
    if a.stress is not None and settings is not None:
        from .stress import stress_test

        stress = stress_test(a, settings, problem.names, result.x)
        metrics["stress"] = stress.drop(columns=["description"]).to_dict(orient="records")
    with staged_directory(Path(out_dir) / "portfolio") as stage:
        allocation.to_csv(stage / "allocation.csv", index=False)
        if stress is not None:
            stress.to_csv(stage / "stress.csv", index=False)
        pd.DataFrame({"point": np.arange(1, len(frontier.cvar) + 1),
                      "expected_pv_meur": frontier.expected_value, "cvar_meur": frontier.cvar,
                      "var_meur": frontier.var}).to_csv(stage / "frontier.csv", index=False)
        write_json_atomic(stage / "metrics.json", metrics)
    return result, allocation
