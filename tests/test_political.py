"""Political risk: geopolitical AR(1) factor and event timelines against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fundmodel.assumptions.schema import (
    Country,
    Expropriation,
    FiscalGrab,
    ForcedParticipation,
    GeopoliticalFactor,
    LicenceSuspension,
    PoliticalEvents,
    SamplingMethod,
    TransferRestriction,
    Triangular,
    Unrest,
)
from fundmodel.political import (
    EVENT_BITS,
    draw_political_events,
    event_triggers,
    geopolitical_factor,
    hazard_scale,
    no_political_events,
)
from fundmodel.sampling import ScenarioStreams

N = 2**14
N_YEARS = 20
SEED = 31


def _country(expro=0.0, expro_el=0.0, fp=0.0, fp_el=0.0, fg=0.0, fg_el=0.0, max_events=2, tr=0.0, tr_d=2,
             unrest=0.0, ls=0.0, ls_d=3) -> Country:
    return Country(
        name="Testland", iso3="TST", oecd_category=5, sovereign_rating="Ba3", country_risk_premium=0.0355,
        permitting_years=Triangular(min=1, mode=2, max=3),
        events=PoliticalEvents(
            expropriation=Expropriation(annual_probability=expro, compensation_share=0.3, price_elasticity=expro_el),
            forced_participation=ForcedParticipation(annual_probability=fp, state_share=0.34, compensation_share=0.25,
                                                     price_elasticity=fp_el),
            fiscal_grab=FiscalGrab(annual_probability=fg, royalty_increase=0.03, tax_increase=0.05,
                                   max_events=max_events, price_elasticity=fg_el),
            transfer_restriction=TransferRestriction(annual_probability=tr, duration_years=tr_d,
                                                     trapped_cash_haircut=0.2, sales_blocked_share=0.3),
            unrest=Unrest(annual_probability=unrest, production_loss_share=0.15),
            licence_suspension=LicenceSuspension(annual_probability=ls, duration_years=ls_d),
        ),
        source="test country",
    )


def _factor(persistence=0.7, n=N, n_years=N_YEARS, seed=SEED, method=SamplingMethod.PSEUDO):
    params = GeopoliticalFactor(persistence=persistence, hazard_loading=0.5, source="test")
    return geopolitical_factor(ScenarioStreams(seed, method), params, 0, n, n_years)


def _draw(country, loading=0.0, ratio=1.0, n=N, n_years=N_YEARS, seed=SEED, project="p1",
          method=SamplingMethod.PSEUDO, geo=None):
    streams = ScenarioStreams(seed, method)
    g = _factor(n=n, n_years=n_years, seed=seed) if geo is None else geo
    price_ratio = np.broadcast_to(np.asarray(ratio, dtype=float), (n, n_years))
    return draw_political_events(streams, project, country, g, loading, price_ratio, 0, n)


def _triggers(country, name: str, loading=0.0, ratio=1.0, n=N, n_years=N_YEARS, seed=SEED, project="p1"):
    """Raw yearly triggers of one event (every year, also after an absorbing first occurrence)."""
    streams = ScenarioStreams(seed, SamplingMethod.PSEUDO)
    g = _factor(n=n, n_years=n_years, seed=seed)
    price_ratio = np.broadcast_to(np.asarray(ratio, dtype=float), (n, n_years))
    trig = event_triggers(streams, project, country, g, loading, price_ratio, 0, n)
    return trig[list(EVENT_BITS).index(name)].T


def _bit(tl, name: str) -> np.ndarray:
    return (tl.events & EVENT_BITS[name]) != 0


# --------------------------------------------------------------------------- geopolitical factor
@pytest.mark.parametrize("phi", [0.0, 0.7, 0.95])
def test_geopolitical_factor_standard_normal_with_ar1_autocorrelation(phi):
    g = _factor(persistence=phi)
    assert g.shape == (N, N_YEARS)
    bound_m, bound_v = 4 / math.sqrt(N), 4 * math.sqrt(2 / N)
    assert np.abs(g.mean(axis=0)).max() < bound_m, f"phi={phi}: yearly means of g {g.mean(axis=0).round(4)} not 0"
    assert np.abs(g.var(axis=0) - 1).max() < bound_v, f"phi={phi}: yearly variances of g {g.var(axis=0).round(4)} not 1"
    for lag in (1, 2, 5):
        r = np.array([np.corrcoef(g[:, t], g[:, t + lag])[0, 1] for t in range(N_YEARS - lag)])
        target = phi**lag
        se = (1 - target**2) / math.sqrt(N)
        assert np.abs(r - target).max() < 4 * se + 1e-12, (
            f"lag-{lag} autocorrelation of g is {r.round(4)}, AR(1) gives persistence^{lag} = {target:.4f} "
            f"(4 SE {4 * se:.4f})"
        )


def test_geopolitical_factor_ignores_sampling_method_and_is_chunk_invariant():
    g = _factor()
    for method in SamplingMethod:
        np.testing.assert_array_equal(_factor(method=method), g, err_msg=f"g differs under {method.value} (quasi=False)")
    params = GeopoliticalFactor(persistence=0.7, hazard_loading=0.5, source="test")
    part = geopolitical_factor(ScenarioStreams(SEED, SamplingMethod.PSEUDO), params, 1000, 3333, N_YEARS)
    np.testing.assert_array_equal(part, g[1000:3333], err_msg="geopolitical factor of a chunk differs from the big draw")


# --------------------------------------------------------------------------- hazards
def test_unrest_frequency_and_expropriation_cdf_without_loading():
    p_u, p_x = 0.05, 0.02
    tl = _draw(_country(unrest=p_u, expro=p_x))
    unrest = tl.unrest_loss > 0
    freq = unrest.mean(axis=0)
    se = math.sqrt(p_u * (1 - p_u) / N)
    assert np.abs(freq - p_u).max() < 4 * se, f"unrest frequency by year {freq.round(4)} vs p={p_u} (4 SE {4 * se:.4f})"
    np.testing.assert_array_equal(tl.unrest_loss[unrest], 0.15, err_msg="unrest loss is not production_loss_share")

    t = np.arange(N_YEARS)
    cdf = (tl.expropriation_year[:, None] <= t).mean(axis=0)
    expected = 1 - (1 - p_x) ** (t + 1)
    se = np.sqrt(expected * (1 - expected) / N)
    assert (np.abs(cdf - expected) < 4 * se).all(), (
        f"P(expropriated by end of year t) = {cdf.round(4)} vs 1-(1-p)^(t+1) = {expected.round(4)}"
    )
    assert ((tl.expropriation_year >= 0) & (tl.expropriation_year <= N_YEARS)).all()
    assert (tl.expropriation_year == N_YEARS).any(), "no-expropriation marker n_years missing"


def _mean_hazard_with_loading(p: float, loading: float, intensity: float | None = None) -> float:
    """E_g[1 - exp(-lambda exp(l g - l^2/2))], g ~ N(0, 1), by Gauss-Hermite quadrature."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    lam = -math.log1p(-p) if intensity is None else intensity
    return float((w * -np.expm1(-lam * np.exp(loading * x - loading**2 / 2))).sum() / math.sqrt(2 * math.pi))


