"""Operating options of a mine by least-squares Monte Carlo: open, closed, abandoned, undeveloped.

A mine is in one of a few operating *modes*:

- ``OPEN``: producing; receives the open cash flow and depletes its reserve by one period;
- ``CLOSED``: care and maintenance; pays the maintenance flow, produces nothing, the
  reserve does not move;
- ``ABANDONED``: absorbing, worth nothing afterwards; entering it pays the closure
  (abandonment) cost once;
- ``EXHAUSTED``: absorbing, the reserve is used up (the closure cost is paid with the last
  production period);
- ``UNDEVELOPED`` (optional): not yet built; pays a holding cost per period and may be
  developed (pay the investment, become ``OPEN``) up to a licence expiry, or relinquished.

Switching ``OPEN -> CLOSED`` pays the closing cost, ``CLOSED -> OPEN`` the reopening cost.
This is the problem of Brennan and Schwartz (1985); here it is solved by the least-squares
Monte Carlo method of Longstaff and Schwartz (2001), with the regression machinery of
:mod:`fundmodel.lsm` (standardised monomials per date, ridge, clipping to the fitted range,
BLAS-free normal equations).

Inputs are generic: the caller gives, per date and path, the cash flow of being open and of
being closed (and of waiting, if undeveloped) and the one-off cost of each switch, so the
same code values a monthly price-driven mine and a project's annual cash-flow model.

Conventions (as :mod:`fundmodel.lsm`)
-------------------------------------
Dates ``t = 0 .. T-1``; state arrays are ``(T, n_paths, n_vars)``, flows ``(T, n_paths)``
(or a scalar, or ``(T,)``, broadcast). At date ``t`` the holder, in mode ``m`` with ``l``
producing periods of reserve left, picks the mode for period ``t`` (pays the switch cost at
``t``) and receives that mode's flow at ``t``; ``discount[t]`` discounts one period, from
``t + 1`` to ``t``. After ``T - 1`` everything is worth 0 (put any terminal value into the
last date's flows). Decisions use only the current state: the caller's state variables, the
remaining reserve (``l / life``, appended as the last regression variable) and the mode.

The policy is fitted **once** on a pilot sample (:func:`fit_switching`) and applied out of
sample to fresh paths (:func:`apply_switching`), whose mean value is then an unbiased
estimate of a feasible policy's value (a low-biased estimate of the optimum). Because the
remaining reserve depends on the mode history, the pilot carries, for every path, the
realised value of each mode at *every* reserve level (``life`` levels, as in gas-storage
LSM); the continuation value of a mode is one regression per date on (state, reserve),
fitted on a random subsample of levels per path. Application is ``O(paths)`` per date.

References
----------
Brennan, M. J., and Schwartz, E. S. (1985). Evaluating natural resource investments.
*Journal of Business* 58(2), 135-157.
Longstaff, F. A., and Schwartz, E. S. (2001). Valuing American options by simulation: a
simple least-squares approach. *Review of Financial Studies* 14(1), 113-147.

Examples
--------
A mine with 24 months of reserve, price a driftless monthly random walk around 1.0 $/unit,
cost 0.9 $/unit, 1 unit/month, closing and reopening cost 0.05, maintenance 0.02 / month:

>>> rng = np.random.default_rng(1)
>>> def prices(n):
...     return np.exp(np.cumsum(0.08 * rng.standard_normal((36, n)), axis=0) - 0.0032 * np.arange(1, 37)[:, None])
>>> def problem(s):
...     return ModeFlows(open=s - 0.9, closed=-0.02), SwitchCosts(close=0.05, reopen=0.05)
>>> s = prices(4000)
>>> policy = fit_switching(s[..., None], *problem(s), 0.995, life=24)
>>> s = prices(4000)
>>> res = apply_switching(policy, s[..., None], *problem(s), 0.995)
>>> committed = committed_value(problem(s)[0], problem(s)[1], 0.995, life=24)
>>> bool(res.value.mean() > committed.mean())      # the options are worth something
True
>>> res.modes.shape
(36, 4000)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np

from fundmodel.lsm import RegressionValue, Terms, _check_terms, _discounts, _Fitter, polynomial_terms

__all__ = ["Mode", "ModeFlows", "SwitchCosts", "SwitchingPolicy", "SwitchingResult", "fit_switching",
           "apply_switching", "committed_value"]


class Mode(IntEnum):
    """Operating modes (the values stored in :attr:`SwitchingResult.modes`)."""

    OPEN = 0
    CLOSED = 1
    ABANDONED = 2
    UNDEVELOPED = 3
    EXHAUSTED = 4


def _at(a, t: int, n: int) -> np.ndarray:
    """Value of a scalar / ``(T,)`` / ``(T, n)`` input at date ``t`` for ``n`` paths."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return np.full(n, float(a))
    if a.ndim == 1:
        return np.full(n, a[t])
    return a[t]


