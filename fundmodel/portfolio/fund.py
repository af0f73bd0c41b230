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
from .measures import cvar_from_losses, var_from_losses
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
