"""The vectorised IRR finds every real root: checked against the polynomial's eigenvalue roots.

``irr`` brackets roots on a grid of rates and refines them (issue 12, item 10: with several
sign changes it returned -0.80 % where +0.74 % is the root nearest zero, and NaN for rows
whose two roots near -51 % lay within one grid step). The reference here is independent of
any grid: the NPV of a row is a polynomial in ``v = 1 / (1 + r)``,
``sum_j cf_j v**j``, and its roots are the eigenvalues of the companion matrix (what
``numpy.roots`` computes), batched by degree to keep the test fast. A root is real when
``|Im v| <= 1e-6 |v|`` and counts when ``Re v > 0`` (``r > -1``) and ``r`` lies in the
documented search range of ``irr``; the data are checked to have no root in the ambiguous
band ``1e-6 < |Im v| / |v| < 1e-3``, so the verdict real / complex is never a knife edge.

All data are generated from seeded ``numpy.random.Generator`` streams (no simulation run):
mining-like equity flows (studies, construction, ramp-up, volatile production with loss
years, closure costs, defaults, an entry price), random normal flows, and rows built from
chosen roots: close pairs (-51 % / -50.5 %, -0.8 % / +0.74 %, pairs 0.01 to 1 percentage
point apart in the core and the tails), double roots and complex pairs close to the real
axis (the NPV approaches zero without reaching it).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import slow_fixture
from numpy.polynomial import polynomial as P

from fundmodel.finance import irr

PERIODS = 40
LOWEST, HIGHEST = -1.0 + 1e-4, 1000.0  # irr's documented search range (-99.99 %, +100,000 %)
IMAG_TOL = 1e-6  # |Im v| / |v| at most this: a real root
AMBIGUOUS = (1e-6, 1e-3)  # no root of the test data may fall in this band of |Im v| / |v|
RATE_TOL = 1e-6  # agreement of irr with the reference rate


# --------------------------------------------------------------------------- data
def _mining_flows(rng: np.random.Generator, n: int) -> np.ndarray:
    """Equity flows shaped like the model's: negatives before production, volatile production
    (loss years), a closure cost, sometimes a default, sometimes an entry price at t = 0."""
    col = np.arange(PERIODS)[None, :]
    studies, build, ramp = rng.integers(1, 5, (n, 1)), rng.integers(2, 5, (n, 1)), rng.integers(1, 3, (n, 1))
    life, closure_years = rng.integers(8, 26, (n, 1)), rng.integers(1, 3, (n, 1))
    default = rng.random((n, 1)) < 0.15  # nothing after a random production year, no closure
    produced = np.where(default, rng.integers(1, 8, (n, 1)), life)
    capex = rng.uniform(50.0, 900.0, (n, 1))
    level = capex * rng.uniform(0.08, 0.45, (n, 1))
    start = studies + build + ramp  # first production year
    price = np.exp(np.cumsum(rng.normal(0.0, 1.0, (n, PERIODS)) * rng.uniform(0.1, 0.35, (n, 1)), axis=1))
    production = (level * np.take_along_axis(price, np.clip(col - start, 0, PERIODS - 1), axis=1)
                  - level * rng.uniform(0.2, 0.9, (n, 1))
                  - rng.uniform(0.0, 0.1, (n, PERIODS)) * capex * (rng.random((n, PERIODS)) < 0.15))
    end = start + produced
    cf = np.select(
        [col < studies, col < studies + build, col < start, col < end, (col < end + closure_years) & ~default],
        [-rng.uniform(0.5, 12.0, (n, PERIODS)), -capex / build * rng.uniform(0.6, 1.4, (n, PERIODS)),
         level * rng.uniform(-0.4, 0.7, (n, PERIODS)), production, -capex * rng.uniform(0.0, 0.125, (n, 1))],
        0.0,
    )
    entry = rng.random(n) < 0.5  # an entry price paid at t = 0 (the valuation's IRR rows)
    price_paid = rng.uniform(0.2, 1.5, n) * np.maximum(np.where(cf > 0, cf, 0.0).sum(axis=1) / 3.0, 1.0)
    cf[entry, 1:] = cf[entry, :-1]
    cf[entry, 0] = -price_paid[entry]
    return cf


def _flows_from_roots(rng: np.random.Generator, rates, conj=(), extra_degree=(0, 16)) -> np.ndarray:
    """One row whose NPV vanishes exactly at ``rates`` (repeated: a double root), has the complex
    pairs ``conj`` (v = rho e^{+-i theta}) and no other positive root in v (the rest of the
    polynomial has positive coefficients)."""
    poly = P.polyfromroots(1.0 / (1.0 + np.asarray(rates, dtype=float)))
    for rho, theta in conj:
        poly = P.polymul(poly, [rho * rho, -2.0 * rho * np.cos(theta), 1.0])
    poly = P.polymul(poly, rng.uniform(0.1, 1.0, rng.integers(*extra_degree) + 1))
    poly = poly / np.abs(poly).max() * rng.uniform(10.0, 1000.0) * rng.choice([-1.0, 1.0])
    row = np.zeros(PERIODS)
    row[: poly.size] = poly
    return row


def _constructed_rows(rng: np.random.Generator) -> np.ndarray:
    cases = [
        ([-0.008, 0.0074], ()),  # issue 12: -0.80 % returned, +0.74 % nearest zero
        ([-0.51, -0.505], ()),  # issue 12: two roots near -51 %, half a point apart: NaN
        ([-0.51, -0.5099], ()),
        ([-0.0071, 0.007, -0.88], ()),
        ([0.031, 0.0312], ()),  # pairs within one grid step (1 pp) of the core
        ([-0.043, -0.0428, 0.25], ()),
        ([0.0, 0.004], ()),
        ([0.12, 0.125, -0.88], ()),
        ([-0.9, -0.899], ()),  # the lower tail
        ([-0.75, -0.74, 0.4], ()),
        ([1.5, 1.51], ()),  # the upper tail
        ([3.0, 3.02, -0.2], ()),
        ([0.05, 0.05], ()),  # double roots: the NPV touches zero
        ([-0.3, -0.3, 0.6], ()),
        ([-0.6, -0.6], ()),
        ([0.2], [(0.9, 0.01)]),  # a complex pair close to the real axis: no root there
        ([-0.4, 0.7], [(1.0 / 1.02, 0.003)]),
        ([], [(1.0 / 0.97, 0.002)]),
    ]
    rows = []
    for _ in range(100):
        for rates, conj in cases:
            shift = rng.uniform(-0.002, 0.002)  # move the roots of the core together
            rates = [r + shift if abs(r) < 0.5 else r for r in rates]
            conj = [(rho * rng.uniform(0.8, 1.25), theta) for rho, theta in conj]
            rows.append(_flows_from_roots(rng, rates, conj))
    return np.array(rows)


def _test_rows() -> np.ndarray:
    rng = np.random.default_rng(20261210)
    normal = np.zeros((600, PERIODS))
    normal[:, :24] = rng.standard_normal((600, 24))
    return np.concatenate([_mining_flows(rng, 7800), normal, _constructed_rows(rng)])


# --------------------------------------------------------------------------- reference
def _polynomial_roots(cf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All roots v of sum_j cf_j v**j of every row, as (row index, root) arrays: eigenvalues of
    the companion matrix (as ``numpy.roots``), zero coefficients at either end dropped, rows
    batched by degree."""
    nonzero = cf != 0
    first = nonzero.argmax(axis=1)
    last = cf.shape[1] - 1 - nonzero[:, ::-1].argmax(axis=1)
    degree = np.where(nonzero.any(axis=1), last - first, 0)
    owners, roots = [np.empty(0, dtype=int)], [np.empty(0, dtype=complex)]
    for d in np.unique(degree[degree > 0]):
        rows = np.flatnonzero(degree == d)
        coef = np.take_along_axis(cf[rows], first[rows, None] + np.arange(d + 1)[None, :], axis=1)
        companion = np.zeros((rows.size, d, d))
        companion[:, np.arange(1, d), np.arange(d - 1)] = 1.0
        companion[:, :, -1] = -coef[:, :-1] / coef[:, -1:]
        owners.append(np.repeat(rows, d))
        roots.append(np.linalg.eigvals(companion).ravel())
    return np.concatenate(owners), np.concatenate(roots)


