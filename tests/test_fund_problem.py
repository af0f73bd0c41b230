"""The fund's allocation problem on a small simulation: limits hold, conflicts are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.portfolio import InfeasibleProblem, cvar_from_losses
from fundmodel.portfolio.fund import build_fund_problem, fund_constraints, optimize_fund
from fundmodel.pipeline import simulate_to_directory
from fundmodel.simulation import RunSettings, load_scenarios

ROOT = Path(__file__).resolve().parent.parent


def _shipped_scenarios(tmp_path_factory, scenarios: int):
    """The shipped assumptions and the scenario files of a run of ``scenarios`` (no attribution)."""
    a = load_assumptions(ROOT / "assumptions")
    out = tmp_path_factory.mktemp("run")
    simulate_to_directory(a, RunSettings.from_assumptions(a, scenarios=scenarios, workers=1, risk_attribution=False),
                          out)
    return a, load_scenarios(out / "simulation" / "scenarios")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    a, scenarios = _shipped_scenarios(tmp_path_factory, 2048)
    return a, build_fund_problem(a, scenarios)


def with_limits(a, **changes):
    portfolio = a.fund.portfolio.model_copy(update=changes)
    return a.__class__(**{**a.__dict__, "fund": a.fund.model_copy(update={"portfolio": portfolio})})


def test_every_limit_holds_in_the_optimum(setup):
    a, problem = setup
    result = optimize_fund(a, problem)
    A, b, names = fund_constraints(a, problem)
    slack = b - A @ result.x
    assert (slack > -1e-6 * np.maximum(1, np.abs(b))).all(), dict(zip(names, slack))
    caps = np.array([c.max_units for c in problem.columns])
    assert (result.x >= -1e-9).all() and (result.x <= caps + 1e-9).all(), "instrument caps"
    losses = -problem.values_meur @ result.x
    cvar = cvar_from_losses(losses, a.fund.portfolio.cvar_beta)
    assert cvar <= a.fund.portfolio.cvar_limit_meur + 1e-6, "CVaR limit"
    assert result.cvar == pytest.approx(cvar, abs=1e-6), "reported CVaR = CVaR of the sorted losses"
    assert result.expected_value == pytest.approx(float(problem.values_meur.mean(axis=0) @ result.x), rel=1e-9)


def test_conflicting_supply_target_is_named(setup):
    a, problem = setup
    huge = with_limits(a, min_supply_t_per_year={"ndpr": 1e7})
    with pytest.raises(InfeasibleProblem) as info:
        optimize_fund(huge, problem)
    assert "min supply ndpr" in str(info.value) and info.value.exit_code == 2


def test_more_budget_never_lowers_expected_pv(setup):
    a, problem = setup
    low = optimize_fund(with_limits(a, budget_meur=200.0), problem)
    high = optimize_fund(with_limits(a, budget_meur=400.0), problem)
    assert high.expected_value >= low.expected_value - 1e-6
    if "capital budget" in low.binding:
        gain = high.expected_value - low.expected_value
        assert gain <= low.shadow_prices["capital budget"] * 200.0 + 1e-6, "LP value is concave in the budget"


def test_cli_optimize_writes_outputs_and_reuses_the_simulation(tmp_path, capsys):
    from fundmodel.cli import main

    import shutil

    copy = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", copy)
    stress = copy / "stress.yaml"
    stress.write_text(stress.read_text().replace("stress_scenarios: 4096", "stress_scenarios: 256"))
    out = tmp_path / "out"
    args = ["optimize", "--assumptions", str(copy), "--scenarios", "512", "--workers", "1",
            "--out", str(out)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "new simulation" in first and "expected PV" in first
    assert "Stress scenarios" in first
    for name in ("allocation.csv", "frontier.csv", "metrics.json", "stress.csv"):
        assert (out / "portfolio" / name).is_file(), name
    import json

    # 512 scenarios <= optimization_scenarios: solved on all of them, no sample section
    assert "optimization_sample" not in json.loads((out / "portfolio" / "metrics.json").read_text())
    assert main(args) == 0
    assert "reused simulation" in capsys.readouterr().out


def test_cli_optimize_infeasible_exits_2_naming_the_limit(tmp_path, capsys):
    import shutil

    from fundmodel.cli import main

    copy = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", copy)
    fund = (copy / "fund.yaml").read_text().replace("min_supply_t_per_year: {}", "min_supply_t_per_year: {ndpr: 1.0e7}")
    (copy / "fund.yaml").write_text(fund)
    code = main(["optimize", "--assumptions", str(copy), "--scenarios", "512", "--workers", "1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "min supply ndpr" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "portfolio").exists(), "no partial results"


def test_max_supply_secures_more_weighted_tonnes_under_the_return_floor(setup):
    a, problem = setup
    pv = optimize_fund(a, problem)
    supply = optimize_fund(with_limits(a, objective="max_supply", return_floor_meur=0.0), problem)
    weights = sum(w * problem.tonnes_t.get(m, 0.0) for m, w in a.fund.portfolio.supply_weights.items())
    assert weights @ supply.x >= weights @ pv.x - 1e-6, "max_supply must secure at least as much weighted supply"
    assert problem.values_meur.mean(axis=0) @ supply.x >= -1e-6, "return floor: expected PV >= 0"
    assert pv.expected_value >= problem.values_meur.mean(axis=0) @ supply.x - 1e-6, "max_pv has the higher PV"


def test_apply_stress_changes_only_what_it_names(setup):
    from fundmodel.perturb import apply_stress

    a, _ = setup
    crash = apply_stress(a, a.stress.scenarios["base_metal_crash_40"])
    for mid, m in a.markets.materials.items():
        ratio = crash.markets.materials[mid].spot_usd_per_t / m.spot_usd_per_t
        assert ratio == pytest.approx(0.6 if mid in ("copper", "nickel", "cobalt") else 1.0), mid
        assert crash.markets.materials[mid].long_run_usd_per_t == m.long_run_usd_per_t
    mongolia = apply_stress(a, a.stress.scenarios["mongolia_resource_nationalism"])
    p = a.countries.countries["MN"].events.expropriation.annual_probability
    assert mongolia.countries.countries["MN"].events.expropriation.annual_probability == pytest.approx(1 - (1 - p) ** 5)
    assert mongolia.countries.countries["KZ"] == a.countries.countries["KZ"]
    ban = apply_stress(a, a.stress.scenarios["china_export_ban_2025"])
    assert ban.markets.export_restriction.forced_years == [1, 2]
    assert a.markets.export_restriction.forced_years == [], "the input assumptions are not changed"


def test_stress_pnl_of_a_portfolio(setup):
    import dataclasses

    from fundmodel.portfolio.stress import stress_test
    from fundmodel.simulation import RunSettings

    a, problem = setup
    result = optimize_fund(a, problem)
    small = dataclasses.replace(a, stress=a.stress.model_copy(update={"stress_scenarios": 512}))
    table = stress_test(small, RunSettings.from_assumptions(a, workers=1), problem.names, result.x).set_index("stress")
    assert table.loc["base", "change_meur"] == 0
    assert table.loc["base_metal_crash_40", "change_meur"] < 0 and table.loc["global_recession", "change_meur"] < 0
    changes = [c for c in table.columns if c.startswith("change_") and c != "change_meur"]
    np.testing.assert_allclose(table[changes].sum(axis=1), table["change_meur"], atol=1e-6,
                               err_msg="changes by instrument must add up to the total")


def _eu_available(a, scenarios) -> dict:
    """EU-available output per project and material, t/year over the supply window, from the scenario files."""
    window = a.instruments.supply_window_years
    return {(pid, m): float(np.asarray(scenarios[pid]["tonnes_eu_t"][k], float)[:, :window].mean())
            for pid, p in a.projects.items() for k, m in enumerate(p.products)}


@pytest.fixture(scope="module")
def supply_setup(tmp_path_factory):
    a, scenarios = _shipped_scenarios(tmp_path_factory, 1024)
    return a, build_fund_problem(a, scenarios), _eu_available(a, scenarios)


def _secured(problem, x) -> dict:
    out: dict = {}
    for k, c in enumerate(problem.columns):
        for m, t in problem.tonnes_t.items():
            if t[k] > 0 and abs(x[k]) > 0:
                out[(c.project, m)] = out.get((c.project, m), 0.0) + float(x[k] * t[k])
    return out


def test_supply_is_counted_once_in_every_solve_and_every_frontier_point(supply_setup):
    """All instruments on a project together never secure more than its EU-available output."""
    from fundmodel.pipeline.stages import _frontier_task
    from fundmodel.portfolio.fund import frontier_job

    a, problem, available = supply_setup
    supply = with_limits(a, objective="max_supply", return_floor_meur=-1e5)  # push every instrument to the cap
    solves = [optimize_fund(a, problem).x, optimize_fund(supply, problem).x]
    frontiers = _frontier_task(frontier_job(supply, problem, 6))
    solves += [x for f in frontiers.values() for x in f.x]
    binding = 0
    for x in solves:
        for key, tonnes in _secured(problem, x).items():
            assert tonnes <= available[key] * (1 + 1e-6) + 1e-6, (key, tonnes, available[key])
            binding += tonnes >= available[key] * (1 - 1e-6)
    assert binding > 0, "the cap must bind somewhere, else this test proves nothing"
    # without the cap the instruments would secure more than there is (equity + guarantee + floor)
    caps = np.array([c.max_units for c in problem.columns])
    uncapped = _secured(problem, caps)
    assert any(v > available[k] * 1.5 for k, v in uncapped.items())


def test_supply_table_reports_available_and_secured_tonnes_on_one_basis(supply_setup):
    from fundmodel.portfolio.fund import supply_table

    a, problem, available = supply_setup
    result = optimize_fund(with_limits(a, objective="max_supply", return_floor_meur=-1e5), problem)
    table = supply_table(problem, result)
    assert len(table) > 0
    secured = _secured(problem, result.x)
    for row in table.itertuples():
        assert row.eu_available_t_per_year == pytest.approx(available[(row.project, row.material)])
        assert row.secured_t_per_year == pytest.approx(secured.get((row.project, row.material), 0.0))
        assert row.secured_t_per_year <= row.eu_available_t_per_year * (1 + 1e-6)
        parts = row.by_equity_t_per_year + row.by_loan_guarantee_t_per_year + row.by_price_floor_t_per_year
        assert parts == pytest.approx(row.secured_t_per_year)
    held = {c.project for c, x in zip(problem.columns, result.x) if abs(x) > 1e-9}
    assert set(table.project) <= held


def test_concession_is_limited_never_maximised(supply_setup):
    a, problem, _ = supply_setup
    free = optimize_fund(a, problem)
    concession = problem.concession_meur @ free.x
    # the objective is the expected market value: the concession does not enter it
    from fundmodel.portfolio.fund import objective_values

    np.testing.assert_allclose(objective_values(a, problem), problem.values_meur.mean(axis=0))
    if concession > 1.0:
        tight = with_limits(a, concession_budget_meur=0.5 * float(concession))
        limited = optimize_fund(tight, problem)
        assert problem.concession_meur @ limited.x <= 0.5 * concession + 1e-6
        assert limited.expected_value <= free.expected_value + 1e-6
    # the concession per unit is the mean value at the policy rate minus the mean market value
    for k, c in enumerate(problem.columns):
        assert problem.concession_meur[k] == pytest.approx(c.policy_pv_meur - c.pv_meur.mean())
