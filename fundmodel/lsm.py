"""Least-squares Monte Carlo: continuation values by regression on the current state.

Longstaff and Schwartz (2001) estimate the value of continuing a path-dependent decision
problem by a cross-sectional least-squares regression of the *realised* discounted future
cash flows on basis functions of the *current* state, date by date, backwards. The fitted
regression is a function of the state only, so it can be fitted once on a pilot sample of
paths and then applied, out of sample, to any number of other paths (no foresight: the
decision at date ``t`` uses only what is known at ``t``).

This module is generic (it knows nothing about mines or loans):

- :func:`monomial_basis` / :func:`polynomial_terms`: basis functions, products of
  standardised state variables;
- :func:`fit_value`: regression of the discounted value of a cash-flow stream that involves
  no decision (e.g. the going-concern value of a project), per date;
- :func:`fit_stopping`: optimal stopping (exercise an option, abandon a project, walk away
  from a loan) by the Longstaff-Schwartz backward induction;
- :class:`RegressionValue` (``predict(date, state)``) and :class:`StoppingPolicy`
  (``stop(date, state, continue_flow, stop_flow)``): the fitted objects, plain arrays that
  pickle cheaply and give the same numbers in every process.

Conventions
-----------
Dates are ``t = 0 .. T-1``. Arrays are date-major: states ``(T, n_paths, n_vars)``, flows
``(T, n_paths)``. At date ``t`` a holder still in the problem receives ``continue_flow[t]``
if it continues and ``stop_flow[t]`` if it stops (and nothing afterwards).
``discount[t]`` discounts one period, from date ``t + 1`` back to date ``t``. The
continuation value at ``t`` is ``C_t(x) = E[sum_{s > t} (prod_{u=t}^{s-1} discount[u])
flow_s | X_t = x]`` under the policy; it stops at ``t`` when
``stop_flow[t] > continue_flow[t] + C_t(X_t)``.

Regression details: the state variables are standardised per date (mean and standard
deviation of the fitting sample; a constant variable becomes 0) before the monomials are
formed; the least-squares problem is ridge-stabilised (``ridge * n`` added to the diagonal
of the normal equations except for the intercept), which only matters for nearly
collinear basis functions; fitted values are clipped to the range of the fitted targets of
that date so that a polynomial never extrapolates beyond what the sample has seen. The
normal equations are formed without BLAS (``numpy.einsum``), so a fit gives the same bits
whatever the number of BLAS threads. As Longstaff and Schwartz recommend, the stopping
regression at a date uses only the paths where stopping is possible ("in the money") when
there are enough of them (``min_samples``), else every path of the date.

References
----------
Longstaff, F. A., and Schwartz, E. S. (2001). Valuing American options by simulation: a
simple least-squares approach. *Review of Financial Studies* 14(1), 113-147.
Glasserman, P. (2004). *Monte Carlo Methods in Financial Engineering*, ch. 8.6. Springer.

Examples
--------
A Bermudan put on a stock under geometric Brownian motion (Longstaff and Schwartz's first
example; ``S0 = 36, K = 40, r = 6 %, sigma = 20 %``, one year, 10 exercise dates):

>>> rng = np.random.default_rng(0)
>>> def paths(n):
...     z = rng.standard_normal((10, n))
...     return 36 * np.exp(np.cumsum((0.06 - 0.02) * 0.1 + 0.2 * np.sqrt(0.1) * z, axis=0))
>>> def put(s):
...     return np.maximum(40 - s, 0.0)
>>> s = paths(20_000)                      # pilot sample: fit the exercise rule
>>> policy = fit_stopping(s[..., None], np.zeros_like(s), put(s), put(s) > 0, np.exp(-0.006),
...                       terms=polynomial_terms(1, 3))
>>> s = paths(20_000)                      # fresh paths: apply it out of sample
>>> v = stopping_value(policy, s[..., None], np.zeros_like(s), put(s), put(s) > 0, np.exp(-0.006))
>>> round(float(np.exp(-0.006) * v.mean()), 1)   # binomial (10 dates): 4.45
4.4
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement

import numpy as np

#: A basis: each term is a tuple of state-variable indices whose (standardised) values are
#: multiplied; ``()`` is the intercept, ``(0, 0)`` the square of variable 0.
Terms = tuple[tuple[int, ...], ...]

__all__ = ["Terms", "RegressionValue", "StoppingPolicy", "monomial_basis", "polynomial_terms", "ridge_solve",
           "quantile_knots", "hinge_basis", "fit_value", "fit_stopping", "stopping_value"]


def polynomial_terms(n_vars: int, degree: int) -> Terms:
    """Every monomial of ``n_vars`` variables up to ``degree`` (intercept first).

    Parameters
    ----------
    n_vars : int
        Number of state variables.
    degree : int
        Highest total degree.

    Returns
    -------
    tuple of tuple of int

    Examples
    --------
    >>> polynomial_terms(2, 2)
    ((), (0,), (1,), (0, 0), (0, 1), (1, 1))
    """
    terms: list[tuple[int, ...]] = [()]
    for d in range(1, degree + 1):
        terms.extend(combinations_with_replacement(range(n_vars), d))
    return tuple(terms)


def monomial_basis(z: np.ndarray, terms: Terms) -> np.ndarray:
    """Basis functions: the product of the state variables of each term.

    Parameters
    ----------
    z : ndarray of shape (n_paths, n_vars)
        (Standardised) state variables.
    terms : Terms
        Variable indices of each basis function (``()`` = 1).

    Returns
    -------
    ndarray of shape (n_paths, len(terms))

    Examples
    --------
    >>> monomial_basis(np.array([[2.0, 3.0]]), ((), (0,), (0, 1), (1, 1))).tolist()
    [[1.0, 2.0, 6.0, 9.0]]
    """
    n = z.shape[0]
    out = np.empty((n, len(terms)))
    for j, term in enumerate(terms):  # loop over basis functions (a handful)
        if not term:
            out[:, j] = 1.0
            continue
        np.copyto(out[:, j], z[:, term[0]])
        for i in term[1:]:
            out[:, j] *= z[:, i]
    return out


def quantile_knots(v: np.ndarray, n_knots: int) -> np.ndarray:
    """Knots at the interior quantiles ``j / (n_knots + 1)``, ``j = 1 .. n_knots``, of ``v``.

    Parameters
    ----------
    v : ndarray of shape (n,)
        A (standardised) state variable over the fitting sample.
    n_knots : int

    Returns
    -------
    ndarray of shape (n_knots,)

    Examples
    --------
    >>> quantile_knots(np.arange(101.0), 3).tolist()
    [25.0, 50.0, 75.0]
    """
    if n_knots <= 0 or v.size == 0:
        return np.zeros(max(n_knots, 0))
    return np.quantile(v, np.arange(1, n_knots + 1) / (n_knots + 1))


def hinge_basis(z: np.ndarray, terms: Terms, knots: np.ndarray, var: int = 0) -> np.ndarray:
    """Monomials of ``terms`` followed by the hinges ``max(z[:, var] - knot, 0)``, one per knot.

    With ``terms = polynomial_terms(n_vars, 1)`` this is a continuous piecewise-linear
    function of variable ``var`` (slope changes at the knots, linear extrapolation beyond
    the outer knots) plus linear terms in the other variables: a basis local in ``var``,
    unlike global monomials whose least-squares fit is dominated by the bulk of the sample.

    Parameters
    ----------
    z : ndarray of shape (n_paths, n_vars)
        (Standardised) state variables.
    terms : Terms
        Monomials (intercept first).
    knots : ndarray of shape (n_knots,)
        Knots in the units of ``z[:, var]``, e.g. :func:`quantile_knots`.
    var : int, default 0
        The variable with the hinges.

    Returns
    -------
    ndarray of shape (n_paths, len(terms) + n_knots)

    Examples
    --------
    >>> hinge_basis(np.array([[0.0], [2.0]]), ((), (0,)), np.array([1.0])).tolist()
    [[1.0, 0.0, 0.0], [1.0, 2.0, 1.0]]
    """
    mono = monomial_basis(z, terms)
    knots = np.asarray(knots, dtype=float)
    if knots.size == 0:
        return mono
    return np.concatenate([mono, np.maximum(z[:, var, None] - knots[None, :], 0.0)], axis=1)


def ridge_solve(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Least squares ``min |y - x b|^2 + ridge n |b[1:]|^2`` (no penalty on the intercept column 0).

    Parameters
    ----------
    x : ndarray of shape (n, m)
        Basis functions, column 0 the intercept.
    y : ndarray of shape (n,)
    ridge : float
        Penalty per observation (relative to the standardised basis functions).

    Returns
    -------
    ndarray of shape (m,)

    Notes
    -----
    The normal equations ``(x'x + ridge n I') b = x'y`` are formed with ``numpy.einsum``
    (no BLAS: the same bits whatever the thread count) and solved by ``numpy.linalg.lstsq``,
    which also copes with a singular matrix (a basis function constant in the sample).
    """
    n, m = x.shape
    gram = np.einsum("ij,ik->jk", x, x)
    rhs = np.einsum("ij,i->j", x, y)
    penalty = np.full(m, ridge * n)
    penalty[0] = 0.0
    gram[np.diag_indices(m)] += penalty
    return np.linalg.lstsq(gram, rhs, rcond=None)[0]