def _rows(a, rows):
    a = np.asarray(a, dtype=float)
    return a[:, rows] if a.ndim == 2 else a


@dataclass(frozen=True)
class ModeFlows:
    """Cash flow of each mode per date and path (money per period, received at the date).

    Each field is a scalar, an array ``(T,)`` (same for every path) or ``(T, n_paths)``.

    Attributes
    ----------
    open : float or ndarray
        After-tax cash flow of a period spent producing (e.g. revenue - operating cost - tax).
    closed : float or ndarray
        Cash flow of a period in care and maintenance (normally negative: maintenance).
    undeveloped : float or ndarray, default 0
        Cash flow of a period spent undeveloped (normally negative: licence holding cost).
    """

    open: np.ndarray | float
    closed: np.ndarray | float = 0.0
    undeveloped: np.ndarray | float = 0.0

    def subset(self, rows) -> "ModeFlows":
        """The same flows for the paths ``rows`` (index or slice) only."""
        return ModeFlows(*(_rows(getattr(self, f), rows) for f in ("open", "closed", "undeveloped")))


@dataclass(frozen=True)
class SwitchCosts:
    """One-off cost (positive = money paid) of each switch, per date and path.

    Each field is a scalar, an array ``(T,)`` or ``(T, n_paths)``, paid at the date of the switch.

    Attributes
    ----------
    close : OPEN -> CLOSED.
    reopen : CLOSED -> OPEN.
    abandon : OPEN or CLOSED -> ABANDONED, and at exhaustion (closure and reclamation).
    invest : UNDEVELOPED -> OPEN (development capex, as a lump at the decision date).
    relinquish : UNDEVELOPED -> ABANDONED (giving the licence back), default 0.
    """

    close: np.ndarray | float = 0.0
    reopen: np.ndarray | float = 0.0
    abandon: np.ndarray | float = 0.0
    invest: np.ndarray | float = 0.0
    relinquish: np.ndarray | float = 0.0

    def subset(self, rows) -> "SwitchCosts":
        """The same costs for the paths ``rows`` only."""
        return SwitchCosts(*(_rows(getattr(self, f), rows) for f in
                             ("close", "reopen", "abandon", "invest", "relinquish")))