def test_hazard_loading_keeps_mean_annual_probability_at_p():
    p, loading = 0.05, 0.5
    lam = -math.log1p(-p)
    # a mean-one multiplier on lambda = -ln(1-p) would leave the mean probability short of p by about
    # lambda^2 (e^{l^2} - 1) / 2 (1 - e^{-x} is concave): lambda* makes up for it exactly
    gap = p - _mean_hazard_with_loading(p, loading)
    assert 0 < gap < 1e-3 and gap == pytest.approx(lam**2 * math.expm1(loading**2) / 2, rel=0.1)
    scale = hazard_scale(p, 0.0, loading)
    assert scale.mean_multiplier == 1.0 and scale.intensity > lam
    assert _mean_hazard_with_loading(p, loading, scale.intensity) == pytest.approx(p, rel=1e-12), (
        "lambda* does not solve E[1 - exp(-lambda* G)] = p")
    assert hazard_scale(p, 0.0, 0.0).intensity == lam, "without loading lambda* must be -ln(1-p) exactly"

    tl = _draw(_country(unrest=p), loading=loading)
    per_scenario = (tl.unrest_loss > 0).mean(axis=1)
    got = per_scenario.mean()
    se = per_scenario.std() / math.sqrt(N)  # per-scenario averages: years share the AR(1) factor
    assert abs(got - p) < 4 * se, (
        f"mean unrest frequency with loading {loading}: {got:.5f}, expected p = {p} (4 SE {4 * se:.5f}); "
        f"the uncorrected mean would be {p - gap:.5f}"
    )
    # and the hazard follows the factor: probability given g is 1 - exp(-lambda* exp(l g - l^2/2))
    g = _factor()
    hit = (tl.unrest_loss > 0).ravel()
    x = g.ravel()
    for lo, hi in ((-6, -1), (1, 6)):
        sel = (x >= lo) & (x < hi)
        e = -np.expm1(-scale.intensity * np.exp(loading * x[sel] - loading**2 / 2)).mean()
        s = math.sqrt(e * (1 - e) / sel.sum())
        assert abs(hit[sel].mean() - e) < 4 * s * 1.5, (  # 1.5: mild clustering within scenarios
            f"unrest frequency for g in [{lo}, {hi}) = {hit[sel].mean():.4f}, expected {e:.4f}"
        )