@dataclass(frozen=True)
class RegressionValue:
    """A conditional expectation ``E[Y_t | X_t = x]`` fitted per date by least squares.

    Attributes
    ----------
    terms : Terms
        Basis functions (products of standardised state variables).
    coef : ndarray of shape (n_dates, n_terms)
        Regression coefficients per date.
    mean, scale : ndarray of shape (n_dates, n_vars)
        Standardisation of the state variables per date (``z = (x - mean) / scale``).
    lower, upper : ndarray of shape (n_dates,)
        Range of the fitted targets per date; predictions are clipped to it.
    n_fit : ndarray of int, shape (n_dates,)
        Paths used by each date's regression (0: no data, the prediction is 0).
    """

    terms: Terms
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

    def predict(self, date: int, state: np.ndarray) -> np.ndarray:
        """Fitted value at ``date`` for states ``state``.

        Parameters
        ----------
        date : int
            Date index ``0 .. n_dates - 1``.
        state : ndarray of shape (n_paths, n_vars)

        Returns
        -------
        ndarray of shape (n_paths,)
            Clipped to ``[lower[date], upper[date]]``. A date without fitting data uses the
            nearest earlier date that had some (else the nearest later one; 0 if none had).
        """
        state = np.asarray(state, dtype=float)
        if self.n_fit[date] == 0:
            fitted = np.flatnonzero(self.n_fit > 0)
            if fitted.size == 0:
                return np.zeros(state.shape[0])
            earlier = fitted[fitted < date]
            date = int(earlier[-1] if earlier.size else fitted[0])
        z = (state - self.mean[date]) / self.scale[date]
        basis = monomial_basis(z, self.terms)
        # a fixed sum over basis functions, not a BLAS product: each path's value is the same
        # bits whatever the number of paths predicted together (chunk invariance)
        coef = self.coef[date]
        value = basis[:, 0] * coef[0]
        for j in range(1, coef.size):  # loop over basis functions
            value += basis[:, j] * coef[j]
        return np.clip(value, self.lower[date], self.upper[date])


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    return mean, np.where(scale > 1e-12 * np.maximum(np.abs(mean), 1.0), scale, np.inf)


