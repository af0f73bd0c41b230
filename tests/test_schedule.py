"""Schedule and capex-overrun risk against closed forms, scipy and simulation."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats

from fundmodel.assumptions import load_assumptions
from fundmodel.assumptions.schema import SamplingMethod, Stage, Triangular
from fundmodel.sampling import ScenarioStreams
from fundmodel.schedule import SCHEDULE_DRAWS, draw_schedule, overrun_parameters, triangular_ppf

N = 2**16
METHODS = list(SamplingMethod)


@pytest.fixture(scope="module")
def assumptions(shipped_assumptions_dir):
    return load_assumptions(shipped_assumptions_dir)


def _upper_normal_tail(x: float) -> float:
    """1 - Phi(x) written out (independent of scipy)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _uniforms(method: SamplingMethod, n: int = N, seed: int = 4242) -> np.ndarray:
    return ScenarioStreams(seed, method).uniforms("schedule/test", 0, n, len(SCHEDULE_DRAWS))


def _with(project, **sections):
    """Copy of a frozen project with fields of its sections replaced: _with(p, capex={"overrun_mean": 0.2})."""
    update = {name: getattr(project, name).model_copy(update=fields) for name, fields in sections.items()}
    return project.model_copy(update=update)


# --------------------------------------------------------------------------- overrun distribution
OVERRUN_CASES = [
    (0.14, 1 / 13, -0.4),  # defaults of the schema
    (0.30, 0.12, -0.5),  # mn_copper
    (0.05, 0.01, -0.2),
    (0.50, 0.15, -0.6),
    (0.0, 0.001, -0.3),
]


@pytest.mark.parametrize("mean, p, shift", OVERRUN_CASES)
def test_overrun_parameters_reproduce_mean_and_tail_in_closed_form(mean, p, shift):
    mu, sigma = overrun_parameters(mean, p, shift)
    assert sigma > 0, f"sigma = {sigma} must be positive"
    got_mean = shift + math.exp(mu + sigma**2 / 2)
    got_p = _upper_normal_tail((math.log(1 - shift) - mu) / sigma)
    assert got_mean == pytest.approx(mean, abs=1e-12), f"E[R] = shift + exp(mu + s^2/2) = {got_mean}, asked {mean}"
    assert got_p == pytest.approx(p, rel=1e-9), f"P(R >= 1) = {got_p}, asked {p}"
    # the smaller root of s^2/2 - z s + c = 0 is documented: it is below z = Phi^-1(1 - p)
    z = stats.norm.isf(p)
    c = math.log((1 - shift) / (mean - shift))
    other = z + math.sqrt(z * z - 2 * c)
    assert sigma < other, f"returned sigma {sigma} is not the smaller root (other root {other})"


@pytest.mark.parametrize("mean, p, shift", OVERRUN_CASES[:3])
def test_overrun_parameters_reproduce_mean_and_tail_by_simulation(mean, p, shift):
    mu, sigma = overrun_parameters(mean, p, shift)
    z = np.random.default_rng(7).standard_normal(2**18)
    r = shift + np.exp(mu + sigma * z)
    n = r.size
    sd = math.sqrt((math.exp(sigma**2) - 1) * math.exp(2 * mu + sigma**2))
    assert abs(r.mean() - mean) < 4 * sd / math.sqrt(n), (
        f"simulated mean overrun {r.mean():.5f} differs from {mean} by more than 4 SE ({4 * sd / math.sqrt(n):.5f})"
    )
    se_p = math.sqrt(p * (1 - p) / n)
    assert abs((r >= 1).mean() - p) < 4 * se_p, f"simulated P(R >= 1) {(r >= 1).mean():.5f} vs {p} (4 SE {4 * se_p:.5f})"
    assert r.min() > shift, "overrun ratio must stay above the shift"


