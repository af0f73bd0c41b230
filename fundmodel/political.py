"""Political risk: a common geopolitical factor and per-project event timelines.

Each country has an annual probability ``p`` of each event; its intensity
``lambda = -ln(1 - p)`` is scaled in every scenario and year by

- the common geopolitical factor ``g`` (stationary AR(1), ``N(0, 1)`` each year):
  ``exp(l g - l^2 / 2)``, mean one, so the *average* hazard stays ``p`` while
  all hazards rise and fall together; and
- for expropriation, forced participation and fiscal grabs, the real price of
  the project's primary material relative to its long-run level raised to a
  ``price_elasticity`` (expropriations follow price booms: Hajzler 2012),

and the event happens when a uniform draw falls below ``1 - exp(-lambda_t)``.

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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assumptions.schema import Country, GeopoliticalFactor
from ._years import cumsum_years, first_year
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


def draw_political_events(
    streams: ScenarioStreams,
    project_id: str,
    country: Country,
    geo_factor: np.ndarray,
    hazard_loading: float,
    price_ratio: np.ndarray,
    start: int,
    stop: int,
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

    Returns
    -------
    PoliticalTimeline
        Arrays of shape (n_scenarios, n_years) (views of year-major storage).
    """
    n, n_years = geo_factor.shape
    ev = country.events
    # (event, year, scenario) in float32: only compared with probabilities
    u = streams.pseudo_uniforms_by_dim(f"political/{project_id}", start, stop, 6 * n_years,
                                       dtype=np.float32).reshape(6, n_years, n)
    geo_mult = np.exp(np.float32(hazard_loading) * geo_factor.T.astype(np.float32)
                      - np.float32(hazard_loading**2 / 2))
    log_ratio = np.log(np.maximum(price_ratio.T, 1e-12)).astype(np.float32)
    price_mult: dict[float, np.ndarray] = {}

    def occurs(k: int, p: float, elasticity: float = 0.0) -> np.ndarray:
        if p <= 0:
            return np.zeros((n_years, n), dtype=bool)
        intensity = np.float32(-np.log1p(-p)) * geo_mult
        if elasticity:
            if elasticity not in price_mult:
                price_mult[elasticity] = np.exp(np.float32(elasticity) * log_ratio)
            intensity *= price_mult[elasticity]
        return u[k] < -np.expm1(-intensity)

    expro = occurs(0, ev.expropriation.annual_probability, ev.expropriation.price_elasticity)
    fp = ev.forced_participation
    particip = occurs(1, fp.annual_probability, fp.price_elasticity)
    fg = ev.fiscal_grab
    grabs = occurs(2, fg.annual_probability, fg.price_elasticity)
    tr = ev.transfer_restriction
    transfer = _windows(occurs(3, tr.annual_probability), tr.duration_years)
    unrest = occurs(4, ev.unrest.annual_probability)
    ls = ev.licence_suspension
    suspended = _windows(occurs(5, ls.annual_probability), ls.duration_years)

    expro_year = first_year(expro)
    participation_year = first_year(particip)
    years = np.arange(n_years)[:, None]
    participation_event = years == participation_year
    held = years >= participation_year
    grab_count = cumsum_years(grabs)
    n_grabs = np.minimum(grab_count, fg.max_events)

    events = (
        expro * np.uint8(EVENT_BITS["expropriation"])
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
