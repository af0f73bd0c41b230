"""CVaR of samples and CVaR-optimal allocations against brute force, closed forms and a paper.

Independent references: the Rockafellar-Uryasev minimisation formula evaluated at every
sample point, sample replication, the integral of the quantile function, the normal
closed form, the closed-form minimum-variance portfolio (KKT system), enumeration of
binary choices, finite differences, and Tables 3-4 of Rockafellar & Uryasev (2000).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.stats import qmc

from fundmodel.cli import exit_code_for
from fundmodel.errors import FundmodelError
from fundmodel.portfolio import (
    CVAR_CAP,
    MEAN_FLOOR,
    InfeasibleProblem,
    UnboundedProblem,
    cvar_from_losses,
    efficient_frontier,
    euler_contributions,
    minimize_cvar,
    optimize_cvar,
    var_from_losses,
)


def _brute_force_cvar(losses: np.ndarray, beta: float, p: np.ndarray | None = None) -> float:
    """min over a of a + E[(L - a)^+] / (1 - beta); the minimum is attained at a sample point."""
    p = np.full(losses.size, 1.0 / losses.size) if p is None else p
    a = losses[:, None]
    return float(np.min(a[:, 0] + (p[None, :] * np.maximum(losses[None, :] - a, 0.0)).sum(1) / (1 - beta)))


def _scenarios(n_scen: int, n_assets: int, seed: int) -> np.ndarray:
    """Fat-tailed, correlated values with different means (one common factor)."""
    rng = np.random.default_rng(seed)
    factor = rng.standard_t(5, size=(n_scen, 1))
    loading = rng.uniform(0.2, 1.0, n_assets)
    mean = np.linspace(0.02, 0.12, n_assets)
    return mean + 0.1 * factor * loading + 0.15 * rng.standard_t(4, size=(n_scen, n_assets)) * loading


# --------------------------------------------------------------------------- CVaR of a sample
@pytest.mark.parametrize("n", [7, 13, 20, 101])
@pytest.mark.parametrize("beta", [0.5, 0.9, 0.95, 0.975])
def test_cvar_equals_rockafellar_uryasev_minimum(n, beta):
    losses = np.random.default_rng(n).normal(size=n)
    got = cvar_from_losses(losses, beta)
    want = _brute_force_cvar(losses, beta)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12), (
        f"CVaR of {n} losses at beta={beta} is {got}, the RU minimum over sample points is {want}")
    # the VaR (lower quantile) is a minimiser of the RU function
    var = var_from_losses(losses, beta)
    at_var = var + np.mean(np.maximum(losses - var, 0.0)) / (1 - beta)
    assert at_var == pytest.approx(want, rel=1e-12), "the VaR does not minimise a + E[(L-a)+]/(1-beta)"


@pytest.mark.parametrize(("n", "beta", "copies"), [(7, 0.9, 10), (13, 0.95, 20), (9, 0.75, 4), (20, 0.95, 1)])
def test_cvar_fractional_atom_equals_replicated_sample(n, beta, copies):
    """(1-beta)*n not an integer: replicate until it is, then average the top (1-beta)*n*copies."""
    losses = np.random.default_rng(3).exponential(size=n)
    big = np.sort(np.repeat(losses, copies))
    k = round((1 - beta) * n * copies)
    assert abs((1 - beta) * n * copies - k) < 1e-9
    want = big[-k:].mean()
    assert cvar_from_losses(losses, beta) == pytest.approx(want, rel=1e-12), (
        f"CVaR with a fractional VaR atom (N={n}, beta={beta}) differs from the replicated sample's tail mean")
    # plain "mean of the ceil((1-beta) N) largest" is wrong when the tail spans a partial atom
    if (1 - beta) * n > 1 and abs((1 - beta) * n - round((1 - beta) * n)) > 1e-9:
        naive = np.sort(losses)[-int(np.ceil((1 - beta) * n)):].mean()
        assert abs(naive - want) > 1e-6


def test_cvar_is_the_tail_integral_of_var():
    """CVaR_beta = 1/(1-beta) * integral_beta^1 VaR_g dg, VaR_g = L_(ceil(g N)) (midpoint rule)."""
    losses = np.random.default_rng(5).lognormal(size=37)
    srt = np.sort(losses)
    for beta in (0.8, 0.9, 0.95):
        m = 400_000
        g = beta + (np.arange(m) + 0.5) * (1 - beta) / m
        quantile = srt[np.ceil(g * losses.size).astype(int) - 1]
        assert cvar_from_losses(losses, beta) == pytest.approx(quantile.mean(), rel=1e-5), (
            f"CVaR at {beta} is not the average of the quantile function over the tail")
        assert var_from_losses(losses, beta) == srt[int(np.ceil(beta * losses.size - 1e-9)) - 1]


def test_cvar_with_probabilities_equals_repeated_scenarios():
    rng = np.random.default_rng(11)
    losses = rng.normal(size=25)
    counts = rng.integers(1, 6, size=25)
    p = counts / counts.sum()
    for beta in (0.6, 0.9, 0.97):
        got = cvar_from_losses(losses, beta, weights=p)
        assert got == pytest.approx(cvar_from_losses(np.repeat(losses, counts), beta), rel=1e-12)
        assert got == pytest.approx(_brute_force_cvar(losses, beta, p), rel=1e-12)
        assert var_from_losses(losses, beta, weights=p) == var_from_losses(np.repeat(losses, counts), beta)


@pytest.mark.slow
def test_cvar_of_a_normal_sample_matches_closed_form():
    """Loss ~ N(mu, sigma^2): CVaR_beta = mu + sigma * phi(z_beta) / (1 - beta)."""
    mu, sigma, n = 1.0, 2.0, 1_000_000
    losses = np.random.default_rng(2024).normal(mu, sigma, n)
    for beta in (0.9, 0.95, 0.99):
        z = stats.norm.ppf(beta)
        want = mu + sigma * stats.norm.pdf(z) / (1 - beta)
        got = cvar_from_losses(losses, beta)
        # standard error ~ sigma * sqrt(tail variance) / sqrt(n (1 - beta)) < 0.3 % here
        assert got == pytest.approx(want, rel=0.01), f"normal CVaR at {beta}: {got} vs closed form {want}"
        assert var_from_losses(losses, beta) == pytest.approx(mu + sigma * z, rel=0.01)


def test_cvar_columns_are_separate_series():
    losses = np.random.default_rng(8).normal(size=(53, 3))
    got = cvar_from_losses(losses, 0.9)
    assert got.shape == (3,)
    np.testing.assert_allclose(got, [cvar_from_losses(losses[:, j], 0.9) for j in range(3)], rtol=1e-14)
    np.testing.assert_allclose(var_from_losses(losses, 0.9),
                               [var_from_losses(losses[:, j], 0.9) for j in range(3)], rtol=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(losses=[1.0, 2.0], beta=1.0), "beta"),
    (dict(losses=[1.0, np.nan], beta=0.5), "NaN"),
    (dict(losses=[1.0, 2.0], beta=0.5, weights=[0.5, 0.6]), "sum to 1"),
    (dict(losses=[1.0, 2.0], beta=0.5, weights=[1.5, -0.5]), "non-negative"),
    (dict(losses=[], beta=0.5), "non-empty"),
])
def test_cvar_rejects_bad_input_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cvar_from_losses(**kwargs)


# --------------------------------------------------------------------------- the LP
@pytest.mark.parametrize("beta", [0.8, 0.95, 0.99])
def test_lp_optimum_is_the_exact_cvar_of_its_portfolio(beta):
    values = _scenarios(997, 5, seed=1)
    res = minimize_cvar(values, beta=beta, A_eq=np.ones((1, 5)), b_eq=[1.0])
    exact = cvar_from_losses(-values @ res.x, beta)
    assert res.objective_value == pytest.approx(exact, abs=1e-8), (
        f"LP objective {res.objective_value} != exact CVaR {exact} of the chosen portfolio")
    assert res.cvar == pytest.approx(exact, abs=1e-12)
    np.testing.assert_allclose(res.losses, -values @ res.x, rtol=1e-14)
    # no random fully-invested long-only portfolio does better
    w = np.random.default_rng(0).dirichlet(np.ones(5), size=300)
    assert np.min(cvar_from_losses(-values @ w.T, beta)) >= res.cvar - 1e-9


def test_min_cvar_equals_min_variance_for_normal_returns():
    """Elliptical returns: the min-CVaR and min-variance portfolios at the same mean coincide."""
    mu = np.array([0.05, 0.08, 0.11, 0.14])
    vol = np.array([0.10, 0.15, 0.20, 0.30])
    corr = np.array([[1.0, 0.3, 0.2, 0.1], [0.3, 1.0, 0.4, 0.2], [0.2, 0.4, 1.0, 0.3], [0.1, 0.2, 0.3, 1.0]])
    cov = corr * np.outer(vol, vol)
    target = 0.10
    # closed form: min x'Cx s.t. 1'x = 1, mu'x = target (KKT, interior solution)
    kkt = np.block([[2 * cov, np.ones((4, 1)), mu[:, None]],
                    [np.ones((1, 4)), np.zeros((1, 2))],
                    [mu[None, :], np.zeros((1, 2))]])
    x_mv = np.linalg.solve(kkt, np.r_[np.zeros(4), 1.0, target])[:4]
    assert np.all(x_mv > 0.05), "test set-up: the min-variance portfolio must be interior"

    u = qmc.Sobol(4, scramble=True, seed=7).random_base2(15)  # 32,768 points
    returns = mu + stats.norm.ppf(u) @ np.linalg.cholesky(cov).T
    res = minimize_cvar(returns, beta=0.95, mean_floor=target, mean_values=mu,
                        A_eq=np.ones((1, 4)), b_eq=[1.0], constraint_names=["fully invested"])
    np.testing.assert_allclose(res.x, x_mv, atol=0.02, err_msg="min-CVaR weights differ from min-variance weights")
    sigma = np.sqrt(x_mv @ cov @ x_mv)
    closed = -target + sigma * stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05
    assert res.cvar == pytest.approx(closed, rel=0.01)
    assert MEAN_FLOOR in res.binding


def test_rockafellar_uryasev_2000_three_asset_example():
    """Tables 1-4 of Rockafellar & Uryasev (2000), Journal of Risk 2(3): S&P 500, bonds, small cap.

    Min CVaR at beta = 0.95 over x >= 0, sum x = 1, m'x >= 0.011. The paper's min-variance
    portfolio (Table 3) has VaR 0.0902 and CVaR 0.115908 (Table 4); its Sobol runs reach
    these within ~0.1 % at 10,000-20,000 samples (Table 6).
    """
    m = np.array([0.0101110, 0.0043532, 0.0137058])
    cov = np.array([[0.00324625, 0.00022983, 0.00420395],
                    [0.00022983, 0.00049937, 0.00019247],
                    [0.00420395, 0.00019247, 0.00764097]])
    table3 = np.array([0.452013, 0.115573, 0.432414])
    # the closed forms reproduce Table 4 from Table 3 (variance 0.00378529 quoted in the text)
    assert table3 @ cov @ table3 == pytest.approx(0.00378529, rel=1e-5)
    s = np.sqrt(0.00378529)
    assert -0.011 + s * stats.norm.ppf(0.95) == pytest.approx(0.0902, abs=5e-5)
    assert -0.011 + s * stats.norm.pdf(stats.norm.ppf(0.95)) / 0.05 == pytest.approx(0.115908, abs=5e-6)

    u = qmc.Sobol(3, scramble=True, seed=2000).random_base2(14)  # 16,384 points
    returns = m + stats.norm.ppf(u) @ np.linalg.cholesky(cov).T
    res = minimize_cvar(returns, beta=0.95, mean_floor=0.011, mean_values=m,
                        A_eq=np.ones((1, 3)), b_eq=[1.0], names=["S&P 500", "Gov Bond", "Small Cap"])
    assert res.cvar == pytest.approx(0.115908, rel=0.01), f"min CVaR {res.cvar} vs paper 0.115908"
    assert res.var == pytest.approx(0.0902, rel=0.02), f"VaR {res.var} vs paper 0.0902"
    np.testing.assert_allclose(res.x, table3, atol=0.03, err_msg="weights differ from the paper's Table 3")


def test_every_constraint_holds():
    values = _scenarios(1500, 6, seed=4)
    rng = np.random.default_rng(4)
    a_ub = np.vstack([[1, 1, 1, 0, 0, 0], rng.uniform(0, 1, 6)])
    b_ub = np.array([0.5, 0.6])
    a_eq = np.ones((1, 6))
    b_eq = np.array([1.0])
    bounds = [(0.05, 0.4), (0, 0.3), (0, None), (0.1, 0.5), (0, 0.35), (0, 0.3)]
    names = ["group a", "risk budget", "fully invested"]
    tol = 1e-8
    mean = values.mean(0)

    def check(res):
        x = res.x
        lb = np.array([b[0] for b in bounds])
        ub = np.array([np.inf if b[1] is None else b[1] for b in bounds])
        assert np.all(x >= lb - tol) and np.all(x <= ub + tol), f"bounds violated: {x}"
        assert np.all(a_ub @ x <= b_ub + tol), f"A_ub x = {a_ub @ x} > {b_ub}"
        np.testing.assert_allclose(a_eq @ x, b_eq, atol=tol)
        assert res.expected_value == pytest.approx(mean @ x, rel=1e-12)

    floor = 0.08
    r1 = optimize_cvar(values, beta=0.9, mean_floor=floor, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                       bounds=bounds, constraint_names=names)
    check(r1)
    assert r1.expected_value >= floor - tol

    top = optimize_cvar(values, beta=0.9, objective="max_mean", A_ub=a_ub, b_ub=b_ub, A_eq=a_eq,
                        b_eq=b_eq, bounds=bounds, constraint_names=names)
    check(top)
    cap = 0.5 * (r1.cvar + top.cvar)
    r2 = optimize_cvar(values, beta=0.9, objective="max_mean", cvar_cap=cap, A_ub=a_ub, b_ub=b_ub,
                       A_eq=a_eq, b_eq=b_eq, bounds=bounds, constraint_names=names)
    check(r2)
    assert r2.cvar <= cap + tol and CVAR_CAP in r2.binding
    assert r2.objective_value == pytest.approx(r2.expected_value, rel=1e-9)
    assert r1.expected_value <= r2.expected_value <= top.expected_value + tol

    r3 = optimize_cvar(values, beta=0.9, objective="blend", risk_aversion=2.0, A_ub=a_ub, b_ub=b_ub,
                       A_eq=a_eq, b_eq=b_eq, bounds=bounds, constraint_names=names)
    check(r3)
    assert r3.objective_value == pytest.approx(r3.expected_value - 2.0 * r3.cvar, abs=1e-8)
    for res in (r1, r2, top):  # the blend optimum beats the other feasible allocations on its objective
        assert r3.objective_value >= res.expected_value - 2.0 * res.cvar - 1e-8


def test_milp_go_no_go_matches_enumeration():
    """Binary go/no-go y_i with minimum and maximum tickets m*y_i <= x_i <= M*y_i, at most 2 goes."""
    n, lo_ticket, hi_ticket = 4, 0.3, 0.8
    values = _scenarios(300, n, seed=9)
    floor = float(np.quantile(values.mean(0), 0.6))
    v_ext = np.hstack([values, np.zeros((300, n))])  # y columns carry no value
    eye = np.eye(n)
    a_ub = np.vstack([np.hstack([eye, -hi_ticket * eye]),       # x_i - M y_i <= 0
                      np.hstack([-eye, lo_ticket * eye]),       # m y_i - x_i <= 0
                      np.r_[np.zeros(n), np.ones(n)][None, :]])  # at most 2 projects
    b_ub = np.r_[np.zeros(2 * n), 2.0]
    a_eq = np.r_[np.ones(n), np.zeros(n)][None, :]
    res = optimize_cvar(v_ext, beta=0.9, mean_floor=floor, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0],
                        bounds=[(0, None)] * n + [(0, 1)] * n, integrality=[0] * n + [1] * n)
    assert res.shadow_prices is None and res.solver == "highs (milp)"
    x, y = res.x[:n], res.x[n:]
    np.testing.assert_allclose(y, np.round(y), atol=1e-9)
    go = np.round(y).astype(bool)
    assert go.sum() <= 2
    assert np.all(x[~go] <= 1e-9) and np.all((x[go] >= lo_ticket - 1e-9) & (x[go] <= hi_ticket + 1e-9))

    best = np.inf
    for choice in itertools.product([0, 1], repeat=n):
        if sum(choice) > 2 or sum(choice) == 0:
            continue
        c = np.array(choice, dtype=float)
        try:
            r = minimize_cvar(values, beta=0.9, mean_floor=floor, A_eq=np.ones((1, n)), b_eq=[1.0],
                              bounds=list(zip(lo_ticket * c, hi_ticket * c)))
        except InfeasibleProblem:
            continue
        best = min(best, r.cvar)
    assert res.cvar == pytest.approx(best, abs=1e-7), f"MILP CVaR {res.cvar} vs enumeration {best}"


def _solve_budgeted(values, budget, cap):
    return optimize_cvar(values, beta=0.9, objective="max_mean", cvar_cap=cap, A_ub=np.ones((1, 5)),
                         b_ub=[budget], bounds=(0, 0.4), constraint_names=["budget"])


def test_shadow_prices_match_finite_differences():
    values = _scenarios(1000, 5, seed=12)
    eps = 1e-5
    # maximise the mean under a CVaR cap and a budget: both bind
    cap = 0.9 * _solve_budgeted(values, 1.0, 10.0).cvar
    base = _solve_budgeted(values, 1.0, cap)
    assert set(base.binding) == {"budget", CVAR_CAP}, base.binding
    for name, (b, c) in {"budget": (1.0 + eps, cap), CVAR_CAP: (1.0, cap + eps)}.items():
        bumped = _solve_budgeted(values, b, c)
        fd = (bumped.objective_value - base.objective_value) / eps
        assert base.shadow_prices[name] > 0
        assert base.shadow_prices[name] == pytest.approx(fd, rel=1e-3), (
            f"shadow price of {name!r} {base.shadow_prices[name]} vs finite difference {fd}")

    # minimise CVaR, fully invested (equality) with a binding mean floor
    mean = values.mean(0)
    floor = float(np.quantile(mean, 0.7))

    def solve(floor, total):
        return minimize_cvar(values, beta=0.9, mean_floor=floor, A_eq=np.ones((1, 5)), b_eq=[total],
                             constraint_names=["fully invested"])

    r0 = solve(floor, 1.0)
    assert MEAN_FLOOR in r0.binding
    fd_floor = (r0.objective_value - solve(floor - eps, 1.0).objective_value) / eps  # relax = lower the floor
    assert r0.shadow_prices[MEAN_FLOOR] == pytest.approx(fd_floor, rel=1e-3)
    fd_eq = (r0.objective_value - solve(floor, 1.0 + eps).objective_value) / eps  # per unit increase
    assert r0.shadow_prices["fully invested"] == pytest.approx(fd_eq, rel=1e-3)
    # a slack constraint has no value
    r_slack = optimize_cvar(values, beta=0.9, A_ub=np.ones((1, 5)), b_ub=[10.0], A_eq=np.ones((1, 5)),
                            b_eq=[1.0], constraint_names=["loose", "fully invested"])
    assert r_slack.shadow_prices["loose"] == 0.0 and "loose" not in r_slack.binding


def test_euler_contributions_sum_to_cvar_and_are_marginal():
    values = _scenarios(2001, 5, seed=21)
    res = minimize_cvar(values, beta=0.95, A_eq=np.ones((1, 5)), b_eq=[1.0])
    contrib = euler_contributions(values, res.x, 0.95)
    assert contrib.sum() == pytest.approx(res.cvar, abs=1e-12)

    rng = np.random.default_rng(1)
    x = rng.uniform(0.1, 1.0, 5)
    p = rng.dirichlet(np.ones(2001))
    for probs in (None, p):
        c = euler_contributions(values, x, 0.95, probabilities=probs)
        cvar = cvar_from_losses(-values @ x, 0.95, weights=probs)
        assert c.sum() == pytest.approx(cvar, rel=1e-12), "Euler contributions do not sum to the CVaR"
        h = 1e-7
        for i in range(5):
            up, dn = x.copy(), x.copy()
            up[i] += h
            dn[i] -= h
            grad = (cvar_from_losses(-values @ up, 0.95, probs) - cvar_from_losses(-values @ dn, 0.95, probs)) / (2 * h)
            assert c[i] == pytest.approx(x[i] * grad, rel=1e-5, abs=1e-9)


def test_efficient_frontier_is_monotone_between_min_cvar_and_max_mean():
    values = _scenarios(1200, 5, seed=33)
    kw = dict(beta=0.9, A_eq=np.ones((1, 5)), b_eq=[1.0], bounds=(0, 0.6))
    front = efficient_frontier(values, 8, **kw)
    assert front.x.shape == (8, 5) and front.cvar.shape == (8,)
    assert np.all(np.diff(front.expected_value) >= -1e-9), front.expected_value
    assert np.all(np.diff(front.cvar) >= -1e-9), front.cvar
    low = minimize_cvar(values, **kw)
    top = optimize_cvar(values, objective="max_mean", **kw)
    assert front.cvar[0] == pytest.approx(low.cvar, abs=1e-9)
    assert front.expected_value[0] == pytest.approx(low.expected_value, abs=1e-9)
    assert front.expected_value[-1] == pytest.approx(top.expected_value, abs=1e-8)
    # each point's CVaR is exact for its allocation
    np.testing.assert_allclose(front.cvar, cvar_from_losses(-values @ front.x.T, 0.9), atol=1e-12)


# --------------------------------------------------------------------------- diagnosis
def test_infeasible_names_each_conflicting_constraint_and_its_relaxation():
    values = _scenarios(200, 2, seed=2)
    with pytest.raises(InfeasibleProblem) as info:
        optimize_cvar(values, A_ub=[[1.0, 1.0], [-1.0, 0.0]], b_ub=[1.0, -2.0],
                      constraint_names=["budget", "min x1"])
    err = info.value
    assert not isinstance(err, FundmodelError) and exit_code_for(err) == 2  # a plain exception; the CLI exits 2
    assert err.relaxations == pytest.approx({"budget": 1.0, "min x1": 1.0}, abs=1e-9)
    assert "'budget' by 1" in str(err) and "'min x1' by 1" in str(err), str(err)
    assert sum(err.joint_relaxation.values()) == pytest.approx(1.0, abs=1e-9)


def test_infeasible_mean_floor_and_cvar_cap_report_the_gap():
    values = _scenarios(400, 3, seed=5)
    kw = dict(beta=0.9, A_eq=np.ones((1, 3)), b_eq=[1.0], bounds=(0, 1), constraint_names=["fully invested"])
    best_mean = values.mean(0).max()
    with pytest.raises(InfeasibleProblem) as info:
        minimize_cvar(values, mean_floor=best_mean + 0.5, **kw)
    assert info.value.relaxations[MEAN_FLOOR] == pytest.approx(0.5, abs=1e-8), str(info.value)

    min_cvar = minimize_cvar(values, **kw).cvar
    with pytest.raises(InfeasibleProblem) as info:
        optimize_cvar(values, objective="max_mean", cvar_cap=min_cvar - 0.01, **kw)
    assert info.value.relaxations[CVAR_CAP] == pytest.approx(0.01, abs=1e-8), str(info.value)
    assert "'cvar cap' by 0.01" in str(info.value)


def test_infeasible_milp_is_diagnosed_too():
    values = _scenarios(100, 2, seed=6)
    v_ext = np.hstack([values, np.zeros((100, 1))])
    # a go (y = 1) forces x1 >= 2 through "min ticket" but the budget is 1; y must be 1
    with pytest.raises(InfeasibleProblem) as info:
        optimize_cvar(v_ext, A_ub=[[1, 1, 0], [-1, 0, 2]], b_ub=[1.0, 0.0], A_eq=[[0, 0, 1]], b_eq=[1.0],
                      bounds=[(0, None), (0, None), (0, 1)], integrality=[0, 0, 1],
                      constraint_names=["budget", "min ticket", "go"])
    assert info.value.relaxations == pytest.approx({"budget": 1.0, "min ticket": 1.0, "go": -1.0}, abs=1e-7)
    assert "change 'go' by -1" in str(info.value), str(info.value)


def test_unbounded_is_reported_clearly():
    values = _scenarios(100, 3, seed=7)
    with pytest.raises(UnboundedProblem, match="unbounded.*'a', 'b', 'c'") as info:
        optimize_cvar(values, objective="max_mean", names=["a", "b", "c"])
    assert exit_code_for(info.value) == 2


def test_inconsistent_input_is_rejected_before_solving():
    values = _scenarios(50, 3, seed=8)
    with pytest.raises(ValueError, match="bounds of 'x\\[1\\]'"):
        optimize_cvar(values, bounds=[(0, 1), (2, 1), (0, 1)])
    with pytest.raises(ValueError, match="A_ub must have shape"):
        optimize_cvar(values, A_ub=np.ones((1, 2)), b_ub=[1.0])
    with pytest.raises(ValueError, match="objective must be one of"):
        optimize_cvar(values, objective="max_sharpe")
    with pytest.raises(ValueError, match="constraint names must be unique"):
        optimize_cvar(values, A_ub=np.ones((1, 3)), b_ub=[1.0], mean_floor=0.0, constraint_names=[MEAN_FLOOR])


def test_extra_cvar_limit_at_another_level_holds_and_matches_the_cap_at_the_same_level():
    rng = np.random.default_rng(7)
    values = rng.normal(0.05, 0.2, size=(800, 4)) * np.array([1.0, 2.0, 0.5, 1.5])
    kw = dict(A_ub=[[1.0, 1.0, 1.0, 1.0]], b_ub=[1.0], bounds=(0, 1))
    free = optimize_cvar(values, beta=0.95, objective="max_mean", cvar_cap=0.5, **kw)
    cap90 = 0.5 * cvar_from_losses(free.losses, 0.9)
    res = optimize_cvar(values, beta=0.95, objective="max_mean", cvar_cap=0.5,
                        cvar_limits=[("cvar90", 0.9, cap90)], **kw)
    assert cvar_from_losses(res.losses, 0.9) <= cap90 + 1e-9
    assert res.cvar_limits["cvar90"] == pytest.approx(cvar_from_losses(res.losses, 0.9), abs=1e-12)
    assert "cvar90" in res.binding and res.shadow_prices["cvar90"] > 0
    # the same limit at the main level is the plain CVaR cap
    same = optimize_cvar(values, beta=0.9, objective="max_mean", cvar_limits=[("c", 0.9, cap90)], **kw)
    plain = optimize_cvar(values, beta=0.9, objective="max_mean", cvar_cap=cap90, **kw)
    assert same.expected_value == pytest.approx(plain.expected_value, rel=1e-9)
    assert same.shadow_prices["c"] == pytest.approx(plain.shadow_prices["cvar cap"], rel=1e-6)
    # and the MILP path enforces it too
    mixed = optimize_cvar(values, beta=0.95, objective="max_mean", cvar_limits=[("c", 0.9, cap90)],
                          integrality=[1, 0, 0, 0], **kw)
    assert cvar_from_losses(mixed.losses, 0.9) <= cap90 + 1e-7
    assert mixed.expected_value <= same.expected_value + 1e-7, "integrality only restricts"


def test_warm_started_frontier_equals_cold_solves():
    rng = np.random.default_rng(11)
    values = rng.standard_t(4, size=(1500, 6)) * 0.1 + np.linspace(0.0, 0.05, 6)
    kw = dict(beta=0.9, A_eq=[[1.0] * 6], b_eq=[1.0], bounds=(0, 0.5))
    warm = efficient_frontier(values, 7, warm_start=True, **kw)
    cold = efficient_frontier(values, 7, warm_start=False, **kw)
    np.testing.assert_allclose(warm.cvar, cold.cvar, atol=1e-9)
    np.testing.assert_allclose(warm.expected_value, cold.expected_value, atol=1e-9)
    np.testing.assert_allclose(warm.cvar, cvar_from_losses(-values @ warm.x.T, 0.9), atol=1e-12)
