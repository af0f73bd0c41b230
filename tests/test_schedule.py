"""Schedule and capex-overrun risk against the published evidence, closed forms, scipy and simulation.

Targets are those of ``fund.yaml: schedule_evidence`` (docs/schedule.md). Monte Carlo checks use
2^16 seeded scenarios and a tolerance of 4 standard errors of the statistic (stated in each test),
so a correct model fails a check with probability < 1e-4; Latin hypercube and Sobol' draws have
smaller errors than pseudo-random ones, so the pseudo-random standard error is a safe bound.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import integrate, stats

from fundmodel.assumptions import load_assumptions
from fundmodel.assumptions.schema import OverrunEvidence, SamplingMethod, ScheduleEvidence, Stage, Triangular
from fundmodel.sampling import ScenarioStreams
from fundmodel.schedule import (DEFAULT_EVIDENCE, SCHEDULE_DRAWS, ScheduleParameterError, delay_law, draw_schedule,
                                lead_time_years, overrun_law, resolve_project, schedule_parameters, size_class)

N = 2**16
METHODS = list(SamplingMethod)
COL = {name: i for i, name in enumerate(SCHEDULE_DRAWS)}


@pytest.fixture(scope="module")
def assumptions(shipped_assumptions_dir):
    return load_assumptions(shipped_assumptions_dir)


@pytest.fixture(scope="module")
def evidence(assumptions) -> ScheduleEvidence:
    return assumptions.fund.schedule_evidence


def _uniforms(method: SamplingMethod, n: int = N, seed: int = 4242, key: str = "schedule/test") -> np.ndarray:
    return ScenarioStreams(seed, method).uniforms(key, 0, n, len(SCHEDULE_DRAWS))


def _with(project, **sections):
    """Copy of a frozen project with fields of its sections replaced: _with(p, capex={"overrun_mean": 0.2})."""
    update = {name: getattr(project, name).model_copy(update=fields) for name, fields in sections.items()}
    return project.model_copy(update=update)


def _draw(assumptions, pid, method=SamplingMethod.LHS, n=N, **kw):
    project = assumptions.projects[pid] if isinstance(pid, str) else pid
    country = assumptions.countries.countries[project.country]
    return draw_schedule(project, country.permitting_years, _uniforms(method, n), **kw)


def _triangular_quantile(u: np.ndarray, tri: Triangular) -> np.ndarray:
    """Quantiles of the triangular law ``tri`` at ``u``, by SciPy (not the model's inverse CDF).

    ``scipy.stats.triang`` with shape ``c = (mode - min) / (max - min)``, ``loc = min`` and
    ``scale = max - min``; a degenerate triangle (``min == max``) is that constant.
    """
    width = tri.max - tri.min
    if width == 0:
        return np.full(np.shape(u), float(tri.min))
    return stats.triang.ppf(u, (tri.mode - tri.min) / width, loc=tri.min, scale=width)


def _law_moment(law, power: int, lo: float = 0.0, hi: float = 1.0) -> float:
    """E[R^power; u in (lo, hi)] by quadrature of the inverse CDF (independent of the closed forms)."""
    f = lambda u: float(law.ppf_normal(np.array([stats.norm.ppf(u)]))[0]) ** power  # noqa: E731
    points = [p for p in (1 - law.prob_over, 1 - law.prob_ge_100pct) if lo < p < hi]
    return integrate.quad(f, lo, hi, points=points or None, limit=400, epsabs=1e-11, epsrel=1e-10)[0]


# --------------------------------------------------------------------------- the overrun law in closed form
LAWS = [  # (q, t, u, a, mean kind, mean value)
    (0.70, 0.0769, 0.3, 3.0, "mean_if_over", 0.62),  # megaproject class
    (0.60, 0.0769, 0.3, 3.0, "mean", 0.14),  # standard class
    (0.70, 0.18, 0.3, 3.0, "mean", 0.50),  # au_nickel
    (0.79, 0.10, 0.2, 2.5, "mean_if_over", 0.55),  # McKinsey's share
    (0.30, 0.02, 0.5, 8.0, "mean", 0.02),  # few overruns, thin tail
]


@pytest.mark.parametrize("q, t, u, a, kind, value", LAWS)
def test_overrun_law_hits_share_tail_and_mean_exactly(q, t, u, a, kind, value):
    law = overrun_law(q, t, u, a, **{kind: value})
    assert float(law.cdf(0.0)) == pytest.approx(1 - q, abs=1e-12), "P(R <= 0) must be 1 - q"
    assert 1 - float(law.cdf(1.0 - 1e-12)) == pytest.approx(t, rel=1e-9), "P(R >= 1) must be t"
    target = law.mean_if_over if kind == "mean_if_over" else law.mean
    assert target == pytest.approx(value, abs=1e-10), f"{kind} {target} != {value}"
    # the closed-form means against quadrature of the inverse CDF
    mean = _law_moment(law, 1, 1e-15, 1 - 1e-15)
    assert mean == pytest.approx(law.mean, abs=2e-6), f"quadrature mean {mean} vs closed form {law.mean}"
    over = _law_moment(law, 1, 1 - q, 1 - 1e-15) / q
    assert over == pytest.approx(law.mean_if_over, abs=2e-6), f"E[R | R > 0] {over} vs {law.mean_if_over}"
    # the body mean identity and the Pareto tail
    assert law.body_mean == pytest.approx((q * law.mean_if_over - t * a / (a - 1)) / (q - t), rel=1e-12)
    assert float(law.cdf(3.0)) == pytest.approx(1 - t * 3.0**-a, rel=1e-12), "tail is Pareto from +100 %"


@pytest.mark.parametrize("q, t, u, a, kind, value", LAWS)
def test_overrun_ppf_inverts_cdf_and_is_monotone(q, t, u, a, kind, value):
    law = overrun_law(q, t, u, a, **{kind: value})
    z = np.linspace(-8, 8, 20001)
    r = law.ppf_normal(z)
    assert np.all(np.diff(r) >= 0), "inverse CDF must be non-decreasing (copula ranks)"
    assert r.min() >= -u - 1e-12, "no underrun beyond the largest one"
    np.testing.assert_allclose(law.cdf(r), stats.norm.cdf(z), atol=1e-9,
                               err_msg="cdf(ppf(u)) must return u")


def test_overrun_megaproject_body_is_nearly_uniform():
    """With EY's 70 % / +62 % and the 1 in 13 tail, the overruns below +100 % are close to uniform."""
    law = overrun_law(0.70, 0.0769, 0.3, 3.0, mean_if_over=0.62)
    assert abs(law.body_rate) < 0.2 and law.body_mean == pytest.approx(0.5114, abs=5e-4)


@pytest.mark.parametrize("q, t, a, m_c", [(0.7, 0.3, 3.0, 0.5), (0.6, 0.0769, 3.0, 0.15), (0.5, 0.01, 2.0, 1.05)])
def test_overrun_law_impossible_combination_reports_attainable_range(q, t, a, m_c):
    with pytest.raises(ValueError) as info:
        overrun_law(q, t, 0.3, a, mean_if_over=m_c)
    found = re.search(r"attainable range is ([0-9.]+) to ([0-9.]+) among", str(info.value))
    assert found, f"message does not give the attainable range: {info.value}"
    lo, hi = float(found.group(1)), float(found.group(2))
    # independent: the body mean b = (q m - t a/(a-1))/(q - t) must be in (0, 1)
    assert lo == pytest.approx(t * a / (a - 1) / q, abs=2e-3) and hi == pytest.approx((q - t + t * a / (a - 1)) / q,
                                                                                    abs=2e-3)
    for inside in (lo + 0.01 * (hi - lo), hi - 0.01 * (hi - lo)):
        assert overrun_law(q, t, 0.3, a, mean_if_over=inside).mean_if_over == pytest.approx(inside, rel=1e-9)


def test_overrun_law_argument_checks():
    with pytest.raises(ValueError, match="exactly one"):
        overrun_law(0.6, 0.05, mean=0.1, mean_if_over=0.3)
    with pytest.raises(ValueError, match="0 < P"):
        overrun_law(0.05, 0.06, mean=0.1)


def test_a_plain_lognormal_cannot_carry_the_megaproject_figures():
    """Why a mixture: a lognormal overrun with mean 0.62 has P(R >= 1) <= 1 - Phi(sqrt(2 ln(1/0.62))) ~ 16 %."""
    bound = stats.norm.sf(math.sqrt(2 * math.log(1 / 0.62)))
    assert 0.15 < bound < 0.17
    sigmas = np.linspace(0.05, 5, 2000)
    mus = math.log(0.62) - sigmas**2 / 2
    assert stats.norm.sf(-mus / sigmas).max() <= bound + 1e-9


def test_evidence_schema_rejects_unattainable_or_ambiguous_classes():
    with pytest.raises(ValueError, match="exactly one of mean"):
        OverrunEvidence(prob_over=0.7, mean=0.4, mean_if_over=0.6, prob_ge_100pct=0.07, source="test")
    with pytest.raises(ValueError, match="attainable"):
        OverrunEvidence(prob_over=0.6, mean=0.02, prob_ge_100pct=0.0769, source="test")
    with pytest.raises(ValueError, match="below prob_over"):
        OverrunEvidence(prob_over=0.05, mean=0.1, prob_ge_100pct=0.07, source="test")


def test_shipped_evidence_equals_the_schema_defaults(evidence):
    """draw_schedule without an evidence argument uses the same figures as the shipped fund.yaml."""
    strip = {"source": True, "overrun": {c: {"source"} for c in evidence.overrun},
             "delay": {"source"}, "financing_wait": {"source"}, "lead_time": {"source"}}
    assert evidence.model_dump(exclude=strip) == DEFAULT_EVIDENCE.model_dump(exclude=strip)


# --------------------------------------------------------------------------- overrun by size class, simulated
def _se(x: np.ndarray) -> float:
    """Standard error of the mean of a sample (pseudo-random bound; stratified draws do better)."""
    return float(x.std() / math.sqrt(x.size))


@pytest.mark.parametrize("pid, cls", [("pe_copper", "megaproject"), ("uz_copper", "megaproject"),
                                      ("kz_gallium", "standard"), ("gh_lithium", "standard")])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_overrun_by_size_class_matches_the_evidence(assumptions, evidence, pid, cls, method):
    """Share over budget, mean among overrunners, P(>= +100 %) and the mean over all projects.

    Tolerances: 4 standard errors, sqrt(p(1-p)/N) for shares and sd/sqrt(n) for means (sample
    sd); megaproject targets EY (2015) 0.70 / +62 % conditional, standard
    Bertisen & Davis (2008) +14 % unconditional; both 1 in 13 at +100 % or more.
    """
    project = assumptions.projects[pid]
    assert size_class(project, evidence) == cls
    ev = evidence.overrun[cls]
    law = schedule_parameters(project, evidence).overrun
    r = _draw(assumptions, pid, method).capex_multiplier - 1
    se = lambda p: 4 * math.sqrt(p * (1 - p) / N)  # noqa: E731
    assert abs((r > 0).mean() - ev.prob_over) < se(ev.prob_over), f"{pid}: P(over budget) {(r > 0).mean():.4f}"
    assert abs((r >= 1).mean() - ev.prob_ge_100pct) < se(ev.prob_ge_100pct), f"{pid}: P(R >= 1) {(r >= 1).mean():.4f}"
    m_c = r[r > 0].mean()
    target_c = ev.mean_if_over if ev.mean_if_over is not None else law.mean_if_over
    assert abs(m_c - target_c) < 4 * _se(r[r > 0]), f"{pid}: E[R | R > 0] {m_c:.4f} vs {target_c:.4f}"
    target = ev.mean if ev.mean is not None else law.mean
    assert abs(r.mean() - target) < 4 * _se(r), f"{pid}: E[R] {r.mean():.4f} vs {target:.4f}"
    assert r.min() >= -ev.underrun_max - 1e-12


def test_size_class_threshold_and_override(assumptions, evidence):
    p = assumptions.projects["kz_gallium"]
    assert size_class(_with(p, capex={"size_class": None, "initial_musd": 1000.0}), evidence) == "standard"
    assert size_class(_with(p, capex={"size_class": None, "initial_musd": 1000.5}), evidence) == "megaproject"
    assert assumptions.projects["mn_copper"].capex.size_class == "megaproject", "mn_copper: whole build > USD 1 bn"


def test_project_overrides_keep_their_targets(assumptions):
    """au_nickel keeps its HPAL figures (+50 % mean, 18 % doubling) with the megaproject share over budget."""
    p = assumptions.projects["au_nickel"]
    r = _draw(assumptions, p).capex_multiplier - 1
    assert abs(r.mean() - 0.50) < 0.02 and abs((r >= 1).mean() - 0.18) < 4 * math.sqrt(0.18 * 0.82 / N)
    assert abs((r > 0).mean() - 0.70) < 4 * math.sqrt(0.21 / N)


def test_loader_fills_every_field_consistently(assumptions, evidence):
    for pid, p in assumptions.projects.items():
        c, s = p.capex, p.schedule
        for name in ("size_class", "overrun_prob_over", "overrun_mean", "overrun_mean_if_over",
                     "overrun_prob_ge_100pct", "overrun_shift", "overrun_tail_index", "overrun_delay_correlation"):
            assert getattr(c, name) is not None, f"{pid}: capex.{name} not filled"
        for name in ("construction_prob_late", "construction_delay_mean", "financing_wait_median_years",
                     "rampup_series", "nameplate_shortfall_prob", "nameplate_plateau"):
            assert getattr(s, name) is not None, f"{pid}: schedule.{name} not filled"
        # filling again changes nothing, and a resolved project draws as the raw one
        assert resolve_project(p, evidence) == p


def test_inconsistent_means_and_impossible_overrides_name_the_field(assumptions, evidence):
    p = assumptions.projects["kz_gallium"]
    with pytest.raises(ScheduleParameterError) as info:
        resolve_project(_with(p, capex={"overrun_mean": 0.3, "overrun_mean_if_over": 0.3}), evidence)
    assert info.value.key == "capex.overrun_mean"
    bad = _with(p, capex={"overrun_mean": 0.01, "overrun_mean_if_over": None, "overrun_prob_ge_100pct": 0.2})
    with pytest.raises(ScheduleParameterError, match="attainable range") as info:
        resolve_project(bad, evidence)
    assert info.value.key == "capex.overrun_mean"


# --------------------------------------------------------------------------- construction delay
@pytest.mark.parametrize("pid", ["mn_copper", "kz_gallium", "au_nickel"])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_construction_delay_mean_and_share_late(assumptions, evidence, pid, method):
    """Mean delay 25 % of plan (issue 14: 20-30 %), 52 % late (McKinsey 2024); tolerance 4 SE."""
    p = assumptions.projects[pid]
    d = _draw(assumptions, pid, method)
    delay = (d.construction_end - d.construction_start) / p.schedule.construction_years.mode - 1
    np.testing.assert_allclose(delay, d.construction_delay, atol=1e-12)
    law = delay_law(evidence.delay.prob_late, evidence.delay.mean, evidence.delay.sigma_if_late,
                    evidence.delay.early_max)
    assert law.mean == pytest.approx(evidence.delay.mean, abs=1e-12)
    sd_late = law.mean_if_late * math.sqrt(math.expm1(law.sigma**2))
    sd = math.sqrt(law.prob_late * (sd_late**2 + law.mean_if_late**2) + (1 - law.prob_late) * law.early_max**2 / 6
                   - law.mean**2)
    assert abs(delay.mean() - 0.25) < 4 * sd / math.sqrt(N), f"{pid}: mean delay {delay.mean():.4f}"
    p_late = evidence.delay.prob_late
    assert abs((delay > 0).mean() - p_late) < 4 * math.sqrt(p_late * (1 - p_late) / N)
    assert delay.min() >= -evidence.delay.early_max - 1e-12
    assert 0.20 <= delay.mean() <= 0.30


def _spearman_expected(rho: float) -> float:
    return 6 / math.pi * math.asin(rho / 2)


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.0, -0.4])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_overrun_delay_rank_correlation_is_the_gaussian_copula_value(assumptions, method, rho):
    project = _with(assumptions.projects["mn_copper"], capex={"overrun_delay_correlation": rho})
    d = _draw(assumptions, project, method)
    got = stats.spearmanr(d.construction_end - d.construction_start, d.capex_multiplier).statistic
    expected = _spearman_expected(rho)
    assert abs(got - expected) < 4 / math.sqrt(N), (
        f"{method.value}, rho={rho}: Spearman(duration, overrun) {got:.4f}, Gaussian copula {expected:.4f}")


