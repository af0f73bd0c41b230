"""What the fund's optimum looks like in tables and figures: allocation, supply, frontiers, metrics.

Pure functions of the problem (:class:`~fundmodel.portfolio.fund.FundProblem`) and a solution
(:class:`~fundmodel.portfolio.optimize.CVaRResult`); :mod:`fundmodel.pipeline.stages` writes
them to ``OUT/portfolio/``.
"""

from __future__ import annotations

import numpy as np

from ..assumptions.model import Assumptions
from .fund import (
    PROB_LOSS,
    FundProblem,
    _selected,
    fund_constraints,
    project_exposures,
    project_tickets,
    supply_caps,
    supply_weights,
)
from .measures import cvar_from_losses, euler_contributions, var_from_losses
from .optimize import CVaRResult

__all__ = ["allocation_table", "supply_table", "entry_terms", "sample_gap", "portfolio_standard_errors",
           "frontier_table", "fund_metrics"]


def allocation_table(a: Assumptions, problem: FundProblem, result: CVaRResult):
    """One row per position with a non-zero size: size, capital, exposure, PV, CVaR share, tonnes.

    Returns
    -------
    pandas.DataFrame
        Columns ``project, instrument, material, size, unit, capital_meur, contingent_meur,
        expected_pv_meur, cvar_contribution_meur``, ``tonnes_<material>`` per material, then
        ``entry_price_meur`` (the price paid for the stake held; 0 for guarantees),
        ``entry_kind`` (``secondary``, ``primary`` or ``acquisition`` for equity, empty
        otherwise), ``entry_discount`` (empty, n/a, for guarantees and for a producing mine
        bought at its acquisition price), ``market_rate`` (the rate the position is valued at)
        and ``concession_meur`` (the value given up against market terms).
    """
    import pandas as pd


    contributions = euler_contributions(problem.values_meur, result.x, a.fund.portfolio.cvar_beta)
    mean_pv = problem.mean_values_meur
    rows = []
    for k, (col, size) in enumerate(zip(problem.columns, result.x)):
        if abs(size) < 1e-9:
            continue
        entry = col.entry
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
        # new columns (issue 13): the price paid, the rate, the concession granted
        row["entry_price_meur"] = size * entry.price_meur if entry is not None else 0.0
        row["entry_kind"] = entry.kind if entry is not None else ""
        row["entry_discount"] = entry.discount if entry is not None else np.nan
        row["market_rate"] = col.market_rate
        row["concession_meur"] = size * problem.concession_meur[k]
        rows.append(row)
    columns = ["project", "instrument", "material", "size", "unit", "capital_meur", "contingent_meur",
               "expected_pv_meur", "cvar_contribution_meur", *(f"tonnes_{m}" for m in problem.tonnes_t),
               "entry_price_meur", "entry_kind", "entry_discount", "market_rate", "concession_meur"]
    return pd.DataFrame(rows, columns=columns)  # the columns also when nothing is held


def supply_table(problem: FundProblem, result: CVaRResult):
    """``supply.csv``: per project and material the fund holds a position in, available vs secured.

    One basis for every figure: contained tonnes per year averaged over the supply window
    (``instruments.yaml: supply_window_years``). ``secured_t_per_year`` never exceeds
    ``eu_available_t_per_year`` (the optimiser's supply cap).

    Returns
    -------
    pandas.DataFrame
        ``project, material, eu_available_t_per_year, secured_t_per_year, secured_share`` and
        the tonnes secured by each instrument (``by_equity_t_per_year``,
        ``by_loan_guarantee_t_per_year``, ``by_price_floor_t_per_year``).
    """
    import pandas as pd

    caps = supply_caps(problem)
    rows = []
    for (project, material), available in caps.items():
        by = {"equity": 0.0, "loan_guarantee": 0.0, "price_floor": 0.0}
        held = False
        for k, c in enumerate(problem.columns):
            if c.project != project or abs(result.x[k]) < 1e-9:
                continue
            held = True
            by[c.instrument] = by.get(c.instrument, 0.0) + float(result.x[k] * problem.tonnes_t[material][k])
        if not held:
            continue
        secured = sum(by.values())
        rows.append({"project": project, "material": material, "eu_available_t_per_year": available,
                     "secured_t_per_year": secured, "secured_share": secured / available if available > 0 else 0.0,
                     **{f"by_{k}_t_per_year": v for k, v in by.items()}})
    columns = ["project", "material", "eu_available_t_per_year", "secured_t_per_year", "secured_share",
               "by_equity_t_per_year", "by_loan_guarantee_t_per_year", "by_price_floor_t_per_year"]
    return pd.DataFrame(rows, columns=columns)


