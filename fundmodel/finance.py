"""Discounting and internal rates of return, vectorised over scenarios.

Cash-flow arrays are ``(n_scenarios, n_years)``; column ``j`` is the flow at the
end of year ``j`` (``j = 0`` is the year starting at the valuation date), so
``npv(r, cf) == numpy_financial.npv(r, [0, *cf])``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def discount_factors(rate: float, n_years: int) -> np.ndarray:
    """End-of-year discount factors ``(1 + rate) ** -(j + 1)`` for ``j = 0 .. n_years-1``.

    Examples
    --------
    >>> discount_factors(0.1, 2).round(4).tolist()
    [0.9091, 0.8264]
    """
    return (1.0 + rate) ** -np.arange(1, n_years + 1, dtype=float)


def npv(rate: float, cash_flows: np.ndarray) -> np.ndarray:
    """Net present value of each row, flows at the end of each year.

    Parameters
    ----------
    rate : float
        Discount rate per year.
    cash_flows : ndarray of shape (n_scenarios, n_years) or (n_years,)

    Returns
    -------
    ndarray of shape (n_scenarios,) or float

    Examples
    --------
    >>> float(npv(0.1, np.array([110.0])))
    100.0
    """
    cf = np.asarray(cash_flows, dtype=float)
    return cf @ discount_factors(rate, cf.shape[-1])


def _irr_grid(step: float) -> np.ndarray:
    # dense where IRRs live (-50 % .. +100 %), coarse in the tails
    return np.unique(np.concatenate([
        -1.0 + np.geomspace(1e-4, 0.5, 40 if step < 0.01 else 12, endpoint=False),
        np.arange(-0.5, 1.0 + step / 2, step),
        np.geomspace(1.0, 1000.0, 40 if step < 0.01 else 15),
    ]))


#: Grid of rates that brackets the roots: 1 percentage point apart from -50 % to +100 %.
_GRID_COARSE = _irr_grid(0.01)
_GRID_DENSE = _GRID_COARSE


@lru_cache(maxsize=16)
def _grid_powers(grid_name: str, periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid rates usable for ``periods`` flows (no overflow of (1+r)^-t) and their discount factors."""
    grid = _GRID_COARSE if grid_name == "coarse" else _GRID_DENSE
    v = 1.0 / (1.0 + grid)
    grid = grid[np.log(v) * max(periods - 1, 1) < 690.0]  # (1+r)^-(T-1) < 1e300
    return grid, (1.0 / (1.0 + grid))[None, :] ** np.arange(periods, dtype=float)[:, None]


def _npv_at(rates: np.ndarray, cf: np.ndarray, t: np.ndarray):
    """NPV (flow j discounted by (1+r)^j) and its derivative in r, per row."""
    v = 1.0 / (1.0 + rates)
    powers = np.empty((v.size, t.size))
    powers[:, 0] = 1.0
    if t.size > 1:
        powers[:, 1:] = v[:, None]
        np.cumprod(powers[:, 1:], axis=1, out=powers[:, 1:])
    f = np.einsum("ij,ij->i", cf, powers)
    df = -np.einsum("ij,ij->i", cf * t[None, :], powers) * v
    return f, df


