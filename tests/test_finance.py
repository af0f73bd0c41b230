"""Discounting, NPV and the vectorised IRR against closed forms and ``numpy_financial``.

``numpy_financial.irr`` (polynomial roots, the real root with ``r > -1`` closest to
zero) is the independent reference: ours must return the same rate row by row.
"""

from __future__ import annotations

import numpy as np
import numpy_financial as npf
import pytest

from fundmodel.finance import discount_factors, irr, npv

IRR_TOL = 1e-6


def _npf_irr_rows(cf: np.ndarray) -> np.ndarray:
    return np.array([npf.irr(row) for row in cf])


def _all_real_roots(row: np.ndarray) -> np.ndarray:
    """Every real IRR (r > -1) of one row, from the polynomial in v = 1/(1+r)."""
    v = np.roots(row[::-1])
    v = v[(np.abs(v.imag) < 1e-12) & (v.real > 0)].real
    return np.sort(1.0 / v - 1.0)


# --------------------------------------------------------------------------- discounting
@pytest.mark.parametrize("rate", [-0.2, 0.0, 0.05, 0.1, 0.37])
def test_discount_factors_closed_form(rate):
    n = 45
    expected = np.array([(1.0 + rate) ** -(j + 1) for j in range(n)])
    got = discount_factors(rate, n)
    assert got.shape == (n,), f"discount_factors shape {got.shape} != ({n},)"
    np.testing.assert_allclose(
        got, expected, rtol=1e-14,
        err_msg=f"discount_factors({rate}, {n}) no longer equals (1+r)^-(j+1), j=0..n-1 (end-of-year)",
    )


def test_discount_factors_docstring_values():
    assert discount_factors(0.1, 2).round(4).tolist() == [0.9091, 0.8264], (
        "discount_factors(0.1, 2) no longer [1/1.1, 1/1.21]"
    )


@pytest.mark.parametrize("rate", [0.0, 0.03, 0.08, 0.25])
def test_npv_matches_numpy_financial_on_random_flows(rate):
    rng = np.random.default_rng(20260101)
    cf = rng.normal(0.0, 100.0, size=(500, 30))
    got = npv(rate, cf)
    expected = np.array([npf.npv(rate, [0.0, *row]) for row in cf])
    assert got.shape == (500,), f"npv of a (500, 30) matrix has shape {got.shape}, not (500,)"
    np.testing.assert_allclose(
        got, expected, rtol=1e-12, atol=1e-9,
        err_msg=f"npv({rate}, cf) no longer equals numpy_financial.npv({rate}, [0, *cf]) (end-of-year flows)",
    )
    # a single row (1-d input) gives the scalar of that row
    assert float(npv(rate, cf[7])) == pytest.approx(expected[7], rel=1e-12), "1-d npv differs from the row's npv"


def test_npv_docstring_value():
    assert float(npv(0.1, np.array([110.0]))) == pytest.approx(100.0, rel=1e-14), "110 in one year at 10 % is not 100"


# --------------------------------------------------------------------------- IRR
@pytest.mark.parametrize(
    "flows, expected",
    [
        ([-100, 39, 59, 55, 20], 0.28095),
        ([-100, 0, 0, 74], -0.0955),
        ([-100, 100, 0, -7], -0.0833),
        ([-100, 100, 0, 7], 0.06206),
        ([-5, 10.5, 1, -8, 1], 0.0886),
    ],
)
def test_irr_numpy_financial_docstring_examples(flows, expected):
    got = float(irr(np.array([flows], dtype=float))[0])
    assert round(got, 5) == expected, f"irr({flows}) = {got:.6f}, numpy_financial's documented value is {expected}"
    assert got == pytest.approx(npf.irr(flows), abs=IRR_TOL), f"irr({flows}) = {got} != npf.irr = {npf.irr(flows)}"


