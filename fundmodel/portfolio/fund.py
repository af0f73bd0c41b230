"""The fund's allocation problem: instrument payoffs and fund limits -> a CVaR programme.

Translates the fund's limits in ``fund.yaml`` (``portfolio``) into the linear constraints
of the generic optimiser :func:`fundmodel.portfolio.optimize.optimize_cvar`; it is the only
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
supply counted once     per project and material: tonnes per unit of all its columns . x <=
                        the project's EU-available output of the material (t/year)
concession budget       concession per unit . x <= concession_budget_meur (value at the
                        policy rate minus market value; never maximised)
return floor            E[PV per unit] . x >= return_floor_meur (objectives max_supply, blend)
instrument caps         0 <= x <= max_units (JOGMEC/DFC/MIGA caps from instruments.yaml)
CVaR limit              CVaR_beta(-PV . x) <= cvar_limit_meur
probability of loss     CVaR_(1-a)(-PV . x) <= t, which implies P(-PV . x > t) <= a (see below)
go/no-go (binary z_p)   x_j <= max_units_j z_p for each column j of project p;
                        min_ticket_p z_p <= exposure of p's columns . x;  sum_p z_p <= max_projects
======================  =========================================================================

Exposure is capital plus contingent exposure per unit (EUR m). The objective is the expected
PV (``max_pv``), the expected tonnes secured weighted by ``supply_weights`` (``max_supply``), or
their ``blend``: expected PV + ``blend_supply_value_meur_per_t`` x weighted tonnes per year,
all in EUR m (the blend value is the PV the fund would give up for one more weighted tonne a
year of secured supply; weights are relative to NdPr by default, so it is in EUR m per
NdPr-equivalent tonne a year).

Probability of loss: the limit ``P(L > t) <= a`` on the fund's loss ``L = -PV`` is not
convex in the allocation; it is imposed through the sufficient condition
``CVaR_{1-a}(L) <= t`` (Rockafellar & Uryasev 2002): ``VaR_{1-a}(L) <= CVaR_{1-a}(L) <= t``
and ``P(L > VaR_{1-a}(L)) <= a``, so every allocation meeting the CVaR bound meets the
probability limit, exactly on the simulated scenarios. It is conservative: the realised
probability is usually well below ``a`` and some allocations meeting the limit are excluded.

Go/no-go decisions are binary variables solved with ``scipy.optimize.milp`` (HiGHS,
default relative gap 1e-4). The LP without them is solved first: when its solution already
respects every ticket and the project count it is optimal for the mixed-integer programme
too (whose feasible set it contains), and the LP's shadow prices are kept; otherwise the
MILP is solved (about 1-2 minutes at 20,000 scenarios). The frontiers are then traced with
the go/no-go decisions of the optimum held fixed (projects out stay out, projects in keep
their minimum ticket), which leaves linear programmes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..assumptions.model import Assumptions
from ..errors import AssumptionError, Issue
from ..instruments import InstrumentPayoff, entry_prices, project_payoffs
from ..scenarios import ScenarioSet
from .measures import cvar_from_losses, euler_contributions, var_from_losses
from .optimize import CVaRResult, optimize_cvar

#: Name of the probability-of-loss limit (a CVaR bound) in constraints and shadow prices.
PROB_LOSS = "probability of loss"


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
    mean_values_meur : ndarray of shape (n_columns,)
        Expected PV per unit at market rates over every scenario of the run (also when
        ``values_meur`` holds only the solve sample, see :func:`first_scenarios`).
    concession_meur : ndarray of shape (n_columns,)
        Concession per unit: expected value at the fund's policy rate minus market value.
    entry : dict of str to EntryPrice
        The equity entry terms the problem was priced with (kept for the stresses).
    """

    columns: list[InstrumentPayoff]
    names: list[str]
    values_meur: np.ndarray
    capital_meur: np.ndarray
    contingent_meur: np.ndarray
    tonnes_t: dict[str, np.ndarray]
    countries: list[str]
    materials: list[str]
    mean_values_meur: np.ndarray
    concession_meur: np.ndarray
    entry: dict

    @property
    def exposure_meur(self) -> np.ndarray:
        """Capital plus contingent exposure per unit, shape (n_columns,)."""
        return self.capital_meur + self.contingent_meur


