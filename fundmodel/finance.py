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


#: Grid that brackets the unique root of rows whose flows change sign once: 1 percentage
#: point apart from -50 % to +100 %, coarse in the tails.
_GRID_COARSE = _irr_grid(0.01)

#: Grid for rows whose NPV may have several roots: 1 percentage point apart from -50 % to
#: +100 % with the rate 0 exactly on it (``np.arange(-0.5, 1.005, 0.01)`` puts 4.4e-16 there,
#: so a bracket would straddle zero), 40 geometric steps in each tail (``1 + r`` by a factor
#: 1.24 from -99.99 % to -50 %, ``r`` by a factor 1.19 from 100 % to 100,000 %).
_GRID_SEVERAL = np.unique(np.concatenate([
    -1.0 + np.geomspace(1e-4, 0.5, 40, endpoint=False),
    np.arange(-50, 101) / 100.0,
    np.geomspace(1.0, 1000.0, 40),
]))


@lru_cache(maxsize=16)
def _grid_powers(periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid rates usable for ``periods`` flows (no overflow of (1+r)^-t) and their discount factors."""
    grid = _GRID_COARSE
    v = 1.0 / (1.0 + grid)
    grid = grid[np.log(v) * max(periods - 1, 1) < 690.0]  # (1+r)^-(T-1) < 1e300
    return grid, (1.0 / (1.0 + grid))[None, :] ** np.arange(periods, dtype=float)[:, None]


@lru_cache(maxsize=16)
def _grid_npv_slope(periods: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Rates of the several-roots grid usable for ``periods`` flows, the matrix ``B`` with
    ``B @ cf.T == [NPV; dNPV/dr]`` at those rates (grid along the first axis), and the index
    of the rate 0 on the grid."""
    grid = _GRID_SEVERAL
    grid = grid[-np.log1p(grid) * periods + np.log(periods + 1.0) < 690.0]  # t (1+r)^-(t+1) < 1e300
    v = 1.0 / (1.0 + grid)[:, None]
    t = np.arange(periods, dtype=float)[None, :]
    powers = v ** t
    basis = np.ascontiguousarray(np.vstack([powers, -t * powers * v]))
    zero = np.flatnonzero(grid == 0.0)
    assert zero.size == 1, "the several-roots grid must hold the rate 0 exactly"
    return grid, basis, int(zero[0])


def _npv_at(rates: np.ndarray, cf: np.ndarray, t: np.ndarray, order: int = 0):
    """Per row, the NPV (flow j discounted by (1+r)^j) and its derivative in r (``order=0``),
    or the derivative and the second derivative (``order=1``)."""
    v = 1.0 / (1.0 + rates)
    powers = np.empty((v.size, t.size))
    powers[:, 0] = 1.0
    if t.size > 1:
        powers[:, 1:] = v[:, None]
        np.cumprod(powers[:, 1:], axis=1, out=powers[:, 1:])
    if order == 0:
        f = np.einsum("ij,ij->i", cf, powers)
        df = -np.einsum("ij,ij->i", cf * t[None, :], powers) * v
    else:
        weighted = cf * t[None, :]
        f = -np.einsum("ij,ij->i", weighted, powers) * v
        df = np.einsum("ij,ij->i", weighted * (t[None, :] + 1.0), powers) * (v * v)
    return f, df


def _npv_and_scale(rates: np.ndarray, cf: np.ndarray, t: np.ndarray):
    """Per row, the NPV at ``rates`` and the sum of the absolute discounted flows (its rounding scale)."""
    powers = (1.0 / (1.0 + rates))[:, None] ** t[None, :]
    return np.einsum("ij,ij->i", cf, powers), np.einsum("ij,ij->i", np.abs(cf), powers)


def _rounding(scale: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Bound on the rounding error of an NPV whose absolute discounted flows sum to ``scale``."""
    return 4.0 * t.size * np.finfo(float).eps * scale


def _refine(cf: np.ndarray, lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray,
            t: np.ndarray, tol: float, order: int = 0) -> np.ndarray:
    """Safeguarded Newton in brackets [lo, hi] where the NPV (``order=0``) or its slope
    (``order=1``) changes sign (f_lo, f_hi at the ends).

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
        f, df = _npv_at(xa, cf[active], t, order)
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

    - ``"nearest_zero"``: the real root closest to zero, the rate ``numpy_financial.irr``
      means to return (it keeps only polynomial roots whose computed imaginary part is
      exactly 0, so it can miss a double root, which counts here);
    - ``"investment"``: the highest rate at which the NPV falls through zero (positive
      just below, negative just above), i.e. the return of an investment: the NPV is
      negative at every higher rate, so the flows beat any hurdle below it and none
      above it. For flows that start with an investment and change sign once both give
      the same root; a root where the NPV rises through zero (as the -88 % root that a
      late closure cost creates) or only touches zero (a double root) is never an
      investment return, and neither is a fall below another one: where the NPV is
      positive as r -> -1 (e.g. a small inflow after the closure costs) a pair of roots
      deep below zero (say at -60 % and -57 %) precedes the fall near the usual return,
      which is the one returned.

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
        IRR per row; NaN where no rate in [-99.99 %, +100,000 %] sets the NPV to
        zero (e.g. flows that never change sign), and for ``"investment"`` where
        the NPV does not fall through zero in that range.

    Notes
    -----
    Rows whose flows change sign once have a unique root (Descartes' rule of signs),
    bracketed from the length of the NPV's sign run on a grid of rates (1 percentage
    point apart from -50 % to +100 %) and refined by safeguarded Newton iterations.

    Rows whose flows change sign several times: the NPV and its slope in ``r`` are
    evaluated on a grid of rates (one matrix product; 1 percentage point apart from
    -50 % to +100 % with 0 on it, 40 geometric steps in each tail). Between two grid
    rates the NPV has one root where it changes sign; where it does not, it can hide a
    pair of roots or touch zero (a double root) only around a local extremum, where its
    slope changes sign: a minimum of a stretch >= 0 or a maximum of a stretch <= 0. There
    the extremum is refined (Newton on the slope), the NPV evaluated at it, and a root
    refined in each monotone half if the extremum lies beyond zero; an NPV within
    rounding of zero at the extremum (``4 * n_periods * eps * sum_j |cf_j| (1+r)^-j``)
    is a double root. Intervals are examined outwards from zero (``"nearest_zero"``) or
    downwards from the top of the range (``"investment"``) until the wanted root is
    found, all rows together (no loop over rows).

    Guarantee: every real root in the search range is found, however close to another
    root, provided the NPV has at most one local extremum between two neighbouring grid
    rates. Limits: a pair of roots hidden between two extrema less than one grid step
    apart can be missed (in the model's equity flows the closest extrema found were
    1.6 percentage points apart); roots closer together than rounding can resolve
    (typically < 1e-7) count as one double root, which ``"investment"`` does not take
    for a fall.

    Examples
    --------
    >>> round(float(irr(np.array([[-100, 39, 59, 55, 20]]))[0]), 5)
    0.28095
    >>> # roots at -0.8 % and +0.74 %: the nearest to zero is +0.74 %
    >>> v1, v2 = 1 / (1 - 0.008), 1 / (1 + 0.0074)
    >>> round(float(irr(np.array([[v1 * v2, -(v1 + v2), 1.0]]))[0]), 6)
    0.0074
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
        out[several] = _irr_several_roots(cf[several], tol, root)
    return out


def _irr_unique_root(cf: np.ndarray, tol: float) -> np.ndarray:
    """IRR of rows whose flows change sign once: the NPV has exactly one root in r > -1."""
    n, periods = cf.shape
    t = np.arange(periods, dtype=float)
    grid, powers = _grid_powers(periods)
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


def _irr_several_roots(cf: np.ndarray, tol: float, root: str) -> np.ndarray:
    """IRR of rows whose flows change sign several times (several roots possible); see :func:`irr`."""
    n, periods = cf.shape
    grid, basis, k0 = _grid_npv_slope(periods)
    g = grid.size
    # grid rates along the first axis: the interval masks below are contiguous slices
    both = basis @ cf.T  # (2G, n): NPV and its slope in r at every grid rate
    f, slope = both[:g], both[g:]
    pos, falling = f > 0, slope < 0
    # interval k = [grid[k], grid[k+1]]; a dip (slope falling, then not) or a hump (the reverse)
    # is one extremum of the NPV in the interval, where a pair of roots or a double root may hide
    dip, hump = falling[:-1] & ~falling[1:], ~falling[:-1] & falling[1:]
    scan = _IntervalScan(cf, grid, f, slope, tol, root)
    if root == "investment":
        # may hold a falling root: NPV from positive to <= 0 (one root, or the first of a dip's
        # pair), or a hump of a stretch <= 0 rising above zero (the second root of its pair); an
        # interval holds at most one, and the highest is wanted: scan downwards
        falls = pos[:-1] & (~pos[1:] | dip) | hump & ~(pos[:-1] | pos[1:])
        return scan.first(falls[::-1], np.arange(g - 2, -1, -1), upwards=False)
    neg = f < 0
    # a sign change (one root), a dip of a stretch >= 0 or a hump of a stretch <= 0 (two or none)
    candidates = (pos[:-1] & neg[1:] | neg[:-1] & pos[1:] | dip & ~(neg[:-1] | neg[1:])
                  | hump & ~(pos[:-1] | pos[1:]))
    # nearest zero: the lowest root at or above zero, the highest below it (only where it can be nearer)
    above = scan.first(candidates[k0:], np.arange(k0, g - 1))
    best = np.abs(above)
    on_grid = np.full(n, np.nan)
    if not (pos | neg).all():  # NPV exactly zero at a grid rate (or NaN flows)
        distance = np.where(f == 0, np.abs(grid)[:, None], np.inf)
        k = distance.argmin(axis=0)
        rows = np.flatnonzero(np.isfinite(distance[k, np.arange(n)]))
        on_grid[rows] = grid[k[rows]]
        best = np.fmin(best, np.abs(on_grid))
    below = scan.first(candidates[:k0][::-1], np.arange(k0 - 1, -1, -1), upwards=False, stop=best)
    out = np.where(np.isnan(above) | (np.abs(on_grid) < np.abs(above)), on_grid, above)
    pick_below = np.isnan(out) | (np.abs(below) < np.abs(out))
    return np.where(pick_below, below, out)


class _IntervalScan:
    """The wanted root in grid intervals of several rows at once (see :meth:`first`); ``f``
    and ``slope`` (NPV and dNPV/dr) have the grid along the first axis, the rows along the second."""

    def __init__(self, cf: np.ndarray, grid: np.ndarray, f: np.ndarray, slope: np.ndarray, tol: float,
                 root: str):
        self.cf, self.grid, self.f, self.slope, self.tol, self.root = cf, grid, f, slope, tol, root
        self.t = np.arange(cf.shape[1], dtype=float)

    def first(self, candidates: np.ndarray, order: np.ndarray, upwards: bool = True,
              stop: np.ndarray | None = None) -> np.ndarray:
        """Per row, the first root met scanning the intervals ``order`` (``candidates[i]``
        flags the rows where interval ``order[i]`` may hold one); NaN if none. Scanning
        ``upwards`` the lowest root of an interval is taken, else the highest; for
        ``"investment"`` only a falling root. A row stops at the first interval whose
        nearest end is ``stop`` or further from zero."""
        n = self.cf.shape[0]
        out = np.full(n, np.nan)
        if candidates.shape[0] == 0:
            return out
        i = candidates.argmax(axis=0)
        rows = np.flatnonzero(candidates[i, np.arange(n)])
        i = i[rows]
        while rows.size:
            k = order[i]
            if stop is not None:
                nearest = np.minimum(np.abs(self.grid[k]), np.abs(self.grid[k + 1]))
                go = ~(nearest >= stop[rows])  # NaN: no root found yet, keep looking
                rows, i, k = rows[go], i[go], k[go]
                if not rows.size:
                    break
            x = self._root_in(rows, k, upwards)
            found = ~np.isnan(x)
            out[rows[found]] = x[found]
            # an extremum that stays clear of zero: look on from the next interval
            rows, i = rows[~found], i[~found]
            if rows.size:
                rest = candidates[:, rows].copy()
                rest[np.arange(rest.shape[0])[:, None] <= i[None, :]] = False
                more = rest.any(axis=0)
                rows, i = rows[more], rest[:, more].argmax(axis=0)
        return out

    def _root_in(self, rows: np.ndarray, k: np.ndarray, upwards: bool) -> np.ndarray:
        cf, t, tol = self.cf[rows], self.t, self.tol
        lo, hi = self.grid[k], self.grid[k + 1]
        f_lo, f_hi = self.f[k, rows], self.f[k + 1, rows]
        s_lo, s_hi = self.slope[k, rows], self.slope[k + 1, rows]
        dip, hump = (s_lo < 0) & ~(s_hi < 0), ~(s_lo < 0) & (s_hi < 0)
        if self.root == "investment":  # the first root of a dip from above zero, the second of a hump
            extremum = dip & (f_lo > 0) | hump & ~(f_lo > 0) & ~(f_hi > 0)
            upper = hump
        else:  # an extremum between ends of one sign (not a sign change)
            extremum = (dip | hump) & ~(f_lo * f_hi < 0)
            upper = np.full(rows.size, not upwards)
        x = np.full(rows.size, np.nan)
        plain = np.flatnonzero(~extremum)  # the NPV changes sign once in the interval
        if plain.size:
            refined = _refine(cf[plain], lo[plain].copy(), hi[plain].copy(), f_lo[plain], f_hi[plain], t, tol)
            x[plain] = np.where(f_hi[plain] == 0, hi[plain], refined)
            if self.root == "investment":
                # a root at a grid rate whose NPV is zero up to rounding may be a double root there
                # (the NPV touches zero, its sign at the grid rate is noise): not a fall if the
                # NPV's slope is too flat for it to get beyond rounding of zero near the root
                xp = x[plain]
                at_grid = plain[np.minimum(xp - lo[plain], hi[plain] - xp) <= 1e-6 * (1.0 + np.abs(xp))]
                if at_grid.size:
                    slope, curvature = _npv_at(x[at_grid], cf[at_grid], t, order=1)
                    _, scale = _npv_and_scale(x[at_grid], cf[at_grid], t)
                    touch = slope * slope <= 4.0 * _rounding(scale, t) * np.abs(curvature)
                    x[at_grid[touch]] = np.nan
        h = np.flatnonzero(extremum)
        if h.size:
            c = cf[h]
            # the NPV's one extremum in the interval, where its slope changes sign
            xc = _refine(c, lo[h].copy(), hi[h].copy(), s_lo[h], s_hi[h], t, tol, order=1)
            fc, scale = _npv_and_scale(xc, c, t)
            beyond = np.where(dip[h], -fc, fc)  # > 0: the dip goes below zero, the hump above
            double = np.abs(fc) <= _rounding(scale, t)  # touches zero
            pair = (beyond > 0) & ~double  # a root on either side of the extremum
            res = np.full(h.size, np.nan)
            if self.root != "investment":  # a double root is a root, not a fall through zero
                res[double] = xc[double]
            q = np.flatnonzero(pair)
            if q.size:
                hq = h[q]
                up = upper[hq]
                b_lo, b_hi = np.where(up, xc[q], lo[hq]), np.where(up, hi[hq], xc[q])
                fb_lo, fb_hi = np.where(up, fc[q], f_lo[hq]), np.where(up, f_hi[hq], fc[q])
                refined = _refine(c[q], b_lo, b_hi, fb_lo, fb_hi, t, tol)
                res[q] = np.where(fb_hi == 0, b_hi, np.where(fb_lo == 0, b_lo, refined))
            x[h] = res
        return x