@pytest.mark.slow
def test_irr_conventional_flows_match_numpy_financial():
    """(a) 2,000 rows: investment first, positive flows after (one sign change, unique root)."""
    rng = np.random.default_rng(11)
    n, periods = 2000, 40
    invest = -rng.uniform(50.0, 500.0, size=(n, 3))
    level = rng.uniform(2.0, 150.0, size=(n, 1))  # per-row scale spreads the IRRs from < 0 to > 30 %
    inflows = level * rng.uniform(0.0, 2.0, size=(n, periods - 3))
    cf = np.concatenate([invest, inflows], axis=1)
    got = irr(cf)
    ref = _npf_irr_rows(cf)
    assert not np.isnan(ref).any()
    assert not np.isnan(got).any(), f"irr returned NaN on {np.isnan(got).sum()} conventional rows that have an IRR"
    err = np.abs(got - ref)
    worst = int(err.argmax())
    assert err.max() < IRR_TOL, (
        f"irr differs from numpy_financial.irr by up to {err.max():.2e} (> {IRR_TOL}) on conventional flows; "
        f"row {worst}: ours {got[worst]}, npf {ref[worst]}"
    )
    # the rates are spread widely enough for the check to mean something
    assert ref.min() < 0.0 < 0.2 < ref.max(), f"test flows cover IRRs {ref.min():.3f}..{ref.max():.3f} only"


@pytest.mark.slow
def test_irr_random_normal_flows_match_numpy_financial_and_nan_pattern():
    """(b) i.i.d. normal flows: several sign changes, roots near zero; NaN exactly where npf is NaN.

    ``irr`` documents its search range (-99 %, +100,000 %; its grid reaches -99.99 %): a row whose
    only roots lie beyond it (npf returns e.g. 1449.9 = 144,992 %) must be NaN, like a row without a root.
    """
    rng = np.random.default_rng(12)
    cf = rng.standard_normal((2000, 40))
    got = irr(cf)
    ref = _npf_irr_rows(cf)
    outside = (ref <= -1.0 + 1e-4) | (ref >= 1000.0)  # beyond the grid ends of finance._irr_grid
    assert outside.sum() < 20, "reference: roots outside the documented range should be rare"
    ref = np.where(outside, np.nan, ref)
    nan_got, nan_ref = np.isnan(got), np.isnan(ref)
    assert (nan_got == nan_ref).all(), (
        f"NaN pattern differs from numpy_financial.irr: ours NaN only on rows {np.flatnonzero(nan_got & ~nan_ref)[:10]}, "
        f"npf NaN only on rows {np.flatnonzero(~nan_got & nan_ref)[:10]}"
    )
    both = ~nan_ref
    assert both.sum() > 1000, "too few random rows with an IRR for the comparison to bite"
    err = np.abs(got[both] - ref[both])
    worst = np.flatnonzero(both)[int(err.argmax())]
    assert err.max() < IRR_TOL, (
        f"irr differs from numpy_financial.irr by up to {err.max():.2e} on random normal flows; "
        f"row {worst}: ours {got[worst]}, npf {ref[worst]}"
    )


@pytest.mark.slow
def test_irr_with_closure_cost_picks_root_closest_to_zero():
    """(c) investment, operating inflows, then a negative closure cost: two IRRs, the one nearest 0 wins."""
    rng = np.random.default_rng(13)
    n = 2000
    cf = np.concatenate(
        [-rng.uniform(50, 150, (n, 1)), rng.uniform(5, 30, (n, 38)), -rng.uniform(0, 300, (n, 1))], axis=1
    )
    roots = [_all_real_roots(row) for row in cf]
    two = np.array([r.size == 2 for r in roots])
    assert two.mean() > 0.9, "test flows should mostly have two IRRs (two sign changes)"
    nearest = np.array([r[np.argmin(np.abs(r))] if r.size else np.nan for r in roots])
    negative_nearest = two & (nearest < 0)
    positive_nearest = two & (nearest > 0)
    assert negative_nearest.sum() > 100 and positive_nearest.sum() > 100, (
        "test flows should exercise both cases: nearest root below and above zero"
    )
    got = irr(cf)
    ref = _npf_irr_rows(cf)
    np.testing.assert_allclose(
        ref[two], nearest[two], atol=1e-8, err_msg="reference check: npf.irr should be the root nearest zero"
    )
    assert (np.isnan(got) == np.isnan(ref)).all(), "NaN pattern differs from numpy_financial.irr on closure flows"
    err = np.nanmax(np.abs(got - ref))
    assert err < IRR_TOL, (
        f"with a final closure cost irr no longer returns the root closest to zero (max |ours - npf| = {err:.2e}); "
        f"rows where the negative root is nearest: {negative_nearest.sum()}"
    )