def build_fund_problem(a: Assumptions, scenarios: ScenarioSet, entry: dict | None = None) -> FundProblem:
    """Collect every instrument on every project into one problem.

    Parameters
    ----------
    a : Assumptions
        With ``instruments.yaml``.
    scenarios : ScenarioSet
        The simulation's scenarios (:class:`fundmodel.scenarios.ScenarioSet`).
    entry : dict of str to EntryPrice, optional
        Equity entry terms; default: priced on these scenarios (:func:`fundmodel.instruments.entry_prices`).
        Stressed re-simulations pass the base case's terms: a stake is bought once.

    Returns
    -------
    FundProblem
    """
    if entry is None:
        entry = entry_prices(a, scenarios)
    columns = [x for pid in a.projects for x in project_payoffs(a, scenarios, pid, entry=entry[pid])]
    return _problem(a, columns, entry)


def first_scenarios(problem: FundProblem, n_scenarios: int) -> FundProblem:
    """The problem with its scenario matrix cut to scenarios ``[0, n_scenarios)``.

    A sample-average approximation for large runs: the CVaR (and the probability-of-loss
    bound) is computed on the first ``n_scenarios`` scenarios, which are those of a run of
    that size with the same seed (scenarios do not depend on the count,
    :mod:`fundmodel.sampling`); every expectation (PV, capital, tonnes) and the largest
    contingent exposure stay those of all scenarios, so the budget, contingent, supply and
    concentration limits and the expected PV are exact for the whole run.

    Parameters
    ----------
    problem : FundProblem
    n_scenarios : int

    Returns
    -------
    FundProblem
    """
    return dataclasses.replace(problem, values_meur=problem.values_meur[: int(n_scenarios)])