def _refine(cf: np.ndarray, lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray,
            t: np.ndarray, tol: float) -> np.ndarray:
    """Safeguarded Newton in brackets [lo, hi] where the NPV changes sign (f_lo, f_hi at the ends).

    Starts from the secant point of the bracket and iterates only on the rows not yet
    converged (all rows together, no loop over rows).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(f_hi != f_lo, lo - f_lo * (hi - lo) / (f_hi - f_lo), 0.5 * (lo + hi))
    x = np.clip(x, lo, hi)
    active = np.arange(x.size)
    f_lo = f_lo.copy()
    for _ in range(200):
        if active.size == 0:
            break
        xa, la, ha, fla = x[active], lo[active], hi[active], f_lo[active]
        f, df = _npv_at(xa, cf[active], t)
        same = np.sign(f) == np.sign(fla)
        la = np.where(same, xa, la)
        fla = np.where(same, f, fla)
        ha = np.where(same, ha, xa)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = xa - f / df
        inside = np.isfinite(newton) & (newton >= la) & (newton <= ha)
        x_new = np.where(inside, newton, 0.5 * (la + ha))
        x_new = np.where(f == 0, xa, x_new)
        x[active], lo[active], hi[active], f_lo[active] = x_new, la, ha, fla
        done = (np.abs(x_new - xa) < tol) | (f == 0) | (ha - la < tol)
        active = active[~done]
    return x


def irr(cash_flows: np.ndarray, *, tol: float = 1e-12, root: str = "nearest_zero") -> np.ndarray:
    """Internal rate of return of every row at once.

    Flow ``j`` is discounted by ``(1 + r) ** j`` and only roots ``r > -1`` count.
    Where the NPV has several roots (flows that change sign more than once, e.g. a
    closure cost after the distributions), ``root`` chooses:

    - ``"nearest_zero"``: the root closest to zero, as ``numpy_financial.irr``;
    - ``"investment"``: the lowest rate at which the NPV falls through zero (positive
      just below, negative just above), i.e. the return of an investment: the NPV at
      any lower rate is positive. For flows that start with an investment and change
      sign once both give the same root; a root where the NPV rises through zero (as
      the -88 % root that a late closure cost creates) is never an investment return.

    Parameters
    ----------
    cash_flows : ndarray of shape (n_scenarios, n_periods)
    tol : float
        Absolute tolerance on the rate.
    root : {"nearest_zero", "investment"}
        Which root to return when there are several.

    Returns
    -------
    ndarray of shape (n_scenarios,)
        IRR per row; NaN where no rate in (-99.99 %, +100,000 %) sets the NPV to
        zero (e.g. flows that never change sign).

    Notes
    -----
    The NPV is evaluated on a fixed grid of rates (one matrix product), sign
    changes bracket the roots, and the bracket nearest zero on each side is
    refined by safeguarded Newton iterations, all rows together. Two roots
    closer together than the grid step (0.5 percentage points) can be missed;
    rows whose flows change sign once have a unique root (Descartes' rule of signs),
    located from the length of the NPV's sign run on the grid.

    Examples
    --------
    >>> round(float(irr(np.array([[-100, 39, 59, 55, 20]]))[0]), 5)
    0.28095
    """
    cf = np.atleast_2d(np.asarray(cash_flows, dtype=float))
    signs = np.sign(cf)
    # sign changes of the flow sequence, zeros skipped: carry the last non-zero sign forward
    idx = np.where(signs != 0, np.arange(cf.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    carried = np.take_along_axis(signs, idx, axis=1)
    n_changes = ((carried[:, 1:] * carried[:, :-1]) < 0).sum(axis=1)
    out = np.full(cf.shape[0], np.nan)
    if root not in ("nearest_zero", "investment"):
        raise ValueError(f"root must be 'nearest_zero' or 'investment', got {root!r}")
    single = n_changes == 1
    if root == "investment":  # a single root is an investment return only if the flows start negative
        single &= carried[:, -1] > 0
    simple = np.flatnonzero(single)
    if simple.size:
        out[simple] = _irr_unique_root(cf[simple], tol)
    several = np.flatnonzero(n_changes > 1)
    if several.size:
        solver = _irr_on_grid if root == "nearest_zero" else _irr_first_fall
        out[several] = solver(cf[several], "dense", tol)
    return out


def _irr_first_fall(cf: np.ndarray, grid_name: str, tol: float) -> np.ndarray:
    """Lowest rate where the NPV falls through zero, for rows with several sign changes."""
    n, periods = cf.shape
    t = np.arange(periods, dtype=float)
    grid, powers = _grid_powers(grid_name, periods)
    values = cf @ powers  # (n, G)
    falls = (values[:, :-1] > 0) & (values[:, 1:] <= 0)
    root = np.full(n, np.nan)
    rows = np.flatnonzero(falls.any(axis=1))
    if rows.size:
        kk = falls[rows].argmax(axis=1)
        lo, hi = grid[kk].copy(), grid[kk + 1].copy()
        f_lo, f_hi = values[rows, kk], values[rows, kk + 1]
        refined = _refine(cf[rows], lo, hi, f_lo, f_hi, t, tol)
        root[rows] = np.where(f_hi == 0, hi, refined)
    return root


def _irr_unique_root(cf: np.ndarray, tol: float) -> np.ndarray:
    """IRR of rows whose flows change sign once: the NPV has exactly one root in r > -1."""
    n, periods = cf.shape
    t = np.arange(periods, dtype=float)
    grid, powers = _grid_powers("coarse", periods)
    values = cf @ powers  # (n, G)
    positive = values > 0
    # with a single root the sign pattern is [s, ..., s, not s, ...]: its length locates the bracket
    k = (positive == positive[:, :1]).sum(axis=1) - 1
    root = np.full(n, np.nan)
    rows = np.flatnonzero(k < grid.size - 1)
    if rows.size:
        kk = k[rows]
        f_lo, f_hi = values[rows, kk], values[rows, kk + 1]
        root[rows] = _refine(cf[rows], grid[kk].copy(), grid[kk + 1].copy(), f_lo, f_hi, t, tol)
    return root


def _irr_on_grid(cf: np.ndarray, grid_name: str, tol: float) -> np.ndarray:
    """IRR nearest zero of rows whose flows change sign several times (several roots possible)."""
    n, periods = cf.shape
    t = np.arange(periods, dtype=float)
    grid, powers = _grid_powers(grid_name, periods)
    values = cf @ powers  # (n, G)
    positive = values > 0
    exact = values == 0
    change = (positive[:, :-1] != positive[:, 1:]) & ~exact[:, 1:] | exact[:, :-1]
    lo_edge, hi_edge = grid[:-1], grid[1:]
    # the root nearest zero lies in the first bracket at or above zero, or the last one below;
    # the one below is refined only where it can be nearer zero than the root found above
    k0 = int(np.searchsorted(hi_edge, 0.0))  # first bracket with hi_edge >= 0
    above, below = change[:, k0:], change[:, :k0][:, ::-1]
    candidates = []
    for side, (part, to_index) in enumerate(((above, lambda i: k0 + i), (below, lambda i: k0 - 1 - i))):
        found = part.any(axis=1) if part.shape[1] else np.zeros(n, dtype=bool)
        root = np.full(n, np.nan)
        kk_all = to_index(part.argmax(axis=1)) if part.shape[1] else np.zeros(n, dtype=int)
        if side == 1:
            nearest_possible = np.abs(hi_edge[np.clip(kk_all, 0, hi_edge.size - 1)])
            found &= ~(np.abs(candidates[0]) <= nearest_possible)  # NaN above: still refine
        rows = np.flatnonzero(found)
        if rows.size:
            kk = kk_all[rows]
            lo, hi = lo_edge[kk].copy(), hi_edge[kk].copy()
            zero_lo, zero_hi = exact[rows, kk], exact[rows, kk + 1]
            refined = _refine(cf[rows], lo, hi, values[rows, kk], values[rows, kk + 1], t, tol)
            root[rows] = np.where(zero_lo, lo, np.where(zero_hi, hi, refined))
        candidates.append(root)
    pos, neg = candidates
    pick_neg = np.isnan(pos) | (~np.isnan(neg) & (np.abs(neg) < np.abs(pos)))
    return np.where(pick_neg, neg, pos)
