"""The fund's allocation problem on a small simulation: limits hold, conflicts are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import slow_fixture

from fundmodel.cli import exit_code_for
from fundmodel.assumptions import load_assumptions
from fundmodel.portfolio import InfeasibleProblem
from fundmodel.portfolio.fund import build_fund_problem, optimize_fund
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


@slow_fixture(scope="module")
def setup(tmp_path_factory):
    a, scenarios = _shipped_scenarios(tmp_path_factory, 2048)
    return a, build_fund_problem(a, scenarios)


def with_limits(a, **changes):
    portfolio = a.fund.portfolio.model_copy(update=changes)
    return a.__class__(**{**a.__dict__, "fund": a.fund.model_copy(update={"portfolio": portfolio})})


#: Every field of ``fund.yaml: portfolio`` (:class:`~fundmodel.assumptions.schema.PortfolioSettings`),
#: sorted into the limits :func:`_limits_by_hand` recomputes and the settings that are not limits
#: on an allocation (objective and its weights, the CVaR level, the solve sample, the source).
#: A new field fails ``test_every_limit_holds_in_the_optimum`` until it is sorted in here.
PORTFOLIO_LIMITS = {"budget_meur", "contingent_limit_meur", "cvar_limit_meur", "return_floor_meur",
                    "max_country_share", "max_material_share", "min_supply_t_per_year", "concession_budget_meur",
                    "go_no_go", "min_ticket_meur", "min_ticket_by_project_meur", "max_projects", "max_prob_loss",
                    "prob_loss_threshold_meur"}
PORTFOLIO_SETTINGS = {"objective", "cvar_beta", "supply_weights", "blend_supply_value_meur_per_t",
                      "optimization_scenarios", "source"}


def _cvar_by_enumeration(losses: np.ndarray, beta: float) -> float:
    """CVaR of equally likely losses as the Rockafellar-Uryasev minimum, by brute force.

    Parameters
    ----------
    losses : ndarray of shape (n_scenarios,)
        Loss per scenario [EUR m, loss positive].
    beta : float
        Confidence level.

    Returns
    -------
    float
        ``min_alpha alpha + E[(L - alpha)^+] / (1 - beta)`` (Rockafellar & Uryasev 2002,
        Theorem 10). The function of ``alpha`` is convex and piecewise linear with its kinks at
        the sample losses, so its minimum is attained at one of them: it is evaluated at every
        loss and the smallest value taken. Independent of the sorted-tail formula of
        :func:`fundmodel.portfolio.cvar_from_losses` (no sorting, no fractional atom).
    """
    losses = np.asarray(losses, dtype=float)
    best = np.inf
    for chunk in np.array_split(losses, max(1, losses.size // 256)):
        excess = np.maximum(losses[None, :] - chunk[:, None], 0.0).mean(axis=1)
        best = min(best, float((chunk + excess / (1.0 - beta)).min()))
    return best


def _limits_by_hand(a, problem, x: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Every fund limit of ``fund.yaml: portfolio``, recomputed from the allocation alone.

    Nothing here calls :func:`fundmodel.portfolio.fund.fund_constraints` or reads the problem's
    aggregated per-unit arrays: each figure is summed from the instruments' own payoffs
    (``problem.columns``: per-scenario capital, the contingent exposure, per-scenario tonnes,
    the EU-available output, the PVs at market and policy rate), the project's host country and
    primary material (first product) come from the project assumptions, and every limit value
    from ``a.fund.portfolio``.

    Parameters
    ----------
    a : Assumptions
    problem : FundProblem
    x : ndarray of shape (n_columns,)
        Units of every column.

    Returns
    -------
    dict of str to (float, float, float)
        ``name -> (lhs, rhs, tol)``: the limit holds when ``lhs <= rhs + tol``; ``tol`` is
        1e-6 x the limit's size in ``fund.yaml`` (at least 1e-6 EUR m or t). Names are those the
        optimiser uses in ``binding`` and shadow prices.
    """
    limits = a.fund.portfolio
    cols = problem.columns
    x = np.asarray(x, dtype=float)

    def tol(size: float) -> float:
        return 1e-6 * max(1.0, abs(float(size)))

    capital = np.array([float(np.mean(c.capital_meur)) for c in cols])   # expected capital per unit
    contingent = np.array([float(c.contingent_meur) for c in cols])      # largest exposure per unit
    exposure = (capital + contingent) * x                                # EUR m held per column
    projects = [a.projects[c.project] for c in cols]
    out = {"capital budget": (float(capital @ x), limits.budget_meur, tol(limits.budget_meur)),
           "contingent limit": (float(contingent @ x), limits.contingent_limit_meur, tol(limits.contingent_limit_meur))}
    # concentration: the group's share of the fund's exposure (capital + contingent) at most the limit
    for label, group_of, share in (("country", lambda p: p.country, limits.max_country_share),
                                   ("material", lambda p: next(iter(p.products)), limits.max_material_share)):
        if share >= 1.0:
            continue  # a share of 1 limits nothing (every group is at most the whole)
        groups = [group_of(p) for p in projects]
        for g in sorted(set(groups)):
            held = sum(e for e, grp in zip(exposure, groups) if grp == g)
            out[f"{label} concentration {g}"] = (held, share * exposure.sum(), tol(share))
    # tonnes a year secured per material: per unit, the mean over the scenarios of each instrument's tonnes
    tonnes = [{m: float(np.mean(t)) for m, t in c.tonnes_t.items()} for c in cols]
    for material, minimum in limits.min_supply_t_per_year.items():
        secured = sum(size * t.get(material, 0.0) for size, t in zip(x, tonnes))
        out[f"min supply {material}"] = (minimum, secured, tol(minimum))
    # supply counted once: all instruments on a project together, at most its EU-available output
    for pid in dict.fromkeys(c.project for c in cols):
        ks = [k for k, c in enumerate(cols) if c.project == pid]
        for material in sorted({m for k in ks for m in tonnes[k] if tonnes[k][m] > 0}):
            available = cols[ks[0]].eu_available_t[material]
            secured = sum(x[k] * tonnes[k].get(material, 0.0) for k in ks)
            out[f"supply cap {pid} {material}"] = (secured, available, tol(available))
    if limits.concession_budget_meur is not None:  # value at the policy rate minus market value
        granted = sum(size * (c.policy_pv_meur - float(np.mean(c.pv_meur))) for size, c in zip(x, cols))
        out["concession budget"] = (granted, limits.concession_budget_meur, tol(limits.concession_budget_meur))
    if limits.objective in ("max_supply", "blend") and limits.return_floor_meur is not None:
        expected = sum(size * float(np.mean(c.pv_meur)) for size, c in zip(x, cols))
        out["return floor"] = (limits.return_floor_meur, expected, tol(limits.return_floor_meur))
    losses = -sum(size * np.asarray(c.pv_meur, dtype=float) for size, c in zip(x, cols))
    if limits.cvar_limit_meur is not None:
        out["cvar cap"] = (_cvar_by_enumeration(losses, limits.cvar_beta), limits.cvar_limit_meur, 1e-6)
    if limits.max_prob_loss is not None:  # imposed as CVaR_(1 - a)(L) <= t, which implies P(L > t) <= a
        t = limits.prob_loss_threshold_meur
        out["probability of loss"] = (_cvar_by_enumeration(losses, 1.0 - limits.max_prob_loss), t, tol(t))
        out["probability of loss (realised)"] = (float(np.mean(losses > t)), limits.max_prob_loss, 1e-12)
    if limits.go_no_go:  # a project is out (no exposure) or in with at least its ticket; at most max_projects in
        held = {pid: sum(e for e, c in zip(exposure, cols) if c.project == pid) for pid in dict.fromkeys(
            c.project for c in cols)}
        chosen = {pid: any(size > 1e-7 * max(c.max_units, 1e-12) for size, c in zip(x, cols) if c.project == pid)
                  for pid in held}
        for pid, e in held.items():
            ticket = limits.min_ticket_by_project_meur.get(pid, limits.min_ticket_meur)
            # in: at least the ticket; out: no exposure at all
            out[f"min ticket {pid}"] = (ticket, e, tol(ticket)) if chosen[pid] else (e, 0.0, tol(ticket))
        if limits.max_projects is not None:
            out["max projects"] = (float(sum(chosen.values())), float(limits.max_projects), 0.0)
    return out