@dataclass(frozen=True)
class SwitchingPolicy:
    """An operating policy fitted by :func:`fit_switching` (plain arrays: pickles cheaply).

    Attributes
    ----------
    open_continuation : RegressionValue
        ``E[discount[t] V_{t+1}(OPEN, l) | X_t]`` per date, regressors ``(X_t, l / life)``.
    closed_continuation : RegressionValue
        The same for the CLOSED mode.
    undeveloped_continuation : RegressionValue or None
        ``E[discount[t] V_{t+1}(UNDEVELOPED) | X_t]`` (regressors ``(X_t, 1)``), if fitted.
    life : int or None
        Producing periods in the full reserve (None: never depletes).
    licence_expiry : int or None
        First date at which an undeveloped mine can no longer be developed (it lapses).
    """

    open_continuation: RegressionValue
    closed_continuation: RegressionValue
    undeveloped_continuation: RegressionValue | None = None
    life: int | None = None
    licence_expiry: int | None = None

    @property
    def n_dates(self) -> int:
        """Number of dates fitted."""
        return self.open_continuation.n_dates

    def _levels(self) -> int:
        return 1 if self.life is None else int(self.life)

    def _regressors(self, state: np.ndarray, level: np.ndarray) -> np.ndarray:
        return np.concatenate([state, (np.asarray(level, dtype=float) / self._levels())[:, None]], axis=1)

    def action_values(self, date: int, state: np.ndarray, mode, life, flows: ModeFlows, costs: SwitchCosts
                      ) -> np.ndarray:
        """Estimated value of each target mode at ``date`` (before the decision).

        Parameters
        ----------
        date : int
        state : ndarray of shape (n_paths, n_vars)
            The caller's state variables at ``date``.
        mode : int or ndarray of int, shape (n_paths,)
            Current mode (:class:`Mode`).
        life : int or ndarray of int, shape (n_paths,)
            Producing periods left (ignored if the policy has no ``life``).
        flows, costs : ModeFlows, SwitchCosts
            The values *at this date*: each field a scalar or an array ``(n_paths,)``.

        Returns
        -------
        ndarray of shape (5, n_paths)
            Value of choosing each :class:`Mode` now (switch cost + flow of the period +
            estimated continuation), ``-inf`` where that choice is not available.
        """
        state = np.asarray(state, dtype=float)
        n = state.shape[0]
        mode = np.broadcast_to(np.asarray(mode), (n,))
        level = np.broadcast_to(np.asarray(1 if self.life is None else life), (n,)).astype(np.int64)
        k = self._levels()

        def now(a):
            return np.broadcast_to(np.asarray(a, dtype=float), (n,))

        fo, fc, fu = now(flows.open), now(flows.closed), now(flows.undeveloped)
        kc, kr, ka, ki, kl = (now(getattr(costs, f)) for f in ("close", "reopen", "abandon", "invest", "relinquish"))
        out = np.full((5, n), -np.inf)
        live = (mode == Mode.OPEN) | (mode == Mode.CLOSED)
        undeveloped = mode == Mode.UNDEVELOPED
        # continuation of producing now: reserve l -> l - 1 (exhausted at 0: closure cost now)
        lvl = np.where(undeveloped, k, level)
        nxt = lvl - (0 if self.life is None else 1)
        cont_open = np.where(nxt > 0, self.open_continuation.predict(date, self._regressors(state, np.maximum(nxt, 1))),
                             -ka)
        cont_closed = self.closed_continuation.predict(date, self._regressors(state, np.maximum(lvl, 1)))
        produce = fo + cont_open
        out[Mode.OPEN] = np.where(mode == Mode.OPEN, produce, np.where(mode == Mode.CLOSED, produce - kr, -np.inf))
        out[Mode.CLOSED] = np.where(mode == Mode.CLOSED, fc + cont_closed,
                                    np.where(mode == Mode.OPEN, fc + cont_closed - kc, -np.inf))
        out[Mode.ABANDONED] = np.where(live, -ka, np.where(undeveloped, -kl, -np.inf))
        if undeveloped.any():
            can_invest = self.licence_expiry is None or date < self.licence_expiry
            if can_invest:
                out[Mode.OPEN] = np.where(undeveloped, produce - ki, out[Mode.OPEN])
                if self.undeveloped_continuation is not None:
                    cu = self.undeveloped_continuation.predict(date, self._regressors(state, np.full(n, k)))
                    out[Mode.UNDEVELOPED] = np.where(undeveloped, fu + cu, -np.inf)
        return out

    def decide(self, date: int, state: np.ndarray, mode, life, flows: ModeFlows, costs: SwitchCosts) -> np.ndarray:
        """Mode chosen at ``date`` (see :meth:`action_values`; ties keep the current mode).

        Returns
        -------
        ndarray of int8, shape (n_paths,)
            ABANDONED / EXHAUSTED stay as they are.
        """
        state = np.asarray(state, dtype=float)
        n = state.shape[0]
        mode = np.broadcast_to(np.asarray(mode), (n,)).astype(np.int8)
        values = self.action_values(date, state, mode, life, flows, costs)
        stay = values[np.clip(mode, 0, 4), np.arange(n)]
        best = np.argmax(values, axis=0).astype(np.int8)
        choice = np.where(values[best, np.arange(n)] > stay, best, mode).astype(np.int8)
        absorbed = (mode == Mode.ABANDONED) | (mode == Mode.EXHAUSTED)
        return np.where(absorbed, mode, choice).astype(np.int8)


