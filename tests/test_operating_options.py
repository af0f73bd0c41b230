"""Real options of the projects (fundmodel.operating_options): FID timing, care and maintenance, abandonment."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from conftest import copy_assumptions, slow_fixture
from fundmodel.assumptions import load_assumptions
from fundmodel.errors import FundmodelError
from fundmodel.results import option_statistics
from fundmodel.precision import Replicates
from fundmodel.simulation import RunSettings, simulate

SUBSET = ["cl_lithium", "cd_cobalt", "br_ree"]  # feasibility (FID), production, construction


def _run(a, n=1024, chunk=1024):
    s = RunSettings.from_assumptions(a, scenarios=n, seed=7, chunk_size=chunk, workers=1, risk_attribution=False)
    return simulate(a, s)


@pytest.fixture(scope="module")
def subset(tmp_path_factory):
    return load_assumptions(copy_assumptions(tmp_path_factory.mktemp("opt") / "assumptions", SUBSET))


@slow_fixture(scope="module")
def run(subset):
    return _run(subset)


@pytest.mark.slow
def test_option_value_not_negative_and_probabilities_consistent(subset, run):
    for pid in SUBSET:
        s = run.scalars[pid]
        st = option_statistics(s, Replicates(s["project_npv_meur"].size, run.settings.sampling))
        assert st["npv_committed_mean_meur"] == pytest.approx(float(s["project_npv_market_meur"].mean()))
        assert st["option_value_meur"] >= -2 * st["option_value_se_meur"], pid
        for name in ("prob_development", "prob_temporary_closure", "prob_abandonment"):
            assert 0.0 <= st[name] <= 1.0
        # a temporary closure or an abandonment needs a mine: they imply development, per scenario
        assert not (s["option_closed"] & ~s["option_developed"]).any(), pid
        assert not (s["option_abandoned"] & ~s["option_developed"]).any(), pid
        # the committed columns keep their meaning
        assert np.isfinite(s["npv_options_market_meur"]).all()


@pytest.mark.slow
def test_every_shipped_project_option_value_not_negative(shipped_assumptions_dir):
    a = load_assumptions(shipped_assumptions_dir)
    r = _run(a, n=512, chunk=512)
    for pid in a.projects:
        s = r.scalars[pid]
        st = option_statistics(s, Replicates(512, r.settings.sampling))
        assert st["option_value_meur"] >= -2 * st["option_value_se_meur"], (pid, st)
        assert not (s["option_closed"] & ~s["option_developed"]).any(), pid


def test_independent_of_chunk_size(subset, run):
    other = _run(subset, n=1024, chunk=512)
    for pid in SUBSET:
        for name in ("npv_options_market_meur", "option_value_fid_meur", "option_value_operating_meur",
                     "option_developed", "option_closed", "option_abandoned"):
            np.testing.assert_array_equal(run.scalars[pid][name], other.scalars[pid][name], err_msg=f"{pid} {name}")


def test_independent_of_scenario_count(subset, run):
    fewer = _run(subset, n=512, chunk=512)
    for pid in SUBSET:
        np.testing.assert_array_equal(run.scalars[pid]["npv_options_market_meur"][:512],
                                      fewer.scalars[pid]["npv_options_market_meur"])


@pytest.mark.slow
def test_no_option_in_the_money_gives_zero(tmp_path):
    """No operating cost (every operating year pays), prohibitive switching costs, no deferral of the
    investment: no option is ever in the money and the value with options is the committed value, exactly."""

    def edit(p):
        p["operations"].update(opex_usd_per_t_ore=0.0, fixed_opex_musd_per_year=0.0)
        p["capex"]["sustaining_musd_per_year"] = 0.0
        p["options"] = {"closing_cost_musd": 1e5, "reopening_cost_musd": 1e5, "licence_years": 0}

    a = load_assumptions(copy_assumptions(tmp_path / "assumptions", ["cd_cobalt", "cl_lithium"],
                                          {"projects/cd_cobalt.yaml": edit, "projects/cl_lithium.yaml": edit}))
    r = _run(a, n=512, chunk=512)
    for pid in ("cd_cobalt", "cl_lithium"):
        s = r.scalars[pid]
        assert not s["option_closed"].any(), pid
        np.testing.assert_array_equal(s["option_value_fid_meur"], 0.0)
        # abandonment is never worth it here; the fitted policy may still err on a path or two (a
        # low-biased out-of-sample estimate): zero within Monte Carlo error, and tiny
        gain = s["npv_options_market_meur"] - s["project_npv_market_meur"]
        st = option_statistics(s, Replicates(gain.size, r.settings.sampling))
        assert abs(st["option_value_meur"]) <= 2 * st["option_value_se_meur"] + 1e-9, pid
        assert abs(st["option_value_meur"]) < 1e-3 * abs(st["npv_committed_mean_meur"]), pid
        assert s["option_abandoned"].mean() < 0.01, pid


@pytest.mark.slow
def test_options_off(tmp_path):
    a = load_assumptions(copy_assumptions(tmp_path / "assumptions", ["cd_cobalt"],
                                          {"fund.yaml": lambda f: f["simulation"].update(operating_options=False)}))
    r = _run(a, n=256, chunk=256)
    s = r.scalars["cd_cobalt"]
    assert np.isnan(s["npv_options_market_meur"]).all()
    st = option_statistics(s, Replicates(256, r.settings.sampling))
    assert st.pop("npv_committed_mean_meur") == pytest.approx(float(s["project_npv_market_meur"].mean()))
    assert all(v is None for v in st.values())


def test_bad_switch_is_a_clear_error(tmp_path):
    a_dir = copy_assumptions(tmp_path / "assumptions", ["cd_cobalt"],
                             {"fund.yaml": lambda f: f["simulation"].update(operating_options="maybe")})
    with pytest.raises((FundmodelError, ValidationError, ValueError)) as err:
        load_assumptions(a_dir)
    text = str(err.value)
    assert "fund.yaml" in text and "operating_options" in text and "maybe" in text