@pytest.mark.parametrize("elasticity", [1.0, 1.5])
def test_price_elasticity_scales_expropriation_frequency(elasticity):
    p = 0.01
    country = _country(expro=p, expro_el=elasticity)
    # raw yearly triggers (the bitmask holds the absorbing expropriation once); no price law:
    # the hazard is calibrated at ratio 1
    base = _triggers(country, "expropriation", ratio=1.0)
    boom = _triggers(country, "expropriation", ratio=2.0)
    f1, f2 = base.mean(), boom.mean()
    exact1, exact2 = p, 1 - (1 - p) ** (2**elasticity)
    m = base.size
    assert abs(f1 - exact1) < 4 * math.sqrt(exact1 / m), f"expropriation frequency at ratio 1: {f1:.5f} vs {exact1}"
    assert abs(f2 - exact2) < 4 * math.sqrt(exact2 / m), (
        f"expropriation frequency at ratio 2: {f2:.5f} vs 1-(1-p)^(2^e) = {exact2:.5f}"
    )
    ratio_se = (f2 / f1) * math.sqrt(1 / base.sum() + 1 / boom.sum())
    assert abs(f2 / f1 - 2**elasticity) < 4 * ratio_se + 0.02 * 2**elasticity, (
        f"doubling the price ratio scales expropriation frequency by {f2 / f1:.3f}, expected ~2^{elasticity} = "
        f"{2**elasticity:.3f} for small p"
    )
    # elasticity does not touch hazards without one (unrest has none)
    c2 = _country(expro=p, expro_el=elasticity, unrest=0.05)
    u1 = _draw(c2, ratio=1.0).unrest_loss
    u2 = _draw(c2, ratio=2.0).unrest_loss
    np.testing.assert_array_equal(u1, u2, err_msg="price ratio changed unrest, which has no price elasticity")


# --------------------------------------------------------------------------- windows
def _run_lengths(mask: np.ndarray):
    n, n_years = mask.shape
    padded = np.concatenate([np.zeros((n, 1), bool), mask, np.zeros((n, 1), bool)], axis=1).astype(np.int8)
    d = np.diff(padded, axis=1)
    starts, ends = np.argwhere(d == 1), np.argwhere(d == -1)
    return starts[:, 1], ends[:, 1] - starts[:, 1], ends[:, 1] < n_years


def _window_probability_by_year(p: float, d: int, n_years: int) -> np.ndarray:
    """Exact P(window active in year t): onsets possible from year 0, state = years remaining."""
    dist = np.zeros(d + 1)
    dist[0] = 1.0
    out = np.zeros(n_years)
    for t in range(n_years):
        out[t] = dist[0] * p + dist[1:].sum()
        new = np.zeros(d + 1)
        new[d - 1] += dist[0] * p
        new[0] += dist[0] * (1 - p)
        for r in range(1, d + 1):
            new[r - 1] += dist[r]
        dist = new
    return out


@pytest.mark.parametrize("field, p, d", [("transfer_restricted", 0.1, 2), ("suspended", 0.08, 3),
                                         ("transfer_restricted", 0.3, 4)])
