"""Efficient frontiers: the least CVaR at each level of a figure of merit (expected value, tonnes ...).

Each point is :func:`~fundmodel.portfolio.optimize.optimize_cvar` with a floor on the figure
of merit; with a warm start (LPs) the points are re-solved from the previous point's basis
in one HiGHS instance (:class:`fundmodel.portfolio._highs.WarmDual`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ._highs import WarmDual
from .measures import _as_scenarios, _probabilities
from .optimize import MEAN_FLOOR, CVaRResult, Objective, _check_names, _finish, _matrix, _prepare, optimize_cvar

__all__ = ["EfficientFrontier", "efficient_frontier", "efficient_frontiers"]


@dataclass(frozen=True)
class EfficientFrontier:
    """Mean-CVaR efficient frontier traced by :func:`efficient_frontier`.

    Attributes
    ----------
    mean_floor : ndarray of shape (n_points,)
        Expected-value floor imposed at each point [value units].
    expected_value : ndarray of shape (n_points,)
        Expected value of each point's allocation [value units]; non-decreasing.
    cvar : ndarray of shape (n_points,)
        Minimal CVaR at that floor [value units]; non-decreasing.
    var : ndarray of shape (n_points,)
        VaR of each point's allocation [value units].
    x : ndarray of shape (n_points, n_assets)
        Allocation of each point.
    names : tuple of str
        Name of each decision variable.
    beta : float
        Confidence level.
    """

    mean_floor: np.ndarray
    expected_value: np.ndarray
    cvar: np.ndarray
    var: np.ndarray
    x: np.ndarray
    names: tuple[str, ...]
    beta: float


def efficient_frontier(
    scenario_values,
    n_points: int = 15,
    *,
    beta: float = 0.95,
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
    cvar_limits: Sequence[tuple[str, float, float]] | None = None,
    warm_start: bool = True,
) -> EfficientFrontier:
    """Mean-CVaR efficient frontier: minimal CVaR at a grid of expected-value floors.

    The first point is the min-CVaR allocation (floor = its mean); the last is the
    least-CVaR allocation among those with the largest attainable expected value; in
    between, floors are evenly spaced. Constraint keywords are those of
    :func:`optimize_cvar` and apply at every point. With ``mean_values`` the "expected
    value" is any linear figure of merit (e.g. weighted tonnes of supply), giving the
    frontier of that figure against the CVaR: the least CVaR at each level of the figure,
    equivalently (where the frontier rises strictly) the most of the figure at each CVaR.

    Parameters
    ----------
    scenario_values : array_like of shape (n_scenarios, n_assets)
        Value of one unit of each variable in each scenario [value units].
    n_points : int, default 15
        Number of points (>= 2).
    beta : float, default 0.95
        Confidence level.
    warm_start : bool, default True
        For LPs, keep one HiGHS instance and re-solve each point from the previous
        point's optimal basis (only the floor changes between points, about ten times
        faster than cold solves at 20,000 scenarios). Points where the warm solve does not
        end optimal, and every point of a MILP, are solved cold by :func:`optimize_cvar`.
        The minimal CVaR of each point does not depend on this; when several allocations
        reach it, the one returned may.

    Returns
    -------
    EfficientFrontier

    Raises
    ------
    InfeasibleProblem, UnboundedProblem
        As :func:`optimize_cvar`; unbounded when the expected value has no maximum.

    Examples
    --------
    >>> values = np.array([[0.3, 0.05], [-0.2, 0.02], [0.1, 0.03], [0.0, 0.01]])
    >>> f = efficient_frontier(values, 3, beta=0.5, A_eq=[[1, 1]], b_eq=[1])
    >>> f.expected_value.round(4).tolist(), f.cvar.round(4).tolist()
    ([0.0275, 0.0388, 0.05], [-0.015, 0.0425, 0.1])
    """
    return efficient_frontiers(
        scenario_values, {"frontier": mean_values}, n_points, beta=beta, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq,
        b_eq=b_eq, bounds=bounds, integrality=integrality, names=names, constraint_names=constraint_names,
        probabilities=probabilities, method=method, options=options, cvar_limits=cvar_limits,
        warm_start=warm_start)["frontier"]


def efficient_frontiers(
    scenario_values,
    merits: Mapping[str, object],
    n_points: int = 15,
    *,
    beta: float = 0.95,
    A_ub=None,
    b_ub=None,
    A_eq=None,
    b_eq=None,
    bounds=None,
    integrality=None,
    names: Sequence[str] | None = None,
    constraint_names: Sequence[str] | None = None,
    probabilities=None,
    method: str = "highs",
    options: Mapping | None = None,
    cvar_limits: Sequence[tuple[str, float, float]] | None = None,
    warm_start: bool = True,
) -> dict[str, EfficientFrontier]:
    """Frontiers of several figures of merit against the CVaR, under the same constraints.

    Each figure of merit is a vector of per-unit values (``None``: the expected value
    ``probabilities @ scenario_values``); each frontier is :func:`efficient_frontier` for
    ``mean_values=merits[name]``. They share the min-CVaR allocation, which is solved
    once; with ``warm_start`` (LPs) each frontier's points are re-solved from the
    previous point's basis in one HiGHS instance holding one floor row per figure.

    Parameters
    ----------
    scenario_values : array_like of shape (n_scenarios, n_assets)
        Value of one unit of each variable in each scenario [value units].
    merits : mapping of str to array_like of shape (n_assets,) or None
        Figure of merit of each frontier, per unit of each variable.
    n_points : int, default 15
        Points per frontier (>= 2).
    beta, A_ub, b_ub, A_eq, b_eq, bounds, integrality, names, constraint_names, probabilities,
    method, options, cvar_limits, warm_start
        As :func:`efficient_frontier`.

    Returns
    -------
    dict of str to EfficientFrontier
        ``expected_value`` of each frontier is its figure of merit.

    Examples
    --------
    >>> values = np.array([[0.3, 0.05], [-0.2, 0.02], [0.1, 0.03], [0.0, 0.01]])
    >>> f = efficient_frontiers(values, {"mean": None, "first": [1.0, 0.0]}, 3, beta=0.5,
    ...                         A_eq=[[1, 1]], b_eq=[1])
    >>> f["first"].expected_value.round(4).tolist(), f["first"].cvar.round(4).tolist()
    ([0.0, 0.5, 1.0], [-0.015, 0.0425, 0.1])
    """
    if int(n_points) < 2:
        raise ValueError(f"n_points must be at least 2, got {n_points!r}")
    if not merits:
        raise ValueError("merits must name at least one figure of merit")
    n_points = int(n_points)
    v = _as_scenarios(scenario_values)
    n = v.shape[1]
    common = dict(beta=beta, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=bounds,
                  integrality=integrality, names=names, constraint_names=constraint_names,
                  probabilities=probabilities, method=method, options=options, cvar_limits=cvar_limits)
    p = _probabilities(probabilities, v.shape[0])
    p_eff = np.full(v.shape[0], 1.0 / v.shape[0]) if p is None else p
    merit_vec = {}
    for key, mv in merits.items():
        vec = p_eff @ v if mv is None else np.asarray(mv, dtype=float)
        if vec.shape != (n,) or not np.all(np.isfinite(vec)):
            raise ValueError(f"figure of merit '{key}' must be {n} finite numbers, got shape {vec.shape}")
        merit_vec[key] = vec
    tops = {key: optimize_cvar(v, objective=Objective.MAX_MEAN, mean_values=vec, **common).objective_value
            for key, vec in merit_vec.items()}

    warm = prep = None
    rows = {}
    if warm_start:
        # one floor row per figure of merit, appended to A_ub; all switched off for the min-CVaR point
        a_ub, b_ub_ = _matrix(A_ub, b_ub, n, "ub")
        a_eq, _ = _matrix(A_eq, b_eq, n, "eq")
        cnames = _check_names(constraint_names, a_ub.shape[0] + a_eq.shape[0], "constraint_names", "row")
        if constraint_names is None:
            cnames = [f"ub[{i}]" for i in range(a_ub.shape[0])] + [f"eq[{i}]" for i in range(a_eq.shape[0])]
        floor_names = [f"{MEAN_FLOOR} ({key})" for key in merit_vec]
        rows = {key: a_ub.shape[0] + i for i, key in enumerate(merit_vec)}
        prep = _prepare(
            v, beta=beta, objective=Objective.MIN_CVAR, mean_floor=None, cvar_cap=None, risk_aversion=1.0,
            A_ub=np.vstack([a_ub] + [-vec[None, :] for vec in merit_vec.values()]),
            b_ub=np.concatenate([b_ub_, [-tops[key] for key in merit_vec]]), A_eq=A_eq, b_eq=b_eq, bounds=bounds,
            integrality=integrality, names=names,
            constraint_names=cnames[:a_ub.shape[0]] + floor_names + cnames[a_ub.shape[0]:],
            probabilities=probabilities, mean_values=None, cvar_limits=cvar_limits, binding_tol=1e-7)
        if prep.model.integrality is None:
            warm = WarmDual.create(prep.model, options)

    def point(key: str | None, floor: float | None) -> CVaRResult:
        if warm is not None:
            t0 = time.perf_counter()
            for k, row in rows.items():
                warm.set_floor(row, floor if k == key else None)
            sol = warm.solve()
            if sol is not None:
                return _finish(prep, sol, t0)
        mv = None if key is None else merit_vec[key]
        return optimize_cvar(v, objective=Objective.MIN_CVAR, mean_floor=floor, mean_values=mv, **common)

    low = point(None, None)
    low_basis = None
    if warm is not None and len(merit_vec) > 1:
        try:
            low_basis = warm.highs.getBasis()
        except Exception:  # pragma: no cover
            low_basis = None
    out = {}
    for i, (key, vec) in enumerate(merit_vec.items()):
        if i and low_basis is not None:
            try:
                warm.highs.setBasis(low_basis)  # each frontier starts from the min-CVaR basis
            except Exception:  # pragma: no cover
                pass
        m0, m1 = float(vec @ low.x), tops[key]
        floors = np.linspace(m0, m1, n_points)
        floors[-1] = m1 - 1e-9 * max(1.0, abs(m1))  # the very top, less the solver's tolerance
        points = [low] + [point(key, float(max(f, m0))) for f in floors[1:]]
        out[key] = EfficientFrontier(
            mean_floor=floors,
            expected_value=np.array([float(vec @ r.x) for r in points]),
            cvar=np.array([r.cvar for r in points]),
            var=np.array([r.var for r in points]),
            x=np.vstack([r.x for r in points]),
            names=low.names,
            beta=low.beta,
        )
    return out
