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
:mod:`fundmodel.lsm` (state standardised per date, ridge, clipping to the fitted range); the
pilot fit runs its small matrix products on one BLAS thread (same bits whatever the thread
settings), the application to paths uses per-path sums (same bits whatever the chunking).

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
remaining reserve ``l`` and the mode.

The policy is fitted **once** on a pilot sample (:func:`fit_switching`) and applied out of
sample to fresh paths (:func:`apply_switching`), whose mean value is then an unbiased
estimate of a feasible policy's value (a low-biased estimate of the optimum). Because the
remaining reserve depends on the mode history, the pilot carries, for every path, the
realised value of each mode at *every* reserve level (``life`` levels, as in gas-storage
LSM); the continuation value of a mode is a regression per date *and level* on the state
(:class:`LevelRegression`; the levels share the regressors, so a date is one least-squares
problem with ``life`` right-hand sides). The default basis is piecewise linear in one state
variable (hinges at quantile knots, :func:`fundmodel.lsm.hinge_basis`), local where the
decisions are taken, with linear terms in the others. A discounted martingale of the paths
(e.g. the price of the commodity grown at the discount rate) can be given as a control
variate: the regressions then also fit a hedge ratio and the carried realised values are
hedged, which cuts the noise of the fitted policy several-fold. Application is ``O(paths)``
per date.

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
from threadpoolctl import threadpool_limits

from fundmodel.lsm import Terms, _check_terms, _discounts, _standardise, hinge_basis, polynomial_terms, quantile_knots

__all__ = ["Mode", "ModeFlows", "SwitchCosts", "LevelRegression", "SwitchingPolicy", "SwitchingResult",
           "fit_switching", "apply_switching", "committed_value"]


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
class LevelRegression:
    """Continuation value of one mode: a regression on the state per date and reserve level.

    At every date all reserve levels share the regressors (the pilot carries every path's
    value at every level), so the ``n_levels`` regressions of a date are one least-squares
    problem with ``n_levels`` right-hand sides.

    Basis (:func:`fundmodel.lsm.hinge_basis`): the monomials ``terms`` of the state
    standardised per date, then the hinges ``max(z[var] - knot, 0)`` at the date's knots
    (quantiles of the fitting sample).

    Attributes
    ----------
    terms : Terms
    var : int
        State variable carrying the hinges.
    knots : ndarray of shape (n_dates, n_knots)
        Hinge knots per date, standardised units.
    coef : ndarray of shape (n_dates, n_levels, n_basis)
    mean, scale : ndarray of shape (n_dates, n_vars)
        Standardisation of the state per date.
    lower, upper : ndarray of shape (n_dates, n_levels)
        Range of the fitted targets; predictions are clipped to it.
    n_fit : ndarray of int, shape (n_dates,)
        Paths of each date's fit (0: nothing fitted, the prediction is 0).
    """

    terms: Terms
    var: int
    knots: np.ndarray
    coef: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_fit: np.ndarray

    @property
    def n_dates(self) -> int:
        """Number of dates fitted."""
        return self.coef.shape[0]

    @property
    def n_levels(self) -> int:
        """Number of reserve levels (1 if the reserve never depletes)."""
        return self.coef.shape[1]

    def basis(self, date: int, state: np.ndarray) -> np.ndarray:
        """Basis functions of ``state`` at ``date``, shape (n_paths, n_basis)."""
        z = (np.asarray(state, dtype=float) - self.mean[date]) / self.scale[date]
        return hinge_basis(z, self.terms, self.knots[date], self.var)

    def predict(self, date: int, state: np.ndarray, level) -> np.ndarray:
        """Fitted value at ``date`` for ``state`` (n_paths, n_vars) at reserve ``level`` (1-based, per path)."""
        state = np.asarray(state, dtype=float)
        n = state.shape[0]
        if self.n_fit[date] == 0:
            return np.zeros(n)
        j = np.broadcast_to(np.asarray(level, dtype=np.int64), (n,)) - 1
        b = self.basis(date, state)
        coef = self.coef[date][j]  # (n, n_basis)
        # a fixed sum over basis functions: each path's bits do not depend on the other paths
        value = b[:, 0] * coef[:, 0]
        for i in range(1, b.shape[1]):  # loop over basis functions
            value += b[:, i] * coef[:, i]
        return np.clip(value, self.lower[date][j], self.upper[date][j])

    def predict_levels(self, date: int, state: np.ndarray) -> np.ndarray:
        """Fitted value at every level (rows) and path (columns), shape (n_levels, n_paths)."""
        state = np.asarray(state, dtype=float)
        if self.n_fit[date] == 0:
            return np.zeros((self.n_levels, state.shape[0]))
        # a matrix product: used by the pilot fit (run on one BLAS thread); decisions on applied
        # paths use :meth:`predict`, whose per-path sums do not depend on the chunking
        out = self.coef[date] @ self.basis(date, state).T
        return np.clip(out, self.lower[date][:, None], self.upper[date][:, None], out=out)