def test_overrun_and_delay_positively_rank_correlated_for_every_shipped_build(assumptions):
    for pid, p in assumptions.projects.items():
        if p.stage is Stage.PRODUCTION:
            continue
        d = _draw(assumptions, pid, n=2**14)
        got = stats.spearmanr(d.construction_delay, d.capex_multiplier).statistic
        assert got > 0.3, f"{pid}: Spearman(delay, overrun) = {got:.3f}, must be clearly positive"


# --------------------------------------------------------------------------- gap before the investment decision
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_financing_wait_is_lognormal_and_heavy_tailed(assumptions, evidence, method):
    p = assumptions.projects["pe_copper"]  # feasibility stage, own permitting triangle
    u = _uniforms(method)
    d = draw_schedule(p, assumptions.countries.countries["PE"].permitting_years, u, evidence=evidence)
    permitting = _triangular_quantile(u[:, COL["permitting"]], p.schedule.permitting_years)
    np.testing.assert_allclose(d.studies_end - permitting, d.financing_wait, atol=1e-12,
                               err_msg="FID = permitting + financing wait for a feasibility project")
    fw = evidence.financing_wait
    dist = stats.lognorm(fw.sigma, scale=fw.median_years)
    assert stats.kstest(d.financing_wait, dist.cdf).pvalue > 1e-4, "financing wait is not the stated lognormal"
    # heavy right tail: P99/P50 ~ exp(2.33 sigma) ~ 10, and some FIDs wait many years beyond permits
    q50, q99 = np.quantile(d.financing_wait, [0.5, 0.99])
    assert q99 / q50 > 8, f"P99/P50 of the wait {q99 / q50:.1f}: not heavy-tailed"
    p5 = (d.financing_wait > 5).mean()
    assert abs(p5 - dist.sf(5)) < 4 * math.sqrt(dist.sf(5) / N) and p5 > 0.02
    gap = d.studies_end
    assert np.quantile(gap, 0.99) > p.schedule.permitting_years.max + 4, "gap before FID has no long right tail"
    assert stats.skew(gap) > 1.5


