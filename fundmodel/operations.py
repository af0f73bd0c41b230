"""Steps 1-4 of the cash-flow engine (:func:`fundmodel.valuation.project_cash_flows`): the year-independent part.

Each step is vectorised over years and scenarios (arrays year-major, ``(n_years, n_scenarios)``,
as the engine's year loop reads them) and returns a small record:

1. :func:`operating_time` -> :class:`OperatingTime`: start (delayed by suspensions), ramp-up,
   unrest losses, reserve depletion, expropriation cut-off;
2. :func:`production_and_revenue` -> :class:`Sales`: tonnes of each product, the European
   share, payable revenue with by-product credits, sales blocked by transfer restrictions;
3. :func:`operating_costs` -> :class:`OperatingCosts`: escalated opex, royalty and tax rates
   with political increases;
4. :func:`capex_schedule` -> :class:`CapexSchedule`: the budget over construction with its
   overrun, studies, sustaining and closure capex.

Steps 5-7 (tax, debt and political effects, which depend on the year before) are the year
loop of :func:`fundmodel.valuation.project_cash_flows`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._years import cumsum_years, first_year
from .assumptions.schema import Project
from .market import MarketPaths
from .political import PoliticalTimeline
from .schedule import ScheduleDraws

__all__ = ["spread_over", "OperatingTime", "operating_time", "Sales", "production_and_revenue", "OperatingCosts",
           "operating_costs", "CapexSchedule", "capex_schedule"]

_EPS = 1e-9


def spread_over(total: np.ndarray, t0: np.ndarray, t1: np.ndarray, n_years: int) -> np.ndarray:
    """Spread amounts uniformly over the time windows ``[t0, t1)``, per year (year-major).

    Parameters
    ----------
    total : ndarray of shape (n_scenarios,)
        Amount to spread.
    t0, t1 : ndarray of shape (n_scenarios,)
        Window in years from the valuation date; a zero-length window puts the
        whole amount in the year containing ``t0``.
    n_years : int

    Returns
    -------
    ndarray of shape (n_years, n_scenarios)
        The part of each amount falling in each year (parts beyond the horizon dropped).

    Notes
    -----
    With ``F(x) = clip((x - t0) / (t1 - t0), 0, 1)`` the share of year ``j`` is
    ``F(j + 1) - F(j)``; a zero width makes ``F`` a step at ``t0``.

    Examples
    --------
    >>> spread_over(np.array([10.0]), np.array([0.5]), np.array([2.5]), 4).T.tolist()
    [[2.5, 5.0, 2.5, 0.0]]
    """
    edges = np.arange(n_years + 1, dtype=float)[:, None]
    width = np.maximum(t1 - t0, 1e-300)
    cumulative = np.clip((edges - t0) / width, 0.0, 1.0)
    return np.diff(cumulative, axis=0) * total


@dataclass(frozen=True)
class OperatingTime:
    """Step 1 of :func:`project_cash_flows`: when the mine runs and how much ore it moves.

    Arrays are year-major, shape (n_years, n_scenarios), except ``start`` and
    ``construction_end`` (n_scenarios,): the year production starts (``inf`` if never
    developed) and the end of construction, both delayed year for year by suspensions
    before the planned start.
    """

    suspended: np.ndarray  #: licence suspended in the year (bool)
    start: np.ndarray
    construction_end: np.ndarray
    alive: np.ndarray  #: up to and including the expropriation year (bool)
    started: np.ndarray  #: fraction of the year after the start, 0 to 1
    reserve_mt: float  #: ore reserve [Mt]
    cum_ore: np.ndarray  #: ore mined by the year's end [Mt]
    ore_mt: np.ndarray  #: ore mined in the year [Mt]
    site_active: np.ndarray  #: fixed costs run (started, alive, reserve not exhausted before the year)
    operating: np.ndarray  #: ore was mined in the year (bool)
    depleted: np.ndarray  #: reserve exhausted by the year's end (bool)


def operating_time(project: Project, schedule: ScheduleDraws, politics: PoliticalTimeline,
                   jj: np.ndarray) -> OperatingTime:
    """Step 1: start, suspensions, ramp-up, unrest losses and reserve depletion (see :class:`OperatingTime`)."""
    ops = project.operations
    suspended = politics.suspended.T
    planned_start = schedule.construction_end
    # suspensions in years that end before the planned start delay it year for year
    pre_start_delay = (suspended & (jj + 1 <= planned_start)).sum(axis=0)
    start = np.where(schedule.developed, planned_start + pre_start_delay, np.inf)
    construction_end = schedule.construction_end + pre_start_delay
    alive = jj <= politics.expropriation_year  # flows of the expropriation year still happen
    started = np.clip(jj + 1 - start, 0.0, 1.0)  # fraction of the year after start
    running = started * ~suspended
    running *= alive
    age_mid = cumsum_years(running) - running / 2
    rampup = schedule.rampup_years
    ramp = np.where(rampup > _EPS, np.clip(age_mid / np.maximum(rampup, _EPS), 0.0, 1.0), 1.0)
    ore_uncapped_mt = running * ramp
    ore_uncapped_mt *= ops.ore_mtpa * schedule.nameplate_share * (1.0 - politics.unrest_loss.T)
    reserve_mt = ops.ore_mtpa * ops.mine_life_years
    cum_ore = np.minimum(cumsum_years(ore_uncapped_mt), reserve_mt)
    ore_mt = np.diff(cum_ore, axis=0, prepend=0.0)
    depleted = cum_ore >= reserve_mt * (1 - 1e-12)
    depleted_before = depleted & (ore_mt <= 0)
    site_active = (started > 0) & alive & ~depleted_before
    return OperatingTime(suspended=suspended, start=start, construction_end=construction_end, alive=alive,
                         started=started, reserve_mt=reserve_mt, cum_ore=cum_ore, ore_mt=ore_mt,
                         site_active=site_active, operating=ore_mt > 0, depleted=depleted)


@dataclass(frozen=True)
class Sales:
    """Step 2 of :func:`project_cash_flows`: tonnes and revenue.

    ``tonnes``, ``tonnes_eu``: (n_products, n_years, n_scenarios) [t of each priced product];
    ``revenue``: (n_years, n_scenarios) [USD m, nominal], by-product credits included and
    sales blocked by transfer restrictions removed.
    """

    tonnes: np.ndarray
    tonnes_eu: np.ndarray
    revenue: np.ndarray


def production_and_revenue(project: Project, market: MarketPaths, schedule: ScheduleDraws,
                           politics: PoliticalTimeline, time: OperatingTime) -> Sales:
    """Step 2: ore x grade x product factor x recovery, the European share, and payable revenue."""
    ore_mt = time.ore_mt
    n_years, n = ore_mt.shape
    sold_share = 1.0 - politics.transfer_restricted.T * politics.sales_blocked_share
    n_products = len(project.products)
    tonnes = np.empty((n_products, n_years, n))
    tonnes_eu = np.empty_like(tonnes)
    revenue = np.zeros((n_years, n))
    for k, (material, product) in enumerate(project.products.items()):  # loop over products
        recovery = np.clip(product.recovery + schedule.recovery_shift, 0.0, 1.0)
        t_per_mt = 1e6 * (product.grade_pct / 100.0) * product.product_factor * recovery
        np.multiply(ore_mt, t_per_mt, out=tonnes[k])
        np.multiply(tonnes[k], sold_share * project.offtake.eu_share, out=tonnes_eu[k])
        price = market.price_usd_per_t[market.index(material)].T
        # by-product credits (value, not tonnes) are sold with the product at its price
        with_credits = 1.0 + product.credit_factor / product.product_factor
        revenue += tonnes[k] * price * (product.payability * with_credits / 1e6)
    revenue *= sold_share
    return Sales(tonnes=tonnes, tonnes_eu=tonnes_eu, revenue=revenue)


@dataclass(frozen=True)
class OperatingCosts:
    """Step 3 of :func:`project_cash_flows` (n_years, n_scenarios): opex, royalty, EBITDA [USD m,
    nominal] and the tax rate with political increases."""

    opex: np.ndarray
    royalty: np.ndarray
    ebitda: np.ndarray
    tax_rate: np.ndarray


def operating_costs(project: Project, schedule: ScheduleDraws, politics: PoliticalTimeline, time: OperatingTime,
                    sales: Sales, escalation: np.ndarray) -> OperatingCosts:
    """Step 3: variable and fixed opex (escalated), royalty and tax rates with political increases (capped at 95 %)."""
    ops, fiscal = project.operations, project.fiscal
    opex = time.ore_mt * (ops.opex_usd_per_t_ore * schedule.opex_multiplier)
    opex += ops.fixed_opex_musd_per_year * time.site_active
    opex *= escalation
    royalty_rate = np.minimum(fiscal.royalty_rate + politics.royalty_increase.T, 0.95)
    tax_rate = np.minimum(fiscal.tax_rate + politics.tax_increase.T, 0.95)
    royalty = royalty_rate * sales.revenue
    return OperatingCosts(opex=opex, royalty=royalty, ebitda=sales.revenue - royalty - opex, tax_rate=tax_rate)


@dataclass(frozen=True)
class CapexSchedule:
    """Step 4 of :func:`project_cash_flows` (n_years, n_scenarios) [USD m, nominal unless noted].

    ``budget_profile``: the initial capex budget spread over construction (real, before
    overrun); ``nominal``: escalation while the project is alive; ``initial``: the budget
    with its overrun; ``dev_capex``: initial plus studies; ``sustaining``; ``closure`` (the
    year after depletion); ``total``.
    """

    budget_profile: np.ndarray
    nominal: np.ndarray
    initial: np.ndarray
    dev_capex: np.ndarray
    sustaining: np.ndarray
    closure: np.ndarray
    total: np.ndarray


def capex_schedule(project: Project, schedule: ScheduleDraws, time: OperatingTime, escalation: np.ndarray,
                   jj: np.ndarray) -> CapexSchedule:
    """Step 4: development capex (budget x overrun over construction, studies), sustaining and closure capex."""
    capex = project.capex
    n_years, n = time.ore_mt.shape
    budget_profile = spread_over(np.where(schedule.developed, capex.initial_musd, 0.0),
                                 schedule.construction_start, time.construction_end, n_years)
    nominal = escalation * time.alive
    initial = budget_profile * schedule.capex_multiplier * nominal
    if capex.studies_musd > 0:
        studies = spread_over(np.full(n, capex.studies_musd), np.zeros(n), schedule.studies_end, n_years)
        studies *= nominal
        dev_capex = initial + studies
    else:
        dev_capex = initial
    sustaining = capex.sustaining_musd_per_year * time.operating * escalation
    depleted_year = first_year(time.depleted)
    closure = capex.closure_musd * (jj == depleted_year + 1) * nominal
    return CapexSchedule(budget_profile=budget_profile, nominal=nominal, initial=initial, dev_capex=dev_capex,
                         sustaining=sustaining, closure=closure, total=dev_capex + sustaining + closure)
