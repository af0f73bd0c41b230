"""CVaR-optimal allocations over a scenario matrix (Rockafellar & Uryasev linear programme).

Generic building block of the portfolio optimiser: it knows about scenarios, decision
variables and linear constraints, nothing about mines.

- :func:`optimize_cvar` (and the shortcut :func:`minimize_cvar`): minimise CVaR, maximise
  the expected value under a CVaR cap, or maximise ``mean - lambda * CVaR``, under the
  caller's linear constraints, with integer variables through ``scipy.optimize.milp``.
  Returns a :class:`CVaRResult` with shadow prices and the binding constraints.
- Errors: :class:`~fundmodel.portfolio.errors.InfeasibleProblem` with the smallest
  relaxation of each conflicting constraint (:mod:`fundmodel.portfolio.diagnose`), never a
  bare solver message; :class:`UnboundedProblem`, :class:`SolverFailure`.

The CVaR of a solution is recomputed with :func:`fundmodel.portfolio.measures.cvar_from_losses`;
the solver arrays live in :mod:`fundmodel.portfolio._highs`; frontiers in
:mod:`fundmodel.portfolio.frontier`.

Conventions (those of :mod:`fundmodel.portfolio.measures`): ``scenario_values`` is
``(n_scenarios, n_assets)``, the value of one unit of each decision variable in each
scenario; losses are ``-scenario_values @ x``, positive.

References
----------
.. [1] R. T. Rockafellar and S. Uryasev, "Optimization of conditional value-at-risk",
   Journal of Risk 2(3), 21-41, 2000 (the linear programme).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
from scipy import sparse

from ._highs import Model, Solution, solve_model
from .diagnose import diagnose_infeasible, unbounded_message
from .errors import SolverFailure, UnboundedProblem
from .measures import _as_scenarios, _check_beta, _probabilities, cvar_from_losses, var_from_losses

__all__ = ["MEAN_FLOOR", "CVAR_CAP", "Objective", "CVaRResult", "optimize_cvar", "minimize_cvar"]

#: Name of the expected-value floor in shadow prices, ``binding`` and relaxations.
MEAN_FLOOR = "mean floor"
#: Name of the CVaR cap in shadow prices, ``binding`` and relaxations.
CVAR_CAP = "cvar cap"


# --------------------------------------------------------------------------- enums and results
class Objective(str, Enum):
    """What :func:`optimize_cvar` optimises."""

    #: minimise the CVaR (optionally subject to a mean floor)
    MIN_CVAR = "min_cvar"
    #: maximise the expected value (optionally subject to a CVaR cap)
    MAX_MEAN = "max_mean"
    #: maximise ``expected value - risk_aversion * CVaR``
    BLEND = "blend"

    @property
    def sense(self) -> str:
        """``"min"`` or ``"max"``: the direction in which the reported objective improves."""
        return "min" if self is Objective.MIN_CVAR else "max"


@dataclass(frozen=True)
class CVaRResult:
    """Solution of :func:`optimize_cvar`.

    Attributes
    ----------
    x : ndarray of shape (n_assets,)
        Optimal amount of each decision variable.
    names : tuple of str
        Name of each decision variable.
    objective : Objective
        What was optimised.
    objective_value : float
        Optimal objective as reported by the solver: the CVaR (``min_cvar``), the expected
        value (``max_mean``) or ``expected value - risk_aversion * CVaR`` (``blend``).
    expected_value : float
        ``mean_values @ x`` [value units].
    var : float
        Value-at-risk at ``beta`` of the solution's losses (lower quantile, see
        :func:`var_from_losses`) [value units, loss positive].
    cvar : float
        CVaR at ``beta`` of the solution's losses, recomputed exactly with
        :func:`cvar_from_losses` [value units, loss positive]. Equal to the LP's
        ``alpha + sum(p * u) / (1 - beta)`` at a min-CVaR optimum; never above the cap.
    beta : float
        Confidence level.
    losses : ndarray of shape (n_scenarios,)
        ``-scenario_values @ x`` [value units].
    status : int
        Solver status (0: optimal; 1: limit reached with a feasible solution).
    message : str
        Solver message.
    shadow_prices : dict of str to float or None
        For LPs: improvement of the objective (CVaR *decrease* for ``min_cvar``, increase
        of the maximised quantity otherwise) per unit relaxation of each named constraint:
        raising a ``<=`` row's right-hand side, lowering the mean floor (``"mean floor"``),
        raising the CVaR cap (``"cvar cap"``); for an equality, per unit *increase* of its
        right-hand side (either sign). Non-negative for inequalities; zero when slack.
        These are the LP multipliers (the dual solution HiGHS returns; equal to the
        negated ``ineqlin`` / ``eqlin`` marginals of the primal). Units: objective units
        per unit of the constraint. ``None`` for mixed-integer problems: a MILP has no
        dual values.
    binding : tuple of str
        Named constraints active at the solution (slack within tolerance); equalities
        are always listed.
    solver : str
        ``"highs (linprog)"`` or ``"highs (milp)"``.
    solve_seconds : float
        Wall time of the solve [s].
    cvar_limits : dict of str to float
        Exact CVaR of the solution at the level of each of the ``cvar_limits`` of
        :func:`optimize_cvar`, by name [value units].
    """

    x: np.ndarray
    names: tuple[str, ...]
    objective: Objective
    objective_value: float
    expected_value: float
    var: float
    cvar: float
    beta: float
    losses: np.ndarray = field(repr=False)
    status: int
    message: str
    shadow_prices: dict[str, float] | None
    binding: tuple[str, ...]
    solver: str
    solve_seconds: float
    cvar_limits: dict[str, float] = field(default_factory=dict)

    def allocation(self) -> dict[str, float]:
        """``{name: x_i}`` of the solution."""
        return dict(zip(self.names, self.x.tolist()))


def _check_names(names, n: int, what: str, default: str) -> list[str]:
    if names is None:
        return [f"{default}[{i}]" for i in range(n)]
    out = [str(s) for s in names]
    if len(out) != n:
        raise ValueError(f"{what} must have {n} entries, got {len(out)}")
    return out


def _matrix(a, b, n: int, what: str):
    if a is None and b is None:
        return np.zeros((0, n)), np.zeros(0)
    if a is None or b is None:
        raise ValueError(f"A_{what} and b_{what} must be given together")
    a = a.toarray() if sparse.issparse(a) else np.asarray(a, dtype=float)
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_1d(np.asarray(b, dtype=float))
    if a.shape[1] != n or b.shape != (a.shape[0],):
        raise ValueError(f"A_{what} must have shape (n_rows, {n}) and b_{what} shape (n_rows,), "
                         f"got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"A_{what} and b_{what} must be finite")
    return a, b


def _bounds(bounds, n: int, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    if bounds is None:
        return np.zeros(n), np.full(n, np.inf)
    arr = np.array(bounds, dtype=object)
    if arr.shape == (2,):
        arr = np.tile(arr, (n, 1))
    if arr.shape != (n, 2):
        raise ValueError(f"bounds must be one (low, high) pair or {n} pairs, got shape {arr.shape}")
    lb = np.array([-np.inf if v is None else float(v) for v in arr[:, 0]])
    ub = np.array([np.inf if v is None else float(v) for v in arr[:, 1]])
    bad = np.flatnonzero((lb > ub) | np.isnan(lb) | np.isnan(ub) | (lb == np.inf) | (ub == -np.inf))
    if bad.size:
        i = bad[0]
        raise ValueError(f"bounds of '{names[i]}' are empty or invalid: ({lb[i]}, {ub[i]})")
    return lb, ub


def optimize_cvar(
    scenario_values,
    *,
    beta: float = 0.95,
    objective: Objective | str = Objective.MIN_CVAR,
    mean_floor: float | None = None,
    cvar_cap: float | None = None,
    risk_aversion: float = 1.0,
    A_ub=None,
    b_ub=None,
    A_eq=None,
    b_eq=None,
    bounds=None,
    integrality=None,
    names: Sequence[str] | None = None,
    constraint_names: Sequence[str] | None = None,
    probabilities=None,
    mean_values=None,
    method: str = "highs",
    options: Mapping | None = None,
    binding_tol: float = 1e-7,
    cvar_limits: Sequence[tuple[str, float, float]] | None = None,
) -> CVaRResult:
    """Optimise an allocation for CVaR over a scenario matrix (Rockafellar-Uryasev LP).

    Variables ``x`` (the allocation), ``alpha`` (free, the VaR at the optimum) and
    ``u >= 0`` (one per scenario) with ``u_k >= -value_k . x - alpha``; the CVaR of ``x``
    is ``min over alpha, u of alpha + sum_k p_k u_k / (1 - beta)``.

    Parameters
    ----------
    scenario_values : array_like of shape (n_scenarios, n_assets)
        Value (P&L, gain positive) of one unit of each decision variable in each scenario
        [value units]. Columns of zeros are allowed (e.g. binary go/no-go variables).
    beta : float, default 0.95
        CVaR confidence level in [0, 1).
    objective : Objective or {"min_cvar", "max_mean", "blend"}
        Minimise the CVaR; maximise the expected value; or maximise
        ``expected value - risk_aversion * CVaR``.
    mean_floor : float, optional
        Constraint ``mean_values @ x >= mean_floor`` [value units], named ``"mean floor"``.
    cvar_cap : float, optional
        Constraint ``CVaR(x) <= cvar_cap`` [value units], named ``"cvar cap"``.
    risk_aversion : float, default 1.0
        ``lambda >= 0`` of the ``blend`` objective [value units per unit of CVaR].
    A_ub, b_ub : array_like of shape (n_ub, n_assets) and (n_ub,), optional
        Constraints ``A_ub @ x <= b_ub`` (dense or scipy.sparse).
    A_eq, b_eq : array_like of shape (n_eq, n_assets) and (n_eq,), optional
        Constraints ``A_eq @ x == b_eq``.
    bounds : (low, high) or sequence of n_assets pairs, optional
        Bounds per variable, ``None`` for no bound. Default ``(0, None)`` for every variable.
    integrality : array_like of shape (n_assets,), optional
        0 continuous, 1 integer (binary with bounds (0, 1)), as in ``scipy.optimize.milp``.
        If any entry is non-zero the problem is solved by ``milp`` and no shadow prices
        are available.
    names : sequence of str, optional
        Names of the variables (default ``x[i]``).
    constraint_names : sequence of str, optional
        Names of the rows of ``A_ub`` followed by those of ``A_eq``
        (default ``ub[i]``, ``eq[i]``); used in shadow prices, ``binding`` and errors.
    probabilities : array_like of shape (n_scenarios,), optional
        Scenario probabilities (non-negative, summing to 1); equal by default.
    mean_values : array_like of shape (n_assets,), optional
        Expected value per unit of each variable used by the mean floor and the
        objectives [value units]; default ``probabilities @ scenario_values`` (e.g. pass
        model means instead of sample means).
    method : {"highs", "highs-ds", "highs-ipm"}
        ``linprog`` method for LPs.
    options : mapping, optional
        Passed to ``linprog`` / ``milp`` (e.g. ``{"time_limit": 60}``).
    binding_tol : float, default 1e-7
        A constraint is binding when its slack is below ``binding_tol * max(1, |rhs|)``.
    cvar_limits : sequence of (str, float, float), optional
        Further CVaR caps ``(name, beta_t, cap_t)``: ``CVaR_beta_t(x) <= cap_t`` at their own
        confidence levels, each a named constraint (shadow price, ``binding``, relaxation)
        with its own auxiliary ``alpha_t, u_t``. E.g. a probability-of-loss limit
        ``P(loss > t) <= a`` is implied by ``(name, 1 - a, t)``, because
        ``VaR_beta <= CVaR_beta``.

    Returns
    -------
    CVaRResult

    Raises
    ------
    InfeasibleProblem
        With the smallest relaxation of each conflicting named constraint.
    UnboundedProblem
        When the objective can improve without limit.
    SolverFailure
        When HiGHS stops without a usable solution.
    ValueError
        For inconsistent shapes, NaN, empty bounds or an unknown objective.

    Notes
    -----
    LPs are solved through their explicit dual (built with scipy.sparse, no loop over
    scenarios): ``n_assets + 1`` equality rows, one bounded column per scenario (plus,
    with a CVaR cap, one two-entry row per scenario). The primal, with a row per
    scenario and dense columns, takes HiGHS about ten times longer at 20,000 scenarios.
    ``x`` and the VaR are the dual's row marginals; the shadow prices are its solution.
    MILPs are solved in the primal form by ``scipy.optimize.milp``. Without a CVaR in
    the objective or a cap (``max_mean`` alone) the scenarios are left out.
    An infeasible program is re-solved in elastic form (a non-negative slack on every
    named constraint, total slack minimised) and then once per conflicting constraint
    with only its slack free; variable bounds are never relaxed.

    Examples
    --------
    Two assets that hedge each other, fully invested:

    >>> values = np.array([[2.0, -1.0], [-1.0, 2.0]])
    >>> res = optimize_cvar(values, beta=0.5, A_eq=[[1.0, 1.0]], b_eq=[1.0],
    ...                     constraint_names=["fully invested"])
    >>> res.x.round(6).tolist(), round(res.cvar, 6), round(res.expected_value, 6)
    ([0.5, 0.5], -0.5, 0.5)
    >>> res.binding
    ('fully invested',)
    """
    t0 = time.perf_counter()
    prep = _prepare(scenario_values, beta=beta, objective=objective, mean_floor=mean_floor, cvar_cap=cvar_cap,
                    risk_aversion=risk_aversion, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds,
                    integrality=integrality, names=names, constraint_names=constraint_names,
                    probabilities=probabilities, mean_values=mean_values, cvar_limits=cvar_limits,
                    binding_tol=binding_tol)
    sol = solve_model(prep.model, method, options)
    if sol.status in (2, 5):
        diagnose_infeasible(prep.model, method, options)  # raises
    if sol.status == 3:
        raise UnboundedProblem(unbounded_message(prep.model))
    if sol.x is None or sol.status not in (0, 1):
        raise SolverFailure(f"HiGHS could not solve the CVaR program (status {sol.status}): {sol.message}")
    return _finish(prep, sol, t0)


@dataclass
class _Prepared:
    """A validated problem of :func:`optimize_cvar` and what is needed to report its solution."""

    model: Model
    v: np.ndarray
    p: np.ndarray | None
    mean: np.ndarray
    objective: Objective
    beta: float
    ub_names: list[str]
    eq_names: list[str]
    cvar_cap: float | None
    limits: list[tuple[str, float, float, int]]  # (name, beta, cap, row) of the extra CVaR caps
    binding_tol: float
    floor_row: int | None


def _prepare(scenario_values, *, beta, objective, mean_floor, cvar_cap, risk_aversion, A_ub, b_ub, A_eq, b_eq,
             bounds, integrality, names, constraint_names, probabilities, mean_values, cvar_limits,
             binding_tol) -> _Prepared:
    """Validate the arguments of :func:`optimize_cvar` and build its :class:`Model`."""
    beta = _check_beta(beta)
    try:
        objective = Objective(objective)
    except ValueError:
        raise ValueError(f"objective must be one of {[o.value for o in Objective]}, got {objective!r}") from None
    v = _as_scenarios(scenario_values)
    n_scen, n = v.shape
    p = _probabilities(probabilities, n_scen)
    p_eff = np.full(n_scen, 1.0 / n_scen) if p is None else p
    var_names = _check_names(names, n, "names", "x")
    if len(set(var_names)) != n:
        raise ValueError("names must be unique")
    mean = p_eff @ v if mean_values is None else np.asarray(mean_values, dtype=float)
    if mean.shape != (n,) or not np.all(np.isfinite(mean)):
        raise ValueError(f"mean_values must be {n} finite numbers, got shape {mean.shape}")
    a_ub, b_ub_ = _matrix(A_ub, b_ub, n, "ub")
    a_eq, b_eq_ = _matrix(A_eq, b_eq, n, "eq")
    cnames = _check_names(constraint_names, a_ub.shape[0] + a_eq.shape[0], "constraint_names", "row")
    if constraint_names is None:
        cnames = [f"ub[{i}]" for i in range(a_ub.shape[0])] + [f"eq[{i}]" for i in range(a_eq.shape[0])]
    ub_names, eq_names = cnames[:a_ub.shape[0]], cnames[a_ub.shape[0]:]
    lb, ub = _bounds(bounds, n, var_names)
    if objective is Objective.BLEND and not (np.isfinite(risk_aversion) and risk_aversion >= 0):
        raise ValueError(f"risk_aversion must be a finite number >= 0, got {risk_aversion!r}")
    for label, val in (("mean_floor", mean_floor), ("cvar_cap", cvar_cap)):
        if val is not None and not np.isfinite(val):
            raise ValueError(f"{label} must be finite, got {val!r}")
    limits_in = []
    for item in cvar_limits or ():
        try:
            lname, lbeta, lcap = item
        except (TypeError, ValueError):
            raise ValueError(f"cvar_limits entries must be (name, beta, cap) triples, got {item!r}") from None
        lbeta = _check_beta(lbeta)
        if not np.isfinite(float(lcap)):
            raise ValueError(f"cap of CVaR limit '{lname}' must be finite, got {lcap!r}")
        limits_in.append((str(lname), lbeta, float(lcap)))
    integ = None
    if integrality is not None:
        integ_x = np.broadcast_to(np.asarray(integrality, dtype=int), (n,)).copy()
        if np.any((integ_x < 0) | (integ_x > 1)):
            raise ValueError("integrality entries must be 0 (continuous) or 1 (integer)")
        if integ_x.any():
            integ = integ_x

    need_tail = objective is not Objective.MAX_MEAN or cvar_cap is not None
    theta = {Objective.MIN_CVAR: 1.0, Objective.MAX_MEAN: 0.0, Objective.BLEND: float(risk_aversion)}[objective]
    c_x = np.zeros(n) if objective is Objective.MIN_CVAR else -mean
    g_rows, h = [a_ub], [b_ub_]
    cap_row = floor_row = None
    if mean_floor is not None:
        floor_row = sum(r.shape[0] for r in g_rows)
        g_rows.append(-mean[None, :])
        h.append(np.array([-float(mean_floor)]))
        ub_names.append(MEAN_FLOOR)
    if cvar_cap is not None:
        cap_row = sum(r.shape[0] for r in g_rows)
        g_rows.append(np.zeros((1, n)))
        h.append(np.array([float(cvar_cap)]))
        ub_names.append(CVAR_CAP)
    limits, extra_tails = [], []
    for lname, lbeta, lcap in limits_in:
        row = sum(r.shape[0] for r in g_rows)
        g_rows.append(np.zeros((1, n)))
        h.append(np.array([lcap]))
        ub_names.append(lname)
        limits.append((lname, lbeta, lcap, row))
        extra_tails.append((p_eff / (1.0 - lbeta), row))
    row_names = ub_names + eq_names
    if len(set(row_names)) != len(row_names):
        raise ValueError(f"constraint names must be unique and differ from '{MEAN_FLOOR}' and "
                         f"'{CVAR_CAP}', got {row_names}")
    model = Model(
        c_x=c_x, theta=theta, values=v if (need_tail or extra_tails) else None,
        tau=p_eff / (1.0 - beta) if need_tail else None,
        g=sparse.csr_array(np.vstack(g_rows)), h=np.concatenate(h), cap_row=cap_row,
        e_mat=sparse.csr_array(a_eq), e=b_eq_, lb=lb, ub=ub, integrality=integ,
        row_names=row_names, var_names=var_names, extra_tails=extra_tails,
    )
    return _Prepared(model=model, v=v, p=p, mean=mean, objective=objective, beta=beta, ub_names=ub_names,
                     eq_names=eq_names, cvar_cap=None if cvar_cap is None else float(cvar_cap), limits=limits,
                     binding_tol=binding_tol, floor_row=floor_row)


def _finish(prep: _Prepared, sol: Solution, t0: float) -> CVaRResult:
    """The :class:`CVaRResult` of a usable solution (exact VaR and CVaR from its losses)."""
    model = prep.model
    x = np.clip(sol.x, model.lb, model.ub) + 0.0  # remove round-off outside the bounds (and -0.0)
    losses = -(prep.v @ x)
    cvar = cvar_from_losses(losses, prep.beta, prep.p)
    var = var_from_losses(losses, prep.beta, prep.p)
    ev = float(prep.mean @ x)
    objective_value = sol.fun if prep.objective is Objective.MIN_CVAR else -sol.fun
    shadow = None
    if sol.y is not None:
        shadow = {name: float(val) + 0.0 for name, val in zip(model.row_names, np.concatenate([sol.y, sol.w]))}
    slack = model.h - model.g @ x
    if model.cap_row is not None:  # the exact CVaR, not the LP's bound on it
        slack[model.cap_row] = prep.cvar_cap - cvar
    limit_cvar = {}
    for lname, lbeta, lcap, row in prep.limits:
        limit_cvar[lname] = float(cvar_from_losses(losses, lbeta, prep.p))
        slack[row] = lcap - limit_cvar[lname]
    scale = np.maximum(1.0, np.abs(model.h))
    ub_names = prep.ub_names
    binding = [ub_names[i] for i in range(len(ub_names)) if slack[i] <= prep.binding_tol * scale[i]]
    binding += prep.eq_names
    return CVaRResult(
        x=x, names=tuple(model.var_names), objective=prep.objective, objective_value=objective_value,
        expected_value=ev, var=float(var), cvar=float(cvar), beta=prep.beta, losses=losses,
        status=sol.status, message=sol.message, shadow_prices=shadow, binding=tuple(binding),
        solver="highs (milp)" if model.integrality is not None else "highs (linprog)",
        solve_seconds=time.perf_counter() - t0, cvar_limits=limit_cvar,
    )


def minimize_cvar(scenario_values, *, beta: float = 0.95, mean_floor: float | None = None,
                  **constraints) -> CVaRResult:
    """Minimum-CVaR allocation: :func:`optimize_cvar` with ``objective="min_cvar"``.

    Parameters
    ----------
    scenario_values : array_like of shape (n_scenarios, n_assets)
        Value of one unit of each variable in each scenario [value units].
    beta : float, default 0.95
        Confidence level.
    mean_floor : float, optional
        Required expected value [value units].
    **constraints
        Any other keyword of :func:`optimize_cvar` (``A_ub``, ``bounds``, ``names``, ...).

    Returns
    -------
    CVaRResult

    Examples
    --------
    >>> values = np.array([[2.0, -1.0], [-1.0, 2.0], [0.5, 0.5]])
    >>> res = minimize_cvar(values, beta=0.6, A_eq=[[1, 1]], b_eq=[1])
    >>> res.x.round(6).tolist()
    [0.5, 0.5]
    """
    return optimize_cvar(scenario_values, beta=beta, objective=Objective.MIN_CVAR,
                         mean_floor=mean_floor, **constraints)