def test_no_financing_wait_once_built_or_without_risk(assumptions):
    for pid in ("mn_copper", "cd_cobalt"):
        assert (_draw(assumptions, pid, n=4096).financing_wait == 0).all()
    off = _draw(assumptions, "pe_copper", n=4096, risk_on=False)
    assert (off.financing_wait == 0).all() and (off.studies_end == assumptions.projects["pe_copper"]
                                                .schedule.permitting_years.mode).all()


# --------------------------------------------------------------------------- nameplate shortfall
@pytest.mark.parametrize("pid, series", [("au_nickel", 3), ("mn_ree", 3), ("kz_gallium", 2)])
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_nameplate_shortfall_share(assumptions, evidence, pid, series, method):
    p = assumptions.projects[pid]
    assert p.schedule.rampup_series == series
    ne = evidence.nameplate[series]
    share = _draw(assumptions, pid, method).nameplate_share
    short = share < 1
    se = math.sqrt(ne.prob_shortfall * (1 - ne.prob_shortfall) / N)
    assert abs(short.mean() - ne.prob_shortfall) < 4 * se, f"{pid}: share below nameplate {short.mean():.4f}"
    pl = ne.plateau
    assert share[short].min() >= pl.min - 1e-12 and share.max() <= 1.0
    mean_plateau = (pl.min + pl.mode + pl.max) / 3
    sd = math.sqrt((pl.min**2 + pl.mode**2 + pl.max**2 - pl.min * pl.mode - pl.min * pl.max - pl.mode * pl.max) / 18)
    assert abs(share[short].mean() - mean_plateau) < 4 * sd / math.sqrt(short.sum())