def test_windows_last_duration_years_and_never_overlap(field, p, d):
    country = _country(tr=p, tr_d=d) if field == "transfer_restricted" else _country(ls=p, ls_d=d)
    tl = _draw(country)
    mask = getattr(tl, field)
    starts, lengths, complete = _run_lengths(mask)
    assert (lengths[complete] % d == 0).all(), (
        f"{field}: runs of active years with lengths {np.unique(lengths[complete])} - not whole {d}-year windows "
        "(an onset inside a window must neither extend nor overlap it)"
    )
    # a run starting at s with s + d < n_years has its following year observed: it is a single window
    # iff that year is free, which depends only on that year's fresh onset draw -> probability 1 - p
    early = starts + d < N_YEARS
    single = (lengths[early] == d).mean()
    se = math.sqrt(p * (1 - p) / early.sum())
    assert abs(single - (1 - p)) < 4 * se, (
        f"{field}: share of runs that are one {d}-year window {single:.4f} vs 1 - p = {1 - p:.3f} (4 SE {4 * se:.4f})"
    )
    exact = _window_probability_by_year(p, d, N_YEARS)
    freq = mask.mean(axis=0)
    se_t = np.sqrt(exact * (1 - exact) / N)
    assert (np.abs(freq - exact) < 4 * se_t).all(), (
        f"{field}: yearly active share {freq.round(4)} vs exact window chain {exact.round(4)}"
    )
    share = d / (d + (1 - p) / p)
    assert abs(exact[-5:].mean() - share) < 0.01, "reference chain should approach the renewal share d/(d+(1-p)/p)"


# --------------------------------------------------------------------------- fiscal grab, participation
@pytest.mark.parametrize("max_events", [1, 3])
def test_fiscal_grabs_are_capped(max_events):
    p = 0.3
    tl = _draw(_country(fg=p, max_events=max_events))
    roy, tax = tl.royalty_increase, tl.tax_increase
    assert roy.max() == pytest.approx(max_events * 0.03), f"royalty increase max {roy.max()} != {max_events} x 0.03"
    assert (roy <= max_events * 0.03 + 1e-12).all() and (tax <= max_events * 0.05 + 1e-12).all(), "cap exceeded"
    assert (np.diff(roy, axis=1) >= 0).all(), "royalty increase must be cumulative (never fall)"
    counted = np.cumsum(_bit(tl, "fiscal_grab"), axis=1)
    np.testing.assert_allclose(roy, counted * 0.03, atol=1e-12, err_msg="royalty increase != counted grab bits x 0.03")
    np.testing.assert_allclose(tax, counted * 0.05, atol=1e-12, err_msg="tax increase != counted grab bits x 0.05")
    # number of grabs by year t is min(Binomial(t+1, p), max_events)
    t = N_YEARS - 1
    expected = np.minimum(np.arange(t + 2), max_events) @ stats.binom.pmf(np.arange(t + 2), t + 1, p)
    got = counted[:, t]
    assert abs(got.mean() - expected) < 4 * got.std() / math.sqrt(N), (
        f"mean number of counted grabs by year {t} = {got.mean():.4f}, E[min(Bin({t + 1}, {p}), {max_events})] = "
        f"{expected:.4f}"
    )


def test_forced_participation_once_and_share_held_after():
    p = 0.1
    tl = _draw(_country(fp=p))
    events = tl.participation_event
    assert (events.sum(axis=1) <= 1).all(), "forced participation happened more than once in a scenario"
    year = np.where(events.any(axis=1), events.argmax(axis=1), N_YEARS)
    t = np.arange(N_YEARS)
    expected_share = np.where(t[None, :] >= year[:, None], 0.34, 0.0)
    np.testing.assert_array_equal(tl.state_share, expected_share,
                                  err_msg="state share is not 0 before and state_share from the participation year on")
    cdf = (year[:, None] <= t).mean(axis=0)
    exact = 1 - (1 - p) ** (t + 1)
    assert (np.abs(cdf - exact) < 4 * np.sqrt(exact * (1 - exact) / N)).all(), (
        f"P(participation by year t) {cdf.round(4)} vs 1-(1-p)^(t+1) {exact.round(4)}"
    )