def entry_terms(problem: FundProblem) -> dict:
    """Entry terms and market rates of every project (``metrics.json: entry``), JSON-ready."""
    out = {}
    for pid, e in problem.entry.items():
        out[pid] = {"kind": e.kind, "discount": e.discount, "pre_money_meur": e.pre_money_meur,
                    "price_meur": e.price_meur, "stake_per_unit": e.stake_per_unit, "raise_meur": e.raise_meur,
                    "available": e.available, "reason": e.reason}
    return out


def sample_gap(a: Assumptions, solved: tuple[FundProblem, CVaRResult], full: tuple[FundProblem, CVaRResult]) -> dict:
    """The optimum on the solve sample next to the same allocation on every scenario.

    Returns
    -------
    dict
        ``scenarios_solved``, ``scenarios_evaluated``, ``method``, ``solve_sample`` and
        ``all_scenarios`` (expected PV, VaR, CVaR, capital used, weighted supply, objective),
        ``gap`` (all scenarios minus solve sample) and ``cvar_limit_met`` on all scenarios.
    """
    def figures(problem: FundProblem, result: CVaRResult) -> dict:
        return {"expected_pv_meur": result.expected_value, "var_meur": result.var, "cvar_meur": result.cvar,
                "capital_used_meur": float(problem.capital_meur @ result.x),
                "weighted_supply_t_per_year": float(supply_weights(a, problem) @ result.x),
                "objective_value": result.objective_value}

    small, big = figures(*solved), figures(*full)
    limit = a.fund.portfolio.cvar_limit_meur
    return {
        "scenarios_solved": int(solved[1].losses.size),
        "scenarios_evaluated": int(full[1].losses.size),
        "method": "sample-average approximation of the tail: the CVaR limit (and frontiers) use the first "
                  "optimization_scenarios scenarios (those of a run of that size with the same seed), expected "
                  "values and every other limit all scenarios; the allocation's VaR and CVaR are then "
                  "recomputed on every scenario",
        "solve_sample": small,
        "all_scenarios": big,
        "gap": {k: big[k] - small[k] for k in small},
        "cvar_limit_met": None if limit is None else bool(full[1].cvar <= limit * (1 + 1e-9) + 1e-9),
    }


def portfolio_standard_errors(a: Assumptions, problem: FundProblem, result: CVaRResult, sampling) -> dict:
    """Monte Carlo standard errors of the chosen portfolio's expected PV, VaR and CVaR.

    The allocation ``result.x`` is held fixed and the figures are recomputed on each
    independent group of scenarios (Sobol' replicates or batches, see
    :mod:`fundmodel.precision`); the standard error is their spread over sqrt(groups).

    Returns
    -------
    dict
        ``expected_pv_se_meur``, ``var_se_meur``, ``cvar_se_meur`` and ``standard_errors``
        (method and number of groups).
    """
    from ..precision import Replicates

    beta = a.fund.portfolio.cvar_beta
    losses = -(problem.values_meur @ result.x)
    groups = Replicates(losses.size, sampling)
    return {
        "expected_pv_se_meur": groups.se(-losses),
        "var_se_meur": groups.se(losses, lambda x: float(var_from_losses(x, beta))),
        "cvar_se_meur": groups.se(losses, lambda x: float(cvar_from_losses(x, beta))),
        "standard_errors": groups.describe(),
    }


def frontier_table(a: Assumptions, problem: FundProblem, frontiers: dict):
    """``frontier.csv``: one row per point of the PV frontier, the supply frontier beside it.

    Returns
    -------
    pandas.DataFrame
        ``point, expected_pv_meur, cvar_meur, var_meur`` (PV frontier: least CVaR at evenly
        spaced expected-PV floors), ``weighted_supply_t_per_year`` (of the same allocation),
        and ``supply_weighted_t_per_year, supply_cvar_meur, supply_var_meur,
        supply_expected_pv_meur`` (point k of the supply frontier: least CVaR at evenly spaced
        weighted-supply floors, i.e. the most weighted supply at that CVaR; empty when
        ``supply_weights`` weight nothing).
    """
    import pandas as pd

    pv = frontiers["pv"]
    weights = supply_weights(a, problem)
    mean_pv = problem.mean_values_meur
    table = pd.DataFrame({"point": np.arange(1, len(pv.cvar) + 1), "expected_pv_meur": pv.expected_value,
                          "cvar_meur": pv.cvar, "var_meur": pv.var,
                          "weighted_supply_t_per_year": pv.x @ weights})
    supply = frontiers.get("supply")
    nan = np.full(len(pv.cvar), np.nan)
    table["supply_weighted_t_per_year"] = nan if supply is None else supply.expected_value
    table["supply_cvar_meur"] = nan if supply is None else supply.cvar
    table["supply_var_meur"] = nan if supply is None else supply.var
    table["supply_expected_pv_meur"] = nan if supply is None else supply.x @ mean_pv
    return table