def test_nameplate_reached_without_risk_or_when_producing(assumptions):
    assert (_draw(assumptions, "au_nickel", n=4096, risk_on=False).nameplate_share == 1).all()
    assert (_draw(assumptions, "cd_cobalt", n=4096).nameplate_share == 1).all()


# --------------------------------------------------------------------------- lead times vs S&P Global
def _lead_times(assumptions, evidence, method=SamplingMethod.LHS, n=N):
    out = {}
    for pid, p in assumptions.projects.items():
        if p.stage is not Stage.EXPLORATION:
            continue
        streams = ScenarioStreams(99, method)
        u = streams.uniforms(f"schedule/{pid}", 0, n, len(SCHEDULE_DRAWS))
        disc = streams.uniforms(f"discovery/{pid}", 0, n, 1)[:, 0]
        out[pid] = lead_time_years(p, assumptions.countries.countries[p.country].permitting_years, u, disc, evidence)
    return out


def test_exploration_lead_time_matches_sp_global(assumptions, evidence):
    """Discovery to first production of the shipped exploration projects vs S&P Global (127 mines).

    Mean: between S&P's 2002-23 average less 1 year (14.7) and its 2020-23 average (17.9); the
    Monte Carlo error of the mean is < 0.05 years. Range: the study's shortest and longest of
    127 mines are near its 1/128 and 127/128 quantiles; the simulated ones must lie inside 6-32.
    """
    lt = evidence.lead_time
    times = _lead_times(assumptions, evidence)
    assert set(times) == {"au_nickel", "ca_graphite"}
    pooled = np.concatenate(list(times.values()))
    assert lt.mean_years - 1.0 <= pooled.mean() <= lt.recent_mean_years, f"mean lead time {pooled.mean():.2f}"
    k = 1 / (lt.mines + 1)
    lo, hi = np.quantile(pooled, [k, 1 - k])
    assert lt.min_years <= lo and hi <= lt.max_years, f"1/128..127/128 quantiles {lo:.1f}-{hi:.1f} outside 6-32"
    for pid, t in times.items():
        assert lt.min_years <= t.mean() <= lt.max_years, pid


