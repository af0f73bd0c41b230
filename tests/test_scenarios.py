"""The scenario contract (``fundmodel.scenarios.ScenarioSet``) between the simulation and its readers."""

from __future__ import annotations

import numpy as np
import pytest

from fundmodel.scenarios import MarketScenarios, ProjectScenarios, ScenarioFileError, ScenarioSet

N, YEARS = 5, 4


def _set(n=N, years=YEARS, products=2) -> ScenarioSet:
    rng = np.random.default_rng(0)
    market = MarketScenarios(price_usd_per_t=rng.random((3, n, years)), fx_usd_per_eur=rng.random((n, years)) + 1,
                             export_restriction=rng.random((n, years)) > 0.5)
    yearly = {name: rng.random((n, years)) for name in ("equity_cf_meur", "lender_cf_meur", "debt_outstanding_musd",
                                                          "lender_loss_musd", "insurable_loss_musd")}
    project = ProjectScenarios(**yearly, tonnes_eu_t=rng.random((products, n, years)),
                               political_events=rng.integers(0, 8, (n, years), dtype=np.uint8),
                               results={"default_year": np.arange(n)})
    return ScenarioSet(market, {"p1": project})


def test_save_then_load_gives_the_same_arrays(tmp_path):
    s = _set()
    s.save(tmp_path)
    back = ScenarioSet.load(tmp_path)
    assert [rel for rel, _ in back.arrays()] == [rel for rel, _ in s.arrays()]
    for (rel, a), (_, b) in zip(s.arrays(), back.arrays()):
        np.testing.assert_array_equal(a, b, err_msg=rel)
    assert back.n_scenarios == N and back.n_years == YEARS


def test_a_missing_array_is_named(tmp_path):
    _set().save(tmp_path)
    (tmp_path / "p1" / "lender_loss_musd.npy").unlink()
    with pytest.raises(ScenarioFileError, match=r"p1/lender_loss_musd.npy: missing"):
        ScenarioSet.load(tmp_path)


def test_arrays_that_do_not_fit_together_are_refused(tmp_path):
    _set().save(tmp_path)
    np.save(tmp_path / "p1" / "insurable_loss_musd.npy", np.zeros((N + 1, YEARS)))
    with pytest.raises(ScenarioFileError, match=r"insurable_loss_musd: shape \(6, 4\), expected \(5, 4\)"):
        ScenarioSet.load(tmp_path)
    with pytest.raises(ScenarioFileError, match="the market has 5 x 4"):
        other = _set(n=N + 1)
        ScenarioSet(_set().market, dict(other.projects))
    with pytest.raises(ScenarioFileError, match="one value per scenario"):
        ProjectScenarios(**{f: getattr(_set().projects["p1"], f) for f in (
            "equity_cf_meur", "lender_cf_meur", "debt_outstanding_musd", "lender_loss_musd", "insurable_loss_musd",
            "tonnes_eu_t", "political_events")}, results={"x": np.zeros(N + 1)})


def test_head_is_the_first_scenarios_of_every_array():
    s, h = _set(), _set().head(2)
    for (rel, a), (_, b) in zip(s.arrays(), h.arrays()):
        want = a[:, :2] if (rel.endswith("price_usd_per_t") or rel.endswith("tonnes_eu_t")) else a[:2]
        np.testing.assert_array_equal(b, want, err_msg=rel)


def test_with_results_adds_and_keeps():
    s = _set().with_results({"p1": {"first_production_year": np.full(N, 3)}})
    assert set(s.projects["p1"].results) == {"default_year", "first_production_year"}
    assert s.projects["p1"].result("missing") is None