def test_overrun_parameters_default_sigma_by_hand():
    """sigma for the schema defaults, computed by hand: c = ln(1.4/0.54), z = Phi^-1(12/13), sigma = z - sqrt(z^2 - 2c)."""
    c = math.log(1.4 / 0.54)
    z = stats.norm.isf(1 / 13)
    expected = z - math.sqrt(z * z - 2 * c)  # 1.06778
    _, sigma = overrun_parameters(0.14, 1 / 13, -0.4)
    assert sigma == pytest.approx(expected, rel=1e-12), f"sigma for (0.14, 1/13, -0.4) is {sigma}, by hand {expected}"


@pytest.mark.parametrize("mean, p, shift", [(0.14, 0.30, -0.4), (0.30, 0.25, -0.5), (0.05, 0.05, -0.2)])
def test_overrun_parameters_impossible_combination_reports_largest_probability(mean, p, shift):
    c = math.log((1 - shift) / (mean - shift))
    p_max = _upper_normal_tail(math.sqrt(2 * c))  # independent: disc = z^2 - 2c >= 0  <=>  p <= 1 - Phi(sqrt(2c))
    assert p > p_max, "test case must be infeasible"
    with pytest.raises(ValueError) as info:
        overrun_parameters(mean, p, shift)
    found = re.search(r"largest attainable is ([0-9.]+)", str(info.value))
    assert found, f"error message does not state the largest attainable probability: {info.value}"
    assert float(found.group(1)) == pytest.approx(p_max, abs=5e-5), (
        f"message says the largest attainable P(R >= 1) is {found.group(1)}, closed form 1 - Phi(sqrt(2c)) = {p_max:.5f}"
    )
    # p_max really is the boundary: just below it works and hits the target
    mu, sigma = overrun_parameters(mean, p_max * (1 - 1e-6), shift)
    assert _upper_normal_tail((math.log(1 - shift) - mu) / sigma) == pytest.approx(p_max, rel=1e-4)


def test_overrun_parameters_mean_below_shift_raises():
    with pytest.raises(ValueError, match="must exceed overrun_shift"):
        overrun_parameters(-0.5, 0.1, -0.4)


def test_overrun_parameters_high_mean_with_attainable_tail():
    mean, p, shift = 1.5, 0.2, -0.4
    mu, sigma = overrun_parameters(mean, p, shift)
    assert shift + math.exp(mu + sigma**2 / 2) == pytest.approx(mean, rel=1e-9)
    assert _upper_normal_tail((math.log(1 - shift) - mu) / sigma) == pytest.approx(p, rel=1e-6)


def test_overrun_parameters_tail_above_half_is_rejected_or_exact():
    mean, p, shift = 0.9, 0.9, -0.4
    try:
        mu, sigma = overrun_parameters(mean, p, shift)
    except ValueError:
        return
    assert sigma > 0, f"sigma = {sigma} < 0"
    assert _upper_normal_tail((math.log(1 - shift) - mu) / sigma) == pytest.approx(p, rel=1e-6)


# --------------------------------------------------------------------------- triangular
@pytest.mark.parametrize("a, c, b", [(2, 2.5, 4), (0.5, 1.5, 4), (1, 1, 3), (1, 3, 3), (0, 0.1, 10)])
def test_triangular_ppf_equals_scipy(a, c, b):
    u = np.random.default_rng(3).random(10_000)
    u = np.concatenate([u, [1e-12, 0.5, 1 - 1e-12]])
    got = triangular_ppf(u, Triangular(min=a, mode=c, max=b))
    expected = stats.triang.ppf(u, (c - a) / (b - a), loc=a, scale=b - a)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12,
                               err_msg=f"triangular_ppf differs from scipy.stats.triang.ppf for ({a}, {c}, {b})")


def test_triangular_ppf_degenerate():
    u = np.linspace(0.01, 0.99, 50)
    got = triangular_ppf(u, Triangular(min=2, mode=2, max=2))
    assert (got == 2).all(), "min = mode = max = 2 must give 2 for every draw"