def _discounts(discount, n_dates: int) -> np.ndarray:
    d = np.asarray(discount, dtype=float)
    return np.broadcast_to(d, (n_dates,)).astype(float) if d.ndim == 0 else d.astype(float)


class _Fitter:
    """Collects one :class:`RegressionValue`, date by date (any order)."""

    def __init__(self, n_dates: int, n_vars: int, terms: Terms, ridge: float):
        self.terms, self.ridge = terms, ridge
        self.coef = np.zeros((n_dates, len(terms)))
        self.mean = np.zeros((n_dates, n_vars))
        self.scale = np.ones((n_dates, n_vars))
        self.lower = np.zeros(n_dates)
        self.upper = np.zeros(n_dates)
        self.n_fit = np.zeros(n_dates, dtype=np.int64)

    def fit(self, t: int, x: np.ndarray, y: np.ndarray, min_samples: int) -> None:
        n = y.shape[0]
        self.n_fit[t] = n
        if n == 0:
            return
        self.lower[t], self.upper[t] = float(y.min()), float(y.max())
        mean, scale = _standardise(x)
        self.mean[t], self.scale[t] = mean, scale
        if n < min_samples:  # too few paths for the basis: their mean (intercept only)
            self.coef[t, 0] = y.mean() if self.terms and self.terms[0] == () else 0.0
            return
        self.coef[t] = ridge_solve(monomial_basis((x - mean) / scale, self.terms), y, self.ridge)

    def result(self) -> RegressionValue:
        return RegressionValue(self.terms, self.coef, self.mean, self.scale, self.lower, self.upper, self.n_fit)