@pytest.mark.slow
def test_every_limit_holds_in_the_optimum(setup):
    """Each limit of ``fund.yaml: portfolio`` recomputed by hand from the optimum (not from the
    constraint rows the optimiser was given), the CVaR by brute-force Rockafellar-Uryasev."""
    a, problem = setup
    limits = a.fund.portfolio
    fields = set(type(limits).model_fields)
    assert fields == PORTFOLIO_LIMITS | PORTFOLIO_SETTINGS, (
        f"fund.yaml portfolio fields not sorted into limits or settings here: {fields ^ (PORTFOLIO_LIMITS | PORTFOLIO_SETTINGS)}")
    result = optimize_fund(a, problem)
    by_hand = _limits_by_hand(a, problem, result.x)
    slack = {name: rhs - lhs for name, (lhs, rhs, _) in by_hand.items()}
    broken = {name: slack[name] for name, (_, _, t) in by_hand.items() if slack[name] < -t}
    assert not broken, f"limits broken (slack by hand, EUR m or t): {broken}"
    caps = np.array([c.max_units for c in problem.columns])
    assert (result.x >= -1e-9).all() and (result.x <= caps + 1e-9).all(), "instrument caps"
    # the limits the optimiser reports binding are at their value by hand; some bind (else this proves little)
    unknown = set(result.binding) - set(by_hand)
    assert not unknown, f"binding limits the hand recomputation does not know: {unknown}"
    assert all(abs(slack[name]) <= by_hand[name][2] for name in result.binding), {n: slack[n] for n in result.binding}
    assert any(abs(slack[name]) <= t for name, (_, _, t) in by_hand.items()), "no limit binds: the test has no power"
    losses = -sum(size * np.asarray(c.pv_meur, dtype=float) for size, c in zip(result.x, problem.columns))
    cvar = _cvar_by_enumeration(losses, limits.cvar_beta)
    assert cvar <= limits.cvar_limit_meur + 1e-6, "CVaR limit"
    np.testing.assert_allclose(result.losses, losses, rtol=1e-12, atol=1e-9, err_msg="the fund's loss per scenario")
    assert result.cvar == pytest.approx(cvar, abs=1e-6), "reported CVaR = Rockafellar-Uryasev minimum by enumeration"
    expected = sum(size * float(np.mean(c.pv_meur)) for size, c in zip(result.x, problem.columns))
    assert result.expected_value == pytest.approx(expected, rel=1e-9)


@pytest.mark.slow
def test_conflicting_supply_target_is_named(setup):
    a, problem = setup
    huge = with_limits(a, min_supply_t_per_year={"ndpr": 1e7})
    with pytest.raises(InfeasibleProblem) as info:
        optimize_fund(huge, problem)
    assert "min supply ndpr" in str(info.value) and exit_code_for(info.value) == 2


def test_more_budget_never_lowers_expected_pv(setup):
    a, problem = setup
    low = optimize_fund(with_limits(a, budget_meur=200.0), problem)
    high = optimize_fund(with_limits(a, budget_meur=400.0), problem)
    assert high.expected_value >= low.expected_value - 1e-6
    if "capital budget" in low.binding:
        gain = high.expected_value - low.expected_value
        assert gain <= low.shadow_prices["capital budget"] * 200.0 + 1e-6, "LP value is concave in the budget"


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
    return {(pid, m): float(np.asarray(scenarios.projects[pid].tonnes_eu_t[k], float)[:, :window].mean())
            for pid, p in a.projects.items() for k, m in enumerate(p.products)}


@slow_fixture(scope="module")
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


@pytest.mark.slow
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
    from fundmodel.portfolio.report import supply_table

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