def test_irr_is_root_of_npv():
    """Independent of npf: the returned rate zeroes the NPV (flow j discounted by (1+r)^j)."""
    rng = np.random.default_rng(14)
    cf = np.concatenate([-rng.uniform(100, 200, (1000, 2)), rng.uniform(0, 50, (1000, 25))], axis=1)
    r = irr(cf)
    t = np.arange(cf.shape[1])
    value = (cf * (1.0 + r[:, None]) ** -t).sum(axis=1)
    scale = np.abs(cf).sum(axis=1)
    assert np.abs(value / scale).max() < 1e-10, (
        f"NPV at the returned IRR is not zero: max |NPV|/sum|cf| = {np.abs(value / scale).max():.2e}"
    )


def test_irr_nan_for_rows_without_sign_change():
    rng = np.random.default_rng(15)
    positive = rng.uniform(0.1, 10.0, (50, 20))
    negative = -rng.uniform(0.1, 10.0, (50, 20))
    zeros = np.zeros((1, 20))
    with_zeros = positive.copy()
    with_zeros[:, ::3] = 0.0  # zeros do not create a sign change
    got = irr(np.concatenate([positive, negative, zeros, with_zeros]))
    assert np.isnan(got).all(), (
        f"irr of all-positive / all-negative / zero rows should be NaN, got finite values on rows "
        f"{np.flatnonzero(~np.isnan(got))[:10]}"
    )
    assert np.isnan(npf.irr(positive[0])), "reference: npf.irr of all-positive flows is NaN"


def test_irr_mixed_batch_equals_row_by_row():
    """Rows are independent: batching conventional, multi-root and no-root rows does not change any result."""
    rng = np.random.default_rng(16)
    conventional = np.concatenate([-rng.uniform(50, 100, (30, 1)), rng.uniform(5, 20, (30, 14))], axis=1)
    normal = rng.standard_normal((30, 15))
    positive = rng.uniform(1, 2, (30, 15))
    batch = np.concatenate([conventional, normal, positive])
    together = irr(batch)
    alone = np.array([irr(row[None, :])[0] for row in batch])
    np.testing.assert_array_equal(
        np.isnan(together), np.isnan(alone), err_msg="NaN pattern depends on which rows are batched together"
    )
    np.testing.assert_allclose(together, alone, atol=1e-10, err_msg="irr of a row depends on the other rows in the batch")


def test_investment_root_ignores_the_rising_root_of_a_closure_cost():
    """Invest, earn, then a large closure cost: npf picks the -11 % root nearest zero, where the
    NPV *rises* through zero; the investment return is where it falls through zero (~93.6 %)."""
    cf = np.array([[-96.0, -127.0, -96.0, 458.0, 1462.0, 800.0, 800.0, -2500.0]])
    nearest = irr(cf)[0]
    invest = irr(cf, root="investment")[0]
    assert nearest == pytest.approx(npf.irr(cf[0]), abs=1e-9)
    assert npf.npv(invest, cf[0]) == pytest.approx(0.0, abs=1e-6)
    assert npf.npv(invest - 0.01, cf[0]) > 0 > npf.npv(invest + 0.01, cf[0]), "NPV must fall through zero"
    assert npf.npv(nearest - 0.01, cf[0]) < 0, "the nearest-zero root is a rising crossing"
    # conventional flows: both choices give the unique root; flows starting positive have no investment root
    conventional = np.array([[-100.0, 39, 59, 55, 20]])
    assert irr(conventional, root="investment")[0] == pytest.approx(irr(conventional)[0], abs=1e-12)
    assert np.isnan(irr(np.array([[100.0, -50, -60]]), root="investment")[0])
