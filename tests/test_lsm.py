"""Least-squares Monte Carlo (fundmodel.lsm) against problems with known values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from fundmodel import lsm

S0, K, R, SIGMA, T, DATES = 36.0, 40.0, 0.06, 0.2, 1.0, 10  # Longstaff and Schwartz (2001), table 1, first row
DT = T / DATES
DISCOUNT = float(np.exp(-R * DT))


def gbm_paths(rng: np.random.Generator, n: int) -> np.ndarray:
    """Stock prices at the exercise dates DT, 2 DT, ..., T, date-major (DATES, n)."""
    z = rng.standard_normal((DATES, n))
    return S0 * np.exp(np.cumsum((R - SIGMA**2 / 2) * DT + SIGMA * np.sqrt(DT) * z, axis=0))


def put(s: np.ndarray) -> np.ndarray:
    return np.maximum(K - s, 0.0)


def bermudan_put_binomial(steps_per_date: int = 200) -> float:
    """Independent reference: Cox-Ross-Rubinstein tree, exercise only at the DATES dates."""
    n = DATES * steps_per_date
    dt = T / n
    u = np.exp(SIGMA * np.sqrt(dt))
    d = 1 / u
    p = (np.exp(R * dt) - d) / (u - d)
    disc = np.exp(-R * dt)
    value = put(S0 * u ** np.arange(n, -1, -1) * d ** np.arange(0, n + 1))
    for i in range(n - 1, -1, -1):  # loop over tree steps
        value = disc * (p * value[:-1] + (1 - p) * value[1:])
        if i > 0 and i % steps_per_date == 0:
            value = np.maximum(value, put(S0 * u ** np.arange(i, -1, -1) * d ** np.arange(0, i + 1)))
    return float(value[0])


def black_scholes_put(s: np.ndarray, tau: float) -> np.ndarray:
    d1 = (np.log(s / K) + (R + SIGMA**2 / 2) * tau) / (SIGMA * np.sqrt(tau))
    d2 = d1 - SIGMA * np.sqrt(tau)
    return K * np.exp(-R * tau) * stats.norm.cdf(-d2) - s * stats.norm.cdf(-d1)


def test_bermudan_put_matches_the_binomial_tree_out_of_sample():
    """Fit the exercise rule on pilot paths, apply it to fresh paths: within MC error of the tree."""
    rng = np.random.default_rng(20260101)
    pilot = gbm_paths(rng, 20_000)
    policy = lsm.fit_stopping(pilot[..., None], np.zeros_like(pilot), put(pilot), put(pilot) > 0, DISCOUNT,
                              terms=lsm.polynomial_terms(1, 3))
    fresh = gbm_paths(rng, 100_000)
    v = DISCOUNT * lsm.stopping_value(policy, fresh[..., None], np.zeros_like(fresh), put(fresh), put(fresh) > 0,
                                      DISCOUNT)
    estimate, se = v.mean(), v.std(ddof=1) / np.sqrt(v.size)
    reference = bermudan_put_binomial()
    # out of sample the rule is a (slightly) suboptimal one: a low bias of a few cents (LS 2001, table 1)
    assert reference - 0.05 - 3 * se < estimate < reference + 3 * se, (
        f"LSM Bermudan put {estimate:.4f} +- {se:.4f} vs binomial {reference:.4f}")
    european = float(black_scholes_put(np.array([S0]), T)[0])
    assert estimate > european + 0.3, "early exercise must be worth something (European 3.84)"


def test_value_regression_recovers_known_conditional_expectations():
    """fit_value against closed forms: a payoff in the span of the basis, and a European put."""
    rng = np.random.default_rng(7)
    s = gbm_paths(rng, 50_000)
    # E[S_T^2 | S_t] = S_t^2 exp((2 r + sigma^2)(T - t)): quadratic in S_t, exactly in the basis
    flows = np.zeros_like(s)
    flows[-1] = s[-1] ** 2
    model = lsm.fit_value(s[..., None], flows, DISCOUNT, terms=lsm.polynomial_terms(1, 2))
    for date in (2, 5, 8):
        tau = T - (date + 1) * DT
        grid = np.percentile(s[date], [10, 30, 50, 70, 90])
        exact = grid**2 * np.exp((2 * R + SIGMA**2) * tau) * np.exp(-R * tau)
        np.testing.assert_allclose(model.predict(date, grid[:, None]), exact, rtol=0.01,
                                   err_msg=f"E[S_T^2 | S_t] at date {date}")
    # a European put, far enough from maturity for a quintic to fit its price curve
    flows[-1] = put(s[-1])
    model = lsm.fit_value(s[..., None], flows, DISCOUNT, terms=lsm.polynomial_terms(1, 5))
    for date in (1, 2, 3):
        grid = np.percentile(s[date], [10, 30, 50, 70, 90])
        np.testing.assert_allclose(model.predict(date, grid[:, None]), black_scholes_put(grid, T - (date + 1) * DT),
                                   atol=0.06, err_msg=f"European put continuation at date {date} vs Black-Scholes")


def test_prediction_does_not_depend_on_the_rows_predicted_together():
    """Each path's prediction is the same bits alone or in any batch (chunk invariance)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5000, 3))
    y = x[..., 0] ** 2 + x[..., 1] * x[..., 2] + rng.standard_normal((4, 5000))
    model = lsm.fit_value(x, y, 0.9, terms=lsm.polynomial_terms(3, 2))
    whole = model.predict(1, x[1])
    for lo, hi in ((0, 1), (17, 1041), (4000, 5000)):
        assert np.array_equal(model.predict(1, x[1][lo:hi]), whole[lo:hi]), (lo, hi)


def test_constant_states_give_the_sample_mean_and_ridge_solve_is_least_squares():
    x = np.ones((3, 50, 2))  # nothing to regress on: the continuation value is the mean
    flows = np.arange(150.0).reshape(3, 50)
    model = lsm.fit_value(x, flows, 0.5, terms=lsm.polynomial_terms(2, 2))
    assert model.predict(1, x[1]) == pytest.approx(np.full(50, 0.5 * flows[2].mean()))
    rng = np.random.default_rng(5)
    a = np.column_stack([np.ones(200), rng.standard_normal((200, 4))])
    b = rng.standard_normal(200)
    np.testing.assert_allclose(lsm.ridge_solve(a, b, 0.0), np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-10)


def test_terms_must_start_with_the_intercept():
    with pytest.raises(ValueError, match="intercept"):
        lsm.fit_value(np.zeros((2, 5, 1)), np.zeros((2, 5)), 1.0, terms=((0,),))