@dataclass(frozen=True)
class SwitchingResult:
    """Outcome of applying a :class:`SwitchingPolicy` to paths.

    Attributes
    ----------
    value : ndarray of shape (n_paths,)
        Realised value at date 0 (all flows and switch costs from date 0 on, discounted to 0).
    modes : ndarray of int8, shape (n_dates, n_paths)
        Mode of each period (after the decision at that date); see :class:`Mode`.
    life : ndarray of int, shape (n_dates, n_paths)
        Producing periods left at each date after that period's production.
    """

    value: np.ndarray
    modes: np.ndarray
    life: np.ndarray = field(repr=False)

    def probability(self, mode: int, by: int | None = None) -> float:
        """Share of paths that were ever in ``mode`` by date ``by`` (default: the end)."""
        m = self.modes if by is None else self.modes[: by + 1]
        return float((m == mode).any(axis=0).mean())


def _sample_levels(rng: np.random.Generator, k: int, n: int, per_path: int) -> tuple[np.ndarray, np.ndarray]:
    """Level index (0-based, level = index + 1) and path of the fitting sample."""
    if k <= per_path:
        lv = np.repeat(np.arange(k), n)
        return lv, np.tile(np.arange(n), k)
    lv = rng.integers(0, k, size=(per_path, n)).ravel()
    return lv, np.tile(np.arange(n), per_path)


