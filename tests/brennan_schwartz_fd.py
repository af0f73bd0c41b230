"""Finite-difference reference for the Brennan and Schwartz (1985) copper mine (test helper).

The mine is open (value ``V``), closed (care and maintenance, value ``W``) or abandoned (0).
With the paper's cost inflation every cost grows at ``pi``; in units of the cost index
``exp(pi t)`` (``x = S exp(-pi t)``) the problem is time-homogeneous: the deflated price has
risk-neutral drift ``mu = r - kappa - pi`` and is discounted at ``r + lambda - pi`` (the
property tax ``lambda`` on value acts as an extra discount rate). With a constant output
``q`` the inventory of an open mine maps to its remaining producing time ``tau = Q / q``;
a closed mine's inventory does not move, so ``W(., tau)`` solves a stationary ODE in ``x``.

Per inventory level ``tau_n = n dtau`` (implicit Euler in ``tau`` for the open mine), the
coupled obstacle problem

    min{ (V - V_prev)/dtau - L V - c_open,  V - (W - k_close),  V + k_abandon } = 0
    min{ -L W + f,                          W - (V - k_open),   W + k_abandon } = 0

(``L`` the discounted generator in ``y = ln x``) is solved by policy iteration (Howard):
each row takes the equation or the switching condition with the smallest residual, the
linear system is solved, until the policy no longer changes. ``V(., 0) = W(., 0) = 0``
(an exhausted mine is worth nothing; closure is free, as in the paper's example).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded


@dataclass(frozen=True)
class MineInputs:
    """Inputs of the Brennan and Schwartz (1985) example, per year and in $ / million lb."""

    output: float = 10.0          # q, M lb / yr
    inventory: float = 150.0      # Q, M lb (15 years of output)
    cost: float = 0.50            # average production cost at t = 0, $/lb
    close_cost: float = 0.2       # k1, M$ (at t = 0 prices)
    open_cost: float = 0.2        # k2, M$
    abandon_cost: float = 0.0     # M$ (assumed: abandonment is free in the example)
    maintenance: float = 0.5      # f, M$ / yr while closed
    inflation: float = 0.08       # pi, cost inflation / yr
    property_tax: float = 0.02    # lambda, of mine value / yr, open and closed
    income_tax: float = 0.5       # t2, on positive operating profit (no loss offset)
    royalty: float = 0.0          # t1, of revenue
    rate: float = 0.10            # rho, nominal interest rate / yr
    convenience: float = 0.01     # kappa, convenience yield / yr
    variance: float = 0.08        # sigma^2 of the price / yr

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.variance))

    @property
    def life(self) -> float:
        """Producing years in the full inventory."""
        return self.inventory / self.output

    def open_flow(self, x):
        """After-tax cash flow of the open mine, M$ / yr, at (cost-deflated) price ``x`` $/lb."""
        x = np.asarray(x, dtype=float)
        revenue = self.output * x
        royalty = self.royalty * revenue
        profit = revenue - royalty - self.output * self.cost
        return profit - self.income_tax * np.maximum(profit, 0.0)


@dataclass(frozen=True)
class FDSolution:
    x: np.ndarray            # deflated price grid, $/lb
    tau: float               # remaining producing years
    open_value: np.ndarray   # V(x, tau), M$
    closed_value: np.ndarray  # W(x, tau), M$
    open_policy: np.ndarray   # 0 stay open, 1 close, 2 abandon
    closed_policy: np.ndarray  # 0 stay closed, 1 open, 2 abandon
    tau_grid: np.ndarray | None = None   # remaining producing years of each inventory step
    boundaries: np.ndarray | None = None  # (n_steps, 4): open above, close below, abandon below (closed, open)

    def value(self, x0: float, mode: str) -> float:
        v = self.open_value if mode == "open" else self.closed_value
        return float(np.interp(np.log(x0), np.log(self.x), v))

    def thresholds(self) -> dict[str, float]:
        """Prices where the policy flips (midpoint of the two grid nodes), $/lb."""
        def flip(policy, action, side):
            idx = np.flatnonzero(policy == action)
            if not idx.size:
                return float("nan")
            j = idx[0] if side == "low" else idx[-1]
            k = j - 1 if side == "low" else j + 1
            return float(np.sqrt(self.x[j] * self.x[k]))
        return {"open": flip(self.closed_policy, 1, "low"),      # closed mine opens above
                "close": flip(self.open_policy, 1, "high"),      # open mine closes below
                "abandon": flip(self.closed_policy, 2, "high")}  # closed mine abandons below


def solve(inputs: MineInputs = MineInputs(), *, tau: float | None = None, dy: float = 0.004,
          x_min: float = 0.02, x_max: float = 20.0, steps_per_year: int = 50) -> FDSolution:
    """Values of the open and closed mine with ``tau`` producing years left (default: full)."""
    p = inputs
    tau = p.life if tau is None else tau
    mu = p.rate - p.convenience - p.inflation           # drift of the deflated price
    r_eff = p.rate + p.property_tax - p.inflation         # discount rate in deflated units
    s2 = p.variance
    y = np.arange(np.log(x_min), np.log(x_max) + dy / 2, dy)
    x = np.exp(y)
    n = y.size
    diff, drift = 0.5 * s2 / dy**2, (mu - 0.5 * s2) / (2 * dy)
    lo_c, mid_c, up_c = diff - drift, -2 * diff - r_eff, diff + drift   # L V_j = lo V_{j-1} + mid V_j + up V_{j+1}
    n_steps = max(1, int(round(tau * steps_per_year)))
    dtau = tau / n_steps
    c_open = p.open_flow(x)
    f = p.maintenance
    kc, ko, ka = p.close_cost, p.open_cost, p.abandon_cost

    def boundary(t):  # far above: produce to exhaustion, never close
        a = (1 - p.royalty) * p.output * x[-1]
        pv_rev = a * (1 - np.exp(-(r_eff - mu) * t)) / (r_eff - mu)
        pv_cost = p.output * p.cost * (1 - np.exp(-r_eff * t)) / r_eff
        v = (1 - p.income_tax) * (pv_rev - pv_cost)
        return v, v - ko

    v_prev = np.zeros(n)
    pol_v = np.zeros(n, dtype=np.int8)
    pol_w = np.full(n, 2, dtype=np.int8)
    u = np.zeros(2 * n)
    bounds = []
    for step in range(1, n_steps + 1):  # loop over inventory levels
        t = step * dtau
        vb, wb = boundary(t)
        for _ in range(100):  # policy iteration
            # banded matrix in the interleaved unknowns u[2j] = V_j, u[2j+1] = W_j, bandwidth (2, 2)
            ab = np.zeros((5, 2 * n))
            rhs = np.zeros(2 * n)

            def put(row, col, val):
                ab[2 + row - col, col] = val

            for kind, pol, k_sw, base in (("V", pol_v, kc, 0), ("W", pol_w, ko, 1)):
                rows = 2 * np.arange(n) + base
                other = rows + (1 - 2 * base)
                eq = pol == 0
                # equation rows (interior); boundary rows handled below
                j = np.flatnonzero(eq[1:-1]) + 1
                r = rows[j]
                diag = -mid_c + (1 / dtau if kind == "V" else 0.0)
                ab[2, r] = diag
                ab[2 + 2, r - 2] = -lo_c   # A[r, r-2] stored at ab[2 + r - (r-2)] = ab[4, r-2]
                ab[0, r + 2] = -up_c       # A[r, r+2] stored at ab[2 + r - (r+2)] = ab[0, r+2]
                rhs[r] = (v_prev[j] / dtau + c_open[j]) if kind == "V" else -f
                # switching rows: u_r - u_other = -k
                j = np.flatnonzero(pol == 1)
                r, o = rows[j], other[j]
                ab[2, r] = 1.0
                ab[2 + r - o, o] = -1.0
                rhs[r] = -k_sw
                # abandonment rows: u_r = -k_abandon
                j = np.flatnonzero(pol == 2)
                ab[2, rows[j]] = 1.0
                rhs[rows[j]] = -ka
                # grid ends: Dirichlet (abandoned below, producing above)
                for jb, val in ((0, -ka if ka else 0.0), (n - 1, vb if kind == "V" else wb)):
                    if pol[jb] == 0:
                        rb = rows[jb]
                        for off in (-2, -1, 1, 2):
                            c = rb + off
                            if 0 <= c < 2 * n:
                                ab[2 + rb - c, c] = 0.0
                        ab[2, rb] = 1.0
                        rhs[rb] = val
            u = solve_banded((2, 2), ab, rhs)
            v, w = u[0::2], u[1::2]
            # residuals of each alternative at the new solution
            lv = np.zeros(n)
            lw = np.zeros(n)
            lv[1:-1] = lo_c * v[:-2] + mid_c * v[1:-1] + up_c * v[2:]
            lw[1:-1] = lo_c * w[:-2] + mid_c * w[1:-1] + up_c * w[2:]
            res_v = np.stack([(v - v_prev) / dtau - lv - c_open, v - (w - kc), v + ka])
            res_w = np.stack([-lw + f, w - (v - ko), w + ka])
            res_v[0, [0, -1]] = res_w[0, [0, -1]] = 0.0
            new_v, new_w = pol_v.copy(), pol_w.copy()
            cur_v = res_v[pol_v, np.arange(n)]
            cur_w = res_w[pol_w, np.arange(n)]
            tol = 1e-10
            best_v, best_w = res_v.argmin(axis=0), res_w.argmin(axis=0)
            change_v = res_v[best_v, np.arange(n)] < cur_v - tol
            change_w = res_w[best_w, np.arange(n)] < cur_w - tol
            new_v[change_v] = best_v[change_v]
            new_w[change_w] = best_w[change_w]
            new_v[[0, -1]], new_w[[0, -1]] = (2, 0), (2, 0)
            if np.array_equal(new_v, pol_v) and np.array_equal(new_w, pol_w):
                break
            pol_v, pol_w = new_v, new_w
        v_prev = v
        bounds.append(_boundaries(x, pol_v, pol_w))
    return FDSolution(x, tau, v, w, pol_v, pol_w, dtau * np.arange(1, n_steps + 1), np.array(bounds))


def _boundaries(x, pol_v, pol_w):
    """Switching prices of one inventory level: open above, close below, abandon below (closed; open)."""
    def edge(pol, action, low):
        idx = np.flatnonzero(pol == action)
        if not idx.size:
            return 0.0 if not low else np.inf
        j = idx[0] if low else idx[-1]
        k = j - 1 if low else j + 1
        return float(np.sqrt(x[j] * x[k]))
    return edge(pol_w, 1, True), edge(pol_v, 1, False), edge(pol_w, 2, False), edge(pol_v, 2, False)


@dataclass(frozen=True)
class MonthlySolution:
    """Discrete-time (Bermudan) solution: decisions once per period, as in a monthly LSM."""

    x: np.ndarray
    open_value: np.ndarray    # V(x) at full inventory, M$ (before the decision)
    closed_value: np.ndarray  # W(x)
    boundaries: np.ndarray    # (n_levels, 4) as FDSolution.boundaries, per remaining period of output

    def value(self, x0: float, mode: str) -> float:
        v = self.open_value if mode == "open" else self.closed_value
        return float(np.interp(np.log(x0), np.log(self.x), v))

    def thresholds(self) -> dict[str, float]:
        b = self.boundaries[-1]
        return {"open": float(b[0]), "close": float(b[1]), "abandon": float(b[2])}


def solve_periodic(inputs: MineInputs = MineInputs(), *, dt: float = 1 / 12, dy: float = 0.01,
                   x_min: float = 0.02, x_max: float = 20.0) -> MonthlySolution:
    """Dynamic programming with one decision per period ``dt`` (the LSM's problem, no regression).

    In cost-deflated units (time-homogeneous): the mine with ``l`` periods of output left
    chooses at each decision date; the open flow ``open_flow(x) dt`` and the maintenance
    ``f dt`` are received for the period, then the price moves one period (Gaussian in
    ``ln x``, transition matrix on the grid, mass beyond the grid lumped at its ends) and
    value is discounted at ``r + lambda - pi``. Per level the closed mine's stationary
    problem is solved by policy iteration (dense linear solves).
    """
    p = inputs
    mu = p.rate - p.convenience - p.inflation
    disc = float(np.exp(-(p.rate + p.property_tax - p.inflation) * dt))
    y = np.arange(np.log(x_min), np.log(x_max) + dy / 2, dy)
    x = np.exp(y)
    n = y.size
    m, s = (mu - 0.5 * p.variance) * dt, np.sqrt(p.variance * dt)
    edges = np.concatenate([[-np.inf], (y[1:] + y[:-1]) / 2, [np.inf]])
    from scipy.special import ndtr
    cdf = ndtr((edges[None, :] - y[:, None] - m) / s)
    trans = disc * np.diff(cdf, axis=1)               # discounted one-period transition
    fo, fc = p.open_flow(x) * dt, -p.maintenance * dt
    kc, ko, ka = p.close_cost, p.open_cost, p.abandon_cost
    levels = int(round(p.life / dt))
    v_prev = np.full(n, -ka)
    stay = np.ones(n, dtype=bool)
    eye = np.eye(n)
    bounds = []
    for _ in range(levels):  # loop over remaining periods of output
        produce = fo + trans @ v_prev
        for _ in range(50):  # policy iteration for the closed mine
            a = np.where(stay[:, None], eye - trans, eye)
            rhs = np.where(stay, fc, 0.0)
            alt = np.maximum(produce - ko, -ka)
            rhs = np.where(stay, rhs, alt)
            w = np.linalg.solve(a, rhs)
            new = fc + trans @ w >= alt
            if np.array_equal(new, stay):
                break
            stay = new
        cont_w = fc + trans @ w
        v = np.maximum.reduce([produce, cont_w - kc, np.full(n, -ka)])
        pol_v = np.where(produce >= np.maximum(cont_w - kc, -ka), 0, np.where(cont_w - kc >= -ka, 1, 2))
        pol_w = np.where(stay, 0, np.where(produce - ko >= -ka, 1, 2))
        bounds.append(_boundaries(x, pol_v, pol_w))
        v_prev = v
    return MonthlySolution(x, v, w, np.array(bounds))
