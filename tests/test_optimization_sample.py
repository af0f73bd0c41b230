"""Large runs: the allocation is solved on the first N scenarios and evaluated on all of them."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.portfolio.fund import build_fund_problem
from fundmodel.simulation import load_scenarios

from conftest import copy_assumptions, slow_fixture

PROJECTS = ["mn_ree", "cd_cobalt", "cl_lithium"]


def _cli(argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue()


@slow_fixture(scope="module")
def runs(tmp_path_factory):
    """A 3,072-scenario run whose CVaR limit is imposed on its first 1,024 scenarios.

    (A run within ``optimization_scenarios`` has no sample section: test_fund_problem.)
    """
    root = tmp_path_factory.mktemp("sample")
    work = copy_assumptions(root / "assumptions", PROJECTS, {
        # a CVaR limit that binds for these three projects (their positions are small at market prices)
        "fund.yaml": lambda d: d["portfolio"].update(optimization_scenarios=1024, max_country_share=1.0,
                                                     max_material_share=1.0, cvar_limit_meur=20.0),
        "stress.yaml": lambda d: d.update(stress_scenarios=256)})
    large = root / "large"
    _cli(["optimize", "--assumptions", str(work), "--scenarios", "3072", "--seed", "21", "--workers", "1",
          "--out", str(large)])
    return work, large


def _cvar(pv: np.ndarray, beta: float) -> float:
    """CVaR of the loss -pv with equal scenario weights, from the sorted losses (independent of the model)."""
    k = (1 - beta) * pv.size  # e.g. 153.6 scenarios in the tail: the worst 153 and 0.6 of the next
    worst = np.sort(-pv)[::-1]
    return float((worst[: int(k)].sum() + (k - int(k)) * worst[int(k)]) / k)


def _var(pv: np.ndarray, beta: float) -> float:
    """VaR of the loss -pv with equal scenario weights: the ceil(beta n)-th smallest loss (the lower
    beta-quantile, min {z : P(L <= z) >= beta}), from the sorted losses (independent of the model)."""
    return float(np.sort(-pv)[math.ceil(beta * pv.size) - 1])


def _fund_pv(work: Path, out: Path) -> tuple[np.ndarray, dict, pd.DataFrame, float]:
    """Per-scenario PV of the fund's allocation on every scenario of the run in ``out``, the metrics,
    allocation.csv and the allocation's expected capital (EUR m), summed by hand from the
    instruments' per-scenario capital."""
    metrics = json.loads((out / "portfolio" / "metrics.json").read_text())
    allocation = pd.read_csv(out / "portfolio" / "allocation.csv")
    problem = build_fund_problem(load_assumptions(work), load_scenarios(out / "simulation" / "scenarios"))
    x = np.zeros(len(problem.names))
    for row in allocation.itertuples():
        name = f"{row.project}/{row.instrument}" + (f":{row.material}" if isinstance(row.material, str) else "")
        x[problem.names.index(name)] = row.size
    capital = sum(size * float(np.mean(c.capital_meur)) for size, c in zip(x, problem.columns))
    return problem.values_meur @ x, metrics, allocation, capital


@pytest.mark.slow
def test_cvar_limit_on_the_solve_sample_and_the_portfolio_evaluated_on_every_scenario(runs):
    work, large = runs
    pv, metrics, allocation, capital = _fund_pv(work, large)
    assert pv.shape == (3072,) and len(allocation) > 0
    beta, limit = metrics["cvar_beta"], metrics["cvar_limit_meur"]
    sample = metrics["optimization_sample"]
    assert sample["scenarios_solved"] == 1024 and sample["scenarios_evaluated"] == 3072

    # solve sample: the first 1,024 scenarios; the CVaR limit holds there (it binds in this set-up)
    assert sample["solve_sample"]["cvar_meur"] == pytest.approx(_cvar(pv[:1024], beta), rel=1e-9)
    assert sample["solve_sample"]["cvar_meur"] == pytest.approx(limit, rel=1e-6)
    # all scenarios: headline figures, allocation.csv and the gap
    full = sample["all_scenarios"]
    assert full["cvar_meur"] == pytest.approx(_cvar(pv, beta), rel=1e-9)
    assert metrics["cvar_meur"] == pytest.approx(_cvar(pv, beta), rel=1e-9)
    assert full["expected_pv_meur"] == pytest.approx(pv.mean(), rel=1e-9)
    assert metrics["expected_pv_meur"] == pytest.approx(pv.mean(), rel=1e-9)
    assert allocation["expected_pv_meur"].sum() == pytest.approx(pv.mean(), rel=1e-9)
    # the gap, all scenarios minus the solve sample, from the per-scenario PVs: the tail figures differ,
    # every expectation (PV, capital, supply, the max_pv objective) is over all scenarios in both
    tail = {"var_meur": _var(pv, beta) - _var(pv[:1024], beta), "cvar_meur": _cvar(pv, beta) - _cvar(pv[:1024], beta)}
    assert set(sample["gap"]) == {"expected_pv_meur", "var_meur", "cvar_meur", "capital_used_meur",
                                  "weighted_supply_t_per_year", "objective_value"}
    for key, gap in sample["gap"].items():
        assert gap == pytest.approx(tail.get(key, 0.0), abs=1e-9), key
    assert load_assumptions(work).fund.portfolio.objective == "max_pv"
    for figures, n in ((full, 3072), (sample["solve_sample"], 1024)):  # each side by hand too
        assert figures["var_meur"] == pytest.approx(_var(pv[:n], beta), rel=1e-9), n
        assert figures["capital_used_meur"] == pytest.approx(capital, rel=1e-9), n
        assert figures["objective_value"] == pytest.approx(pv.mean(), rel=1e-9), n  # the expected PV
    assert full["weighted_supply_t_per_year"] == pytest.approx(sample["solve_sample"]["weighted_supply_t_per_year"])
    assert sample["gap"]["expected_pv_meur"] == pytest.approx(0.0, abs=1e-9)  # expectations use all scenarios
    assert abs(sample["gap"]["cvar_meur"]) > 1e-3  # the tail differs (else the test proves nothing)
    assert sample["cvar_limit_met"] is bool(_cvar(pv, beta) <= limit), "the CVaR limit met on every scenario"
    # the budget holds on all scenarios (capital is an expectation over all of them), fund.yaml's budget
    assert metrics["capital_used_meur"] == pytest.approx(capital, rel=1e-9)
    assert capital <= load_assumptions(work).fund.portfolio.budget_meur * (1 + 1e-9)


@pytest.mark.slow
def test_portfolio_memo_states_the_solve_sample_and_the_gap(runs):
    from fundmodel.memo import Formatter, load_results
    from fundmodel.memo.context import portfolio_context
    from fundmodel.memo.render import render_html

    work, large = runs
    sample = json.loads((large / "portfolio" / "metrics.json").read_text())["optimization_sample"]
    html = render_html("portfolio.html", portfolio_context(load_assumptions(work), load_results(large)))
    fmt = Formatter("en")
    assert "the first 1,024 of 3,072 scenarios" in html
    assert fmt.meur(sample["all_scenarios"]["cvar_meur"]) in html
    assert f"(gap {fmt.meur(sample['gap']['cvar_meur'])})" in html
