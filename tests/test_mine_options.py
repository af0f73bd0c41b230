"""Mine operating options by LSM (fundmodel.mine_options), and the Brennan-Schwartz (1985) case.

``pytest -k brennan`` runs the published-case validation: an own finite-difference solution
of the paper's free-boundary problem (tests/brennan_schwartz_fd.py) against the reported
thresholds, and the LSM solution against the FD one.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from fundmodel import lsm
from fundmodel import mine_options as mo

import brennan_schwartz_fd as fd

# ---------------------------------------------------------------------------------------------
# a small generic problem (monthly, 36 dates, 24 months of reserve)

N_DATES, LIFE, DISC = 36, 24, 0.995


def prices(rng: np.random.Generator, n: int, sigma: float = 0.08, s0: float = 1.0) -> np.ndarray:
    z = rng.standard_normal((N_DATES, n))
    return s0 * np.exp(np.cumsum(sigma * z, axis=0) - sigma**2 / 2 * np.arange(1, N_DATES + 1)[:, None])


def small_problem(s: np.ndarray, cost: float = 0.9) -> tuple[mo.ModeFlows, mo.SwitchCosts]:
    return mo.ModeFlows(open=s - cost, closed=-0.02), mo.SwitchCosts(close=0.05, reopen=0.05, abandon=0.1)


def test_option_value_is_at_least_the_committed_value():
    rng = np.random.default_rng(11)
    s = prices(rng, 5000)
    policy = mo.fit_switching(s[..., None], *small_problem(s), DISC, life=LIFE)
    s = prices(rng, 20000)
    res = mo.apply_switching(policy, s[..., None], *small_problem(s), DISC)
    committed = mo.committed_value(*small_problem(s), DISC, life=LIFE)
    diff = res.value - committed
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.mean() >= -2 * se, (diff.mean(), se)
    assert diff.mean() > 0.0  # price can fall 3 sd below cost: closing is worth something here
    assert 0.0 < res.probability(mo.Mode.CLOSED) < 1.0


def test_zero_volatility_option_out_of_the_money_equals_committed_value():
    """A deterministic, always-profitable mine: no switch is ever worth it, value = committed."""
    s = np.full((N_DATES, 3000), 1.2)
    flows, costs = small_problem(s)
    policy = mo.fit_switching(s[..., None], flows, costs, DISC, life=LIFE)
    res = mo.apply_switching(policy, s[..., None], flows, costs, DISC)
    committed = mo.committed_value(flows, costs, DISC, life=LIFE)
    np.testing.assert_allclose(res.value, committed, rtol=1e-12)
    assert (res.modes[:LIFE] == mo.Mode.OPEN).all() and (res.modes[LIFE:] == mo.Mode.EXHAUSTED).all()


def test_results_do_not_depend_on_how_the_applied_paths_are_chunked():
    rng = np.random.default_rng(5)
    s = prices(rng, 3000)
    policy = mo.fit_switching(s[..., None], *small_problem(s), DISC, life=LIFE)
    s = prices(np.random.default_rng(6), 5000)
    flows, costs = small_problem(s)
    whole = mo.apply_switching(policy, s[..., None], flows, costs, DISC)
    parts = [mo.apply_switching(policy, s[:, rows, None], flows.subset(rows), costs.subset(rows), DISC)
             for rows in (slice(0, 1), slice(1, 1234), slice(1234, 5000))]
    assert np.array_equal(whole.value, np.concatenate([p.value for p in parts]))
    assert np.array_equal(whole.modes, np.concatenate([p.modes for p in parts], axis=1))


def test_policy_pickles_and_gives_the_same_decisions():
    rng = np.random.default_rng(2)
    s = prices(rng, 2000)
    policy = mo.fit_switching(s[..., None], *small_problem(s), DISC, life=LIFE)
    again = pickle.loads(pickle.dumps(policy))
    s = prices(rng, 1000)
    a = mo.apply_switching(policy, s[..., None], *small_problem(s), DISC, initial_mode=mo.Mode.CLOSED)
    b = mo.apply_switching(again, s[..., None], *small_problem(s), DISC, initial_mode=mo.Mode.CLOSED)
    assert np.array_equal(a.value, b.value)


def test_undeveloped_mine_invests_only_when_worth_it_and_lapses_at_expiry():
    rng = np.random.default_rng(3)
    s = prices(rng, 3000)
    flows, costs = small_problem(s)
    flows = mo.ModeFlows(flows.open, flows.closed, undeveloped=-0.001)
    for invest, expect_develop in ((0.5, True), (1e3, False)):
        c = mo.SwitchCosts(costs.close, costs.reopen, costs.abandon, invest=invest)
        policy = mo.fit_switching(s[..., None], flows, c, DISC, life=LIFE, develop=True, licence_expiry=12)
        res = mo.apply_switching(policy, s[..., None], flows, c, DISC, initial_mode=mo.Mode.UNDEVELOPED)
        developed = res.probability(mo.Mode.OPEN)
        assert (developed > 0.5) == expect_develop, developed
        assert not (res.modes[12:] == mo.Mode.UNDEVELOPED).any()  # lapsed at the expiry
        if not expect_develop:
            assert res.value.min() >= -0.001 * 13 - 1e-12  # holding cost only, then relinquished


# ---------------------------------------------------------------------------------------------
# Brennan and Schwartz (1985), copper mine

REPORTED = {"open": 0.76, "close": 0.44, "abandon": 0.20}  # $/lb, full inventory (150 M lb)
P = fd.MineInputs()
DT = 1 / 12
LIFE_BS = int(round(P.life / DT))  # 180 producing months
DISC_BS = float(np.exp(-(P.rate + P.property_tax) * DT))  # property tax on value = extra discount


@pytest.fixture(scope="module")
def bs_fd() -> fd.FDSolution:
    return fd.solve(P)


def test_brennan_schwartz_fd_reproduces_the_reported_thresholds(bs_fd):
    th = bs_fd.thresholds()
    assert th["open"] == pytest.approx(REPORTED["open"], rel=0.02)
    assert th["abandon"] == pytest.approx(REPORTED["abandon"], rel=0.05)
    # 0.46 vs 0.44: see docs/options.md (tax treatment of losses; the paper's coarse grid)
    assert th["close"] == pytest.approx(REPORTED["close"], rel=0.06)
    # hysteresis band and value ordering
    assert th["abandon"] < th["close"] < th["open"]
    assert bs_fd.value(1.0, "open") > bs_fd.value(1.0, "closed")
    assert bs_fd.value(0.3, "closed") > bs_fd.value(0.3, "open")


@pytest.mark.slow
def test_brennan_schwartz_fd_is_converged_in_the_grid():
    coarse, fine = fd.solve(P), fd.solve(P, dy=0.002, steps_per_year=100)
    for key, value in coarse.thresholds().items():
        assert value == pytest.approx(fine.thresholds()[key], rel=0.01), key
    assert coarse.value(0.6, "open") == pytest.approx(fine.value(0.6, "open"), rel=0.005)


def bs_paths(rng: np.random.Generator, n: int, years: float, s0) -> np.ndarray:
    """Nominal copper price, risk-neutral GBM (drift r - kappa), monthly dates from t = 0."""
    steps = int(round(years / DT))
    z = rng.standard_normal((steps - 1, n))
    inc = (P.rate - P.convenience - P.variance / 2) * DT + P.sigma * np.sqrt(DT) * z
    return np.asarray(s0) * np.exp(np.vstack([np.zeros((1, n)), np.cumsum(inc, axis=0)]))


def bs_problem(s: np.ndarray) -> tuple[mo.ModeFlows, mo.SwitchCosts]:
    """Monthly after-tax flows in nominal M$, every cost inflating at pi (paid at the month start)."""
    index = np.exp(P.inflation * DT * np.arange(s.shape[0]))
    profit = P.output * s * (1 - P.royalty) - P.output * P.cost * index[:, None]
    open_flow = (profit - P.income_tax * np.maximum(profit, 0.0)) * DT
    closed_flow = np.broadcast_to(-P.maintenance * index[:, None] * DT, s.shape)
    return (mo.ModeFlows(open_flow, closed_flow),
            mo.SwitchCosts(close=P.close_cost * index, reopen=P.open_cost * index, abandon=P.abandon_cost))


def bs_state(s: np.ndarray) -> np.ndarray:
    """Regressors: the cost-deflated price and its log."""
    x = s / np.exp(P.inflation * DT * np.arange(s.shape[0]))[:, None]
    return np.stack([x, np.log(x)], axis=-1)


def lsm_thresholds(policy: mo.SwitchingPolicy) -> dict[str, float]:
    """Prices where the fitted decision at date 0 (full inventory) flips, on a 0.001 $/lb grid."""
    grid = np.arange(0.10, 1.50, 0.001)
    flows, costs = bs_problem(grid[None, :])
    f0 = mo.ModeFlows(flows.open[0], flows.closed[0])
    c0 = mo.SwitchCosts(P.close_cost, P.open_cost, P.abandon_cost)
    state = bs_state(grid[None, :])[0]
    from_closed = policy.decide(0, state, mo.Mode.CLOSED, LIFE_BS, f0, c0)
    from_open = policy.decide(0, state, mo.Mode.OPEN, LIFE_BS, f0, c0)

    def edge(mask, first):
        idx = np.flatnonzero(mask)
        return float("nan") if not idx.size else float(grid[idx[0]] if first else grid[idx[-1]])
    return {"open": edge(from_closed == mo.Mode.OPEN, True), "close": edge(from_open == mo.Mode.CLOSED, False),
            "abandon": edge(from_closed == mo.Mode.ABANDONED, False)}


@pytest.mark.slow
@pytest.mark.xfail(reason="LSM policy with a global polynomial basis is not yet within 2 % of the FD solution "
                          "(see docs/options.md, 'Status'); kept as the acceptance target", strict=False)
def test_brennan_schwartz_lsm_matches_the_finite_difference_solution(bs_fd):
    rng = np.random.default_rng(1985)
    years, n_pilot, n_fresh = 25, 3000, 10000
    s = bs_paths(rng, n_pilot, years, np.exp(rng.uniform(np.log(0.12), np.log(1.6), n_pilot)))
    policy = mo.fit_switching(bs_state(s), *bs_problem(s), DISC_BS, life=LIFE_BS,
                              terms=lsm.polynomial_terms(3, 3))
    th, ref = lsm_thresholds(policy), bs_fd.thresholds()
    for key in ("open", "close", "abandon"):
        assert th[key] == pytest.approx(ref[key], rel=0.02), (key, th, ref)
    for s0 in (0.5, 0.75, 1.0):
        sf = bs_paths(rng, n_fresh, years, s0)
        for mode, name in ((mo.Mode.OPEN, "open"), (mo.Mode.CLOSED, "closed")):
            v = mo.apply_switching(policy, bs_state(sf), *bs_problem(sf), DISC_BS, initial_mode=mode).value
            assert v.mean() == pytest.approx(bs_fd.value(s0, name), rel=0.02), (s0, name)