# --------------------------------------------------------------------------- draw_schedule
def _spearman_expected(rho: float) -> float:
    return 6 / math.pi * math.asin(rho / 2)


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_draw_schedule_durations_within_bounds_and_mode_when_risk_off(assumptions, method):
    project = assumptions.projects["au_nickel"]  # exploration stage: every phase present
    country = assumptions.countries.countries[project.country]
    sched = project.schedule
    perm = sched.permitting_years or country.permitting_years
    u = _uniforms(method)
    d = draw_schedule(project, country.permitting_years, u)
    exploration_plus_perm = d.studies_end
    construction = d.construction_end - d.construction_start
    lo = sched.exploration_years.min + perm.min
    hi = sched.exploration_years.max + perm.max
    assert (exploration_plus_perm >= lo - 1e-12).all() and (exploration_plus_perm <= hi + 1e-12).all(), (
        f"studies_end outside [{lo}, {hi}]"
    )
    c = sched.construction_years
    assert (construction >= c.min).all() and (construction <= c.max).all(), f"construction outside [{c.min}, {c.max}]"
    r = sched.rampup_years
    assert (d.rampup_years >= r.min).all() and (d.rampup_years <= r.max).all(), "ramp-up outside its triangle"
    # the construction duration is exactly the triangular inverse CDF of its column
    np.testing.assert_allclose(construction, triangular_ppf(u[:, SCHEDULE_DRAWS.index("construction")], c), rtol=1e-12,
                               err_msg="construction duration no longer triangular_ppf of the 'construction' column")
    # mean of a triangular is (a + b + c)/3
    mean_c = (c.min + c.mode + c.max) / 3
    sd_c = math.sqrt((c.min**2 + c.mode**2 + c.max**2 - c.min * c.mode - c.min * c.max - c.mode * c.max) / 18)
    assert abs(construction.mean() - mean_c) < 4 * sd_c / math.sqrt(N), (
        f"{method.value}: mean construction {construction.mean():.4f} vs triangular mean {mean_c:.4f}"
    )

    off = draw_schedule(project, country.permitting_years, u, risk_on=False)
    assert (off.studies_end == sched.exploration_years.mode + perm.mode).all(), "risk off: studies not at mode"
    assert (off.construction_end - off.construction_start == c.mode).all(), "risk off: construction not at its mode"
    assert (off.rampup_years == r.mode).all(), "risk off: ramp-up not at its mode"
    assert (off.capex_multiplier == 1).all() and (off.opex_multiplier == 1).all(), "risk off: cost multipliers not 1"
    assert (off.recovery_shift == 0).all() and off.developed.all(), "risk off: recovery shift 0 and development certain"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_draw_schedule_overrun_mean_and_tail(assumptions, method):
    project = assumptions.projects["mn_copper"]
    country = assumptions.countries.countries[project.country]
    capex = project.capex
    d = draw_schedule(project, country.permitting_years, _uniforms(method))
    r = d.capex_multiplier - 1
    mu, sigma = overrun_parameters(capex.overrun_mean, capex.overrun_prob_ge_100pct, capex.overrun_shift)
    sd = math.sqrt((math.exp(sigma**2) - 1) * math.exp(2 * mu + sigma**2))
    assert abs(r.mean() - capex.overrun_mean) < 4 * sd / math.sqrt(N), (
        f"{method.value}: simulated mean overrun {r.mean():.4f} vs overrun_mean {capex.overrun_mean} "
        f"(4 SE {4 * sd / math.sqrt(N):.4f})"
    )
    p = capex.overrun_prob_ge_100pct
    se = math.sqrt(p * (1 - p) / N)
    assert abs((r >= 1).mean() - p) < 4 * se, f"{method.value}: P(R >= 1) {(r >= 1).mean():.4f} vs {p} (4 SE {4 * se:.4f})"
    assert r.min() > capex.overrun_shift, "overrun below its shift"


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.0, -0.4])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_draw_schedule_spearman_duration_overrun_is_gaussian_copula_value(assumptions, method, rho):
    project = _with(assumptions.projects["mn_copper"], capex={"overrun_delay_correlation": rho})
    country = assumptions.countries.countries[project.country]
    d = draw_schedule(project, country.permitting_years, _uniforms(method))
    duration = d.construction_end - d.construction_start
    got = stats.spearmanr(duration, d.capex_multiplier).statistic
    expected = _spearman_expected(rho)
    bound = 4 / math.sqrt(N)
    assert abs(got - expected) < bound, (
        f"{method.value}, rho={rho}: Spearman(construction duration, overrun) = {got:.4f}, Gaussian copula gives "
        f"(6/pi) asin(rho/2) = {expected:.4f} (4/sqrt(N) = {bound:.4f})"
    )


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_opex_and_recovery_distributions(assumptions, method):
    project = assumptions.projects["mn_copper"]
    ops = project.operations
    d = draw_schedule(project, assumptions.countries.countries["MN"].permitting_years, _uniforms(method))
    log_opex = np.log(d.opex_multiplier)
    s = ops.opex_uncertainty_sigma
    assert abs(np.median(d.opex_multiplier) - 1) < 4 * 1.2533 * s / math.sqrt(N), "opex multiplier median is not 1"
    assert abs(log_opex.mean()) < 4 * s / math.sqrt(N), f"mean log opex multiplier {log_opex.mean():.5f} != 0"
    assert abs(log_opex.std() / s - 1) < 4 / math.sqrt(2 * N), f"sd of log opex {log_opex.std():.5f} != {s}"
    sd = ops.recovery_uncertainty_sd
    assert abs(d.recovery_shift.std() / sd - 1) < 4 / math.sqrt(2 * N), f"recovery shift sd {d.recovery_shift.std()} != {sd}"