class _LevelFitter:
    """Collects one :class:`LevelRegression`, date by date."""

    def __init__(self, n_dates: int, n_levels: int, n_vars: int, terms: Terms, n_knots: int, var: int,
                 ridge: float):
        self.terms, self.var, self.ridge = terms, var, ridge
        p = len(terms) + n_knots
        self.knots = np.zeros((n_dates, n_knots))
        self.coef = np.zeros((n_dates, n_levels, p))
        self.mean = np.zeros((n_dates, n_vars))
        self.scale = np.ones((n_dates, n_vars))
        self.lower = np.zeros((n_dates, n_levels))
        self.upper = np.zeros((n_dates, n_levels))
        self.n_fit = np.zeros(n_dates, dtype=np.int64)

    def fit(self, t: int, x: np.ndarray, y: np.ndarray, min_samples: int, dm: np.ndarray | None = None
            ) -> np.ndarray | None:
        """Regress every row of ``y`` (n_levels, n) on the basis of ``x`` (n, n_vars).

        With ``dm`` (the increment of a discounted martingale over the next period, shape
        (n,)), the basis times ``dm`` is added as control variates (their conditional mean
        is 0, so they are left out of the fitted continuation value) and the fitted hedge
        ``g(x) dm`` (n_levels, n) is returned, to be subtracted from the carried values.
        """
        n = x.shape[0]
        self.n_fit[t] = n
        if n == 0:
            return None
        self.lower[t], self.upper[t] = y.min(axis=1), y.max(axis=1)
        mean, scale = _standardise(x)
        self.mean[t], self.scale[t] = mean, scale
        z = (x - mean) / scale
        if n < min_samples:  # too few paths: their mean (intercept only)
            self.coef[t, :, 0] = y.mean(axis=1)
            return None
        if self.knots.shape[1]:
            self.knots[t] = quantile_knots(z[:, self.var], self.knots.shape[1])
        b = hinge_basis(z, self.terms, self.knots[t], self.var)
        p = b.shape[1]
        sd = 0.0 if dm is None else float(dm.std())
        if sd > 0.0:
            b = np.concatenate([b, b * (dm / sd)[:, None]], axis=1)
        m = b.shape[1]
        gram = np.einsum("ij,ik->jk", b, b)
        rhs = b.T @ y.T  # (n_basis, n_levels)
        penalty = np.full(m, self.ridge * n)
        penalty[0] = 0.0
        gram[np.diag_indices(m)] += penalty
        coef = np.linalg.lstsq(gram, rhs, rcond=None)[0].T  # (n_levels, m)
        self.coef[t] = coef[:, :p]
        if m == p:
            return None
        return coef[:, p:] @ b[:, p:].T  # g(x) dm / sd * sd

    def result(self) -> LevelRegression:
        return LevelRegression(self.terms, self.var, self.knots, self.coef, self.mean, self.scale, self.lower,
                               self.upper, self.n_fit)


@dataclass(frozen=True)
class SwitchingPolicy:
    """An operating policy fitted by :func:`fit_switching` (plain arrays: pickles cheaply).

    Attributes
    ----------
    open_continuation : LevelRegression
        ``E[discount[t] V_{t+1}(OPEN, l) | X_t]`` per date and reserve level ``l``.
    closed_continuation : LevelRegression
        The same for the CLOSED mode.
    undeveloped_continuation : LevelRegression or None
        ``E[discount[t] V_{t+1}(UNDEVELOPED) | X_t]`` (one level), if fitted.
    life : int or None
        Producing periods in the full reserve (None: never depletes).
    licence_expiry : int or None
        First date at which an undeveloped mine can no longer be developed (it lapses).
    """

    open_continuation: LevelRegression
    closed_continuation: LevelRegression
    undeveloped_continuation: LevelRegression | None = None
    life: int | None = None
    licence_expiry: int | None = None

    @property
    def n_dates(self) -> int:
        """Number of dates fitted."""
        return self.open_continuation.n_dates

    def _levels(self) -> int:
        return 1 if self.life is None else int(self.life)

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
        lvl = np.clip(np.where(undeveloped, k, level), 1, k)
        nxt = lvl - (0 if self.life is None else 1)
        cont_open = np.where(nxt > 0, self.open_continuation.predict(date, state, np.maximum(nxt, 1)), -ka)
        cont_closed = self.closed_continuation.predict(date, state, lvl)
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
                    cu = self.undeveloped_continuation.predict(date, state, 1)
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


