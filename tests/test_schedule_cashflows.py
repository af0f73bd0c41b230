"""The cash-flow engine sees the schedule's nameplate shortfall (ScheduleDraws.nameplate_share)."""

from __future__ import annotations

import numpy as np
import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.market import MarketPaths
from fundmodel.political import no_political_events
from fundmodel.schedule import ScheduleDraws
from fundmodel.valuation import project_cash_flows

N_YEARS = 40


def _market(project, n: int) -> MarketPaths:
    k = len(project.materials)
    return MarketPaths(materials=list(project.materials), price_usd_per_t=np.full((k, n, N_YEARS), 9000.0),
                       real_price_ratio=np.ones((k, n, N_YEARS)), fx_usd_per_eur=np.full((n, N_YEARS), 1.1),
                       export_restriction=np.zeros((n, N_YEARS), dtype=bool))


def _draws(n: int, share: np.ndarray | None) -> ScheduleDraws:
    z = np.zeros(n)
    return ScheduleDraws(developed=np.ones(n, dtype=bool), studies_end=z, construction_start=z,
                         construction_end=z, rampup_years=z, capex_multiplier=np.ones(n),
                         opex_multiplier=np.ones(n), recovery_shift=z, nameplate_share=share)


def test_plateau_below_nameplate_scales_throughput_and_stretches_the_reserve(shipped_assumptions_dir):
    a = load_assumptions(shipped_assumptions_dir)
    project = a.projects["cd_cobalt"]  # producing: at nameplate from t = 0 unless the share says otherwise
    country = a.countries.countries[project.country]
    share = np.array([1.0, 0.8, 0.5])
    n = share.size
    politics = no_political_events(country, n, N_YEARS)
    flows = project_cash_flows(project, 0.0, _market(project, n), _draws(n, share), politics)
    default = project_cash_flows(project, 0.0, _market(project, n), _draws(n, None), politics)
    t = flows.tonnes_produced_t[0]  # primary material, (n, years)
    np.testing.assert_allclose(t[:, 0] / t[0, 0], share, rtol=1e-12,
                               err_msg="first-year tonnes must scale with the nameplate share")
    np.testing.assert_allclose(default.tonnes_produced_t, flows.tonnes_produced_t[:, :1].repeat(n, axis=1),
                               rtol=1e-12, err_msg="no nameplate_share must mean nameplate (share 1)")
    reserve_years = project.operations.mine_life_years
    if reserve_years / 0.5 < N_YEARS:  # the reserve is mined out within the horizon at every share
        assert t.sum(axis=1) == pytest.approx(np.full(n, t[0].sum()), rel=1e-9), "same reserve, mined more slowly"
    assert (flows.first_production_year == 0).all()
