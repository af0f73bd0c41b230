"""Risk measures of Monte Carlo samples: VaR, CVaR and the Euler allocation of the CVaR.

The one definition of the CVaR (expected shortfall) used everywhere in fundmodel: the
project tables (:mod:`fundmodel.results`), the fund's optimiser and its stresses
(:mod:`fundmodel.portfolio`). It is exact for any sample size: the part of the atom at
the VaR that lies beyond the confidence level counts with its fraction (Rockafellar &
Uryasev 2002), so it equals the quantity the CVaR linear program minimises.

- :func:`var_from_losses`, :func:`cvar_from_losses`: VaR and CVaR of a loss sample,
  optional scenario probabilities.
- :func:`lower_tail_mean`: the same measure read on a *value* sample (the mean of the
  worst ``level`` share of outcomes, gains positive), as the project tables report it.
- :func:`euler_contributions`: Euler allocation of the CVaR to each decision variable.

Conventions: ``scenario_values`` is ``(n_scenarios, n_assets)``, the value (P&L, gain
positive) of one unit of each decision variable in each scenario; the loss of an
allocation ``x`` in scenario ``k`` is ``-scenario_values[k] @ x``. VaR and CVaR are
in the units of the values (e.g. USD million), losses positive.

References
----------
.. [1] R. T. Rockafellar and S. Uryasev, "Conditional value-at-risk for general loss
   distributions", Journal of Banking & Finance 26, 1443-1471, 2002.
.. [2] D. Tasche, "Risk contributions and performance measurement", 1999 (Euler
   allocation).
"""

from __future__ import annotations

import numpy as np

__all__ = ["var_from_losses", "cvar_from_losses", "lower_tail_mean", "euler_contributions"]

_CUM_TOL = 1e-12  # cumulative-probability tolerance when locating the VaR atom


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be a confidence level in [0, 1), got {beta!r}")
    return beta


def _probabilities(probabilities, n: int) -> np.ndarray | None:
    if probabilities is None:
        return None
    p = np.asarray(probabilities, dtype=float)
    if p.shape != (n,):
        raise ValueError(f"probabilities must have shape ({n},) (one per scenario), got {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and non-negative")
    total = p.sum()
    if abs(total - 1.0) > 1e-8:
        raise ValueError(f"probabilities must sum to 1, they sum to {total!r}")
    return p / total