def _problem(a: Assumptions, columns: list[InstrumentPayoff], entry: dict) -> FundProblem:
    values = np.column_stack([x.pv_meur for x in columns])
    names = [f"{x.project}/{x.instrument}" + (f":{x.material}" if x.material else "") for x in columns]
    materials = sorted({m for x in columns for m in x.tonnes_t})
    tonnes = {m: np.array([float(x.tonnes_t[m].mean()) if m in x.tonnes_t else 0.0 for x in columns])
              for m in materials}
    return FundProblem(
        columns=columns,
        names=names,
        values_meur=values,
        capital_meur=np.array([float(x.capital_meur.mean()) for x in columns]),
        contingent_meur=np.array([x.contingent_meur for x in columns]),
        tonnes_t=tonnes,
        countries=[a.projects[x.project].country for x in columns],
        materials=[a.projects[x.project].materials[0] for x in columns],
        mean_values_meur=values.mean(axis=0),
        concession_meur=np.array([x.concession_meur for x in columns]),
        entry=dict(entry),
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
    for (project, material), available in supply_caps(problem).items():
        # tonnes counted once: all instruments on a project together secure at most its EU-available output
        member = np.array([c.project == project for c in problem.columns], dtype=float)
        add(problem.tonnes_t[material] * member, available, f"supply cap {project} {material}")
    if limits.concession_budget_meur is not None:
        add(problem.concession_meur, limits.concession_budget_meur, "concession budget")
    if limits.objective in ("max_supply", "blend") and limits.return_floor_meur is not None:
        add(-problem.mean_values_meur, -limits.return_floor_meur, "return floor")
    return np.vstack(rows), np.array(rhs), names


def supply_caps(problem: FundProblem) -> dict[tuple[str, str], float]:
    """EU-available output per project and material (t/year over the supply window).

    The cap on the tonnes that every instrument on the project secures together: equity
    offtake, a guarantee's supply commitment and a floor's contracted volume share one
    physical output. Only pairs some column secures tonnes of are listed.
    """
    caps: dict[tuple[str, str], float] = {}
    for k, c in enumerate(problem.columns):
        for material, available in c.eu_available_t.items():
            if material in problem.tonnes_t and problem.tonnes_t[material][k] > 0:
                caps[(c.project, material)] = float(available)
    return caps


def supply_weights(a: Assumptions, problem: FundProblem) -> np.ndarray:
    """Weighted tonnes per year secured by one unit of each column (``supply_weights``).

    Returns
    -------
    ndarray of shape (n_columns,)
        ``sum_m weight_m * tonnes_m`` per unit [weighted t/year].
    """
    weights = np.zeros(len(problem.names))
    for material, w in a.fund.portfolio.supply_weights.items():
        weights = weights + w * problem.tonnes_t.get(material, 0.0)
    return weights


def objective_values(a: Assumptions, problem: FundProblem) -> np.ndarray:
    """Per-unit objective of each column: expected PV, weighted supply or their blend.

    Returns
    -------
    ndarray of shape (n_columns,)
        EUR m (``max_pv``, ``blend``) or weighted t/year (``max_supply``) per unit.
    """
    limits = a.fund.portfolio
    mean_pv = problem.mean_values_meur
    if limits.objective == "max_supply":
        return supply_weights(a, problem)
    if limits.objective == "blend":
        return mean_pv + limits.blend_supply_value_meur_per_t * supply_weights(a, problem)
    return mean_pv


def cvar_limits(a: Assumptions) -> list[tuple[str, float, float]]:
    """The probability-of-loss limit as a CVaR bound ``(name, 1 - max_prob_loss, threshold)``."""
    limits = a.fund.portfolio
    if limits.max_prob_loss is None:
        return []
    return [(PROB_LOSS, 1.0 - limits.max_prob_loss, limits.prob_loss_threshold_meur)]


def project_tickets(a: Assumptions, problem: FundProblem) -> dict[str, float]:
    """Minimum ticket (EUR m of exposure) of every project with columns, when go/no-go is on.

    Raises
    ------
    AssumptionError
        When ``min_ticket_by_project_meur`` names a project that is not in the portfolio.
    """
    limits = a.fund.portfolio
    projects = list(dict.fromkeys(c.project for c in problem.columns))
    unknown = sorted(set(limits.min_ticket_by_project_meur) - set(projects))
    if unknown:
        raise AssumptionError([Issue("fund.yaml", f"portfolio.min_ticket_by_project_meur.{pid}",
                                     f"must name a project of the portfolio ({', '.join(projects)})", pid)
                               for pid in unknown])
    return {pid: float(limits.min_ticket_by_project_meur.get(pid, limits.min_ticket_meur)) for pid in projects}


def project_exposures(problem: FundProblem, x: np.ndarray) -> dict[str, float]:
    """Exposure (capital + contingent, EUR m) of an allocation per project."""
    out: dict[str, float] = {}
    for col, e, size in zip(problem.columns, problem.exposure_meur, x):
        out[col.project] = out.get(col.project, 0.0) + float(e * size)
    return out


def _selected(problem: FundProblem, x: np.ndarray, tol: float = 1e-7) -> dict[str, bool]:
    """Projects with any position (a column above ``tol`` of its cap)."""
    out: dict[str, bool] = {}
    for col, size in zip(problem.columns, x):
        out[col.project] = out.get(col.project, False) or bool(size > tol * max(col.max_units, 1e-12))
    return out


def _respects_go_no_go(a: Assumptions, problem: FundProblem, x: np.ndarray) -> bool:
    """Whether an allocation already meets every ticket and the project count."""
    tickets = project_tickets(a, problem)
    exposure = project_exposures(problem, x)
    chosen = _selected(problem, x)
    n_in = sum(chosen.values())
    if a.fund.portfolio.max_projects is not None and n_in > a.fund.portfolio.max_projects:
        return False
    return all(not chosen[pid] or exposure[pid] >= tickets[pid] * (1 - 1e-9) - 1e-9 for pid in tickets)


def fixed_selection_constraints(a: Assumptions, problem: FundProblem, selection: dict[str, bool]):
    """Bounds and ticket rows of the LP with the go/no-go decisions fixed.

    Projects out have their columns bounded to zero; projects in must reach their ticket:
    ``-exposure_p . x <= -min_ticket_p``.

    Returns
    -------
    bounds : list of (float, float)
    A : ndarray of shape (n_rows, n_columns)
    b : ndarray of shape (n_rows,)
    names : list of str
    """
    tickets = project_tickets(a, problem)
    bounds = [(0.0, c.max_units if selection.get(c.project, True) else 0.0) for c in problem.columns]
    rows, rhs, names = [], [], []
    member = np.array([c.project for c in problem.columns])
    for pid, chosen in selection.items():
        if chosen and tickets[pid] > 0:
            rows.append(-problem.exposure_meur * (member == pid))
            rhs.append(-tickets[pid])
            names.append(f"min ticket {pid}")
    n = len(problem.names)
    return bounds, np.array(rows).reshape(-1, n), np.array(rhs), names


def optimize_fund(a: Assumptions, problem: FundProblem, *, options: dict | None = None) -> CVaRResult:
    """Solve the fund's allocation under its limits.

    Parameters
    ----------
    a : Assumptions
        With the fund's limits (``fund.yaml: portfolio``).
    problem : FundProblem
    options : dict, optional
        HiGHS options (e.g. ``{"mip_rel_gap": 1e-6}``, ``{"time_limit": 600}``).

    Returns
    -------
    CVaRResult
        Units of every column (``names`` as in the problem); ``expected_value`` is the
        expected PV of the fund (EUR m) whatever the objective, ``objective_value`` the
        optimised objective (expected PV, weighted supply or their blend, see
        :func:`objective_values`); VaR and CVaR of the fund's PV at ``cvar_beta``; shadow
        prices of the named limits in units of the objective (LP only; ``None`` when the
        go/no-go MILP was needed, ``solver`` tells which).

    Raises
    ------
    InfeasibleProblem
        Naming the limits that conflict and the smallest relaxation of each.
    AssumptionError
        For a minimum ticket of a project that is not in the portfolio.
    """
    limits = a.fund.portfolio
    A, b, names = fund_constraints(a, problem)
    bounds = [(0.0, x.max_units) for x in problem.columns]
    mean_values = objective_values(a, problem)
    common = dict(beta=limits.cvar_beta, objective="max_mean", cvar_cap=limits.cvar_limit_meur,
                  mean_values=mean_values, cvar_limits=cvar_limits(a), options=options)
    if limits.go_no_go:
        tickets = project_tickets(a, problem)  # checks the project names first
    result = optimize_cvar(problem.values_meur, A_ub=A, b_ub=b, bounds=bounds, names=problem.names,
                           constraint_names=names, **common)
    mean_pv = problem.mean_values_meur
    if not limits.go_no_go or _respects_go_no_go(a, problem, result.x):
        # (with go/no-go: the LP optimum is feasible, hence optimal, for the MILP)
        return dataclasses.replace(result, expected_value=float(mean_pv @ result.x))

    # binary z_p per project: x_j <= cap_j z_p, ticket_p z_p <= exposure_p . x, sum z_p <= max_projects
    projects = list(tickets)
    n, k = len(problem.names), len(projects)
    member = np.array([[c.project == pid for c in problem.columns] for pid in projects], dtype=float)  # (k, n)
    caps = np.array([c.max_units for c in problem.columns])
    link = np.hstack([np.eye(n), -(member.T * caps[:, None])])
    ticket = np.hstack([-member * problem.exposure_meur, np.diag([tickets[p] for p in projects])])
    rows = [np.hstack([A, np.zeros((A.shape[0], k))]), link, ticket]
    rhs = [b, np.zeros(n), np.zeros(k)]
    row_names = (list(names) + [f"go/no-go {name}" for name in problem.names]
                 + [f"min ticket {pid}" for pid in projects])
    if limits.max_projects is not None:
        rows.append(np.concatenate([np.zeros(n), np.ones(k)])[None, :])
        rhs.append(np.array([float(limits.max_projects)]))
        row_names.append("max projects")
    values = np.hstack([problem.values_meur, np.zeros((problem.values_meur.shape[0], k))])
    common["mean_values"] = np.concatenate([mean_values, np.zeros(k)])
    milp_result = optimize_cvar(
        values, A_ub=np.vstack(rows), b_ub=np.concatenate(rhs), bounds=bounds + [(0.0, 1.0)] * k,
        integrality=np.concatenate([np.zeros(n, dtype=int), np.ones(k, dtype=int)]),
        names=list(problem.names) + [f"go {pid}" for pid in projects], constraint_names=row_names, **common)
    x = milp_result.x[:n].copy()
    x[np.abs(x) < 1e-12] = 0.0
    binding = tuple(name for name in milp_result.binding if not name.startswith("go/no-go "))
    return dataclasses.replace(milp_result, x=x, names=tuple(problem.names), binding=binding,
                               losses=-(problem.values_meur @ x), expected_value=float(mean_pv @ x))


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


def frontier_job(a: Assumptions, problem: FundProblem, n_points: int, selection: dict[str, bool] | None = None) -> dict:
    """Arguments of :func:`fundmodel.portfolio.frontier.efficient_frontiers` for the fund's frontiers.

    Two frontiers under the fund's limits (the CVaR limit excepted, it is the frontier's axis;
    the probability-of-loss limit included): ``"pv"``, expected PV vs minimal CVaR, and, when
    ``supply_weights`` weight anything, ``"supply"``, weighted tonnes per year secured vs
    minimal CVaR. With ``selection`` (go/no-go decisions of the optimum) projects out are held
    at zero and projects in at their minimum ticket.
    """
    limits = a.fund.portfolio
    A, b, names = fund_constraints(a, problem)
    bounds = [(0.0, c.max_units) for c in problem.columns]
    if selection is not None:
        bounds, A2, b2, names2 = fixed_selection_constraints(a, problem, selection)
        A, b, names = np.vstack([A, A2]), np.concatenate([b, b2]), list(names) + names2
    merits = {"pv": problem.mean_values_meur}
    weights = supply_weights(a, problem)
    if np.any(weights > 0):
        merits["supply"] = weights
    return dict(scenario_values=problem.values_meur, merits=merits, n_points=n_points, beta=limits.cvar_beta,
                A_ub=A, b_ub=b, bounds=bounds, names=list(problem.names), constraint_names=list(names),
                cvar_limits=cvar_limits(a))


def evaluate_on(a: Assumptions, problem: FundProblem, result: CVaRResult) -> CVaRResult:
    """``result`` (an allocation solved on some sample) re-evaluated on ``problem``'s scenarios.

    The allocation, binding limits and shadow prices are those of the solve; expected PV,
    VaR, CVaR, losses and the objective value are recomputed on ``problem``.
    """

    beta = a.fund.portfolio.cvar_beta
    losses = -(problem.values_meur @ result.x)
    objective = float(objective_values(a, problem) @ result.x)
    return dataclasses.replace(
        result, losses=losses, expected_value=float(problem.mean_values_meur @ result.x),
        var=float(var_from_losses(losses, beta)), cvar=float(cvar_from_losses(losses, beta)),
        objective_value=objective)


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
