"""Cash-flow engine: from scenario drivers to project, equity and lender cash flows.

Annual, nominal USD, arrays ``(n_scenarios, n_years)``; year ``j`` covers
``[j, j+1)`` from the valuation date and its flows fall at its end. Real
costs and capex escalate with the fund's inflation assumption, the same rate
that turns real prices nominal, so discounting at the nominal fund rate is
consistent (Fisher). All loops run over *years*, never over scenarios.

Mechanics, in the order they are computed:

1. **Operating time**: production starts at the end of construction, later by any
   licence suspension drawn before that date; abandoned exploration projects never
   produce. Within a year the plant runs the fraction of the year after the start,
   except when suspended, after expropriation, or once the reserve
   (``ore_mtpa * mine_life_years``) is depleted. Throughput ramps linearly over the
   ramp-up years and loses the unrest share.
2. **Revenue** per product: ore x grade x (product factor + credit factor) x recovery x
   payability x price, less the share of sales blocked by a transfer restriction; tonnes are
   physical (product factor only: by-product credits are value, not tonnes).
3. **Costs**: unit opex per tonne of ore (x a per-scenario multiplier) plus fixed
   opex while the site is active (also when suspended); royalty on revenue at the
   base rate plus political increases.
4. **Capex**: studies spread until the investment decision, initial capex (x the
   overrun multiplier) spread over construction, sustaining capex while operating,
   closure the year after depletion.
5. **Tax**: straight-line depreciation of capitalised capex from first production,
   unlimited loss carry-forward, computed unlevered (project) and levered (equity).
6. **Debt**: drawn with the *budgeted* capex profile (overruns are the sponsors'),
   interest on the opening balance plus half the year's draws, equal principal
   instalments after the grace period (a licence suspension brings a standstill:
   interest capitalised, instalments deferred). Until completion (the first full year after
   ramp-up) the sponsors carry debt service (completion support); after it, debt service comes from CFADS and a
   debt-service reserve of ``reserve_months``, then from sponsor cures up to
   ``sponsor_support_musd`` over the loan's life; when all fall short the debt
   defaults, lenders recover ``recovery_rate`` of the outstanding balance and the
   sponsors' equity ends.
7. **Political effects**: expropriation ends the project and pays compensation
   (share of net book value), which first repays debt; forced participation hands
   the state a carried share of later distributions and pays the sponsors
   compensation on the book equity taken; trapped cash is released with a haircut
   when the transfer restriction ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assumptions.schema import Project, Stage
from ._years import cumsum_years, first_year
from .finance import discount_factors, irr
from .market import MarketPaths
from .sampling import BLOCK
from .political import PoliticalTimeline
from .schedule import ScheduleDraws

_EPS = 1e-9


@dataclass(frozen=True)
class ProjectCashFlows:
    """Cash flows of one project in nominal USD m, arrays of shape (n_scenarios, n_years).

    Attributes
    ----------
    revenue_musd, opex_musd, royalty_musd, tax_musd, capex_musd
        Components of the unlevered project cash flow (tax is the unlevered tax).
    project_fcf_musd
        Unlevered free cash flow to all capital providers after political events
        (expropriation compensation included); dilution is an equity-level effect.
    equity_cf_musd
        Cash flow to the original sponsors' equity (cash calls negative).
    lender_cf_musd
        Cash flow to the senior lenders (draws negative, service and recoveries positive).
    lender_loss_musd
        Debt written off at default (balance less recovery, or less expropriation
        compensation), in the year of the default; what a loan guarantee covers.
    insurable_loss_musd
        Sponsors' equity loss from the events political-risk cover insures, in the year it
        occurs: uncompensated book equity at expropriation (net book value less debt, less
        the compensation the equity receives), the uncompensated book equity the state takes
        by forced participation, and trapped cash lost (the haircut on release, all of it
        at expropriation). Unrest and licence suspension (business interruption) are not
        in it.
    debt_outstanding_musd
        Senior debt outstanding at the end of each year.
    tonnes_produced_t, tonnes_eu_t : ndarray of shape (n_products, n_scenarios, n_years)
        Recovered product, and the part delivered to European buyers (offtake share, after
        blocked sales).
    first_production_year : ndarray of int, shape (n_scenarios,)
        Year index of first production, ``n_years`` when there is none within the horizon.
    default_year : ndarray of int, shape (n_scenarios,)
        Year index of the debt default, ``n_years`` when none.
    min_dscr : ndarray of shape (n_scenarios,)
        Lowest debt-service cover ratio (CFADS / debt service) over operating years with
        debt service; ``inf`` when there is none.
    acquisition_musd : float
        Price of the equity paid at the valuation date (not in ``equity_cf_musd``, whose
        flows fall at year ends).
    """

    revenue_musd: np.ndarray
    opex_musd: np.ndarray
    royalty_musd: np.ndarray
    tax_musd: np.ndarray
    capex_musd: np.ndarray
    project_fcf_musd: np.ndarray
    equity_cf_musd: np.ndarray
    lender_cf_musd: np.ndarray
    lender_loss_musd: np.ndarray
    insurable_loss_musd: np.ndarray
    debt_outstanding_musd: np.ndarray
    tonnes_produced_t: np.ndarray
    tonnes_eu_t: np.ndarray
    first_production_year: np.ndarray
    default_year: np.ndarray
    min_dscr: np.ndarray
    acquisition_musd: float = 0.0


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


def project_cash_flows(
    project: Project,
    inflation: float,
    market: MarketPaths,
    schedule: ScheduleDraws,
    politics: PoliticalTimeline,
) -> ProjectCashFlows:
    """Compute a project's cash flows in every scenario.

    Parameters
    ----------
    project : Project
        The project's assumptions.
    inflation : float
        Annual cost escalation (real USD of the valuation date -> nominal USD).
    market : MarketPaths
        Prices (nominal USD per tonne) for the same scenarios.
    schedule : ScheduleDraws
        Schedule, overrun and cost outcomes.
    politics : PoliticalTimeline
        Political-event timeline.

    Returns
    -------
    ProjectCashFlows
    """
    n, n_years = market.fx_usd_per_eur.shape
    ops, capex, fiscal, debt = project.operations, project.capex, project.fiscal, project.debt
    # Arrays here are year-major (n_years, n): every year is a contiguous block of scenarios,
    # which the year loop below reads and writes; results are returned as (n, n_years) views.
    jj = np.arange(n_years)[:, None]
    escalation = (1.0 + inflation) ** jj

    # --- 1. operating time -------------------------------------------------------------
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
    operating = ore_mt > 0

    # --- 2. production and revenue -----------------------------------------------------
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

    # --- 3. operating costs and royalty -------------------------------------------------
    opex = ore_mt * (ops.opex_usd_per_t_ore * schedule.opex_multiplier)
    opex += ops.fixed_opex_musd_per_year * site_active
    opex *= escalation
    royalty_rate = np.minimum(fiscal.royalty_rate + politics.royalty_increase.T, 0.95)
    tax_rate = np.minimum(fiscal.tax_rate + politics.tax_increase.T, 0.95)
    royalty = royalty_rate * revenue
    ebitda = revenue - royalty - opex

    # --- 4. capex --------------------------------------------------------------------------
    budget_profile = spread_over(np.where(schedule.developed, capex.initial_musd, 0.0),
                                 schedule.construction_start, construction_end, n_years)
    nominal = escalation * alive
    initial = budget_profile * schedule.capex_multiplier * nominal
    if capex.studies_musd > 0:
        studies = spread_over(np.full(n, capex.studies_musd), np.zeros(n), schedule.studies_end, n_years)
        studies *= nominal
        dev_capex = initial + studies
    else:
        dev_capex = initial
    sustaining = capex.sustaining_musd_per_year * operating * escalation
    depleted_year = first_year(depleted)
    closure = capex.closure_musd * (jj == depleted_year + 1) * nominal
    capex_total = dev_capex + sustaining + closure

    # --- 5-7. tax, debt and political effects, year by year -----------------------------
    if project.stage is Stage.PRODUCTION or capex.initial_musd <= 0:
        draws = np.zeros((n_years, n))
        opening_debt = np.full(n, debt.amount_musd)
        first_draw = np.zeros(n)
    else:
        draws = budget_profile * (debt.amount_musd / capex.initial_musd)
        opening_debt = np.zeros(n)
        first_draw = first_year(draws > 0)
    repay_from = first_draw + debt.grace_years
    instalment = debt.amount_musd / (debt.tenor_years - debt.grace_years)
    reserve_target = debt.reserve_months / 12.0 * (debt.amount_musd * debt.interest_rate + instalment)
    # lenders' completion: the first full year after ramp-up; until then the sponsors
    # carry debt service (completion support), so ramp-up shortfalls are not defaults
    completion_year = np.ceil(start + schedule.rampup_years)

    # The loop reads and writes one year of every array at a time (contiguous rows), with
    # masks as 0/1 floats so that selections are multiplications (np.where and bool casts
    # cost several times more).
    ebitda_y = ebitda
    tax_rate_y = tax_rate
    dev_capex_y = dev_capex
    capitalised_y = dev_capex + sustaining
    opex_capex_y = sustaining + closure  # funded from operating cash flow
    capex_total_y = capex_total
    alive_y = alive.astype(float)
    producing_y = (started > 0).astype(float)  # depreciation runs from first production
    expro_year = politics.expropriation_year
    expro_years = set(np.unique(expro_year[expro_year < n_years]).tolist())
    has_debt = debt.amount_musd > 0
    has_participation = bool(politics.participation_event.any())
    has_restriction = bool(politics.transfer_restricted.any())
    has_suspension = bool(suspended.any())
    if has_suspension:
        suspended_y = suspended.astype(float)
    if has_debt:
        draws_y = draws * alive
    if has_participation:
        state_share_y = politics.state_share.T
        participation_y = politics.participation_event.T.astype(float)
    if has_restriction:
        restricted_y = politics.transfer_restricted.T.astype(float)

    tax_u = np.empty((n_years, n))
    project_fcf = np.zeros((n_years, n))
    equity = np.empty((n_years, n))
    lender = np.zeros((n_years, n))
    written_off = np.zeros((n_years, n))
    insurable = np.zeros((n_years, n))
    outstanding = np.zeros((n_years, n))
    dscr_min = np.full(n, np.inf)

    balance = opening_debt.copy()
    reserve = np.zeros(n)
    support_left = np.full(n, debt.sponsor_support_musd)
    pool_left = np.zeros(n)
    capitalised = np.zeros(n)
    loss_u = np.zeros(n)
    loss_l = np.zeros(n)
    trapped = np.zeros(n)
    solvent = np.ones(n)  # 0 once the debt has defaulted: the sponsors' equity has ended
    default_year = np.full(n, n_years)
    comp_share = politics.compensation_share
    haircut = politics.trapped_cash_haircut
    dep_rate = 1.0 / capex.depreciation_years
    zero = np.zeros(n)

    for t in range(n_years):  # loop over years; every line is vectorised over scenarios
        # depreciation of the capitalised pool from first production
        capitalised += capitalised_y[t]
        pool_left += capitalised_y[t]
        dep = np.minimum(pool_left, capitalised * dep_rate)
        dep *= producing_y[t]
        pool_left -= dep

        # unlevered tax (project cash flow), loss carried forward without limit
        ebitda_t, rate_t = ebitda_y[t], tax_rate_y[t]
        taxable = ebitda_t - dep
        tax_u[t] = rate_t * np.maximum(taxable - loss_u, 0.0)
        loss_u = np.maximum(loss_u - taxable, 0.0)

        if has_debt:
            # debt service due
            draw = draws_y[t]
            live = (((balance > _EPS) | (draw > 0)) * solvent).astype(float)
            interest = debt.interest_rate * (balance + 0.5 * draw) * live
            balance += draw * live
            principal = np.minimum(balance, instalment) * (live * (t >= repay_from))
            if has_suspension:
                # political force majeure: lenders grant a standstill while the licence is
                # suspended; interest is capitalised and instalments resume afterwards
                standstill = suspended_y[t]
                balance += interest * standstill
                interest *= 1.0 - standstill
                principal *= 1.0 - standstill
            service = interest + principal

            # levered tax and cash flow available for debt service
            taxable -= interest
            tax_l = rate_t * np.maximum(taxable - loss_l, 0.0)
            loss_l = np.maximum(loss_l - taxable, 0.0)
            cfads = ebitda_t - tax_l - opex_capex_y[t]

            # after completion: reserve, then sponsor cures, else default
            completed = live * (t >= completion_year)
            fund_reserve = completed * (t == np.maximum(completion_year, first_draw))
            reserve += (reserve_target - reserve) * fund_reserve
            shortfall = np.maximum(service - cfads, 0.0) * completed
            new_default = (shortfall > reserve + support_left + _EPS).astype(float)
            paid = live * (1.0 - new_default)
            use_reserve = np.minimum(shortfall, reserve) * paid
            cure = (shortfall - use_reserve) * paid
            reserve -= use_reserve
            support_left -= cure
            np.minimum(dscr_min, cfads / np.maximum(service, _EPS), out=dscr_min,
                       where=(completed > 0) & (service > _EPS))

            lender_t = service * paid - draw + debt.recovery_rate * balance * new_default
            if new_default.any():
                written_off[t] = (1.0 - debt.recovery_rate) * balance * new_default
            balance -= principal * paid + balance * new_default
            if new_default.any():
                default_year[new_default > 0] = t
                solvent -= new_default

            # sponsors: development capex net of debt, reserve movements, operating surplus
            surplus = cfads - service * live + use_reserve + cure
            refill = np.clip(np.minimum(reserve_target - reserve, surplus), 0.0, None) * completed
            reserve += refill
            released = reserve * (1.0 - live)  # debt repaid: the reserve goes back to the sponsors
            reserve -= released
            eq_t = surplus - refill + released - cure - reserve_target * fund_reserve - (dev_capex_y[t] - draw)
            eq_t *= solvent
        else:
            tax_l = tax_u[t]
            lender_t = zero
            eq_t = ebitda_t - tax_l - opex_capex_y[t] - dev_capex_y[t]

        compensation = zero
        expro_now = None
        if t in expro_years:
            # expropriation at the end of this year: compensation repays debt first
            expro_now = (expro_year == t).astype(float)
            compensation = comp_share * pool_left * expro_now
            book_equity = np.maximum(pool_left - balance, 0.0)
            solvent_before = solvent.copy()
            if has_debt:
                to_lenders = np.minimum(compensation + reserve, balance) * expro_now
                expro_default = expro_now * (balance > to_lenders + _EPS) * solvent
                default_year[expro_default > 0] = t
                lender_t = lender_t + to_lenders
                written_off[t] += (balance - to_lenders) * expro_default
                to_equity = (compensation + reserve - to_lenders) * expro_now * solvent
                balance *= 1.0 - expro_now
                reserve *= 1.0 - expro_now
                solvent -= expro_default
            else:
                to_equity = compensation
            eq_t += to_equity
            # uncompensated book value of the sponsors' equity: what political-risk cover pays
            insurable[t] += np.maximum(book_equity - to_equity, 0.0) * expro_now * solvent_before

        if has_participation:
            # forced state participation: carried share of distributions, compensation on book equity
            share = state_share_y[t]
            eq_t -= np.maximum(eq_t, 0.0) * share
            taken = share * np.maximum(pool_left - balance, 0.0) * participation_y[t] * solvent
            eq_t += politics.participation_compensation_share * taken
            insurable[t] += (1.0 - politics.participation_compensation_share) * taken  # creeping expropriation

        if has_restriction:
            # transfer restriction: distributions trapped, released with a haircut
            restricted = restricted_y[t]
            trap = np.maximum(eq_t, 0.0) * restricted
            trapped += trap
            eq_t -= trap
            release = (1.0 - restricted) * (trapped > 0)
            eq_t += trapped * (1.0 - haircut) * release
            insurable[t] += trapped * haircut * release  # inconvertibility loss
            trapped *= 1.0 - release
            if expro_now is not None:  # cash still trapped at expropriation is lost
                insurable[t] += trapped * expro_now
                trapped *= 1.0 - expro_now

        equity[t] = eq_t
        if has_debt:
            lender[t] = lender_t
            outstanding[t] = balance
        if expro_now is not None:
            project_fcf[t] = compensation

    # nothing flows after the expropriation year
    equity *= alive_y
    lender *= alive_y
    project_fcf += (ebitda - tax_u - capex_total) * alive_y

    first_prod = first_year(operating)
    return ProjectCashFlows(
        revenue_musd=revenue.T,
        opex_musd=opex.T,
        royalty_musd=royalty.T,
        tax_musd=tax_u.T,
        capex_musd=capex_total.T,
        project_fcf_musd=project_fcf.T,
        equity_cf_musd=equity.T,
        lender_cf_musd=lender.T,
        lender_loss_musd=written_off.T,
        insurable_loss_musd=insurable.T,
        debt_outstanding_musd=outstanding.T,
        tonnes_produced_t=tonnes.transpose(0, 2, 1),
        tonnes_eu_t=tonnes_eu.transpose(0, 2, 1),
        first_production_year=first_prod,
        default_year=default_year,
        min_dscr=dscr_min,
        acquisition_musd=capex.acquisition_musd,
    )


@dataclass(frozen=True)
class ProjectValues:
    """Per-scenario value measures of one project in EUR.

    Attributes
    ----------
    project_npv_meur, equity_npv_meur, lender_npv_meur : ndarray of shape (n_scenarios,)
        NPVs at the fund's nominal discount rate of the EUR-converted flows; the equity NPV is
        net of the entry price (``acquisition_musd`` at the spot rate, at t = 0).
    equity_irr : ndarray of shape (n_scenarios,)
        Equity IRR of the EUR flows after paying the entry price at t = 0: the investment
        root (lowest rate at which the NPV falls through zero, see :func:`~fundmodel.finance.irr`),
        NaN where there is none.
    equity_cf_meur, lender_cf_meur : ndarray of shape (n_scenarios, n_years)
        EUR cash flows (kept for the instrument payoffs).
    """

    project_npv_meur: np.ndarray
    equity_npv_meur: np.ndarray
    lender_npv_meur: np.ndarray
    equity_irr: np.ndarray
    equity_cf_meur: np.ndarray
    lender_cf_meur: np.ndarray


def value_cash_flows(flows: ProjectCashFlows, fx_usd_per_eur: np.ndarray, discount_rate: float,
                     *, with_irr: bool = True) -> ProjectValues:
    """Convert a project's USD flows to EUR at the simulated rate and discount them.

    Parameters
    ----------
    flows : ProjectCashFlows
    fx_usd_per_eur : ndarray of shape (n_scenarios, n_years)
    discount_rate : float
        Fund's nominal EUR rate.
    with_irr : bool, default True
        Skip the IRR (e.g. in risk-attribution re-runs that only need NPVs).

    Returns
    -------
    ProjectValues
    """
    n_years = fx_usd_per_eur.shape[1]
    df = discount_factors(discount_rate, n_years)
    # year-major (n_years, n): contiguous per year, as the engine stores them
    fx = fx_usd_per_eur.T
    project_eur = flows.project_fcf_musd.T / fx
    equity_eur = flows.equity_cf_musd.T / fx
    lender_eur = flows.lender_cf_musd.T / fx
    n = equity_eur.shape[1]

    def present_value(x: np.ndarray) -> np.ndarray:
        # a fixed year-by-year sum: each scenario's NPV is bit-for-bit the same in any chunk
        total = np.zeros(n)
        for t in range(n_years):  # loop over years
            total += df[t] * x[t]
        return total

    # the equity's entry price falls at the valuation date (t = 0), before the year-end flows
    entry_eur = flows.acquisition_musd / fx[0]
    if with_irr:
        # BLAS kernels may round differently with the number of rows: fixed blocks of BLOCK
        # scenarios (chunks start on block boundaries) keep the IRRs chunk-invariant bit for bit
        rows = np.empty((n, n_years + 1))
        rows[:, 0] = -entry_eur
        rows[:, 1:] = equity_eur.T
        equity_irr = (np.concatenate([irr(rows[lo: lo + BLOCK], root="investment") for lo in range(0, n, BLOCK)])
                      if n else np.empty(0))
    else:
        equity_irr = np.full(n, np.nan)
    return ProjectValues(
        project_npv_meur=present_value(project_eur),
        equity_npv_meur=present_value(equity_eur) - entry_eur,
        lender_npv_meur=present_value(lender_eur),
        equity_irr=equity_irr,
        equity_cf_meur=equity_eur.T,
        lender_cf_meur=lender_eur.T,
    )