def _predict_grid(model: RegressionValue, date: int, x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``model.predict(date, (x_i, levels_j))`` for every level and path, shape (n_levels, n_paths).

    The basis is separable (each monomial = a product of state terms and a power of the
    level variable, the last regressor), so the grid costs (degree + 1) passes over it.
    """
    nv = x.shape[1]
    if model.n_fit[date] == 0:
        return np.stack([model.predict(date, np.column_stack([x, np.full(x.shape[0], lv)])) for lv in levels])
    mean, scale, coef = model.mean[date], model.scale[date], model.coef[date]
    zx = (x - mean[:nv]) / scale[:nv]
    zl = (levels - mean[nv]) / scale[nv]
    parts: dict[int, np.ndarray] = {}
    for j, term in enumerate(model.terms):  # loop over basis functions
        b = sum(1 for i in term if i == nv)
        px = np.full(x.shape[0], coef[j])
        for i in term:
            if i != nv:
                px = px * zx[:, i]
        parts[b] = parts.get(b, 0.0) + px
    out = np.zeros((levels.size, x.shape[0]))
    for b, a in parts.items():  # loop over powers of the level variable
        out += (zl ** b)[:, None] * a[None, :]
    return np.clip(out, model.lower[date], model.upper[date])


def fit_switching(states: np.ndarray, flows: ModeFlows, costs: SwitchCosts, discount, *, life: int | None = None,
                  develop: bool = False, licence_expiry: int | None = None, terms: Terms | None = None,
                  ridge: float = 1e-6, levels_per_path: int = 4, min_samples: int | None = None, seed: int = 0) -> SwitchingPolicy:
    """Fit the switching policy by the Longstaff-Schwartz backward induction on pilot paths.

    Parameters
    ----------
    states : ndarray of shape (n_dates, n_paths, n_vars)
        The caller's state variables (e.g. price, log price), as known at each date. To read
        decisions at date 0 (thresholds), start the pilot from dispersed states.
    flows : ModeFlows
        Cash flow of each mode, money per period at each date.
    costs : SwitchCosts
        One-off switch costs (positive = paid).
    discount : float or ndarray of shape (n_dates,)
        One-period discount factor from ``t + 1`` to ``t`` (fold any tax on value in here).
    life : int, optional
        Producing periods in the full reserve (e.g. inventory / output per period). None:
        the reserve never depletes.
    develop : bool, default False
        Also fit the undeveloped mode (investment decision).
    licence_expiry : int, optional
        Development possible at dates ``t < licence_expiry`` only (default: any date).
    terms : Terms, optional
        Basis over ``n_vars + 1`` regressors (state, reserve fraction); default
        ``polynomial_terms(n_vars + 1, 3)``.
    ridge : float, default 1e-6
        Ridge penalty per observation (:func:`fundmodel.lsm.ridge_solve`).
    levels_per_path : int, default 4
        Reserve levels per path in each date's fitting sample (random, seeded).
    min_samples : int, optional
        Fewer fitting rows than this: intercept only (default ``2 * len(terms)``).
    seed : int, default 0
        Seed of the level subsampling.

    Returns
    -------
    SwitchingPolicy

    Notes
    -----
    Backwards from ``V_T = 0``, for every pilot path and reserve level ``l = 1 .. life``,
    the realised values ``Yo[l] = discount[t] V_{t+1}(OPEN, l)`` and ``Yc[l]`` (CLOSED) are
    carried; per date the regressions ``C_o(x, l)`` and ``C_c(x, l)`` of ``Yo`` and ``Yc``
    on the basis of ``(X_t, l / life)`` are fitted, each (mode, level, path) picks the
    action of highest *estimated* value (switch cost + flow + ``C``), and its *realised*
    value is carried backwards (Longstaff and Schwartz 2001). The work is
    ``O(n_dates * life * n_paths)``.
    """
    states = np.asarray(states, dtype=float)
    n_dates, n, n_vars = states.shape
    d = _discounts(discount, n_dates)
    k = 1 if life is None else int(life)
    depletes = life is not None
    terms = _check_terms(polynomial_terms(n_vars + 1, 3) if terms is None else terms)
    min_samples = 2 * len(terms) if min_samples is None else int(min_samples)
    rng = np.random.default_rng(seed)
    fit_o = _Fitter(n_dates, n_vars + 1, terms, ridge)
    fit_c = _Fitter(n_dates, n_vars + 1, terms, ridge)
    fit_u = _Fitter(n_dates, n_vars + 1, terms, ridge) if develop else None
    yo = np.zeros((k, n))  # realised value at t+1 of OPEN with level index j (l = j + 1), discounted to t
    yc = np.zeros((k, n))
    yu = np.zeros(n)
    levels = (np.arange(k) + 1.0) / k
    for t in range(n_dates - 1, -1, -1):  # loop over dates, backwards
        x = states[t]
        # fit the continuation regressions on a subsample of (level, path)
        lv, pth = _sample_levels(rng, k, n, levels_per_path)
        reg = np.concatenate([x[pth], levels[lv][:, None]], axis=1)
        fit_o.fit(t, reg, yo[lv, pth], min_samples)
        fit_c.fit(t, reg, yc[lv, pth], min_samples)
        c_o, c_c = fit_o.result(), fit_c.result()
        if fit_u is not None:
            fit_u.fit(t, np.concatenate([x, np.ones((n, 1))], axis=1), yu, min_samples)
        fo, fc, fu = _at(flows.open, t, n), _at(flows.closed, t, n), _at(flows.undeveloped, t, n)
        kc, kr, ka = _at(costs.close, t, n), _at(costs.reopen, t, n), _at(costs.abandon, t, n)
        grid_c = _predict_grid(c_c, t, x, levels)                       # C_c(x, l), (k, n)
        grid_o = _predict_grid(c_o, t, x, levels)                       # C_o(x, l)
        # producing now moves level index j to j - 1 (j = 0: exhausted, closure cost now)
        if depletes:
            est_o = np.concatenate([np.broadcast_to(-ka, (1, n)), grid_o[:-1]])
            real_o = np.concatenate([np.broadcast_to(-ka, (1, n)), yo[:-1]])
        else:
            est_o, real_o = grid_o, yo
        produce_est, produce_real = fo + est_o, fo + real_o
        wait_est, wait_real = fc + grid_c, fc + yc
        # OPEN at t: produce, close (pay kc), abandon (pay ka)
        close = (wait_est - kc > produce_est) & (wait_est - kc > -ka)
        aband = ~close & (-ka > produce_est)
        new_o = np.where(close, wait_real - kc, np.where(aband, -ka, produce_real))
        # CLOSED at t: stay, reopen (pay kr), abandon
        reopen = (produce_est - kr > wait_est) & (produce_est - kr > -ka)
        aband = ~reopen & (-ka > wait_est)
        new_c = np.where(reopen, produce_real - kr, np.where(aband, -ka, wait_real))
        if fit_u is not None:
            c_u = fit_u.result()
            if licence_expiry is not None and t >= licence_expiry:
                new_u = np.zeros(n)
            else:
                ki, kl = _at(costs.invest, t, n), _at(costs.relinquish, t, n)
                full_next = k - 2 if depletes else k - 1
                if full_next >= 0:
                    est_inv = fo + c_o.predict(t, np.concatenate([x, np.full((n, 1), levels[full_next])], axis=1)) - ki
                    real_inv = fo + yo[full_next] - ki
                else:
                    est_inv = real_inv = fo - ka - ki
                est_wait = fu + c_u.predict(t, np.concatenate([x, np.ones((n, 1))], axis=1))
                real_wait = fu + yu
                inv = (est_inv > est_wait) & (est_inv > -kl)
                rel = ~inv & (-kl > est_wait)
                new_u = np.where(inv, real_inv, np.where(rel, -kl, real_wait))
            if t > 0:
                yu = d[t - 1] * new_u
        if t > 0:
            yo, yc = d[t - 1] * new_o, d[t - 1] * new_c
    return SwitchingPolicy(fit_o.result(), fit_c.result(), None if fit_u is None else fit_u.result(),
                           life, licence_expiry)


def apply_switching(policy: SwitchingPolicy, states: np.ndarray, flows: ModeFlows, costs: SwitchCosts, discount,
                    *, initial_mode: int | np.ndarray = Mode.OPEN, initial_life: int | np.ndarray | None = None
                    ) -> SwitchingResult:
    """Follow ``policy`` on (fresh) paths and record the realised value and modes.

    Parameters
    ----------
    policy : SwitchingPolicy
    states, flows, costs, discount
        As in :func:`fit_switching`, for the paths to value.
    initial_mode : int or ndarray of int, shape (n_paths,), default OPEN
        Mode before the decision at date 0 (OPEN, CLOSED or UNDEVELOPED).
    initial_life : int or ndarray of int, optional
        Producing periods left at date 0 (default: the full ``policy.life``).

    Returns
    -------
    SwitchingResult
        Per-path values (each path's numbers do not depend on the other paths: applying
        the policy to chunks of paths gives the same bits) and mode histories.
    """
    states = np.asarray(states, dtype=float)
    n_dates, n, _ = states.shape
    d = _discounts(discount, n_dates)
    k = 1 if policy.life is None else int(policy.life)
    mode = np.broadcast_to(np.asarray(initial_mode, dtype=np.int8), (n,)).copy()
    level = np.broadcast_to(np.asarray(k if initial_life is None else initial_life, dtype=np.int64), (n,)).copy()
    if policy.life is None:
        level[:] = 1
    value = np.zeros(n)
    growth = np.ones(n)
    modes = np.empty((n_dates, n), dtype=np.int8)
    lives = np.empty((n_dates, n), dtype=np.int64)
    for t in range(n_dates):  # loop over dates, forwards
        fo, fc, fu = _at(flows.open, t, n), _at(flows.closed, t, n), _at(flows.undeveloped, t, n)
        kc, kr, ka = _at(costs.close, t, n), _at(costs.reopen, t, n), _at(costs.abandon, t, n)
        ki, kl = _at(costs.invest, t, n), _at(costs.relinquish, t, n)
        new = np.array(mode)
        active = np.flatnonzero((mode != Mode.ABANDONED) & (mode != Mode.EXHAUSTED))
        if active.size:
            new[active] = policy.decide(t, states[t][active], mode[active], level[active],
                                        ModeFlows(fo[active], fc[active], fu[active]),
                                        SwitchCosts(kc[active], kr[active], ka[active], ki[active], kl[active]))
        flow = np.zeros(n)
        was_open, was_closed, was_und = mode == Mode.OPEN, mode == Mode.CLOSED, mode == Mode.UNDEVELOPED
        now_open = new == Mode.OPEN
        flow += np.where(now_open, fo, 0.0)
        flow += np.where(new == Mode.CLOSED, fc, 0.0)
        flow += np.where(new == Mode.UNDEVELOPED, fu, 0.0)
        flow -= np.where(was_open & (new == Mode.CLOSED), kc, 0.0)
        flow -= np.where(was_closed & now_open, kr, 0.0)
        flow -= np.where(was_und & now_open, ki, 0.0)
        flow -= np.where((was_open | was_closed) & (new == Mode.ABANDONED), ka, 0.0)
        flow -= np.where(was_und & (new == Mode.ABANDONED), kl, 0.0)
        if policy.life is not None:
            level = np.where(was_und & now_open, k, level)
            level = np.where(now_open, level - 1, level)
            exhausted = now_open & (level <= 0)
            flow -= np.where(exhausted, ka, 0.0)
        else:
            exhausted = np.zeros(n, dtype=bool)
        value += growth * flow
        modes[t] = new
        lives[t] = level
        mode = np.where(exhausted, np.int8(Mode.EXHAUSTED), new).astype(np.int8)
        growth = growth * d[t]
    return SwitchingResult(value, modes, lives)


def committed_value(flows: ModeFlows, costs: SwitchCosts, discount, *, life: int | None = None,
                    n_dates: int | None = None, develop: bool = False) -> np.ndarray:
    """Value of the committed plan: (develop at date 0,) produce every period until exhausted.

    Parameters
    ----------
    flows, costs, discount
        As in :func:`fit_switching`.
    life : int, optional
        Producing periods (default: every date).
    n_dates : int, optional
        Number of dates (default: from the first 2-D flow array).
    develop : bool, default False
        Pay ``costs.invest`` at date 0 first.

    Returns
    -------
    ndarray of shape (n_paths,) (or ``(1,)`` if every input is scalar or ``(T,)``)
    """
    arrays = [np.asarray(flows.open, dtype=float)]
    if n_dates is None:
        n_dates = next((a.shape[0] for a in arrays if a.ndim >= 1), life)
    n = next((a.shape[1] for a in (np.asarray(getattr(flows, f)) for f in ("open", "closed"))
              if a.ndim == 2), 1)
    d = _discounts(discount, n_dates)
    value = np.zeros(n)
    growth = 1.0
    last = n_dates if life is None else min(int(life), n_dates)
    for t in range(last):  # loop over dates
        value += growth * _at(flows.open, t, n)
        if develop and t == 0:
            value -= _at(costs.invest, 0, n)
        if life is not None and t == int(life) - 1:
            value -= growth * _at(costs.abandon, t, n)
        growth *= d[t]
    return value
