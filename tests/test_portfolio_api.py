"""The public optimiser API after the split of ``portfolio/cvar.py`` (issue 15), checked independently.

- the exact call form of ``fundmodel.portfolio.optimize_cvar`` the issue names, and its result
  fields, against a brute-force enumeration of a two-asset problem;
- the one CVaR definition (``lower_tail_mean`` on values = ``cvar_from_losses`` on losses) against
  the Rockafellar-Uryasev minimum formula, including sample sizes with a fractional atom;
- the private HiGHS bindings the warm start uses: a test that fails loudly when SciPy moves them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog

import fundmodel.portfolio as fp


def _ru_cvar(losses: np.ndarray, beta: float) -> float:
    """min over a of a + E[(L - a)^+] / (1 - beta) (Rockafellar & Uryasev 2000); attained at a sample point."""
    a = losses[:, None]
    return float(np.min(a[:, 0] + np.maximum(losses[None, :] - a, 0.0).mean(1) / (1 - beta)))


@pytest.mark.parametrize("n", [20, 37, 1250, 1251])
@pytest.mark.parametrize("level", [0.05, 0.1, 0.33])
def test_lower_tail_mean_is_minus_the_cvar_of_the_losses_by_the_ru_formula(n, level):
    x = np.random.default_rng(n).normal(size=n) * 10.0
    assert fp.lower_tail_mean(x, level) == pytest.approx(-_ru_cvar(-x, 1.0 - level), rel=1e-12, abs=1e-12)
    assert fp.lower_tail_mean(x, level) == pytest.approx(-fp.cvar_from_losses(-x, 1.0 - level), rel=1e-13)


def test_lower_tail_mean_keeps_the_fractional_atom_that_a_floor_count_drops():
    # 1,250 outcomes at 5 %: 62.5 worst outcomes; the half outcome counts with half its weight
    x = np.arange(1250.0)
    expected = (np.arange(62.0).sum() + 0.5 * 62.0) / 62.5
    assert fp.lower_tail_mean(x, 0.05) == pytest.approx(expected, rel=1e-13)
    assert fp.lower_tail_mean(x, 0.05) != pytest.approx(np.arange(62.0).mean(), rel=1e-6)


def test_optimize_cvar_public_call_form_and_result_fields_match_a_brute_force_search():
    rng = np.random.default_rng(7)
    values = np.column_stack([rng.normal(1.0, 3.0, 400), rng.normal(0.5, 1.0, 400), np.zeros(400)])
    beta, cap = 0.9, 2.5
    # max expected value, CVaR <= cap, x0 + x1 <= 1 (budget), x1 >= 0.1 (lower bound), x2 = 0 (equality)
    res = fp.optimize_cvar(
        values, beta=beta, objective="max_mean", mean_floor=0.2, cvar_cap=cap, mean_values=values.mean(axis=0),
        A_ub=[[1.0, 1.0, 0.0]], b_ub=[1.0], A_eq=[[0.0, 0.0, 1.0]], b_eq=[0.0],
        bounds=[(0.0, None), (0.1, None), (0.0, 1.0)], integrality=None,
        names=["risky", "steady", "idle"], constraint_names=["budget", "idle is zero"])
    # brute force over a grid of the feasible set (x2 = 0); 400 scenarios at 90 %: the CVaR is the
    # mean of the 40 largest losses (no fractional atom)
    grid = np.linspace(0.0, 1.0, 401)
    best = -np.inf
    for x0 in grid:
        x1 = grid[(grid >= 0.1) & (grid <= 1.0 - x0 + 1e-12)]
        if x1.size == 0:
            continue
        losses = -(values[:, :1] * x0 + values[:, 1:2] * x1[None, :])
        cv = np.sort(losses, axis=0)[-40:].mean(axis=0)
        mean = values[:, 0].mean() * x0 + values[:, 1].mean() * x1
        ok = (cv <= cap) & (mean >= 0.2)
        if ok.any():
            best = max(best, float(mean[ok].max()))
    # the LP optimum is at least the grid optimum and within one grid step (slope < 1.5 per unit) of it
    assert best - 1e-9 <= res.expected_value <= best + 1.5 * (grid[1] - grid[0])
    assert res.cvar <= cap + 1e-7
    assert res.cvar == pytest.approx(_ru_cvar(-(values @ res.x), beta), rel=1e-9)
    assert res.var <= res.cvar
    assert set(res.shadow_prices) == {"budget", "idle is zero", fp.MEAN_FLOOR, fp.CVAR_CAP}
    assert "cvar cap" in res.binding and "idle is zero" in res.binding
    assert res.x[2] == 0.0 and res.x[1] >= 0.1 - 1e-12
    assert res.allocation() == dict(zip(("risky", "steady", "idle"), res.x.tolist()))


def test_optimize_cvar_with_integrality_solves_the_go_no_go_by_enumeration():
    values = np.array([[3.0, -1.0], [-2.0, 2.0], [1.0, 1.0], [0.5, -0.5]])
    res = fp.optimize_cvar(values, beta=0.5, objective="max_mean", cvar_cap=1.0,
                           bounds=[(0, 1), (0, 1)], integrality=[1, 1])
    options = [(i, j) for i in (0, 1) for j in (0, 1)]
    feasible = [(values @ np.array(o, float)).mean() for o in options
                if _ru_cvar(-(values @ np.array(o, float)), 0.5) <= 1.0 + 1e-12]
    assert res.expected_value == pytest.approx(max(feasible))
    assert res.shadow_prices is None  # a MILP has no duals


def test_scipy_private_highs_bindings_used_by_the_warm_start_still_exist():
    """Fails loudly when SciPy moves the HiGHS bindings (the warm start would silently fall back)."""
    from scipy.optimize._highspy import _core

    from fundmodel.portfolio import _highs

    missing = [name for name in _highs.HIGHS_BINDING_NAMES if not hasattr(_core, name)]
    assert not missing, f"scipy.optimize._highspy._core lacks {missing}: update fundmodel/portfolio/_highs.py"
    for method in ("passModel", "run", "getSolution", "getInfo", "getBasis", "setBasis", "changeColBounds",
                   "changeColCost", "setOptionValue", "getModelStatus", "getInfinity"):
        assert hasattr(_core._Highs, method), f"HiGHS binding lacks {method}"


def test_warm_dual_re_solves_to_the_cold_linprog_optimum():
    from fundmodel.portfolio._highs import WarmDual
    from fundmodel.portfolio.optimize import _prepare

    rng = np.random.default_rng(3)
    values = rng.normal([0.5, 0.2, 0.1], [2.0, 1.0, 0.3], size=(300, 3))
    floors = [0.15, 0.25, 0.35]
    prep = _prepare(values, beta=0.9, objective="min_cvar", mean_floor=0.0, cvar_cap=None, risk_aversion=1.0,
                    A_ub=None, b_ub=None, A_eq=[[1.0, 1.0, 1.0]], b_eq=[1.0], bounds=None, integrality=None,
                    names=None, constraint_names=None, probabilities=None, mean_values=None, cvar_limits=None,
                    binding_tol=1e-7)
    warm = WarmDual.create(prep.model, None)
    assert warm is not None, "the warm start is unavailable: SciPy's HiGHS bindings moved"
    for floor in floors:
        warm.set_floor(prep.floor_row, floor)
        sol = warm.solve()
        # cold primal LP of Rockafellar-Uryasev, written out independently: z = [x (3), alpha, u (300)]
        n_s = values.shape[0]
        c = np.concatenate([np.zeros(3), [1.0], np.full(n_s, 1.0 / (n_s * 0.1))])
        a_ub = np.hstack([-values, -np.ones((n_s, 1)), -np.eye(n_s)])
        a_ub = np.vstack([a_ub, np.concatenate([-values.mean(axis=0), [0.0], np.zeros(n_s)])])
        b_ub = np.concatenate([np.zeros(n_s), [-floor]])
        a_eq = np.concatenate([np.ones(3), [0.0], np.zeros(n_s)])[None, :]
        bounds = [(0, None)] * 3 + [(None, None)] + [(0, None)] * n_s
        cold = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=bounds, method="highs")
        assert sol is not None and cold.status == 0
        assert sol.fun == pytest.approx(cold.fun, rel=1e-7, abs=1e-9)
