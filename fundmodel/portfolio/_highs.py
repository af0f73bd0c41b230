"""The CVaR programme as HiGHS sees it: the model arrays, the explicit dual, the MILP and a warm start.

The only module that touches SciPy's private HiGHS bindings (``scipy.optimize._highspy``,
for :class:`WarmDual`); ``tests/test_portfolio_highs.py`` fails loudly when that API moves,
and :meth:`WarmDual.create` returns ``None`` (callers then solve cold) if it is missing at
run time. Everything else goes through the public ``scipy.optimize.linprog`` and ``milp``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, OptimizeWarning, linprog, milp

__all__ = ["Model", "Solution", "DualLP", "dual_program", "solve_dual", "WarmDual", "solve_milp", "solve_model",
           "HIGHS_BINDING_NAMES"]

#: Names :class:`WarmDual` uses from ``scipy.optimize._highspy._core`` (checked by a test).
HIGHS_BINDING_NAMES = ("kHighsInf", "HighsLp", "MatrixFormat", "_Highs", "HighsModelStatus")


@dataclass
class Model:
    """``min c_x.x + theta * (alpha + tau.u)`` over ``x`` (n), ``alpha`` (free), ``u >= 0``.

    Subject to the named rows ``G x (+ alpha + tau.u on the CVaR-cap row) <= h`` and
    ``E x == e``, the tail rows ``-V x - alpha - u <= 0`` (only when ``tau`` is set)
    and ``lb <= x <= ub`` (integer where ``integrality`` is 1). Each entry
    ``(tau_t, row_t)`` of ``extra_tails`` adds its own ``alpha_t``, ``u_t >= 0`` with
    ``-V x - alpha_t - u_t <= 0`` and puts ``alpha_t + tau_t.u_t`` on named row ``row_t``
    (a CVaR cap at another confidence level); ``values`` is set whenever any tail is.
    """

    c_x: np.ndarray  # (n,)
    theta: float  # weight of alpha + tau.u (the CVaR) in the objective
    values: np.ndarray | None  # V, (n_scenarios, n) or None: no tail rows
    tau: np.ndarray | None  # p / (1 - beta), (n_scenarios,), or None: no main tail
    g: sparse.csr_array  # (m, n)
    h: np.ndarray  # (m,)
    cap_row: int | None  # row of g that is the CVaR cap
    e_mat: sparse.csr_array  # (m_eq, n)
    e: np.ndarray  # (m_eq,)
    lb: np.ndarray
    ub: np.ndarray
    integrality: np.ndarray | None  # (n,) of 0/1, or None for an LP
    row_names: list[str]  # m names of G rows, then m_eq names of E rows
    var_names: list[str]
    extra_tails: list[tuple[np.ndarray, int]] = field(default_factory=list)  # (tau_t, row of g)

    @property
    def n(self) -> int:
        return self.c_x.size


@dataclass
class Solution:
    """Primal view of one solve. status: 0 optimal, 1 limit reached (feasible x), 2 infeasible,
    3 unbounded, 5 infeasible or unbounded, 4 failure."""

    x: np.ndarray | None
    fun: float  # primal objective
    status: int
    message: str
    y: np.ndarray | None = None  # multipliers (>= 0) of the named <= rows
    w: np.ndarray | None = None  # multipliers of the equality rows


@dataclass
class DualLP:
    """Arrays of the explicit dual of a :class:`Model` (see :func:`dual_program`)."""

    c: np.ndarray
    a_ub: sparse.csc_array | None
    b_ub: np.ndarray | None
    a_eq: sparse.csc_array
    b_eq: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    n_q: int  # columns of the main tail's scenario weights, first in the column order
    m: int  # named <= rows; their multipliers are columns n_q .. n_q + m
    m_eq: int


def dual_program(model: Model) -> DualLP:
    """The explicit dual of the LP, which has ``n + 1`` equality rows (+1 per extra tail).

    The primal has one row per scenario and dense columns, which the simplex method
    handles slowly; in the dual the scenarios are bounded columns ``q_k`` (the tail
    probabilities) and the primal ``x`` and ``alpha`` are the dual's row marginals.
    Dual variables: ``q`` (scenarios), ``y >= 0`` (named rows), ``w`` (equalities),
    ``d_l, d_u >= 0`` (finite bounds of x), then ``q_t >= 0`` per extra tail. Rows: for
    each x_j ``G^T y + E^T w - V^T q - V^T q_t - d_l + d_u = -c_x``; for alpha
    ``y_cap - sum q = -theta``; with a cap, ``q_k - tau_k y_cap <= theta tau_k`` (else the
    bound ``q_k <= theta tau_k``); per extra tail ``y_t - sum q_t = 0`` and
    ``q_tk - tau_tk y_t <= 0``.
    """
    n, m, m_eq = model.n, model.g.shape[0], model.e_mat.shape[0]
    main = model.tau is not None
    n_s = model.values.shape[0] if model.values is not None else 0
    n_q = n_s if main else 0
    extra = model.extra_tails
    fin_l = np.flatnonzero(np.isfinite(model.lb))
    fin_u = np.flatnonzero(np.isfinite(model.ub))
    eye_n = sparse.eye_array(n, format="csc")
    neg_vt = sparse.csc_array(-model.values.T) if n_s else None
    blocks = [neg_vt if main else sparse.csc_array((n, 0)), model.g.T, model.e_mat.T,
              -eye_n[:, fin_l], eye_n[:, fin_u]] + [neg_vt] * len(extra)
    x_rows = sparse.hstack(blocks, format="csc")
    n_cols = x_rows.shape[1]
    base = n_q + m + m_eq + fin_l.size + fin_u.size  # first column of the extra tails
    rows, rhs = [x_rows], [-model.c_x]
    if main:
        alpha_row = np.zeros((1, n_cols))
        alpha_row[0, :n_q] = -1.0
        if model.cap_row is not None:
            alpha_row[0, n_q + model.cap_row] = 1.0
        rows.append(sparse.csc_array(alpha_row))
        rhs.append(np.array([-model.theta]))
    for t, (_, row_t) in enumerate(extra):
        alpha_row = np.zeros((1, n_cols))
        alpha_row[0, base + t * n_s: base + (t + 1) * n_s] = -1.0
        alpha_row[0, n_q + row_t] = 1.0
        rows.append(sparse.csc_array(alpha_row))
        rhs.append(np.zeros(1))
    a_eq = sparse.vstack(rows, format="csc")
    b_eq = np.concatenate(rhs)
    ub_blocks, ub_rhs = [], []
    q_hi = np.full(n_q, np.inf)
    if main and model.cap_row is not None:
        cap_col = sparse.csc_array((-model.tau, (np.arange(n_q), np.full(n_q, n_q + model.cap_row))),
                                   shape=(n_q, n_cols))
        ub_blocks.append((sparse.eye_array(n_q, n_cols, format="csc") + cap_col).tocsc())
        ub_rhs.append(model.theta * model.tau)
    elif main:
        q_hi = model.theta * model.tau
    k = np.arange(n_s)
    for t, (tau_t, row_t) in enumerate(extra):
        entries = (np.concatenate([np.ones(n_s), -tau_t]),
                   (np.concatenate([k, k]), np.concatenate([base + t * n_s + k, np.full(n_s, n_q + row_t)])))
        ub_blocks.append(sparse.csc_array(entries, shape=(n_s, n_cols)))
        ub_rhs.append(np.zeros(n_s))
    a_ub = sparse.vstack(ub_blocks, format="csc") if ub_blocks else None
    b_ub = np.concatenate(ub_rhs) if ub_blocks else None
    n_extra = n_s * len(extra)
    c = np.concatenate([np.zeros(n_q), model.h, model.e, -model.lb[fin_l], model.ub[fin_u], np.zeros(n_extra)])
    lo = np.concatenate([np.zeros(n_q + m), np.full(m_eq, -np.inf), np.zeros(fin_l.size + fin_u.size),
                         np.zeros(n_extra)])
    hi = np.concatenate([q_hi, np.full(n_cols - n_q, np.inf)])
    return DualLP(c=c, a_ub=a_ub, b_ub=b_ub, a_eq=a_eq, b_eq=b_eq, lo=lo, hi=hi, n_q=n_q, m=m, m_eq=m_eq)


def solve_dual(model: Model, method: str, options: Mapping | None) -> Solution:
    """Solve the LP through its explicit dual (:func:`dual_program`) with ``linprog``."""
    d = dual_program(model)
    n = model.n
    with warnings.catch_warnings():  # extra HiGHS options are passed through with a warning
        warnings.filterwarnings("ignore", "Unrecognized options", OptimizeWarning)
        res = linprog(d.c, A_ub=d.a_ub, b_ub=d.b_ub, A_eq=d.a_eq, b_eq=d.b_eq,
                      bounds=np.column_stack([d.lo, d.hi]), method=method, options=dict(options or {}))
    if res.status == 0:
        marg = np.asarray(res.eqlin.marginals)
        return Solution(x=marg[:n].copy(), fun=-float(res.fun), status=0, message=str(res.message),
                         y=res.x[d.n_q:d.n_q + d.m].copy(), w=res.x[d.n_q + d.m:d.n_q + d.m + d.m_eq].copy())
    status = {2: 5, 3: 2}.get(int(res.status), 4)  # dual infeasible: primal infeasible or unbounded
    return Solution(x=None, fun=np.nan, status=status, message=str(res.message))


class WarmDual:
    """The dual LP kept in one HiGHS instance, re-solved from the last basis after cost changes.

    Used by :func:`efficient_frontier`: between two points only the mean floor changes,
    which is the cost of one dual column, so the previous optimal basis stays feasible
    and a few simplex iterations reach the next point (about ten times faster than a
    cold solve at 20,000 scenarios). Uses the HiGHS bindings bundled with SciPy
    (``scipy.optimize._highspy``), the same solver and options as ``linprog(method="highs")``;
    :meth:`create` returns ``None`` when they are unavailable, and callers then solve cold.
    """

    def __init__(self, highs, d: DualLP, n: int, n_ub: int):
        self.highs, self.d, self.n, self.n_ub = highs, d, n, n_ub

    @classmethod
    def create(cls, model: Model, options: Mapping | None) -> "WarmDual | None":
        try:
            from scipy.optimize._highspy import _core
        except ImportError:  # pragma: no cover - SciPy without its HiGHS bindings
            return None
        try:
            d = dual_program(model)
            a = d.a_eq if d.a_ub is None else sparse.vstack([d.a_ub, d.a_eq], format="csc")
            a = sparse.csc_array(a)
            a.sort_indices()
            n_ub = 0 if d.b_ub is None else d.b_ub.size
            inf = _core.kHighsInf
            lp = _core.HighsLp()
            lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
            lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = a.shape[1], a.shape[0]
            lp.a_matrix_.format_ = _core.MatrixFormat.kColwise
            lp.a_matrix_.start_ = a.indptr
            lp.a_matrix_.index_ = a.indices
            lp.a_matrix_.value_ = a.data
            lp.col_cost_ = d.c
            lp.col_lower_ = np.where(np.isinf(d.lo), -inf, d.lo)
            lp.col_upper_ = np.where(np.isinf(d.hi), inf, d.hi)
            lp.row_lower_ = np.concatenate([np.full(n_ub, -inf), d.b_eq])
            lp.row_upper_ = np.concatenate([np.zeros(0) if d.b_ub is None else d.b_ub, d.b_eq])
            highs = _core._Highs()
            highs.setOptionValue("output_flag", False)
            highs.setOptionValue("simplex_strategy", 1)  # dual simplex, as linprog(method="highs")
            for key, val in dict(options or {}).items():
                if val is not None and key not in ("disp", "presolve", "maxiter"):
                    highs.setOptionValue(key, val)
            highs.passModel(lp)
        except Exception:  # pragma: no cover - binding API differs: solve cold instead
            return None
        return cls(highs, d, model.n, n_ub)

    def set_floor(self, row: int, floor: float | None) -> None:
        """Set the mean floor (named row ``row``) to ``floor``; ``None`` switches it off."""
        col = self.d.n_q + row
        if floor is None:
            self.highs.changeColBounds(col, 0.0, 0.0)
        else:
            self.highs.changeColBounds(col, 0.0, self.highs.getInfinity())
            self.highs.changeColCost(col, -float(floor))

    def solve(self) -> Solution | None:
        """Solve from the current basis; ``None`` unless optimal (the caller solves cold)."""
        try:
            self.highs.run()
            from scipy.optimize._highspy import _core

            if self.highs.getModelStatus() != _core.HighsModelStatus.kOptimal:
                return None
            sol = self.highs.getSolution()
            row_dual = np.asarray(sol.row_dual, dtype=float)
            col = np.asarray(sol.col_value, dtype=float)
        except Exception:  # pragma: no cover
            return None
        d = self.d
        x = row_dual[self.n_ub:self.n_ub + self.n].copy()
        fun = -float(self.highs.getInfo().objective_function_value)
        return Solution(x=x, fun=fun, status=0, message="Optimization terminated successfully. (warm start)",
                         y=col[d.n_q:d.n_q + d.m].copy(), w=col[d.n_q + d.m:d.n_q + d.m + d.m_eq].copy())


def solve_milp(model: Model, options: Mapping | None) -> Solution:
    """Solve the primal with ``scipy.optimize.milp`` over ``z = [x, (alpha, u) per tail]``."""
    n, m = model.n, model.g.shape[0]
    n_s = model.values.shape[0] if model.values is not None else 0
    tails = ([(model.tau, model.cap_row, True)] if model.tau is not None else []) + \
        [(tau_t, row_t, False) for tau_t, row_t in model.extra_tails]
    blk = 1 + n_s
    n_extra = blk * len(tails)
    c_tail, g_extra = [], np.zeros((m, n_extra))
    for k, (tau, row, is_main) in enumerate(tails):
        cost = np.concatenate([[1.0], tau])
        c_tail.append(model.theta * cost if is_main else np.zeros(blk))
        if row is not None:
            g_extra[row, k * blk:(k + 1) * blk] = cost
    c = np.concatenate([model.c_x] + c_tail)
    blocks = [sparse.hstack([model.g, sparse.csr_array(g_extra)], format="csr")]
    lo, hi = [np.full(m, -np.inf)], [model.h]
    for k in range(len(tails)):
        parts = [sparse.csr_array(-model.values)]
        if k:
            parts.append(sparse.csr_array((n_s, k * blk)))
        parts += [sparse.csr_array(-np.ones((n_s, 1))), -sparse.eye_array(n_s, format="csr")]
        if n_extra - (k + 1) * blk:
            parts.append(sparse.csr_array((n_s, n_extra - (k + 1) * blk)))
        blocks.append(sparse.hstack(parts, format="csr"))
        lo.append(np.full(n_s, -np.inf))
        hi.append(np.zeros(n_s))
    if model.e_mat.shape[0]:
        blocks.append(sparse.hstack([model.e_mat, sparse.csr_array((model.e_mat.shape[0], n_extra))],
                                    format="csr"))
        lo.append(model.e)
        hi.append(model.e)
    a = sparse.vstack(blocks, format="csr")
    cons = [LinearConstraint(a, np.concatenate(lo), np.concatenate(hi))] if a.shape[0] else []
    lb = np.concatenate([model.lb] + [np.concatenate([[-np.inf], np.zeros(n_s)])] * len(tails))
    ub = np.concatenate([model.ub, np.full(n_extra, np.inf)])
    integ = np.concatenate([model.integrality, np.zeros(n_extra, dtype=int)])
    res = milp(c, integrality=integ, bounds=Bounds(lb, ub), constraints=cons, options=dict(options or {}))
    x = None if res.x is None else np.asarray(res.x[:n], dtype=float)
    status = int(res.status)
    if status == 1 and x is None:
        status = 4
    return Solution(x=x, fun=float(res.fun) if res.fun is not None else np.nan, status=status,
                     message=str(res.message))


def solve_model(model: Model, method: str, options: Mapping | None) -> Solution:
    if model.integrality is not None:
        return solve_milp(model, options)
    return solve_dual(model, method, options)