# --------------------------------------------------------------------------- bitmask
def test_event_bits_consistent_with_arrays():
    bits = list(EVENT_BITS.values())
    assert sorted(bits) == [1, 2, 4, 8, 16, 32], f"EVENT_BITS must be distinct single bits, got {EVENT_BITS}"
    c = _country(expro=0.03, fp=0.05, fg=0.2, max_events=2, tr=0.05, unrest=0.1, ls=0.05)
    tl = _draw(c, loading=0.5, ratio=1.3)
    assert tl.events.dtype == np.uint8 and tl.events.shape == (N, N_YEARS)
    expro = _bit(tl, "expropriation")
    first = np.where(expro.any(axis=1), expro.argmax(axis=1), N_YEARS)
    np.testing.assert_array_equal(first, tl.expropriation_year, err_msg="first expropriation bit != expropriation_year")
    assert expro.sum(axis=1).max() == 1, "expropriation is absorbing: its bit must be set once at most"
    raw = _triggers(c, "expropriation", loading=0.5, ratio=1.3)
    assert raw.sum(axis=1).max() > 1, "test inputs should fire the raw expropriation trigger twice somewhere"
    np.testing.assert_array_equal(_bit(tl, "forced_participation"), tl.participation_event,
                                  err_msg="forced_participation bit != participation_event")
    np.testing.assert_array_equal(_bit(tl, "transfer_restriction"), tl.transfer_restricted,
                                  err_msg="transfer_restriction bit != transfer_restricted")
    np.testing.assert_array_equal(_bit(tl, "unrest"), tl.unrest_loss > 0, err_msg="unrest bit != unrest_loss > 0")
    np.testing.assert_array_equal(_bit(tl, "licence_suspension"), tl.suspended, err_msg="licence bit != suspended")
    grabs = np.diff(np.concatenate([np.zeros((N, 1)), tl.royalty_increase], axis=1), axis=1) > 0
    np.testing.assert_array_equal(_bit(tl, "fiscal_grab"), grabs, err_msg="fiscal_grab bit != years the royalty rises")
    assert (tl.events < 64).all(), "bits outside EVENT_BITS set"
    for name in EVENT_BITS:
        assert _bit(tl, name).any(), f"test inputs should trigger {name}"


def test_no_political_events_all_zero():
    c = _country(expro=0.03, fp=0.05, fg=0.2, tr=0.05, unrest=0.1, ls=0.05)
    tl = no_political_events(c, 100, N_YEARS)
    assert (tl.expropriation_year == N_YEARS).all(), "no-events timeline has an expropriation"
    for name in ("state_share", "participation_event", "royalty_increase", "tax_increase", "transfer_restricted",
                 "unrest_loss", "suspended", "events"):
        arr = getattr(tl, name)
        assert arr.shape == (100, N_YEARS), f"{name} shape {arr.shape}"
        assert not arr.any(), f"no_political_events: {name} is not all zero"
    assert (tl.compensation_share, tl.participation_compensation_share) == (0.3, 0.25)
    assert (tl.sales_blocked_share, tl.trapped_cash_haircut) == (0.3, 0.2)


def test_zero_probabilities_give_no_events_and_streams_are_per_project():
    assert not _draw(_country(), loading=0.5, ratio=3.0).events.any(), "zero hazards produced events"
    c = _country(unrest=0.2)
    a = _draw(c, project="p1").unrest_loss > 0
    b = _draw(c, project="p2").unrest_loss > 0
    r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert abs(r) < 4 / math.sqrt(a.size), f"unrest of two projects (loading 0) correlates at {r:.4f}"
    for method in SamplingMethod:  # events always use pseudo-random draws
        np.testing.assert_array_equal(_draw(c, method=method).unrest_loss > 0, a,
                                      err_msg=f"political events depend on the sampling method ({method.value})")


def test_event_timeline_of_a_chunk_equals_the_big_draw():
    c = _country(expro=0.03, fp=0.05, fg=0.2, tr=0.05, unrest=0.1, ls=0.05, expro_el=1.5, fg_el=1.0)
    n = 5000
    g = _factor(n=n)
    ratio = np.exp(0.3 * np.random.default_rng(2).standard_normal((n, N_YEARS)))
    whole = draw_political_events(ScenarioStreams(SEED, SamplingMethod.SOBOL), "p1", c, g, 0.5, ratio, 0, n)
    part = draw_political_events(ScenarioStreams(SEED, SamplingMethod.SOBOL), "p1", c, g[1000:3333], 0.5,
                                 ratio[1000:3333], 1000, 3333)
    np.testing.assert_array_equal(part.events, whole.events[1000:3333],
                                  err_msg="political events of scenario rows [1000, 3333) depend on the chunking")
    np.testing.assert_array_equal(part.expropriation_year, whole.expropriation_year[1000:3333])