def _check_terms(terms: Terms) -> Terms:
    terms = tuple(tuple(int(i) for i in term) for term in terms)
    if not terms or terms[0] != ():
        raise ValueError("the first basis term must be the intercept ()")
    return terms


def fit_value(states: np.ndarray, cash_flows: np.ndarray, discount, *, mask: np.ndarray | None = None,
              terms: Terms, ridge: float = 1e-6, min_samples: int | None = None) -> RegressionValue:
    """Regression estimate of the value of the future cash flows of a stream with no decision.

    At each date ``t`` the realised value of the flows after ``t``,
    ``Y_t = sum_{s > t} (prod_{u=t}^{s-1} discount[u]) cash_flows[s]``, is regressed on the
    basis functions of ``states[t]``.

    Parameters
    ----------
    states : ndarray of shape (n_dates, n_paths, n_vars)
    cash_flows : ndarray of shape (n_dates, n_paths)
        Flow at each date (e.g. a project's free cash flow at year ends).
    discount : float or ndarray of shape (n_dates,)
        One-period discount factor from date ``t + 1`` to ``t``.
    mask : ndarray of bool, shape (n_dates, n_paths), optional
        Paths to fit on at each date (default all).
    terms : Terms
        Basis functions (intercept first), e.g. :func:`polynomial_terms`.
    ridge : float, default 1e-6
        Ridge penalty per observation.
    min_samples : int, optional
        Fewer fitting paths than this (default ``2 * len(terms)``): intercept only.

    Returns
    -------
    RegressionValue
        ``predict(t, x)`` estimates ``E[Y_t | X_t = x]``.
    """
    terms = _check_terms(terms)
    n_dates, n_paths, n_vars = states.shape
    d = _discounts(discount, n_dates)
    min_samples = 2 * len(terms) if min_samples is None else int(min_samples)
    fitter = _Fitter(n_dates, n_vars, terms, ridge)
    future = np.zeros(n_paths)  # value at t of the flows after t
    for t in range(n_dates - 1, -1, -1):  # loop over dates, backwards
        rows = slice(None) if mask is None else np.flatnonzero(mask[t])
        fitter.fit(t, states[t][rows], future[rows], min_samples)
        if t > 0:
            future = d[t - 1] * (cash_flows[t] + future)
    return fitter.result()


@dataclass(frozen=True)
class StoppingPolicy:
    """An optimal-stopping rule fitted by :func:`fit_stopping`.

    Attributes
    ----------
    continuation : RegressionValue
        Estimated value of continuing, per date, as a function of the state.
    """

    continuation: RegressionValue

    def stop(self, date: int, state: np.ndarray, continue_flow: np.ndarray, stop_flow: np.ndarray) -> np.ndarray:
        """Whether to stop at ``date``: ``stop_flow > continue_flow + C_date(state)``.

        Parameters
        ----------
        date : int
        state : ndarray of shape (n_paths, n_vars)
        continue_flow, stop_flow : ndarray of shape (n_paths,)

        Returns
        -------
        ndarray of bool, shape (n_paths,)
        """
        return stop_flow > continue_flow + self.continuation.predict(date, state)