def _as_losses(losses) -> np.ndarray:
    arr = np.asarray(losses, dtype=float)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise ValueError(f"losses must be a non-empty array of shape (n_scenarios,) or "
                         f"(n_scenarios, n_series), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"losses contain {int(np.sum(~np.isfinite(arr)))} NaN or infinite value(s)")
    return arr


def _sorted_tail(losses: np.ndarray, beta: float, p: np.ndarray | None):
    """Sort ``losses`` (n, k) ascending per column; tail weights and VaR index per column.

    The tail weight of the ``j``-th smallest loss is ``min(p_j, max(0, F_j - beta))`` with
    ``F_j`` the cumulative probability: the upper tail of mass ``1 - beta``, including
    the fraction of the VaR atom that lies beyond ``beta``.
    """
    n = losses.shape[0]
    order = np.argsort(losses, axis=0, kind="stable")
    ls = np.take_along_axis(losses, order, axis=0)
    if p is None:
        ps = np.full((n, 1), 1.0 / n)
        cum = (np.arange(1, n + 1, dtype=float) / n)[:, None]
    else:
        ps = p[order]
        cum = np.cumsum(ps, axis=0)
    w = np.broadcast_to(np.minimum(ps, np.maximum(cum - beta, 0.0)), ls.shape)
    k_var = np.broadcast_to(np.argmax(cum >= beta - _CUM_TOL, axis=0), (ls.shape[1],))
    return order, ls, w, k_var


def var_from_losses(losses, beta: float, weights=None):
    """Value-at-risk: the lower ``beta``-quantile of a discrete loss distribution.

    ``VaR_beta = min {z : P(L <= z) >= beta}`` (Rockafellar & Uryasev 2002, the
    ``alpha_beta`` of their definition).

    Parameters
    ----------
    losses : array_like of shape (n_scenarios,) or (n_scenarios, n_series)
        Loss in each scenario [value units, loss positive]; each column a separate series.
    beta : float
        Confidence level in [0, 1), e.g. 0.95.
    weights : array_like of shape (n_scenarios,), optional
        Scenario probabilities (non-negative, summing to 1); equal by default.

    Returns
    -------
    float or ndarray of shape (n_series,)

    Examples
    --------
    >>> var_from_losses(np.arange(1.0, 21.0), 0.95)
    19.0
    >>> var_from_losses([1.0, 2.0, 3.0], 0.5, weights=[0.6, 0.2, 0.2])
    1.0
    """
    beta = _check_beta(beta)
    arr = _as_losses(losses)
    p = _probabilities(weights, arr.shape[0])
    l2 = arr.reshape(arr.shape[0], -1)
    _, ls, _, k_var = _sorted_tail(l2, beta, p)
    out = ls[k_var, np.arange(ls.shape[1])]
    return float(out[0]) if arr.ndim == 1 else out


def cvar_from_losses(losses, beta: float, weights=None):
    """Conditional value-at-risk (expected shortfall) of a discrete loss distribution.

    The mean of the upper tail of probability mass ``1 - beta``, counting only the part
    of the atom at the VaR that lies beyond ``beta`` (Rockafellar & Uryasev 2002, eq. 4
    with the ``lambda_beta`` split), so it is exact for every sample size, coherent, and
    equal to ``min_a a + E[(L - a)^+] / (1 - beta)``, the quantity the LP of
    :func:`optimize_cvar` minimises.

    Parameters
    ----------
    losses : array_like of shape (n_scenarios,) or (n_scenarios, n_series)
        Loss in each scenario [value units, loss positive]; each column a separate series.
    beta : float
        Confidence level in [0, 1), e.g. 0.95; ``beta = 0`` gives the mean loss.
    weights : array_like of shape (n_scenarios,), optional
        Scenario probabilities (non-negative, summing to 1); equal by default.

    Returns
    -------
    float or ndarray of shape (n_series,)

    Notes
    -----
    With the losses sorted ascending, ``L_(1) <= ... <= L_(N)``, probabilities ``p_(j)``
    and cumulative probabilities ``F_j``::

        CVaR_beta = sum_j min(p_(j), max(0, F_j - beta)) * L_(j) / (1 - beta)

    For ``N = 10`` equally likely losses and ``beta = 0.95`` the tail is half of the
    largest atom, so the CVaR is the largest loss; with ``beta = 0.85`` it is the largest
    loss (mass 0.10) plus half of the second largest (mass 0.05), divided by 0.15.

    Examples
    --------
    >>> cvar_from_losses(np.arange(1.0, 21.0), 0.9)        # mean of the two largest
    19.5
    >>> round(cvar_from_losses(np.arange(1.0, 11.0), 0.85), 6)   # (10*0.1 + 9*0.05)/0.15
    9.666667
    >>> cvar_from_losses([1.0, 2.0, 3.0], 0.5, weights=[0.2, 0.2, 0.6])
    3.0
    """
    beta = _check_beta(beta)
    arr = _as_losses(losses)
    p = _probabilities(weights, arr.shape[0])
    l2 = arr.reshape(arr.shape[0], -1)
    _, ls, w, _ = _sorted_tail(l2, beta, p)
    out = (w * ls).sum(axis=0) / w.sum(axis=0)
    return float(out[0]) if arr.ndim == 1 else out


def lower_tail_mean(values, level: float = 0.05, weights=None) -> float:
    """Mean of the worst ``level`` share of a *value* sample (gains positive).

    The expected shortfall of a value, ``-CVaR_{1-level}(-values)``
    (:func:`cvar_from_losses`): with ``level * n`` not a whole number the boundary outcome
    counts with its fraction, so the figure is exact for every sample size (the mean of
    the ``floor(level * n)`` worst outcomes would drop that fraction).

    Parameters
    ----------
    values : array_like of shape (n_scenarios,)
        Outcome in each scenario [value units, gain positive].
    level : float, default 0.05
        Tail share in (0, 1].
    weights : array_like of shape (n_scenarios,), optional
        Scenario probabilities; equal by default.

    Returns
    -------
    float

    Examples
    --------
    >>> lower_tail_mean(np.arange(100.0), 0.05)     # mean of 0..4
    2.0
    >>> round(lower_tail_mean(np.arange(10.0), 0.25), 12)   # (0 + 1 + 0.5 * 2) / 2.5
    0.8
    """
    level = float(level)
    if not 0.0 < level <= 1.0:
        raise ValueError(f"level must be a tail share in (0, 1], got {level!r}")
    return -float(cvar_from_losses(-np.asarray(values, dtype=float), 1.0 - level, weights))


def _as_scenarios(scenario_values) -> np.ndarray:
    v = np.asarray(scenario_values, dtype=float)
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise ValueError("scenario_values must be a non-empty 2-d array of shape "
                         f"(n_scenarios, n_assets), got shape {v.shape}")
    bad = ~np.isfinite(v)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(f"scenario_values contain {int(bad.sum())} NaN or infinite value(s), "
                         f"first at scenario {rows[0]}, column {cols[0]}")
    return v


def euler_contributions(scenario_values, x, beta: float, probabilities=None) -> np.ndarray:
    """Euler allocation of the CVaR of ``x`` to each decision variable.

    ``contribution_i = x_i * E[-value_i | tail]``, the expectation over the same tail
    (fractional VaR atom included) as :func:`cvar_from_losses`, so the contributions
    sum to the CVaR exactly. Where the CVaR is differentiable in ``x`` this is
    ``x_i * dCVaR/dx_i`` (Tasche 1999).

    Parameters
    ----------
    scenario_values : array_like of shape (n_scenarios, n_assets)
        Value of one unit of each variable in each scenario [value units].
    x : array_like of shape (n_assets,)
        Allocation.
    beta : float
        Confidence level in [0, 1).
    probabilities : array_like of shape (n_scenarios,), optional
        Scenario probabilities; equal by default.

    Returns
    -------
    ndarray of shape (n_assets,)
        CVaR contribution of each variable [value units]; sums to the CVaR.

    Notes
    -----
    When several scenarios tie at the VaR, the fractional atom is shared in the order
    of a stable sort (scenario index); the total is unaffected.

    Examples
    --------
    Losses 1, 2, -4, 0.5; the tail at 0.5 is scenarios 0 and 1:

    >>> values = np.array([[1.0, -2.0], [-3.0, 1.0], [2.0, 2.0], [0.5, -1.0]])
    >>> c = euler_contributions(values, [1.0, 1.0], 0.5)
    >>> c.tolist(), cvar_from_losses(-values.sum(axis=1), 0.5)
    ([1.0, 0.5], 1.5)
    """
    beta = _check_beta(beta)
    v = _as_scenarios(scenario_values)
    x = np.asarray(x, dtype=float)
    if x.shape != (v.shape[1],):
        raise ValueError(f"x must have shape ({v.shape[1]},), got {x.shape}")
    p = _probabilities(probabilities, v.shape[0])
    losses = -(v @ x)
    order, _, w, _ = _sorted_tail(losses[:, None], beta, p)
    w_scen = np.empty(v.shape[0])
    w_scen[order[:, 0]] = w[:, 0]
    return x * (-(w_scen @ v)) / w_scen.sum()
