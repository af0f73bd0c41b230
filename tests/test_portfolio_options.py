"""Go/no-go with minimum tickets, blend objective, probability-of-loss limit, supply frontier.

Each figure is checked against an independent computation: brute-force enumeration of
the project selections, the exact probability of loss of the chosen portfolio, a CVaR-capped
re-solve at each frontier point.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import slow_fixture

from fundmodel.assumptions import load_assumptions
from fundmodel.portfolio import cvar_from_losses, optimize_cvar
from fundmodel.portfolio.fund import (
    PROB_LOSS,
    build_fund_problem,
    frontier_job,
    fund_constraints,
    optimize_fund,
    project_exposures,
)
from fundmodel.portfolio.report import frontier_table, fund_metrics
from fundmodel.pipeline import simulate_to_directory
from fundmodel.simulation import RunSettings, load_scenarios

ROOT = Path(__file__).resolve().parent.parent
KEEP = ["br_ree", "kz_gallium", "cl_lithium", "kz_tungsten", "gh_lithium"]


@slow_fixture(scope="module")
def small(tmp_path_factory):
    """Five projects, 256 scenarios: small enough to enumerate every project selection."""
    a = load_assumptions(ROOT / "assumptions")
    a = dataclasses.replace(a, projects={k: v for k, v in a.projects.items() if k in KEEP})
    out = tmp_path_factory.mktemp("small")
    simulate_to_directory(a, RunSettings.from_assumptions(a, scenarios=256, workers=1, risk_attribution=False), out)
    return a, build_fund_problem(a, load_scenarios(out / "simulation" / "scenarios"))


def with_limits(a, **changes):
    portfolio = a.fund.portfolio.model_copy(update=changes)
    return dataclasses.replace(a, fund=a.fund.model_copy(update={"portfolio": portfolio}))


def weighted_tonnes_by_hand(a, problem) -> np.ndarray:
    """Weighted tonnes a year secured by one unit of each column, from the instruments' own tonnes.

    Returns
    -------
    ndarray of shape (n_columns,)
        ``sum_m w_m E[tonnes of m per unit]``: the weights ``w_m`` of ``fund.yaml:
        portfolio.supply_weights`` times the mean over the scenarios of each column's tonnes a
        year of material ``m`` (``InstrumentPayoff.tonnes_t``), summed here rather than taken from
        :func:`fundmodel.portfolio.fund.supply_weights`, the function under test.
    """
    w = a.fund.portfolio.supply_weights
    return np.array([sum(w.get(m, 0.0) * float(np.mean(t)) for m, t in c.tonnes_t.items())
                     for c in problem.columns])


def brute_force_best(a, problem, tickets: dict[str, float], max_projects: int | None = None) -> float:
    """Best expected PV over every project selection, each an LP with the selection fixed."""
    limits = a.fund.portfolio
    A, b, names = fund_constraints(a, problem)
    projects = sorted(tickets)
    member = np.array([c.project for c in problem.columns])
    best = -np.inf
    for r in range(len(projects) + 1):
        if max_projects is not None and r > max_projects:
            break
        for chosen in itertools.combinations(projects, r):
            bounds = [(0.0, c.max_units if c.project in chosen else 0.0) for c in problem.columns]
            rows = [-problem.exposure_meur * (member == pid) for pid in chosen]
            A2 = np.vstack([A] + [row[None, :] for row in rows])
            b2 = np.concatenate([b, [-tickets[pid] for pid in chosen]])
            try:
                res = optimize_cvar(problem.values_meur, beta=limits.cvar_beta, objective="max_mean",
                                    cvar_cap=limits.cvar_limit_meur, A_ub=A2, b_ub=b2, bounds=bounds)
            except Exception:  # infeasible selection (a ticket out of reach)
                continue
            best = max(best, res.expected_value)
    return best


@pytest.mark.slow
@pytest.mark.parametrize("ticket, max_projects", [(300.0, None), (60.0, 3)])
def test_go_no_go_matches_brute_force_and_respects_tickets(small, ticket, max_projects):
    a, problem = small
    a = with_limits(a, cvar_limit_meur=150.0, go_no_go=True, min_ticket_meur=ticket, max_projects=max_projects)
    lp = optimize_fund(with_limits(a, go_no_go=False, min_ticket_meur=0.0, max_projects=None), problem)
    assert min(project_exposures(problem, lp.x).values()) < ticket or max_projects, \
        "the plain LP must violate a ticket or the count, else the test proves nothing"
    res = optimize_fund(a, problem, options={"mip_rel_gap": 1e-9})
    assert res.solver == "highs (milp)"
    exposure = project_exposures(problem, res.x)
    for pid, e in exposure.items():
        assert e == pytest.approx(0.0, abs=1e-6) or e >= ticket - 1e-6, (pid, e)
    if max_projects:
        assert sum(e > 1e-6 for e in exposure.values()) <= max_projects
    assert cvar_from_losses(-problem.values_meur @ res.x, 0.95) <= 150.0 + 1e-6
    assert res.expected_value == pytest.approx(float(problem.values_meur.mean(axis=0) @ res.x), rel=1e-12)
    best = brute_force_best(a, problem, {pid: ticket for pid in KEEP}, max_projects)
    assert res.expected_value == pytest.approx(best, rel=1e-6, abs=1e-6)
    assert res.expected_value <= lp.expected_value + 1e-6, "binaries can only cost expected PV"


@pytest.mark.slow
def test_per_project_ticket_overrides_and_lp_shortcut(small):
    a, problem = small
    base = with_limits(a, cvar_limit_meur=150.0)
    lp = optimize_fund(base, problem)
    # tickets the LP optimum already meets: the LP is returned (with its shadow prices)
    loose = optimize_fund(with_limits(base, go_no_go=True, min_ticket_meur=1.0), problem)
    assert loose.solver == "highs (linprog)" and loose.shadow_prices is not None
    np.testing.assert_allclose(loose.x, lp.x)
    # one project with a ticket above its LP exposure: in with the ticket, or out
    exposure = project_exposures(problem, lp.x)
    pid = min(exposure, key=exposure.get)
    tight = with_limits(base, go_no_go=True, min_ticket_by_project_meur={pid: exposure[pid] + 50.0})
    res = optimize_fund(tight, problem, options={"mip_rel_gap": 1e-9})
    e = project_exposures(problem, res.x)[pid]
    assert e == pytest.approx(0.0, abs=1e-6) or e >= exposure[pid] + 50.0 - 1e-6
    tickets = {p: 0.0 for p in KEEP} | {pid: exposure[pid] + 50.0}
    assert res.expected_value == pytest.approx(brute_force_best(tight, problem, tickets), rel=1e-6)


def test_unknown_project_in_ticket_overrides_is_an_assumption_error(small):
    from fundmodel.errors import AssumptionError

    a, problem = small
    bad = with_limits(a, go_no_go=True, min_ticket_by_project_meur={"xx_nowhere": 10.0})
    with pytest.raises(AssumptionError) as info:
        optimize_fund(bad, problem)
    assert info.value.exit_code == 2
    assert "fund.yaml: portfolio.min_ticket_by_project_meur.xx_nowhere" in str(info.value)


def test_probability_of_loss_limit_holds_on_the_scenarios(small):
    a, problem = small
    free = optimize_fund(with_limits(a, cvar_limit_meur=400.0), problem)
    p_free = float(np.mean(-problem.values_meur @ free.x > 0.0))
    limit = 0.5 * p_free
    assert limit > 0.005, "the unconstrained optimum must lose with some probability"
    res = optimize_fund(with_limits(a, cvar_limit_meur=400.0, max_prob_loss=limit, prob_loss_threshold_meur=0.0),
                        problem)
    losses = -problem.values_meur @ res.x
    assert np.mean(losses > 0.0) <= limit, "realised probability of loss within the limit"
    assert cvar_from_losses(losses, 1.0 - limit) <= 1e-6, "the CVaR bound that imposes it"
    assert res.cvar_limits[PROB_LOSS] == pytest.approx(cvar_from_losses(losses, 1.0 - limit), abs=1e-9)
    assert PROB_LOSS in res.binding and res.shadow_prices[PROB_LOSS] > 0
    assert res.expected_value < free.expected_value
    metrics = fund_metrics(with_limits(a, cvar_limit_meur=400.0, max_prob_loss=limit), problem, res)
    assert metrics["prob_loss"]["realised_prob_loss"] == pytest.approx(float(np.mean(losses > 0.0)))
    # a threshold: P(loss > 50) <= limit
    res50 = optimize_fund(with_limits(a, cvar_limit_meur=400.0, max_prob_loss=0.02, prob_loss_threshold_meur=50.0),
                          problem)
    assert np.mean(-problem.values_meur @ res50.x > 50.0) <= 0.02


def test_blend_objective_trades_pv_for_supply(small):
    a, problem = small
    weights = weighted_tonnes_by_hand(a, problem)
    assert (weights > 0).sum() >= 3, "supply must weigh in, else the blend is the PV objective"
    mean_pv = problem.values_meur.mean(axis=0)
    pv = optimize_fund(a, problem)
    results = [optimize_fund(with_limits(a, objective="blend", blend_supply_value_meur_per_t=v), problem)
               for v in (0.0, 0.02, 0.2)]
    assert results[0].expected_value == pytest.approx(pv.expected_value, rel=1e-9)
    for v, res in zip((0.0, 0.02, 0.2), results):
        assert res.objective_value == pytest.approx(mean_pv @ res.x + v * weights @ res.x, rel=1e-9)
        assert res.expected_value == pytest.approx(mean_pv @ res.x, rel=1e-12), "expected_value is the PV"
        assert res.expected_value >= -1e-6, "return floor (0) holds under blend"
    supply = [weights @ r.x for r in results]
    pvs = [r.expected_value for r in results]
    assert supply[0] <= supply[1] + 1e-6 <= supply[2] + 2e-6, "more value on supply, more supply"
    assert pvs[0] >= pvs[1] - 1e-6 >= pvs[2] - 2e-6, "... and less PV"
    # every blend optimum beats every other blend's allocation at its own weight
    for v, res in zip((0.0, 0.02, 0.2), results):
        for other in results:
            assert mean_pv @ res.x + v * weights @ res.x >= mean_pv @ other.x + v * weights @ other.x - 1e-6


def test_supply_frontier_is_the_most_supply_at_each_cvar(small):
    from fundmodel.portfolio import efficient_frontiers

    a, problem = small
    job = frontier_job(a, problem, 6)
    fronts = efficient_frontiers(**job)
    supply, pv = fronts["supply"], fronts["pv"]
    weights = weighted_tonnes_by_hand(a, problem)
    assert np.all(np.diff(supply.expected_value) >= -1e-6) and np.all(np.diff(supply.cvar) >= -1e-6)
    np.testing.assert_allclose(supply.expected_value, supply.x @ weights, rtol=1e-9)
    np.testing.assert_allclose(supply.cvar, cvar_from_losses(-problem.values_meur @ supply.x.T, 0.95), atol=1e-9)
    assert supply.cvar[0] == pytest.approx(pv.cvar[0], abs=1e-6), "both start at the min-CVaR allocation"
    A, b, names = fund_constraints(a, problem)
    bounds = [(0.0, c.max_units) for c in problem.columns]
    for k in (2, 4):  # independent check: maximise weighted supply under a CVaR cap at that level
        res = optimize_cvar(problem.values_meur, beta=0.95, objective="max_mean", mean_values=weights,
                            cvar_cap=float(supply.cvar[k]) + 1e-7, A_ub=A, b_ub=b, bounds=bounds)
        assert res.objective_value == pytest.approx(supply.expected_value[k], rel=1e-6)
    table = frontier_table(a, problem, fronts)
    assert list(table.columns[:4]) == ["point", "expected_pv_meur", "cvar_meur", "var_meur"], "old columns first"
    np.testing.assert_allclose(table["supply_weighted_t_per_year"], supply.expected_value)
    np.testing.assert_allclose(table["supply_expected_pv_meur"], supply.x @ problem.values_meur.mean(axis=0))


@pytest.mark.slow
def test_frontier_in_a_second_process_gives_the_same_numbers(small, tmp_path):
    from fundmodel.engine import BackgroundTask
    from fundmodel.pipeline.stages import _frontier_task

    a, problem = small
    job = frontier_job(a, problem, 4)
    here = BackgroundTask(_frontier_task, job, enabled=False).get()
    there = BackgroundTask(_frontier_task, job, enabled=True).get()
    for key in here:
        np.testing.assert_allclose(there[key].cvar, here[key].cvar, rtol=0, atol=1e-9)
        np.testing.assert_allclose(there[key].expected_value, here[key].expected_value, rtol=0, atol=1e-9)


@pytest.mark.parametrize("edit, message", [
    ("objective: max_pv", "blend_supply_value_meur_per_t"),
    ("min_ticket_meur: 50", "need go_no_go: true"),
    ("max_prob_loss: 0.7", "max_prob_loss"),
])
def test_bad_portfolio_options_exit_2_naming_the_field(assumptions_copy, tmp_path, capsys, edit, message):
    from fundmodel.cli import main

    fund = assumptions_copy / "fund.yaml"
    text = fund.read_text()
    if edit == "objective: max_pv":
        text = text.replace("objective: max_pv ", "objective: blend ")
        text = "\n".join(line for line in text.splitlines() if "blend_supply_value_meur_per_t:" not in line)
    else:
        text = text.replace("  cvar_beta: 0.95", f"  {edit}\n  cvar_beta: 0.95")
    fund.write_text(text)
    code = main(["validate", "--assumptions", str(assumptions_copy)])
    err = capsys.readouterr().err
    assert code == 2 and "fund.yaml" in err and message in err, err


@pytest.mark.slow
def test_stress_in_worker_processes_and_from_base_values_gives_the_same_table(small):
    from fundmodel.portfolio.stress import stress_test

    a, problem = small
    a = dataclasses.replace(a, stress=a.stress.model_copy(update={"stress_scenarios": 256}))
    x = optimize_fund(a, problem).x
    # the stakes are bought once, at the entry prices of the problem (a stress does not re-price them)
    one = stress_test(a, RunSettings.from_assumptions(a, workers=1), problem.names, x, entry=problem.entry)
    two = stress_test(a, RunSettings.from_assumptions(a, workers=2), problem.names, x,
                      base_values=problem.values_meur[:256], entry=problem.entry)
    numeric = one.columns.drop(["stress", "description"])
    np.testing.assert_array_equal(two[numeric].to_numpy(), one[numeric].to_numpy())