def fit_stopping(states: np.ndarray, continue_flows: np.ndarray, stop_flows: np.ndarray, can_stop: np.ndarray,
                 discount, *, mask: np.ndarray | None = None, terms: Terms, ridge: float = 1e-6,
                 min_samples: int | None = None) -> StoppingPolicy:
    """Fit an optimal-stopping rule by the Longstaff-Schwartz backward induction.

    Parameters
    ----------
    states : ndarray of shape (n_dates, n_paths, n_vars)
        State at each date, as known at that date.
    continue_flows, stop_flows : ndarray of shape (n_dates, n_paths)
        What the holder receives at each date if it continues / if it stops then.
    can_stop : ndarray of bool, shape (n_dates, n_paths)
        Where stopping is possible (e.g. an option in the money, a payment due).
    discount : float or ndarray of shape (n_dates,)
        One-period discount factor from date ``t + 1`` to ``t``.
    mask : ndarray of bool, shape (n_dates, n_paths), optional
        Paths still in the problem at each date (default all): the fitting sample when
        too few of them can stop.
    terms : Terms
        Basis functions (intercept first).
    ridge : float, default 1e-6
        Ridge penalty per observation.
    min_samples : int, optional
        Paths needed for a regression (default ``2 * len(terms)``): with fewer paths that can
        stop, the date is fitted on every path of ``mask``; with fewer of those, on their mean.

    Returns
    -------
    StoppingPolicy

    Notes
    -----
    Backwards from the last date, with ``V_T = 0``: ``Y_t = discount[t] V_{t+1}`` (the realised
    value of continuing), ``C_t`` = regression of ``Y_t`` on the basis of ``X_t`` over the
    paths that can stop, ``V_t = stop_flow[t]`` where ``can_stop`` and ``stop_flow[t] >
    continue_flow[t] + C_t(X_t)``, else ``continue_flow[t] + Y_t``. The realised ``Y_t``,
    not the fitted ``C_t``, is carried backwards (Longstaff and Schwartz 2001, section 1).
    """
    terms = _check_terms(terms)
    n_dates, n_paths, n_vars = states.shape
    d = _discounts(discount, n_dates)
    min_samples = 2 * len(terms) if min_samples is None else int(min_samples)
    fitter = _Fitter(n_dates, n_vars, terms, ridge)
    value_next = np.zeros(n_paths)  # V_{t+1}
    for t in range(n_dates - 1, -1, -1):  # loop over dates, backwards
        future = d[t] * value_next  # Y_t
        itm = np.flatnonzero(can_stop[t] if mask is None else can_stop[t] & mask[t])
        rows = itm
        if itm.size < min_samples:
            rows = np.arange(n_paths) if mask is None else np.flatnonzero(mask[t])
        fitter.fit(t, states[t][rows], future[rows], min_samples)
        value = continue_flows[t] + future
        if itm.size:
            c = RegressionValue.predict(fitter.result(), t, states[t][itm])
            stop = stop_flows[t][itm] > continue_flows[t][itm] + c
            value[itm[stop]] = stop_flows[t][itm[stop]]
        value_next = value
    return StoppingPolicy(fitter.result())


def stopping_value(policy: StoppingPolicy, states: np.ndarray, continue_flows: np.ndarray, stop_flows: np.ndarray,
                   can_stop: np.ndarray, discount) -> np.ndarray:
    """Realised value at date 0 of following ``policy`` on (new) paths.

    Applied to paths independent of the fitting sample, the mean is an unbiased estimate of
    the policy's value, a lower bound of the true optimum (Glasserman 2004, 8.6).

    Parameters
    ----------
    policy : StoppingPolicy
    states, continue_flows, stop_flows, can_stop, discount
        As in :func:`fit_stopping`.

    Returns
    -------
    ndarray of shape (n_paths,)
        ``V_0`` of every path: flows from date 0 on, discounted to date 0.
    """
    n_dates, n_paths, _ = states.shape
    d = _discounts(discount, n_dates)
    value = np.zeros(n_paths)
    growth = np.ones(n_paths)  # discount from date t back to 0
    alive = np.ones(n_paths, dtype=bool)
    for t in range(n_dates):  # loop over dates, forwards
        rows = np.flatnonzero(alive & can_stop[t])
        stop = np.zeros(n_paths, dtype=bool)
        if rows.size:
            stop[rows] = policy.stop(t, states[t][rows], continue_flows[t][rows], stop_flows[t][rows])
        flow = np.where(stop, stop_flows[t], continue_flows[t])
        value += np.where(alive, growth * flow, 0.0)
        alive &= ~stop
        growth = growth * d[t]
    return value