def fund_metrics(a: Assumptions, problem: FundProblem, result: CVaRResult, frontiers: dict | None = None) -> dict:
    """Everything ``metrics.json`` holds about the optimum (stress results are added by the caller).

    Keys: ``objective, cvar_beta, expected_pv_meur, var_meur, cvar_meur, capital_used_meur,
    budget_meur, contingent_used_meur, contingent_limit_meur, cvar_limit_meur,
    supply_secured_t_per_year, constraints, cvar_cap_shadow_price, guarantee_pricing`` and
    ``objective_value`` (in the objective's units), ``weighted_supply_t_per_year``,
    ``blend_supply_value_meur_per_t``, ``solver``, ``go_no_go`` (per project: selected,
    exposure, minimum ticket), ``prob_loss`` (limit, threshold, realised probability, the CVaR
    bound that imposes it, method) and ``frontier`` (``pv`` and ``supply`` lists of points).
    """
    from ..instruments import guarantee_pricing

    limits = a.fund.portfolio
    A, b, names = fund_constraints(a, problem)
    used = A @ result.x
    weights = supply_weights(a, problem)
    shadow = result.shadow_prices or {}
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
                            "shadow_price": shadow.get(n)}
                        for n, u, lim in zip(names, used, b)},
        "cvar_cap_shadow_price": shadow.get("cvar cap"),
        "guarantee_pricing": guarantee_pricing(a, problem.columns),
        "concession_meur": float(problem.concession_meur @ result.x),
        "concession_budget_meur": limits.concession_budget_meur,
        "market_value_method": "every position at its market rate (fundmodel.rates): equity at the cost of "
                               "equity, guarantees at the loan's rate, covers at risk-free + country risk "
                               "premium, floors at risk-free; concession = value at the policy rate "
                               f"({a.fund.discount_rate_nominal:.1%}) minus market value",
        "entry": entry_terms(problem),
        "unavailable": {n: c.reason for n, c in zip(problem.names, problem.columns) if c.reason},
        "objective_value": result.objective_value,
        "weighted_supply_t_per_year": float(weights @ result.x),
        "blend_supply_value_meur_per_t": limits.blend_supply_value_meur_per_t,
        "solver": result.solver,
    }
    tickets = project_tickets(a, problem) if limits.go_no_go else {}
    exposure = project_exposures(problem, result.x)
    chosen = _selected(problem, result.x)
    metrics["go_no_go"] = {
        "enabled": limits.go_no_go,
        "max_projects": limits.max_projects,
        "projects_selected": int(sum(chosen.values())),
        "projects": {pid: {"selected": chosen[pid], "exposure_meur": exposure[pid],
                           "min_ticket_meur": tickets.get(pid)} for pid in chosen},
    }
    prob = {"max_prob_loss": limits.max_prob_loss, "threshold_meur": limits.prob_loss_threshold_meur,
            "realised_prob_loss": float(np.mean(result.losses > limits.prob_loss_threshold_meur)),
            "method": "CVaR bound: CVaR_(1-max_prob_loss)(loss) <= threshold implies P(loss > threshold) "
                      "<= max_prob_loss (Rockafellar-Uryasev 2002)"}
    if limits.max_prob_loss is not None:
        prob["cvar_bound_meur"] = result.cvar_limits.get(PROB_LOSS)
        prob["binding"] = bool(PROB_LOSS in result.binding)
        prob["shadow_price"] = shadow.get(PROB_LOSS)
    metrics["prob_loss"] = prob
    if frontiers is not None:
        mean_pv = problem.mean_values_meur
        metrics["frontier"] = {
            key: [{"point": i + 1, "expected_pv_meur": float(x @ mean_pv), "cvar_meur": float(c),
                   "var_meur": float(v), "weighted_supply_t_per_year": float(x @ weights)}
                  for i, (x, c, v) in enumerate(zip(f.x, f.cvar, f.var))]
            for key, f in frontiers.items()
        }
    return metrics
