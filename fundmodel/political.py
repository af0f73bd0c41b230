"""Political risk: a common geopolitical factor and per-project event timelines.

Each country has an annual probability ``p`` of each event. In every scenario and
year the event fires when a uniform draw falls below ``1 - exp(-intensity_t)`` with

``intensity_t = lambda* G_t P_t^e / M``, where

- ``G_t = exp(l g_t - l^2 / 2)``: the common geopolitical factor ``g`` (stationary AR(1),
  ``N(0, 1)`` each year) with loading ``l``, mean one, so all hazards rise and fall together;
- ``P_t``: for expropriation, forced participation and fiscal grabs, the real price of the
  project's primary material over its long-run level (export-restriction uplift included),
  raised to the event's ``price_elasticity`` ``e`` (expropriations follow price booms:
  Hajzler 2012); ``e = 0`` for the other events;
- ``M = E[G P^e]``: the stationary mean of that multiplier (:func:`fundmodel.market.mean_price_factor`),
  so ``G P^e / M`` has mean one. With ``X = ln(S/L) ~ N(0, v)`` (log-OU, ``v = sigma^2/(2 kappa)``,
  ``L`` the long-run median) independent of ``(g, R)``:
  ``M = exp(e^2 v / 2) (1 + ((1 + u)^e - 1) E[G 1{R}])``, i.e.
  ``E[(S/L)^e] = exp(e^2 v / 2) (1 - pi + pi (1 + u)^e)`` when the regime ``R`` (uplift ``u``,
  stationary share ``pi``) does not load on ``g``; the regime's onsets do load on ``g``, so
  ``E[G 1{R}]`` comes from the stationary law of ``(g, R)`` (:func:`fundmodel.market.regime_stationary`);
- ``lambda*``: the intensity that makes the **unconditional mean annual probability** equal the
  calibrated ``p`` exactly, ``E[1 - exp(-lambda* G P^e / M)] = p``, the expectation over the
  stationary joint law of ``g``, the regime and the price. Because ``1 - e^{-x}`` is concave,
  ``lambda* >= -ln(1 - p)``; ``lambda* = -ln(1 - p)`` when ``G P^e / M = 1`` (no loading, no
  price term), so events are then independent years with probability ``p`` and the chance
  of a first occurrence within ``n`` years is ``1 - (1 - p)^n``.

"Mean annual probability" is the probability that the event's trigger fires in a year,
averaged over the stationary distribution of the factors, for a project still exposed: the
hazard, not conditioned on survival (survivors of an absorbing event are selected towards
calm years, so their average hazard is a little lower). Prices start at spot, not in their
stationary law: early-year hazards differ from ``p`` by design (a boom today raises them).

Event semantics (effects are applied by :mod:`fundmodel.valuation`):

=====================  ==============================================================
event                  timeline produced here
=====================  ==============================================================
expropriation          first occurrence ends the project; compensation at that year
forced participation   first occurrence: the state holds ``state_share`` from then on
fiscal grab            each occurrence (up to ``max_events``) adds to royalty / tax
transfer restriction   ``duration_years`` with cash trapped and part of sales blocked
unrest                 the share of that year's production lost
licence suspension     ``duration_years`` with operations (or development) halted
=====================  ==============================================================

The event bitmask (:data:`EVENT_BITS`) records the expropriation once, in its year (it is
absorbing); the other bits follow the event process of the whole horizon (also after an
expropriation, when they have no effect), so every event's first-occurrence year compares
with its calibrated ``p``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .assumptions.schema import Country, GeopoliticalFactor
from ._years import cumsum_years, first_year
from .market import PriceRatioLaw, mean_price_factor, regime_stationary
from .sampling import ScenarioStreams

#: Bit flags of the event bitmask stored per scenario and year.
EVENT_BITS = {
    "expropriation": 1,
    "forced_participation": 2,
    "fiscal_grab": 4,
    "transfer_restriction": 8,
    "unrest": 16,
    "licence_suspension": 32,
}


def first_occurrence_counts(events: np.ndarray) -> dict[str, np.ndarray]:
    """Scenarios by the year of each event's first occurrence.

    Parameters
    ----------
    events : ndarray of uint8, shape (n_scenarios, n_years)
        Event bitmask (:attr:`PoliticalTimeline.events`).

    Returns
    -------
    dict
        ``{event: counts}`` for every event of :data:`EVENT_BITS`; ``counts[t]`` is the number of
        scenarios whose first occurrence is in year index ``t``, ``counts[n_years]`` those without
        one (int64, shape ``(n_years + 1,)``). For windows (transfer restriction, licence
        suspension) the first active year is the first onset.

    Examples
    --------
    >>> ev = np.array([[0, 1, 1], [0, 0, 0]], dtype=np.uint8)
    >>> first_occurrence_counts(ev)["expropriation"].tolist()
    [0, 1, 0, 1]
    """
    ym = np.ascontiguousarray(events.T)  # year-major
    n_years = ym.shape[0]
    return {e: np.bincount(first_year((ym & bit) != 0), minlength=n_years + 1).astype(np.int64)
            for e, bit in EVENT_BITS.items()}


def geopolitical_factor(streams: ScenarioStreams, params: GeopoliticalFactor,
                        start: int, stop: int, n_years: int) -> np.ndarray:
    """Common geopolitical factor, a stationary Gaussian AR(1) path per scenario.

    ``g_0 ~ N(0, 1)``, ``g_t = phi g_{t-1} + sqrt(1 - phi^2) eta_t``.

    Returns
    -------
    ndarray of shape (n_scenarios, n_years)
        Standard normal in every year, autocorrelation ``phi**lag``.
    """
    eta = np.ascontiguousarray(streams.normals("geopolitical", start, stop, n_years, quasi=False).T)
    phi = params.persistence
    g = np.empty_like(eta)  # year-major
    g[0] = eta[0]
    innovation_sd = np.sqrt(1.0 - phi * phi)
    for t in range(1, n_years):  # loop over years; vectorised over scenarios
        g[t] = phi * g[t - 1] + innovation_sd * eta[t]
    return g.T


#: Events whose hazard may carry a price elasticity, in the order of :data:`EVENT_BITS`.
PRICE_SENSITIVE = ("expropriation", "forced_participation", "fiscal_grab")

#: Gauss-Hermite nodes for the log price ratio and for g alone (probabilists' weights, sum 1).
_HERMITE_X, _HERMITE_W = np.polynomial.hermite_e.hermegauss(48)
_HERMITE_W = _HERMITE_W / _HERMITE_W.sum()


@dataclass(frozen=True)
class HazardScale:
    """Normalisation of one event's hazard (see the module docstring).

    Attributes
    ----------
    annual_probability : float
        Calibrated ``p``.
    mean_multiplier : float
        ``M = E[G P^e]``, the stationary mean of the un-normalised multiplier (1 without price term).
    intensity : float
        ``lambda*``, solving ``E[1 - exp(-lambda* G P^e / M)] = p`` (``-ln(1 - p)`` when the
        multiplier is constant).
    """

    annual_probability: float
    mean_multiplier: float
    intensity: float

    @property
    def scale(self) -> float:
        """``lambda* / M``: multiplies ``G P^e`` in every scenario-year."""
        return self.intensity / self.mean_multiplier


def _stationary_multiplier(elasticity: float, loading: float, law: PriceRatioLaw) -> tuple[np.ndarray, np.ndarray]:
    """Support and weights of ``ln(G P^e)`` over the stationary law (a discrete quadrature)."""
    if elasticity == 0 or law.degenerate:
        # only g: Gauss-Hermite on N(0, 1)
        return loading * _HERMITE_X - loading**2 / 2, _HERMITE_W
    g, w = regime_stationary(law)
    keep = w > 1e-17 * w.max()
    log_gr = (loading * g - loading**2 / 2)[None, :] + elasticity * np.log1p(law.uplift * np.arange(2))[:, None]
    log_gr, w_gr = log_gr[keep], w[keep]
    if law.log_ratio_variance > 0:  # X ~ N(0, v), independent of (g, R)
        x = elasticity * np.sqrt(law.log_ratio_variance) * _HERMITE_X
        return (log_gr[:, None] + x[None, :]).ravel(), (w_gr[:, None] * _HERMITE_W[None, :]).ravel()
    return log_gr, w_gr


@lru_cache(maxsize=4096)
def hazard_scale(p: float, elasticity: float = 0.0, loading: float = 0.0,
                 law: PriceRatioLaw = PriceRatioLaw()) -> HazardScale:
    """Normalise an event's hazard so that its mean annual probability is ``p``.

    Parameters
    ----------
    p : float
        Calibrated annual probability, ``0 <= p < 1``.
    elasticity : float
        Price elasticity ``e`` of the hazard (0: no price term).
    loading : float
        Loading ``l`` of the hazard on the geopolitical factor.
    law : PriceRatioLaw
        Stationary law of the primary material's price ratio and the export regime
        (:func:`fundmodel.market.price_ratio_law`); the default is ``P = 1``.

    Returns
    -------
    HazardScale
        ``M = E[G P^e]`` and ``lambda*`` with ``E[1 - exp(-lambda* G P^e / M)] = p``
        (expectation by quadrature: Gauss-Hermite in ``ln(S/L)``, the stationary grid of
        ``(g, R)``; solved by Newton's method, which converges monotonically from
        ``-ln(1 - p)`` because the mean probability is concave and increasing in ``lambda*``).

    Raises
    ------
    ValueError
        When ``M`` overflows (an extreme elasticity on a very volatile, slowly reverting price).

    Examples
    --------
    >>> bool(hazard_scale(0.05).intensity == -np.log1p(-0.05))
    True
    >>> round(float(hazard_scale(0.05, loading=0.5).intensity / -np.log1p(-0.05)), 4)
    1.0073
    """
    lam = float(-np.log1p(-p))
    price = elasticity if not law.degenerate else 0.0
    mean = mean_price_factor(law, price, loading) if price else 1.0
    if not np.isfinite(mean) or mean <= 0:
        raise ValueError(
            f"a hazard with price elasticity {elasticity} cannot be normalised: the stationary mean of "
            f"(S/L)^{elasticity} overflows (log-price variance {law.log_ratio_variance:.3g}); lower the "
            "elasticity or raise the material's mean reversion")
    if p <= 0 or (loading == 0 and price == 0):
        return HazardScale(float(p), mean, lam)
    log_m, w = _stationary_multiplier(price, loading, law)
    m = np.exp(log_m - np.log(mean))
    c = lam
    for _ in range(50):  # Newton from the left: F concave increasing, F(lam) <= 0
        e = np.exp(-c * m)
        # elementwise sums, not BLAS dot products (slow when BLAS threads compete for the cores)
        step = (p - float((w * (1.0 - e)).sum())) / float((w * m * e).sum())
        c += step
        if abs(step) <= 1e-14 * c:  # quadratic convergence: ~4 steps
            break
    return HazardScale(float(p), mean, c)


@dataclass(frozen=True)
class PoliticalTimeline:
    """Political events of one project, arrays of shape (n_scenarios, n_years).

    Attributes
    ----------
    expropriation_year : ndarray of int, shape (n_scenarios,)
        Year index of expropriation, ``n_years`` when none.
    state_share : ndarray
        Equity share held by the state after forced participation (0 before).
    participation_event : ndarray of bool
        True in the year forced participation happens (compensation is paid then).
    royalty_increase, tax_increase : ndarray
        Cumulative increase of the royalty and income-tax rates (fractions).
    transfer_restricted : ndarray of bool
        Cash trapped and part of sales blocked.
    sales_blocked_share : float
        Share of sales blocked while restricted.
    trapped_cash_haircut : float
        Share of trapped cash lost on release.
    unrest_loss : ndarray
        Share of the year's production lost to unrest.
    suspended : ndarray of bool
        Licence suspended: no operations.
    compensation_share, participation_compensation_share : float
        Compensation ratios of expropriation (of net book value) and forced participation
        (of the book value of the equity taken).
    events : ndarray of uint8
        Bitmask of :data:`EVENT_BITS` (for reporting and instrument payoffs).
    """

    expropriation_year: np.ndarray
    state_share: np.ndarray
    participation_event: np.ndarray
    royalty_increase: np.ndarray
    tax_increase: np.ndarray
    transfer_restricted: np.ndarray
    sales_blocked_share: float
    trapped_cash_haircut: float
    unrest_loss: np.ndarray
    suspended: np.ndarray
    compensation_share: float
    participation_compensation_share: float
    events: np.ndarray


def no_political_events(country: Country, n: int, n_years: int) -> PoliticalTimeline:
    """Timeline with political risk switched off (for the risk attribution)."""
    zeros = np.zeros((n_years, n)).T
    false = np.zeros((n_years, n), dtype=bool).T
    ev = country.events
    return PoliticalTimeline(
        expropriation_year=np.full(n, n_years),
        state_share=zeros,
        participation_event=false,
        royalty_increase=zeros,
        tax_increase=zeros,
        transfer_restricted=false,
        sales_blocked_share=ev.transfer_restriction.sales_blocked_share,
        trapped_cash_haircut=ev.transfer_restriction.trapped_cash_haircut,
        unrest_loss=zeros,
        suspended=false,
        compensation_share=ev.expropriation.compensation_share,
        participation_compensation_share=ev.forced_participation.compensation_share,
        events=np.zeros((n_years, n), dtype=np.uint8).T,
    )


def _windows(onsets_possible: np.ndarray, duration: int) -> np.ndarray:
    """Turn year-major onset draws (n_years, n) into non-overlapping windows of ``duration`` years."""
    n_years, n = onsets_possible.shape
    active = np.zeros((n_years, n), dtype=bool)
    remaining = np.zeros(n, dtype=np.int64)
    for t in range(n_years):  # loop over years; vectorised over scenarios
        onset = (remaining <= 0) & onsets_possible[t]
        remaining[onset] = duration
        active[t] = remaining > 0
        remaining -= 1
    return active


def event_probabilities(
    country: Country,
    geo_factor: np.ndarray,
    hazard_loading: float,
    price_ratio: np.ndarray,
    *,
    price_law: PriceRatioLaw | None = None,
) -> np.ndarray:
    """Probability of each event in every scenario-year: ``1 - exp(-lambda* G P^e / M)``.

    Parameters are those of :func:`draw_political_events`.

    Returns
    -------
    ndarray of float32, shape (6, n_years, n_scenarios)
        Year-major, events in :data:`EVENT_BITS` order (0 for ``p = 0``). Its mean over a
        stationary stretch of years is ``p`` (:func:`hazard_scale`).
    """
    n, n_years = geo_factor.shape
    ev = country.events
    law = PriceRatioLaw() if price_law is None else price_law
    geo_mult = np.exp(np.float32(hazard_loading) * geo_factor.T.astype(np.float32)
                      - np.float32(hazard_loading**2 / 2))
    log_ratio = None
    price_mult: dict[float, np.ndarray] = {}
    out = np.zeros((6, n_years, n), dtype=np.float32)
    for k, name in enumerate(EVENT_BITS):  # loop over events; vectorised over years and scenarios
        event = getattr(ev, name)
        p = event.annual_probability
        if p <= 0:
            continue
        elasticity = getattr(event, "price_elasticity", 0.0)
        try:
            scale = hazard_scale(p, elasticity, hazard_loading, law).scale
        except ValueError as exc:  # an input beyond what the model represents: exit 2, input named
            from .io import NonFiniteResult

            raise NonFiniteResult(f"countries.yaml: {country.name}: events.{name}: {exc}") from None
        intensity = np.float32(scale) * geo_mult
        if elasticity:
            if elasticity not in price_mult:
                if log_ratio is None:
                    log_ratio = np.log(np.maximum(price_ratio.T, 1e-12)).astype(np.float32)
                price_mult[elasticity] = np.exp(np.float32(elasticity) * log_ratio)
            intensity *= price_mult[elasticity]
        np.negative(np.expm1(np.negative(intensity, out=intensity), out=intensity), out=out[k])
    return out


def event_triggers(
    streams: ScenarioStreams,
    project_id: str,
    country: Country,
    geo_factor: np.ndarray,
    hazard_loading: float,
    price_ratio: np.ndarray,
    start: int,
    stop: int,
    *,
    price_law: PriceRatioLaw | None = None,
) -> np.ndarray:
    """Raw yearly triggers of every event: the uniform draw below the year's probability.

    Parameters are those of :func:`draw_political_events`.

    Returns
    -------
    ndarray of bool, shape (6, n_years, n_scenarios)
        Year-major, events in :data:`EVENT_BITS` order. Every year of the horizon, also
        after a first occurrence (absorbing events, windows): the hazard process itself, whose
        mean over stationary scenario-years estimates the mean annual probability ``p``.
    """
    n, n_years = geo_factor.shape
    # (event, year, scenario) in float32: only compared with probabilities
    u = streams.pseudo_uniforms_by_dim(f"political/{project_id}", start, stop, 6 * n_years,
                                       dtype=np.float32).reshape(6, n_years, n)
    probs = event_probabilities(country, geo_factor, hazard_loading, price_ratio, price_law=price_law)
    return u < probs


def draw_political_events(
    streams: ScenarioStreams,
    project_id: str,
    country: Country,
    geo_factor: np.ndarray,
    hazard_loading: float,
    price_ratio: np.ndarray,
    start: int,
    stop: int,
    *,
    price_law: PriceRatioLaw | None = None,
) -> PoliticalTimeline:
    """Draw one project's political-event timeline.

    Parameters
    ----------
    streams : ScenarioStreams
        Random streams of the run (stream ``political/<project_id>``).
    project_id : str
        Project id (its own stream, so projects in the same country are
        conditionally independent given the common factor).
    country : Country
        Host country hazards and severities.
    geo_factor : ndarray of shape (n_scenarios, n_years)
        Common geopolitical factor.
    hazard_loading : float
        Loading ``l`` of every hazard on the factor.
    price_ratio : ndarray of shape (n_scenarios, n_years)
        Real price of the primary material over its long-run level.
    start, stop : int
        Scenario rows.
    price_law : PriceRatioLaw, optional
        Stationary law of ``price_ratio`` (:func:`fundmodel.market.price_ratio_law`) by which
        price-sensitive hazards are normalised (:func:`hazard_scale`); the simulation always
        passes it. None treats the ratio as a given multiplier (the hazard is calibrated at
        ratio 1).

    Returns
    -------
    PoliticalTimeline
        Arrays of shape (n_scenarios, n_years) (views of year-major storage).
    """
    n, n_years = geo_factor.shape
    ev = country.events
    fp, fg, tr, ls = ev.forced_participation, ev.fiscal_grab, ev.transfer_restriction, ev.licence_suspension
    trig = event_triggers(streams, project_id, country, geo_factor, hazard_loading, price_ratio, start, stop,
                          price_law=price_law)
    expro, particip, grabs, unrest = trig[0], trig[1], trig[2], trig[4]
    transfer = _windows(trig[3], tr.duration_years)
    suspended = _windows(trig[5], ls.duration_years)

    expro_year = first_year(expro)
    participation_year = first_year(particip)
    years = np.arange(n_years)[:, None]
    participation_event = years == participation_year
    held = years >= participation_year
    grab_count = cumsum_years(grabs)
    n_grabs = np.minimum(grab_count, fg.max_events)

    events = (
        (years == expro_year) * np.uint8(EVENT_BITS["expropriation"])  # absorbing: once
        | participation_event * np.uint8(EVENT_BITS["forced_participation"])
        | (grabs & (grab_count <= fg.max_events)) * np.uint8(EVENT_BITS["fiscal_grab"])
        | transfer * np.uint8(EVENT_BITS["transfer_restriction"])
        | unrest * np.uint8(EVENT_BITS["unrest"])
        | suspended * np.uint8(EVENT_BITS["licence_suspension"])
    ).astype(np.uint8)

    return PoliticalTimeline(
        expropriation_year=expro_year,
        state_share=(held * fp.state_share).T,
        participation_event=participation_event.T,
        royalty_increase=(n_grabs * fg.royalty_increase).T,
        tax_increase=(n_grabs * fg.tax_increase).T,
        transfer_restricted=transfer.T,
        sales_blocked_share=tr.sales_blocked_share,
        trapped_cash_haircut=tr.trapped_cash_haircut,
        unrest_loss=(unrest * ev.unrest.production_loss_share).T,
        suspended=suspended.T,
        compensation_share=ev.expropriation.compensation_share,
        participation_compensation_share=fp.compensation_share,
        events=events.T,
    )
