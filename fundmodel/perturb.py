"""Transforms of the assumptions shared by the tornado drivers, the stresses and what-if runs.

Each function returns a changed copy of an :class:`~fundmodel.assumptions.Assumptions` (the
input is never modified) and is the one place its rule lives: the tornado
(:mod:`fundmodel.sensitivity`) and the named stresses (:func:`apply_stress`, used by
:mod:`fundmodel.portfolio.stress`) call the same functions, so a "hazards x 2" means the same
in both.

- prices: :func:`scale_prices` (all materials, or single materials' spot / long run);
- costs: :func:`scale_initial_capex`, :func:`scale_opex`;
- political risk: :func:`scale_political_hazards` (intensity, :func:`scaled_annual_probability`);
- schedule: :func:`scale_development_durations`;
- markets: :func:`scale_fx_spot`, :func:`force_export_restriction`;
- rates: :func:`shift_discount_rate`;
- :func:`apply_stress`: one ``stress.yaml`` scenario, composed of the above.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from .assumptions.model import Assumptions
from .assumptions.schema import StressScenario, Triangular

__all__ = ["MAX_ANNUAL_PROBABILITY", "scale_prices", "scale_initial_capex", "scale_opex", "scaled_annual_probability",
           "scale_political_hazards", "scale_development_durations", "scale_fx_spot", "force_export_restriction",
           "shift_discount_rate", "apply_stress"]

#: Largest annual event probability a hazard multiplier can produce.
MAX_ANNUAL_PROBABILITY = 0.999


def scale_prices(a: Assumptions, m: float = 1.0, *, spot: Mapping[str, float] | None = None,
                 long_run: Mapping[str, float] | None = None) -> Assumptions:
    """Materials' spot and long-run prices multiplied.

    Parameters
    ----------
    a : Assumptions
    m : float, default 1
        Multiplier of every material's spot *and* long-run price (1.2 = +20 %).
    spot, long_run : mapping of material id to float, optional
        Further multipliers of the spot or the long-run price of single materials (a stress).

    Returns
    -------
    Assumptions
        A changed copy; ``a`` is not modified.
    """
    spot, long_run = dict(spot or {}), dict(long_run or {})
    unknown = sorted((set(spot) | set(long_run)) - set(a.markets.materials))
    if unknown:
        raise KeyError(f"no such material: {', '.join(unknown)}")
    materials = {mid: mat.model_copy(update={
        "spot_usd_per_t": mat.spot_usd_per_t * m * spot.get(mid, 1.0),
        "long_run_usd_per_t": mat.long_run_usd_per_t * m * long_run.get(mid, 1.0)})
        for mid, mat in a.markets.materials.items()}
    return dataclasses.replace(a, markets=a.markets.model_copy(update={"materials": materials}))


def scale_initial_capex(a: Assumptions, m: float) -> Assumptions:
    """Every project's initial capex budget (``capex.initial_musd``) multiplied by ``m``.

    The senior debt keeps its amount (it is drawn pro rata to the budgeted capex profile).

    Parameters
    ----------
    a : Assumptions
    m : float
        Multiplier (0.8 = -20 %).

    Returns
    -------
    Assumptions
        A changed copy.
    """
    projects = {pid: p.model_copy(update={"capex": p.capex.model_copy(
        update={"initial_musd": p.capex.initial_musd * m})}) for pid, p in a.projects.items()}
    return dataclasses.replace(a, projects=projects)


def scale_opex(a: Assumptions, m: float) -> Assumptions:
    """Every project's unit opex per tonne of ore and fixed opex per year multiplied by ``m``.

    Parameters
    ----------
    a : Assumptions
    m : float
        Multiplier.

    Returns
    -------
    Assumptions
        A changed copy.
    """
    projects = {}
    for pid, p in a.projects.items():
        ops = p.operations.model_copy(update={
            "opex_usd_per_t_ore": p.operations.opex_usd_per_t_ore * m,
            "fixed_opex_musd_per_year": p.operations.fixed_opex_musd_per_year * m,
        })
        projects[pid] = p.model_copy(update={"operations": ops})
    return dataclasses.replace(a, projects=projects)


def scaled_annual_probability(p: float, m: float) -> float:
    """An annual event probability with its intensity multiplied by ``m``: ``1 - (1 - p)^m``.

    The event is a Bernoulli trial per year; ``m`` scales the intensity of the equivalent
    Poisson process (``-ln(1 - p)``), so doubling a 2 % hazard gives 3.96 %, not 4 %. Capped
    at :data:`MAX_ANNUAL_PROBABILITY` (the schema's upper bound of a hazard is below 1).

    Examples
    --------
    >>> round(scaled_annual_probability(0.02, 2.0), 4)
    0.0396
    >>> scaled_annual_probability(0.9, 5.0)
    0.999
    """
    return min(1.0 - (1.0 - p) ** m, MAX_ANNUAL_PROBABILITY)


def scale_political_hazards(a: Assumptions, m: float | Mapping[str, float]) -> Assumptions:
    """Countries' political-event intensities multiplied (:func:`scaled_annual_probability`).

    Parameters
    ----------
    a : Assumptions
    m : float or mapping of country id to float
        Intensity multiplier of every country (2 = hazards doubled), or of the named
        countries only (a stress).

    Returns
    -------
    Assumptions
        A changed copy (``a`` itself when nothing changes).
    """
    factors = dict(m) if isinstance(m, Mapping) else {cid: float(m) for cid in a.countries.countries}
    unknown = sorted(set(factors) - set(a.countries.countries))
    if unknown:
        raise KeyError(f"no such country: {', '.join(unknown)}")
    factors = {cid: f for cid, f in factors.items() if f != 1.0}
    if not factors:
        return a
    countries = dict(a.countries.countries)
    for cid, factor in factors.items():
        c = countries[cid]
        events = {name: getattr(c.events, name).model_copy(update={"annual_probability": scaled_annual_probability(
            getattr(c.events, name).annual_probability, factor)}) for name in type(c.events).model_fields}
        countries[cid] = c.model_copy(update={"events": c.events.model_copy(update=events)})
    return dataclasses.replace(a, countries=a.countries.model_copy(update={"countries": countries}))


def force_export_restriction(a: Assumptions, years) -> Assumptions:
    """The Chinese export-restriction regime forced on in the given calendar years (added to those in the files).

    Parameters
    ----------
    a : Assumptions
    years : iterable of int
        Calendar years.

    Returns
    -------
    Assumptions
        A changed copy (``a`` itself when ``years`` is empty).
    """
    years = set(years)
    if not years:
        return a
    regime = a.markets.export_restriction.model_copy(update={
        "forced_years": sorted(set(a.markets.export_restriction.forced_years) | years)})
    return dataclasses.replace(a, markets=a.markets.model_copy(update={"export_restriction": regime}))


def _scale_triangular(tri: Triangular | None, m: float) -> Triangular | None:
    if tri is None:
        return None
    return tri.model_copy(update={"min": tri.min * m, "mode": tri.mode * m, "max": tri.max * m})


def scale_development_durations(a: Assumptions, m: float) -> Assumptions:
    """Exploration, permitting and construction durations (min, mode, max) multiplied by ``m``.

    Covers the projects' own triangular durations and the countries' default permitting
    times; ramp-up is unchanged. Only the phases a project still has to go through (by stage)
    matter.

    Parameters
    ----------
    a : Assumptions
    m : float
        Multiplier of every duration (1.25 = a quarter longer).

    Returns
    -------
    Assumptions
        A changed copy.
    """
    projects = {}
    for pid, p in a.projects.items():
        s = p.schedule
        schedule = s.model_copy(update={
            "exploration_years": _scale_triangular(s.exploration_years, m),
            "permitting_years": _scale_triangular(s.permitting_years, m),
            "construction_years": _scale_triangular(s.construction_years, m),
        })
        projects[pid] = p.model_copy(update={"schedule": schedule})
    countries = {cid: c.model_copy(update={"permitting_years": _scale_triangular(c.permitting_years, m)})
                 for cid, c in a.countries.countries.items()}
    return dataclasses.replace(a, projects=projects,
                               countries=a.countries.model_copy(update={"countries": countries}))


def scale_fx_spot(a: Assumptions, m: float) -> Assumptions:
    """EUR/USD spot (USD per EUR) multiplied by ``m``; the long-run level is unchanged.

    Parameters
    ----------
    a : Assumptions
    m : float
        Multiplier (1.1 = a euro 10 % stronger today).

    Returns
    -------
    Assumptions
        A changed copy.
    """
    fx = a.markets.fx.model_copy(update={"spot": a.markets.fx.spot * m})
    return dataclasses.replace(a, markets=a.markets.model_copy(update={"fx": fx}))


def shift_discount_rate(a: Assumptions, d: float) -> Assumptions:
    """Fund's nominal discount rate plus ``d`` (0.02 = +2 percentage points).

    Parameters
    ----------
    a : Assumptions
    d : float
        Shift of the rate.

    Returns
    -------
    Assumptions
        A changed copy.
    """
    return dataclasses.replace(a, fund=a.fund.model_copy(
        update={"discount_rate_nominal": a.fund.discount_rate_nominal + d}))


def apply_stress(a: Assumptions, stress: StressScenario) -> Assumptions:
    """Assumptions with one named stress of ``stress.yaml`` applied (the input is not changed).

    Spot and long-run price multipliers per material (:func:`scale_prices`), the forced
    export-restriction years (:func:`force_export_restriction`), the EUR/USD spot
    (:func:`scale_fx_spot`) and hazard multipliers per country
    (:func:`scale_political_hazards`: ``p -> 1 - (1 - p)^m``).

    Examples
    --------
    >>> from fundmodel.assumptions import load_assumptions        # doctest: +SKIP
    >>> a = load_assumptions("assumptions")                      # doctest: +SKIP
    >>> s = apply_stress(a, a.stress.scenarios["base_metal_crash_40"])  # doctest: +SKIP
    >>> s.markets.materials["copper"].spot_usd_per_t / a.markets.materials["copper"].spot_usd_per_t  # doctest: +SKIP
    0.6
    """
    a = scale_prices(a, spot=stress.spot_price_multipliers, long_run=stress.long_run_price_multipliers)
    a = force_export_restriction(a, stress.export_restriction_years)
    a = scale_fx_spot(a, stress.fx_spot_multiplier)
    return scale_political_hazards(a, dict(stress.hazard_multipliers))