# --------------------------------------------------------------------------- durations and stages
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_durations_and_risk_off(assumptions, method):
    project = assumptions.projects["au_nickel"]  # exploration stage: every phase present
    country = assumptions.countries.countries[project.country]
    sched = project.schedule
    perm = sched.permitting_years or country.permitting_years
    u = _uniforms(method)
    d = draw_schedule(project, country.permitting_years, u)
    before_wait = d.studies_end - d.financing_wait
    lo, hi = sched.exploration_years.min + perm.min, sched.exploration_years.max + perm.max
    assert (before_wait >= lo - 1e-12).all() and (before_wait <= hi + 1e-12).all(), f"studies outside [{lo}, {hi}]"
    np.testing.assert_allclose(before_wait, _triangular_quantile(u[:, COL["exploration"]], sched.exploration_years)
                               + _triangular_quantile(u[:, COL["permitting"]], perm), rtol=1e-12)
    r = sched.rampup_years
    assert (d.rampup_years >= r.min).all() and (d.rampup_years <= r.max).all(), "ramp-up outside its triangle"

    off = draw_schedule(project, country.permitting_years, u, risk_on=False)
    assert (off.studies_end == sched.exploration_years.mode + perm.mode).all(), "risk off: studies not at mode"
    assert (off.construction_end - off.construction_start == sched.construction_years.mode).all()
    assert (off.rampup_years == r.mode).all(), "risk off: ramp-up not at its mode"
    assert (off.capex_multiplier == 1).all() and (off.opex_multiplier == 1).all(), "risk off: cost multipliers not 1"
    assert (off.recovery_shift == 0).all() and off.developed.all(), "risk off: recovery shift 0 and development certain"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_opex_and_recovery_distributions(assumptions, method):
    project = assumptions.projects["mn_copper"]
    ops = project.operations
    d = _draw(assumptions, "mn_copper", method)
    log_opex = np.log(d.opex_multiplier)
    s = ops.opex_uncertainty_sigma
    assert abs(np.median(d.opex_multiplier) - 1) < 4 * 1.2533 * s / math.sqrt(N), "opex multiplier median is not 1"
    assert abs(log_opex.mean()) < 4 * s / math.sqrt(N), f"mean log opex multiplier {log_opex.mean():.5f} != 0"
    assert abs(log_opex.std() / s - 1) < 4 / math.sqrt(2 * N), f"sd of log opex {log_opex.std():.5f} != {s}"
    sd = ops.recovery_uncertainty_sd
    assert abs(d.recovery_shift.std() / sd - 1) < 4 / math.sqrt(2 * N), f"recovery shift sd {d.recovery_shift.std()}"


