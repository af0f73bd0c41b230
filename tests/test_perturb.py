"""The shared assumption transforms (``fundmodel.perturb``): one rule for the tornado and the stresses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.assumptions.schema import StressScenario
from fundmodel.perturb import (
    MAX_ANNUAL_PROBABILITY,
    apply_stress,
    scale_political_hazards,
    scale_prices,
    scaled_annual_probability,
)
from fundmodel.sensitivity import DRIVERS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def a():
    return load_assumptions(ROOT / "assumptions")


@pytest.mark.parametrize("p", [0.001, 0.0116, 0.05, 0.3])
@pytest.mark.parametrize("m", [0.5, 2.0, 5.0])
def test_hazard_multiplier_scales_the_poisson_intensity(p, m):
    # a Bernoulli hazard p per year is a Poisson intensity -ln(1 - p); m multiplies the intensity
    assert -math.log(1.0 - scaled_annual_probability(p, m)) == pytest.approx(-m * math.log(1.0 - p), rel=1e-12)


def test_hazard_multiplier_is_capped():
    assert scaled_annual_probability(0.99, 10.0) == MAX_ANNUAL_PROBABILITY


def test_stress_hazards_and_tornado_hazards_are_the_same_rule(a):
    every = {cid: 2.0 for cid in a.countries.countries}
    stress = StressScenario(description="all hazards doubled", hazard_multipliers=every)
    assert apply_stress(a, stress).countries == DRIVERS["political"].perturb(a, 2.0).countries


def test_country_hazards_change_only_the_named_country(a):
    out = scale_political_hazards(a, {"MN": 3.0})
    for cid, c in a.countries.countries.items():
        if cid == "MN":
            p = c.events.expropriation.annual_probability
            assert out.countries.countries[cid].events.expropriation.annual_probability == pytest.approx(1 - (1 - p) ** 3)
        else:
            assert out.countries.countries[cid] == c
    with pytest.raises(KeyError, match="no such country: XX"):
        scale_political_hazards(a, {"XX": 2.0})


def test_price_multipliers_compose(a):
    out = scale_prices(a, 1.2, spot={"copper": 0.5}, long_run={"nickel": 2.0})
    for mid, m in a.markets.materials.items():
        assert out.markets.materials[mid].spot_usd_per_t == pytest.approx(
            m.spot_usd_per_t * 1.2 * (0.5 if mid == "copper" else 1.0))
        assert out.markets.materials[mid].long_run_usd_per_t == pytest.approx(
            m.long_run_usd_per_t * 1.2 * (2.0 if mid == "nickel" else 1.0))
    assert a.markets.materials["copper"].spot_usd_per_t != out.markets.materials["copper"].spot_usd_per_t