def fit_switching(states: np.ndarray, flows: ModeFlows, costs: SwitchCosts, discount, *, life: int | None = None,
                  develop: bool = False, licence_expiry: int | None = None, terms: Terms | None = None,
                  knots: int = 8, hinge_var: int = 0, martingale: np.ndarray | None = None, ridge: float = 1e-6,
                  min_samples: int | None = None, decision_flows: ModeFlows | None = None) -> SwitchingPolicy:
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
        Monomials of the (standardised) state variables; default linear,
        ``polynomial_terms(n_vars, 1)``, with hinges, cubic ``polynomial_terms(n_vars, 3)``
        without (``knots=0``).
    knots : int, default 8
        Hinges ``max(z - knot, 0)`` in state variable ``hinge_var`` at this many quantiles of
        each date's pilot sample (a piecewise-linear fit, local in that variable).
    hinge_var : int, default 0
        State variable with the hinges (the one the decisions mostly depend on, e.g. price).
    martingale : ndarray of shape (n_dates, n_paths), optional
        A discounted martingale of the pilot paths, ``E[discount[t] M_{t+1} | X_t] = M_t``
        (e.g. the price of a traded asset, or a futures price grown at the discount rate),
        used as a control variate: each regression also fits a hedge ratio ``g(X_t)`` on the
        increment ``discount[t] M_{t+1} - M_t``, and ``g (discount[t] M_{t+1} - M_t)`` is
        subtracted from the carried realised values. Their conditional means do not change;
        their variance, and the noise of the fitted policy, fall (often several-fold).
    ridge : float, default 1e-6
        Ridge penalty per observation (no penalty on the intercept).
    min_samples : int, optional
        Fewer pilot paths than this: intercept only (default twice the basis size).
    decision_flows : ModeFlows, optional
        The flows as known when the date's decision is taken (default ``flows``: the period's
        flow is known at its decision, as in Brennan and Schwartz, where the price is
        observed). When a period's flow is only known after the decision (an annual model
        deciding at the start of the year on last year's price), pass its conditional
        expectation given the state here: decisions then use these, values the realised
        ``flows`` (no foresight).

    Returns
    -------
    SwitchingPolicy

    Notes
    -----
    Backwards from ``V_T = 0``, for every pilot path and reserve level ``l = 1 .. life``,
    the realised values ``Yo[l] = discount[t] V_{t+1}(OPEN, l)`` and ``Yc[l]`` (CLOSED) are
    carried; per date and level the regressions ``C_o(x, l)`` and ``C_c(x, l)`` of ``Yo[l]``
    and ``Yc[l]`` on the basis of ``X_t`` are fitted (one least-squares problem per date with
    ``life`` right-hand sides: every level shares the regressors), each (mode, level, path)
    picks the action of highest *estimated* value (switch cost + flow + ``C``), and its
    *realised* value is carried backwards (Longstaff and Schwartz 2001). The work is
    ``O(n_dates * life * n_paths * n_basis)``.
    """
    states = np.asarray(states, dtype=float)
    n_dates, n, n_vars = states.shape
    d = _discounts(discount, n_dates)
    k = 1 if life is None else int(life)
    depletes = life is not None
    knots = max(int(knots), 0)
    if terms is None:
        terms = polynomial_terms(n_vars, 1 if knots else 3)
    terms = _check_terms(terms)
    min_samples = 2 * (len(terms) + knots) if min_samples is None else int(min_samples)
    fit_o = _LevelFitter(n_dates, k, n_vars, terms, knots, hinge_var, ridge)
    fit_c = _LevelFitter(n_dates, k, n_vars, terms, knots, hinge_var, ridge)
    fit_u = _LevelFitter(n_dates, 1, n_vars, terms, knots, hinge_var, ridge) if develop else None
    # one BLAS thread: the small matrix products are faster so on a shared machine, and the
    # fit gives the same bits whatever the thread settings
    with threadpool_limits(1):
        return _fit_switching(states, flows, costs, d, k, depletes, licence_expiry, develop,
                              (fit_o, fit_c, fit_u), min_samples, None if martingale is None else
                              np.asarray(martingale, dtype=float), flows if decision_flows is None else decision_flows)


def _fit_switching(states, flows, costs, d, k, depletes, licence_expiry, develop, fitters, min_samples, martingale,
                   known):
    n_dates, n, _ = states.shape
    life = k if depletes else None
    fit_o, fit_c, fit_u = fitters
    yo = np.zeros((k, n))  # realised value at t+1 of OPEN with level index j (l = j + 1), discounted to t
    yc = np.zeros((k, n))
    yu = np.zeros(n)
    for t in range(n_dates - 1, -1, -1):  # loop over dates, backwards
        x = states[t]
        dm = None if martingale is None or t == n_dates - 1 else d[t] * martingale[t + 1] - martingale[t]
        hedge = fit_o.fit(t, x, yo, min_samples, dm)
        if hedge is not None:
            yo = yo - hedge
        hedge = fit_c.fit(t, x, yc, min_samples, dm)
        if hedge is not None:
            yc = yc - hedge
        c_o, c_c = fit_o.result(), fit_c.result()
        if fit_u is not None:
            hedge = fit_u.fit(t, x, yu[None, :], min_samples, dm)
            if hedge is not None:
                yu = yu - hedge[0]
        fo, fc, fu = _at(flows.open, t, n), _at(flows.closed, t, n), _at(flows.undeveloped, t, n)
        # what the decision sees of this date's flows (the realised ones unless they are unknown then)
        ko, kcf, kuf = _at(known.open, t, n), _at(known.closed, t, n), _at(known.undeveloped, t, n)
        kc, kr, ka = _at(costs.close, t, n), _at(costs.reopen, t, n), _at(costs.abandon, t, n)
        grid_c = c_c.predict_levels(t, x)                               # C_c(x, l), (k, n)
        grid_o = c_o.predict_levels(t, x)                               # C_o(x, l)
        # producing now moves level index j to j - 1 (j = 0: exhausted, closure cost now)
        nka = -ka
        if depletes:
            produce_est, produce_real = np.empty((k, n)), np.empty((k, n))
            produce_est[0] = ko + nka
            produce_real[0] = fo + nka
            np.add(grid_o[:-1], ko, out=produce_est[1:])
            np.add(yo[:-1], fo, out=produce_real[1:])
        else:
            produce_est, produce_real = np.add(grid_o, ko, out=grid_o), yo + fo
        wait_est, wait_real = np.add(grid_c, kcf, out=grid_c), yc + fc
        # OPEN at t: produce, close (pay kc), abandon (pay ka)
        close_est = wait_est - kc
        close = (close_est > produce_est) & (close_est > nka)
        aband = ~close & (nka > produce_est)
        new_o = np.where(close, wait_real - kc, np.where(aband, nka, produce_real))
        # CLOSED at t: stay, reopen (pay kr), abandon
        reopen_est = np.subtract(produce_est, kr, out=close_est)
        reopen = (reopen_est > wait_est) & (reopen_est > nka)
        aband = ~reopen & (nka > wait_est)
        new_c = np.where(reopen, produce_real - kr, np.where(aband, nka, wait_real))
        if fit_u is not None:
            c_u = fit_u.result()
            if licence_expiry is not None and t >= licence_expiry:
                new_u = np.zeros(n)
            else:
                ki, kl = _at(costs.invest, t, n), _at(costs.relinquish, t, n)
                est_inv, real_inv = produce_est[k - 1] - ki, produce_real[k - 1] - ki
                est_wait = kuf + c_u.predict(t, x, 1)
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
                    *, initial_mode: int | np.ndarray = Mode.OPEN, initial_life: int | np.ndarray | None = None,
                    decision_flows: ModeFlows | None = None) -> SwitchingResult:
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
    decision_flows : ModeFlows, optional
        As in :func:`fit_switching`: what the decisions see of each date's flows (default
        ``flows``); the values accrue the realised ``flows``.

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
    known = flows if decision_flows is None else decision_flows
    for t in range(n_dates):  # loop over dates, forwards
        fo, fc, fu = _at(flows.open, t, n), _at(flows.closed, t, n), _at(flows.undeveloped, t, n)
        ko, kcf, kuf = _at(known.open, t, n), _at(known.closed, t, n), _at(known.undeveloped, t, n)
        kc, kr, ka = _at(costs.close, t, n), _at(costs.reopen, t, n), _at(costs.abandon, t, n)
        ki, kl = _at(costs.invest, t, n), _at(costs.relinquish, t, n)
        new = np.array(mode)
        active = np.flatnonzero((mode != Mode.ABANDONED) & (mode != Mode.EXHAUSTED))
        if active.size:
            new[active] = policy.decide(t, states[t][active], mode[active], level[active],
                                        ModeFlows(ko[active], kcf[active], kuf[active]),
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