@pytest.mark.parametrize("risk_on", [True, False])
def test_production_stage_has_no_schedule_and_no_overrun(assumptions, risk_on):
    d = _draw(assumptions, "cd_cobalt", SamplingMethod.PSEUDO, 4096, risk_on=risk_on)
    for name in ("studies_end", "construction_start", "construction_end", "rampup_years"):
        assert (getattr(d, name) == 0).all(), f"production stage: {name} must be 0"
    assert (d.capex_multiplier == 1).all(), "production stage: capex multiplier must be 1 (nothing left to build)"


def test_stage_rules_for_construction_and_feasibility(assumptions):
    u = _uniforms(SamplingMethod.PSEUDO, 4096)
    con = assumptions.projects["mn_copper"]
    d = draw_schedule(con, assumptions.countries.countries["MN"].permitting_years, u)
    assert (d.studies_end == 0).all() and (d.construction_start == 0).all(), "construction stage starts building at t=0"
    assert (d.construction_end > 0).all()
    feas = assumptions.projects["mn_ree"]
    assert feas.stage is Stage.FEASIBILITY and feas.schedule.permitting_years is None
    default = Triangular(min=1.0, mode=2.0, max=3.0)
    off = draw_schedule(feas, default, u, risk_on=False)
    assert (off.studies_end == 2.0).all(), "feasibility stage should permit for the country default's mode"
    on = draw_schedule(feas, default, u)
    np.testing.assert_allclose(on.studies_end - on.financing_wait,
                               _triangular_quantile(u[:, COL["permitting"]], default))
    own = assumptions.projects["kz_gallium"]
    off = draw_schedule(own, default, u, risk_on=False)
    assert (off.studies_end == own.schedule.permitting_years.mode).all(), "project permitting override ignored"


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.value)
def test_development_probability_share(assumptions, method):
    project = assumptions.projects["au_nickel"]
    q = project.schedule.development_probability
    d = _draw(assumptions, "au_nickel", method)
    se = math.sqrt(q * (1 - q) / N)
    assert abs(d.developed.mean() - q) < 4 * se, f"{method.value}: share developed {d.developed.mean():.4f} vs {q}"


def test_unresolved_project_draws_like_the_loaded_one(assumptions):
    """A project built without the loader (fields left None) is filled from the default evidence."""
    p = assumptions.projects["pe_copper"]
    raw = _with(p, capex={k: None for k in ("size_class", "overrun_prob_over", "overrun_mean", "overrun_mean_if_over",
                                             "overrun_prob_ge_100pct", "overrun_shift", "overrun_tail_index",
                                             "overrun_delay_correlation")},
                schedule={k: None for k in ("construction_prob_late", "construction_delay_mean",
                                            "construction_delay_sigma", "construction_early_max",
                                            "financing_wait_median_years", "financing_wait_sigma", "rampup_series",
                                            "nameplate_shortfall_prob", "nameplate_plateau")})
    a, b = _draw(assumptions, p, n=4096), _draw(assumptions, raw, n=4096)
    for name in ("studies_end", "construction_end", "capex_multiplier", "nameplate_share"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=1e-12, err_msg=name)