def _real_rates(owner: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The real roots with r > -1 as (row index, rate), sorted by row, then rate."""
    real = (np.abs(v.imag) <= IMAG_TOL * np.abs(v)) & (v.real > 0)
    owner, rate = owner[real], 1.0 / v[real].real - 1.0
    order = np.lexsort((rate, owner))
    return owner[order], rate[order]


def _npv_signs(rows: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """Sign of the NPV of ``rows[i]`` at ``rates[i]`` (scaled by (1+r)^(T-1) below r = 0: no overflow)."""
    t = np.arange(rows.shape[1], dtype=float)[None, :]
    shift = np.where(rates < 0, rows.shape[1] - 1, 0)[:, None]
    return np.sign((rows * (1.0 + rates[:, None]) ** (shift - t)).sum(axis=1))


def _first_per_row(n: int, owner: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Per row, the first of ``values`` (in their order) owned by it; NaN for rows without any."""
    out = np.full(n, np.nan)
    rows, first = np.unique(owner, return_index=True)
    out[rows] = values[first]
    return out


def _falls(cf: np.ndarray, owner: np.ndarray, rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The roots in range where the NPV is positive just below and negative just above, from the
    NPV's sign between consecutive real roots (roots closer than 1e-6 are one): (row, rate), sorted."""
    new_row = np.concatenate([[True], owner[1:] != owner[:-1]])
    keep = new_row | np.concatenate([[True], np.diff(rate) > 1e-6])
    owner, rate = owner[keep], rate[keep]
    new_row = np.concatenate([[True], owner[1:] != owner[:-1]])
    last_of_row = np.concatenate([new_row[1:], [True]])
    u = np.log1p(rate)  # probes between the roots, in log(1 + r)
    below = np.where(new_row, u - 1.0, (np.roll(u, 1) + u) / 2)
    sign_below = _npv_signs(cf[owner], np.expm1(below))
    sign_top = _npv_signs(cf[owner[last_of_row]], np.expm1(u[last_of_row] + 1.0))
    sign_above = np.roll(sign_below, -1)
    sign_above[last_of_row] = sign_top
    falls = (sign_below > 0) & (sign_above < 0) & (rate > LOWEST) & (rate < HIGHEST)
    return owner[falls], rate[falls]


def _highest_falls(cf: np.ndarray, owner: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """Per row, the highest falling root (NaN for rows without one)."""
    rows, falls = _falls(cf, owner, rate)
    return _first_per_row(len(cf), rows[::-1], falls[::-1])


@slow_fixture(scope="module")
def rows_and_reference():
    cf = _test_rows()
    owner, v = _polynomial_roots(cf)
    ratio = np.abs(v.imag) / np.abs(v)
    ambiguous = (v.real > 0) & (ratio > AMBIGUOUS[0]) & (ratio < AMBIGUOUS[1])
    assert not ambiguous.any(), f"{ambiguous.sum()} roots with |Im v|/|v| in {AMBIGUOUS}: real or not is unclear"
    owner, rate = _real_rates(owner, v)
    in_range = (rate > LOWEST) & (rate < HIGHEST)
    by_distance = np.lexsort((np.abs(rate[in_range]), owner[in_range]))
    nearest = _first_per_row(len(cf), owner[in_range][by_distance], rate[in_range][by_distance])
    rates = np.split(rate, np.searchsorted(owner, np.arange(1, len(cf))))  # per row, for messages
    return cf, rates, nearest, _highest_falls(cf, owner, rate)


# --------------------------------------------------------------------------- tests
@pytest.mark.slow
def test_reference_roots_are_numpy_roots(rows_and_reference):
    """The batched companion eigenvalues are numpy.roots' roots (a sample of rows)."""
    cf, rates, _, _ = rows_and_reference
    for i in np.random.default_rng(1).choice(len(cf), 40, replace=False):
        v = np.roots(np.trim_zeros(cf[i], "b")[::-1])
        _, expected = _real_rates(np.zeros(v.size, dtype=int), v)
        np.testing.assert_allclose(rates[i], expected, atol=1e-8, err_msg=f"row {i}")


@pytest.mark.slow
def test_test_rows_exercise_several_and_close_roots(rows_and_reference):
    cf, rates, _, _ = rows_and_reference
    n_roots = np.array([r.size for r in rates])
    close = np.array([r.size > 1 and np.diff(r).min() < 0.01 for r in rates])
    both_sides = np.array([((r < 0) & (r > -0.01)).any() and ((r > 0) & (r < 0.01)).any() for r in rates])
    assert len(cf) >= 10_000
    assert (n_roots >= 2).sum() > 3000, f"rows with several real roots: {(n_roots >= 2).sum()}"
    assert close.sum() > 1000, f"rows with two roots less than 1 pp apart: {close.sum()}"
    assert both_sides.sum() > 150, f"rows with roots within 1 % on both sides of zero: {both_sides.sum()}"
    assert (n_roots == 0).sum() > 1000, "rows without a real root (NaN expected) should be common"
    # rows whose NPV falls through zero more than once: the investment root is the highest fall
    owner, v = _polynomial_roots(cf)
    rows, _ = _falls(cf, *_real_rates(owner, v))
    assert (np.bincount(rows, minlength=len(cf)) >= 2).sum() > 50, "rows with several falling roots"


def test_nearest_zero_is_the_real_root_nearest_zero_on_10000_rows(rows_and_reference):
    cf, rates, nearest, _ = rows_and_reference
    got = irr(cf, root="nearest_zero")
    nan_got, nan_ref = np.isnan(got), np.isnan(nearest)
    wrong_nan = np.flatnonzero(nan_got != nan_ref)
    assert wrong_nan.size == 0, (
        f"{wrong_nan.size} rows: irr NaN where a real root exists or a rate where none does, e.g. rows "
        + "; ".join(f"{i}: irr {got[i]:.6f}, roots {np.round(rates[i], 5)}" for i in wrong_nan[:5])
    )
    err = np.abs(got - nearest)
    err[nan_ref] = 0.0
    bad = np.flatnonzero(err > RATE_TOL)
    assert bad.size == 0, (
        f"{bad.size} of {len(cf)} rows: irr is not the real root nearest zero (max error {err.max():.2e}), e.g. "
        + "; ".join(f"row {i}: irr {got[i]:.6f}, roots {np.round(rates[i], 5)}" for i in bad[:5])
    )


def test_investment_is_the_highest_rate_where_npv_falls_through_zero(rows_and_reference):
    cf, rates, _, highest_fall = rows_and_reference
    got = irr(cf, root="investment")
    assert (~np.isnan(highest_fall)).sum() > 5000, "too few rows with an investment root"
    nan_got, nan_ref = np.isnan(got), np.isnan(highest_fall)
    wrong_nan = np.flatnonzero(nan_got != nan_ref)
    assert wrong_nan.size == 0, (
        f"{wrong_nan.size} rows: NaN pattern of irr(root='investment') differs from the falling roots, e.g. "
        + "; ".join(f"row {i}: irr {got[i]:.6f}, highest fall {highest_fall[i]:.6f}, roots {np.round(rates[i], 5)}"
                    for i in wrong_nan[:5])
    )
    err = np.abs(got - highest_fall)
    err[nan_ref] = 0.0
    bad = np.flatnonzero(err > RATE_TOL)
    assert bad.size == 0, (
        f"{bad.size} rows: irr(root='investment') is not the highest falling root (max error {err.max():.2e}), e.g. "
        + "; ".join(f"row {i}: irr {got[i]:.6f}, highest fall {highest_fall[i]:.6f}, roots {np.round(rates[i], 5)}"
                    for i in bad[:5])
    )


@pytest.mark.parametrize(
    "rates, nearest, investment",
    [
        ([-0.008, 0.0074], 0.0074, -0.008),  # issue 12: the root just above zero was skipped
        ([-0.51, -0.505], -0.505, -0.51),  # issue 12: both roots inside one grid step (NaN)
        ([-0.3037, -0.3037], -0.3037, np.nan),  # a double root: found, the NPV does not fall through zero
        ([0.0537, 0.0537, -0.4], 0.0537, -0.4),
        ([0.031, 0.0311], 0.031, 0.031),
        ([1.5, 1.5001], 1.5, 1.5),
    ],
)
def test_close_and_double_roots(rates, nearest, investment):
    # prod_i (v - v_i), v = 1/(1+r): positive below the lowest root, where every v > v_i
    row = P.polyfromroots(1.0 / (1.0 + np.asarray(rates))) * 100.0
    got = irr(row[None, :], root="nearest_zero")[0]
    assert got == pytest.approx(nearest, abs=1e-7), f"roots {rates}: irr {got}, nearest zero {nearest}"
    got = irr(row[None, :], root="investment")[0]
    if np.isnan(investment):
        assert np.isnan(got), f"roots {rates}: no falling root, irr(root='investment') = {got}"
    else:
        assert got == pytest.approx(investment, abs=1e-7), f"roots {rates}: investment {got}, expected {investment}"


def test_npv_approaching_zero_is_not_a_root():
    """Complex roots close to the real axis: the NPV dips to within 1e-4 of zero, has no real root."""
    rng = np.random.default_rng(7)
    rows = np.array([_flows_from_roots(rng, [], [(1.0 / (1.0 + rng.uniform(-0.4, 0.4)), rng.uniform(2e-3, 2e-2))])
                     for _ in range(300)])
    assert _real_rates(*_polynomial_roots(rows))[1].size == 0, "test rows should have no real root"
    assert np.isnan(irr(rows)).all(), "irr reported a root where the NPV only approaches zero"
    assert np.isnan(irr(rows, root="investment")).all()