@pytest.mark.parametrize("risk_on", [True, False])
def test_production_stage_has_no_schedule_and_no_overrun(assumptions, risk_on):
    project = assumptions.projects["cd_cobalt"]
    assert project.stage is Stage.PRODUCTION
    d = draw_schedule(project, assumptions.countries.countries[project.country].permitting_years,
                      _uniforms(SamplingMethod.PSEUDO, 4096), risk_on=risk_on)
    for name in ("studies_end", "construction_start", "construction_end", "rampup_years"):
        assert (getattr(d, name) == 0).all(), f"production stage: {name} must be 0"
    assert (d.capex_multiplier == 1).all(), "production stage: capex multiplier must be 1 (nothing left to build)"


def test_stage_rules_for_construction_and_feasibility(assumptions):
    u = _uniforms(SamplingMethod.PSEUDO, 4096)
    # construction stage: no studies or permitting, construction starts at t = 0
    con = assumptions.projects["mn_copper"]
    d = draw_schedule(con, assumptions.countries.countries["MN"].permitting_years, u)
    assert (d.studies_end == 0).all() and (d.construction_start == 0).all(), "construction stage starts building at t=0"
    assert (d.construction_end > 0).all()
    # feasibility stage without its own permitting triangle: the country's default, no exploration
    feas = assumptions.projects["mn_ree"]
    assert feas.stage is Stage.FEASIBILITY and feas.schedule.permitting_years is None
    default = Triangular(min=1.0, mode=2.0, max=3.0)
    off = draw_schedule(feas, default, u, risk_on=False)
    assert (off.studies_end == 2.0).all(), "feasibility stage should permit for the country default's mode, no exploration"
    on = draw_schedule(feas, default, u)
    np.testing.assert_allclose(on.studies_end, triangular_ppf(u[:, SCHEDULE_DRAWS.index("permitting")], default),
                               err_msg="feasibility studies_end no longer the permitting draw alone")
    # a project's own permitting triangle overrides the country default
    own = assumptions.projects["kz_gallium"]
    assert own.schedule.permitting_years is not None
    off = draw_schedule(own, default, u, risk_on=False)
    assert (off.studies_end == own.schedule.permitting_years.mode).all(), "project permitting override ignored"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_development_probability_share(assumptions, method):
    project = assumptions.projects["au_nickel"]
    q = project.schedule.development_probability
    d = draw_schedule(project, assumptions.countries.countries[project.country].permitting_years, _uniforms(method))
    se = math.sqrt(q * (1 - q) / N)
    assert abs(d.developed.mean() - q) < 4 * se, (
        f"{method.value}: share developed {d.developed.mean():.4f} vs development_probability {q} (4 SE {4 * se:.4f})"
    )
