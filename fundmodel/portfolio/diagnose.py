"""Why a CVaR programme is infeasible: the smallest relaxation of each conflicting constraint.

An infeasible programme is re-solved in elastic form (a non-negative slack on every named
constraint, total slack minimised), then once per conflicting constraint with only its
slack free; variable bounds and integrality are never relaxed (Chinneck, *Feasibility and
Infeasibility in Optimization*, 2008, ch. 6: elastic programming).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from ._highs import Model, solve_model
from .errors import InfeasibleProblem, UnboundedProblem

__all__ = ["diagnose_infeasible", "unbounded_message"]

_MAX_CANDIDATES = 12  # conflicting constraints examined one by one after an infeasible solve


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _elastic(model: Model, allowed: Sequence[int] | None, method: str, options):
    """Minimise the total relaxation of the named rows (only the ``allowed`` ones).

    Slack columns join ``x``: one per ``<=`` row, two (up, down) per equality; the
    objective is their sum. Returns ``(relaxations, multipliers)`` indexed like
    ``model.row_names`` (signed change of the right-hand side for equalities), or
    ``(None, None)`` if even the elastic program is infeasible.
    """
    n, m, m_eq = model.n, model.g.shape[0], model.e_mat.shape[0]
    n_s = m + 2 * m_eq
    s_ub = sparse.hstack([-sparse.eye_array(m, format="csr"), sparse.csr_array((m, 2 * m_eq))],
                         format="csr")
    s_eq = sparse.hstack([sparse.csr_array((m_eq, m)),
                          sparse.csr_array(np.kron(np.eye(m_eq), [[-1.0, 1.0]]))], format="csr")
    hi_s = np.full(n_s, np.inf)
    if allowed is not None:
        hi_s[:] = 0.0
        for i in allowed:
            if i < m:
                hi_s[i] = np.inf
            else:
                j = m + 2 * (i - m)
                hi_s[j:j + 2] = np.inf
    with_tail = model.cap_row is not None  # the main tail matters only through its cap here
    any_tail = with_tail or bool(model.extra_tails)
    elastic = Model(
        c_x=np.concatenate([np.zeros(n), np.ones(n_s)]), theta=0.0,
        values=np.hstack([model.values, np.zeros((model.values.shape[0], n_s))]) if any_tail else None,
        tau=model.tau if with_tail else None,
        g=sparse.hstack([model.g, s_ub], format="csr"), h=model.h,
        cap_row=model.cap_row,
        e_mat=sparse.hstack([model.e_mat, s_eq], format="csr"), e=model.e,
        lb=np.concatenate([model.lb, np.zeros(n_s)]), ub=np.concatenate([model.ub, hi_s]),
        integrality=None if model.integrality is None
        else np.concatenate([model.integrality, np.zeros(n_s, dtype=int)]),
        row_names=model.row_names, var_names=model.var_names + [f"slack[{i}]" for i in range(n_s)],
        extra_tails=model.extra_tails,
    )
    sol = solve_model(elastic, method, options)
    if sol.x is None or sol.status not in (0, 1):
        return None, None
    s = sol.x[n:]
    relax = {i: float(s[i]) for i in range(m)}
    relax.update({m + k: float(s[m + 2 * k] - s[m + 2 * k + 1]) for k in range(m_eq)})
    mult = None if sol.y is None else np.concatenate([sol.y, sol.w])
    return relax, mult


def diagnose_infeasible(model: Model, method: str, options) -> None:
    """Raise :class:`InfeasibleProblem`, or :class:`UnboundedProblem` if the program is feasible."""
    names = model.row_names
    m = model.g.shape[0]
    joint, mult = _elastic(model, None, method, options)
    if joint is None:
        raise InfeasibleProblem(
            "infeasible even with every named constraint relaxed: the variable bounds and "
            "integrality requirements contradict each other", {}, {})
    tol = 1e-9
    if sum(abs(v) for v in joint.values()) <= 1e-7:
        raise UnboundedProblem(unbounded_message(model))
    candidates = {i for i, v in joint.items() if abs(v) > tol}
    if mult is not None:  # LP: the rows with a multiplier are those in the conflict
        candidates |= set(np.flatnonzero(np.abs(mult) > tol).tolist())
    else:  # MILP: no multipliers, try every named row
        candidates |= set(range(len(names)))
    alone: dict[str, float] = {}
    for i in sorted(candidates)[:_MAX_CANDIDATES]:
        single, _ = _elastic(model, [i], method, options)
        if single is not None:
            alone[names[i]] = single[i]
    joint_named = {names[i]: v for i, v in joint.items() if abs(v) > tol}

    def phrase(name: str, amount: float) -> str:
        if names.index(name) >= m:
            return f"change '{name}' by {amount:+.6g}"
        return f"relax '{name}' by {_fmt(amount)}"

    if alone:
        text = "infeasible: " + " or ".join(phrase(k, v) for k, v in alone.items())
        text += " (each alone restores feasibility; variable bounds and integrality held fixed)"
    else:
        text = ("infeasible: no single constraint can be relaxed alone to restore feasibility; "
                "together: " + " and ".join(phrase(k, v) for k, v in joint_named.items())
                + " (variable bounds and integrality held fixed)")
    raise InfeasibleProblem(text, alone, joint_named)


def unbounded_message(model: Model) -> str:
    free = [model.var_names[i] for i in range(model.n)
            if not (np.isfinite(model.lb[i]) and np.isfinite(model.ub[i]))]
    shown = ", ".join(f"'{name}'" for name in free[:10]) or "none"
    more = f" (and {len(free) - 10} more)" if len(free) > 10 else ""
    return ("unbounded: the objective improves without limit; give finite bounds or a budget "
            f"constraint to the variables lacking a lower or upper bound: {shown}{more}")
