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
6. **Debt** (the credit model, below): drawn with the *budgeted* capex profile, interest
   on the opening balance plus half the year's draws, equal principal instalments after
   the grace period.
7. **Political effects**: expropriation ends the project and pays compensation
   (share of net book value), which first repays debt; forced participation hands
   the state a carried share of later distributions and pays the sponsors
   compensation on the book equity taken; trapped cash is released with a haircut
   when the transfer restriction ends.

Credit model (issue 13: default and recovery as in project finance)
-------------------------------------------------------------------
The loan is sized by a stated rule (:class:`~fundmodel.assumptions.schema.DebtSizing`,
:func:`fundmodel.credit.size_debt`): the largest amount whose base case keeps a minimum
DSCR in every repayment year, capped by a maximum gearing. Then, per scenario and year:

- **Before completion** (the first full year after ramp-up, the lenders' completion test)
  the sponsors fund capex overruns and the debt service that CFADS does not cover under a
  completion guarantee capped at ``completion_guarantee_musd``; beyond the cap a standby
  facility of ``standby_share`` of the loan is drawn (same rate, repaid with the
  instalments); beyond that the sponsors inject cash only if their equity is worth more
  than the injection, else the debt defaults.
- **After completion** a shortfall (debt service above CFADS) is met from the debt-service
  reserve (``reserve_months`` of first-year service, funded at completion and topped up
  from surplus cash), then by a sponsor cure *while the continuation value of the equity
  exceeds the cure* (strategic default; ``sponsor_support_musd`` optionally caps the cures
  as a liquidity limit). The continuation value is a least-squares regression on the
  current state only (price level, reserve left, production started, debt outstanding,
  fiscal take, state share, unit-cost level, temporary political event, capex spent),
  fitted once per run on a pilot sample (Longstaff and Schwartz 2001;
  :mod:`fundmodel.lsm`, :func:`fundmodel.credit.fit_credit_policies`) and applied to every
  scenario out of sample.
- **Temporary political events** (licence suspension, transfer restriction, unrest) bring a
  standstill: the lenders take the debt service that CFADS covers, interest first, and
  capitalise the unpaid interest and defer the unpaid principal (the instalments resume
  afterwards, so the loan is rescheduled by extending its maturity); no reserve draw, no
  cure, no default for the scheduled service of such a year.
- **At default** the sponsors' equity ends (they keep what they paid that year under their
  obligations); the lenders' claim is the balance plus the year's unpaid interest; they
  recover the year's cash for debt service, the reserve and the going-concern value of the
  project net of distress costs (``distress_cost_share``), at most the claim:
  ``R = min(claim, reserve + max(cash + (1 - d) GCV+, cash+))``. The going-concern value
  ``GCV`` is the regression estimate of the project's unlevered free cash flows after the
  default year, discounted at the asset rate (:func:`fundmodel.rates.market_rates`). The
  project **keeps producing** for its new owners: project cash flows and tonnes are
  unaffected by a default, only the claims on them change. Expropriation is handled as
  before (compensation and the reserve repay the lenders first).

Why this and not the former mechanics: with a fixed share of the balance recovered, sponsor
support capped at a small fixed amount after completion, standstills only for licence
suspensions and hand-picked loan amounts, the model defaulted 2-5 times as often as project
finance history (10-32 % of scenarios against Moody's 6.7 % ten-year cumulative rate for
unrated project-finance bank loans) and recovered 35-50 % against ~80 %. In project finance
(i) debt is sized on the lenders' base case with a cover ratio, (ii) sponsors keep curing
a project that is worth keeping, so a liquidity shortfall of a valuable project is rarely a
default, (iii) political force majeure leads to standstills and reschedulings, and (iv)
defaulted projects mostly keep operating under new owners, so recoveries reflect the value of
the going concern, 100 % in about two thirds of defaults.

References
----------
Moody's Investors Service (2017). Default and Recovery Rates for Project Finance Bank Loans,
1983-2015. 10-year cumulative default rate 6.7 % for unrated PF bank loans, higher in
non-high-income countries and in the first years after financial close; average ultimate
recovery ~80 %, 100 % in about two thirds of defaults.
Longstaff, F. A., and Schwartz, E. S. (2001). Valuing American options by simulation: a
simple least-squares approach. *Review of Financial Studies* 14(1), 113-147.
Andrade, G., and Kaplan, S. N. (1998). How costly is financial (not economic) distress?
*Journal of Finance* 53(5), 1443-1493 (distress costs 10-20 % of firm value).
Yescombe, E. R. (2014). *Principles of Project Finance*, 2nd ed. Academic Press (cover
ratios, completion support, standby facilities, reschedulings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assumptions.schema import Project, Stage
from ._years import cumsum_years, first_year
from .finance import discount_factors, irr
from .lsm import RegressionValue, StoppingPolicy, Terms
from .market import MarketPaths
from .operations import capex_schedule, operating_costs, operating_time, production_and_revenue
from .sampling import BLOCK
from .political import PoliticalTimeline
from .schedule import ScheduleDraws

_EPS = 1e-9

#: State variables of the credit decisions (columns of :attr:`CreditRecord.state`), each known
#: at the end of the year it describes.
CREDIT_STATE = (
    "log_price",        # ln(real price of the primary material / CreditPolicy.reference_price_usd_per_t)
    "reserve_left",     # share of the reserve not yet mined
    "producing",        # 1 once production has started
    "debt_share",       # debt outstanding (after the year's draws) / the loan amount
    "fiscal_increase",  # royalty + income-tax rate increases from political events
    "state_share",      # equity share taken by the state (forced participation)
    "log_opex",         # ln(unit-cost multiplier) once producing (known from operations)
    "temporary_event",  # 1 in a year of licence suspension, transfer restriction or unrest
    "capex_spent",      # initial capex spent so far / budget (real), overruns included
)
#: Basis functions of the credit regressions (:func:`fundmodel.lsm.monomial_basis`): cubic in
#: the price, quadratic in the reserve and capex spent, price interactions, linear otherwise.
CREDIT_TERMS: Terms = ((), (0,), (0, 0), (0, 0, 0), (1,), (1, 1), (0, 1), (2,), (0, 2), (3,), (0, 3),
                       (4,), (5,), (6,), (7,), (8,), (8, 8), (0, 8))


@dataclass(frozen=True)
class CreditPolicy:
    """The fitted credit decisions of one project (:func:`fundmodel.credit.fit_credit_policies`).

    Attributes
    ----------
    reference_price_usd_per_t : float
        Real long-run price of the primary material the regressions were fitted with (the
        price state is measured against it, so a price level, not a ratio, drives them).
    equity : StoppingPolicy or None
        The sponsors' walk-away rule: they stop supporting the loan when the voluntary cash it
        needs exceeds the continuation value of their equity. None: they always support it.
    going_concern : RegressionValue or None
        Continuation value of the unlevered project (USD m at the end of the year, discounted
        at the asset rate). None: zero (lenders recover cash and reserve only).
    """

    reference_price_usd_per_t: float = 1.0
    equity: StoppingPolicy | None = None
    going_concern: RegressionValue | None = None


@dataclass(frozen=True)
class CreditRecord:
    """Per-year credit quantities of a run with support always given (``record=True``).

    What :func:`fundmodel.credit.fit_credit_policies` regresses and the debt sizing reads.
    Arrays are year-major, shape (n_years, n_scenarios) unless stated.

    Attributes
    ----------
    state : ndarray of shape (n_years, n_scenarios, len(CREDIT_STATE))
        :data:`CREDIT_STATE` at each year end.
    equity_flow : ndarray
        Sponsors' equity flow of the year (USD m) when they support the loan.
    voluntary : ndarray
        Cash the sponsors would have to inject voluntarily that year (beyond their
        obligations) to keep the loan performing; where > 0 they decide.
    live : ndarray of bool
        Debt outstanding or being drawn that year.
    cfads, service_due, principal_due : ndarray
        Cash flow available for debt service, scheduled debt service and principal (USD m).
    completed : ndarray of bool
        Live debt after completion.
    """

    state: np.ndarray
    equity_flow: np.ndarray
    voluntary: np.ndarray
    live: np.ndarray
    cfads: np.ndarray
    service_due: np.ndarray
    principal_due: np.ndarray
    completed: np.ndarray


@dataclass(frozen=True)
class ProjectCashFlows:
    """Cash flows of one project in nominal USD m, arrays of shape (n_scenarios, n_years).

    Attributes
    ----------
    revenue_musd, opex_musd, royalty_musd, tax_musd, capex_musd
        Components of the unlevered project cash flow (tax is the unlevered tax).
    project_fcf_musd
        Unlevered free cash flow to all capital providers after political events
        (expropriation compensation included); dilution is an equity-level effect. A debt
        default does not change it: the project keeps producing for its new owners.
    equity_cf_musd
        Cash flow to the original sponsors' equity (cash calls negative); zero after a default.
    lender_cf_musd
        Cash flow to the senior lenders (draws and standby draws negative, service and
        recoveries positive).
    lender_loss_musd
        Claim written off at default, in the year of the default: the balance plus that year's
        unpaid interest, less the recovery (going-concern value net of distress costs, cash
        and reserve; or expropriation compensation); what a loan guarantee covers.
    insurable_loss_musd
        Sponsors' equity loss from the events political-risk cover insures, in the year it
        occurs: uncompensated book equity at expropriation (net book value less debt, less
        the compensation the equity receives), the uncompensated book equity the state takes
        by forced participation, and trapped cash lost (the haircut on release, all of it
        at expropriation). Unrest and licence suspension (business interruption) are not
        in it.
    debt_outstanding_musd
        Senior debt outstanding at the end of each year (standby draws and capitalised
        interest included).
    tonnes_produced_t, tonnes_eu_t : ndarray of shape (n_products, n_scenarios, n_years)
        Recovered product, and the part delivered to European buyers (offtake share, after
        blocked sales).
    first_production_year : ndarray of int, shape (n_scenarios,)
        Year index of first production, ``n_years`` when there is none within the horizon.
    default_year : ndarray of int, shape (n_scenarios,)
        Year index of the debt default, ``n_years`` when none.
    min_dscr : ndarray of shape (n_scenarios,)
        Lowest debt-service cover ratio (CFADS / scheduled debt service) over the years after
        completion with debt service, standstill years excluded; ``inf`` when there is none.
    acquisition_musd : float
        Price of the equity paid at the valuation date (not in ``equity_cf_musd``, whose
        flows fall at year ends).
    debt_close_year : ndarray of int, shape (n_scenarios,)
        Year index of financial close (the first year of budgeted construction capex, when
        the loan is signed, whether it is drawn then or, equity first, later; 0 for a
        producing mine's existing loan), ``n_years`` when the loan is never drawn.
    default_claim_musd, default_recovery_musd, default_value_musd : ndarray of shape (n_scenarios,)
        At a default: the lenders' claim, what they recover, and the value of the project
        then (going-concern value; the compensation at expropriation); 0 without default.
    credit_record : CreditRecord or None
        With ``record=True`` only.
    loan_draws_musd : ndarray of shape (n_scenarios, n_years) or None
        The loan's scheduled draws (in ``lender_cf_musd`` as negative flows), drawn through
        the year: interest runs on half of them in the year of the draw, so a valuation
        discounts them from mid-year (:func:`fundmodel.rates.market_values`). Standby draws
        come at the year's end and are not in it. None without a loan.
    ore_mined_mt : ndarray of shape (n_scenarios, n_years)
        Ore mined each year (Mt): the reserve left at a year's start is known to a decision then.
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
    debt_close_year: np.ndarray | None = None
    default_claim_musd: np.ndarray | None = None
    default_recovery_musd: np.ndarray | None = None
    default_value_musd: np.ndarray | None = None
    credit_record: CreditRecord | None = None
    loan_draws_musd: np.ndarray | None = None
    ore_mined_mt: np.ndarray | None = None
    #: parts of ``capex_musd`` (n_scenarios, n_years) the operating options need: sustaining capex
    #: (while operating) and the closure cost (the year after depletion)
    sustaining_musd: np.ndarray | None = None
    closure_musd: np.ndarray | None = None


def project_cash_flows(
    project: Project,
    inflation: float,
    market: MarketPaths,
    schedule: ScheduleDraws,
    politics: PoliticalTimeline,
    credit: CreditPolicy | None = None,
    *,
    debt_musd: float | np.ndarray | None = None,
    record: bool = False,
) -> ProjectCashFlows:
    """Compute a project's cash flows in every scenario.

    Parameters
    ----------
    project : Project
        The project's assumptions (``debt.amount_musd`` given or sized by the loader).
    inflation : float
        Annual cost escalation (real USD of the valuation date -> nominal USD).
    market : MarketPaths
        Prices (nominal USD per tonne) for the same scenarios.
    schedule : ScheduleDraws
        Schedule, overrun and cost outcomes.
    politics : PoliticalTimeline
        Political-event timeline.
    credit : CreditPolicy, optional
        Fitted credit decisions (:func:`fundmodel.credit.fit_credit_policies`). None: the
        sponsors always support the loan (no strategic default) and a default recovers cash
        and reserve only; defaults then come from expropriation alone.
    debt_musd : float or ndarray of shape (n_scenarios,), optional
        Loan amount (USD m) instead of ``debt.amount_musd``, per scenario if an array (the
        debt sizing evaluates many candidate amounts at once).
    record : bool, default False
        Also return the per-year credit quantities (:class:`CreditRecord`).

    Returns
    -------
    ProjectCashFlows
    """
    n, n_years = market.fx_usd_per_eur.shape
    capex, debt = project.capex, project.debt
    amount_in = debt.amount_musd if debt_musd is None else debt_musd
    if amount_in is None:
        raise ValueError(f"project {project.id}: debt.amount_musd is not set; load the assumptions with "
                         "load_assumptions (which sizes the loan) or give debt_musd")
    amount = np.broadcast_to(np.asarray(amount_in, dtype=float), (n,))
    # Arrays here are year-major (n_years, n): every year is a contiguous block of scenarios,
    # which the year loop below reads and writes; results are returned as (n, n_years) views.
    jj = np.arange(n_years)[:, None]
    escalation = (1.0 + inflation) ** jj

    # --- 1-4. the year-independent steps (vectorised over years and scenarios) ------------
    time = operating_time(project, schedule, politics, jj)
    sales = production_and_revenue(project, market, schedule, politics, time)
    costs = operating_costs(project, schedule, politics, time, sales, escalation)
    spend = capex_schedule(project, schedule, time, escalation, jj)
    suspended, start, alive, started = time.suspended, time.start, time.alive, time.started
    reserve_mt, cum_ore, ore_mt, operating = time.reserve_mt, time.cum_ore, time.ore_mt, time.operating
    tonnes, tonnes_eu, revenue = sales.tonnes, sales.tonnes_eu, sales.revenue
    opex, royalty, ebitda, tax_rate = costs.opex, costs.royalty, costs.ebitda, costs.tax_rate
    budget_profile, nominal, initial = spend.budget_profile, spend.nominal, spend.initial
    dev_capex, sustaining, closure, capex_total = spend.dev_capex, spend.sustaining, spend.closure, spend.total

    # --- 5-7. tax, debt and political effects, year by year -----------------------------
    production_stage = project.stage is Stage.PRODUCTION or capex.initial_musd <= 0
    if production_stage:
        draws = np.zeros((n_years, n))
        opening_debt = amount.copy()
        first_draw = np.where(amount > 0, 0, n_years)
        close = first_draw
    else:
        if debt.drawdown == "equity_first":
            # the sponsors' share of the budget is spent first; the loan funds the rest of the budget
            equity_budget = capex.initial_musd - amount
            drawn_by = np.clip(cumsum_years(budget_profile) - equity_budget, 0.0, amount)
            draws = np.diff(drawn_by, axis=0, prepend=0.0)
        else:
            draws = budget_profile * (amount / capex.initial_musd)
        opening_debt = np.zeros(n)
        first_draw = first_year(draws > 0)
        # financial close: the loan is signed when construction starts (the first budgeted
        # capex), whenever its first draw comes; grace and the default window run from it
        close = np.where(first_draw < n_years, first_year(budget_profile > 0), n_years)
    repay_years = debt.tenor_years - debt.grace_years
    repay_from = close + debt.grace_years
    instalment = amount / repay_years
    reserve_target = debt.reserve_months / 12.0 * (amount * debt.interest_rate + instalment)
    # lenders' completion: the first full year after ramp-up
    completion_year = np.ceil(start + schedule.rampup_years)
    precompletion_years = int(min(np.max(completion_year, initial=0.0, where=np.isfinite(completion_year)),
                                  n_years)) if n else 0

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
    has_debt = bool((amount > 0).any())
    has_participation = bool(politics.participation_event.any())
    has_restriction = bool(politics.transfer_restricted.any())
    if has_participation:
        state_share_y = politics.state_share.T
        participation_y = politics.participation_event.T.astype(float)
    if has_restriction:
        restricted_y = politics.transfer_restricted.T.astype(float)

    tax_u = np.empty((n_years, n))
    project_fcf = np.zeros((n_years, n))
    equity = np.empty((n_years, n))
    lender = np.zeros((n_years, n))
    loan_draws = np.zeros((n_years, n))
    written_off = np.zeros((n_years, n))
    insurable = np.zeros((n_years, n))
    outstanding = np.zeros((n_years, n))
    dscr_min = np.full(n, np.inf)
    default_claim = np.zeros(n)
    default_recovery = np.zeros(n)
    default_value = np.zeros(n)

    equity_policy = credit.equity if credit is not None else None
    gcv_policy = credit.going_concern if credit is not None else None
    if has_debt:
        draws_y = draws * alive
        # temporary political events: a standstill for the debt service CFADS cannot pay
        temporary = suspended | politics.transfer_restricted.T | (politics.unrest_loss.T > 0)
        has_temporary = bool(temporary.any())
        temporary_y = temporary.astype(float)
        # completion support: capex above the nominal budget (cumulative excess, by year)
        overrun_y = np.zeros((n_years, n))
        if not production_stage and precompletion_years:
            excess = cumsum_years(initial - budget_profile * nominal)
            np.maximum(excess, 0.0, out=excess)
            overrun_y[0] = excess[0]
            overrun_y[1:] = np.maximum(np.diff(excess, axis=0), 0.0)
        guarantee_left = np.full(n, np.inf if debt.completion_guarantee_musd is None
                                 else debt.completion_guarantee_musd)
        standby_left = debt.standby_share * amount
        cured = np.zeros(n)
        cure_cap = np.inf if debt.sponsor_support_musd is None else debt.sponsor_support_musd
        distress = debt.distress_cost_share
        need_state = record or equity_policy is not None or gcv_policy is not None
        if need_state:
            primary = market.price_usd_per_t[market.index(project.materials[0])].T
            price_scale = 1.0 / (escalation[:, 0] * (credit.reference_price_usd_per_t if credit else 1.0))
            fiscal_y = politics.royalty_increase.T + politics.tax_increase.T
            share_y = politics.state_share.T
            log_opex = np.log(schedule.opex_multiplier)
            spent_y = (cumsum_years(budget_profile * schedule.capex_multiplier) / capex.initial_musd
                       if not production_stage else np.zeros((n_years, n)))
            inv_amount = np.where(amount > 0, 1.0 / np.where(amount > 0, amount, 1.0), 0.0)
    if record:
        rec = {name: np.zeros((n_years, n)) for name in ("equity_flow", "voluntary", "cfads", "service_due",
                                                          "principal_due")}
        rec_live = np.zeros((n_years, n), dtype=bool)
        rec_completed = np.zeros((n_years, n), dtype=bool)
        rec_state = np.zeros((n_years, n, len(CREDIT_STATE)))

    balance = opening_debt.copy()
    reserve = np.zeros(n)
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

    def state_rows(t: int, rows) -> np.ndarray:
        """:data:`CREDIT_STATE` of scenarios ``rows`` at the end of year ``t`` (balance after draws)."""
        x = np.empty((len(rows) if not isinstance(rows, slice) else n, len(CREDIT_STATE)))
        x[:, 0] = np.log(primary[t][rows] * price_scale[t])
        x[:, 1] = 1.0 - cum_ore[t][rows] / reserve_mt
        x[:, 2] = producing_y[t][rows]
        x[:, 3] = balance[rows] * inv_amount[rows]
        x[:, 4] = fiscal_y[t][rows]
        x[:, 5] = share_y[t][rows]
        x[:, 6] = log_opex[rows] * x[:, 2]
        x[:, 7] = temporary_y[t][rows]
        x[:, 8] = spent_y[t][rows]
        return x

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
            due = interest + principal

            # levered tax (interest deductible as it accrues) and cash flow available for debt service
            taxable -= interest
            tax_l = rate_t * np.maximum(taxable - loss_l, 0.0)
            loss_l = np.maximum(loss_l - taxable, 0.0)
            cfads = ebitda_t - tax_l - opex_capex_y[t]

            completed = live * (t >= completion_year)
            service = due
            service_interest = interest  # interest in this year's service (the rest is capitalised)
            if has_temporary:
                # standstill in a year of a temporary political event: the lenders take what
                # CFADS covers (interest first), capitalise the rest of the interest and defer
                # the rest of the principal (instalments resume afterwards: a longer maturity)
                event = temporary_y[t] * live
                service = due + event * (np.clip(cfads, 0.0, due) - due)
                paid_interest = np.minimum(service, interest)
                capitalised_interest = interest - paid_interest
                balance += capitalised_interest
                principal = service - paid_interest
                service_interest = paid_interest
                np.minimum(dscr_min, cfads / np.maximum(due, _EPS), out=dscr_min,
                           where=(completed > 0) & (due > _EPS) & (event == 0))
            else:
                np.minimum(dscr_min, cfads / np.maximum(due, _EPS), out=dscr_min,
                           where=(completed > 0) & (due > _EPS))

            # after completion: the reserve, then a voluntary cure
            fund_reserve = completed * (t == np.maximum(completion_year, first_draw))
            reserve += (reserve_target - reserve) * fund_reserve
            gap = service - cfads
            short = np.maximum(gap, 0.0) * completed
            use_reserve = np.minimum(short, reserve)
            voluntary = short - use_reserve
            standby = zero
            if t < precompletion_years:
                # before completion: the completion guarantee, the standby facility, then a
                # voluntary injection, for overruns and debt service CFADS does not cover
                need = np.maximum(gap + overrun_y[t], 0.0) * (live - completed)
                guaranteed = np.minimum(need, guarantee_left)
                guarantee_left -= guaranteed
                standby = np.minimum(need - guaranteed, standby_left)
                standby_left -= standby
                voluntary += need - guaranteed - standby
                balance += standby
                instalment += standby / repay_years  # repaid with the instalments
            if record:
                rec_state[t] = state_rows(t, slice(None))
                rec["voluntary"][t] = voluntary
                rec["cfads"][t] = cfads
                rec["service_due"][t] = due
                rec["principal_due"][t] = principal
                rec_live[t] = live > 0
                rec_completed[t] = completed > 0

            # the sponsors' decision where voluntary cash is needed: continue while the equity's
            # continuation value exceeds it (and post-completion cures stay within any cap)
            new_default = zero
            defaults = False
            if equity_policy is not None or cure_cap < np.inf:
                rows = np.flatnonzero(voluntary > _EPS)
                if rows.size:
                    walk = np.zeros(rows.size, dtype=bool)
                    if equity_policy is not None:
                        value = equity_policy.continuation.predict(t, state_rows(t, rows))
                        walk |= voluntary[rows] > value
                    if cure_cap < np.inf:
                        walk |= (completed[rows] > 0) & (cured[rows] + voluntary[rows] > cure_cap + _EPS)
                    if walk.any():
                        defaults = True
                        new_default = np.zeros(n)
                        new_default[rows[walk]] = 1.0
            paid = live * (1.0 - new_default)
            cured += voluntary * completed * paid

            # sponsors: their obligations and voluntary cash, reserve movements, operating surplus
            surplus = cfads - service + use_reserve + voluntary  # cash left after the waterfall
            refill = np.clip(np.minimum(reserve_target - reserve + use_reserve, surplus), 0.0, None) * completed
            reserve += refill - use_reserve
            released = reserve * (1.0 - live)  # debt repaid: the reserve goes back to the sponsors
            reserve -= released
            drawn = draw * live
            eq_t = (cfads - service + use_reserve - refill + released - reserve_target * fund_reserve
                    - (dev_capex_y[t] - drawn) + standby)
            lender_t = service * paid - drawn - standby
            if defaults:
                # default: the sponsors keep what they paid under their obligations, the lenders
                # take the project's cash, the reserve and the going-concern value (net of
                # distress costs), at most their claim; the project goes on for its new owners
                rows = np.flatnonzero(new_default)
                claim = balance[rows] + service_interest[rows]  # the year's unpaid interest is in the claim
                cash = service[rows] - voluntary[rows]  # cash for debt service (incl. the reserve used)
                reserve_left = reserve[rows] - refill[rows]
                gcv = (gcv_policy.predict(t, state_rows(t, rows)) if gcv_policy is not None
                       else np.zeros(rows.size))
                value = np.maximum(cash + (1.0 - distress) * np.maximum(gcv, 0.0), np.maximum(cash, 0.0))
                recovered = np.minimum(claim, value + reserve_left)
                eq_t[rows] += voluntary[rows]
                lender_t[rows] += recovered
                written_off[t, rows] = claim - recovered
                default_claim[rows] = claim
                default_recovery[rows] = recovered
                default_value[rows] = gcv
                default_year[rows] = t
                balance[rows] = 0.0
                reserve[rows] = 0.0
            balance -= principal * paid
            eq_t *= solvent
            solvent -= new_default
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
                hit = expro_default > 0
                default_year[hit] = t
                default_claim[hit] = balance[hit]
                default_recovery[hit] = to_lenders[hit]
                default_value[hit] = compensation[hit]
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
            loan_draws[t] = drawn
            outstanding[t] = balance
        if record:
            rec["equity_flow"][t] = eq_t * alive_y[t]
        if expro_now is not None:
            project_fcf[t] = compensation

    # nothing flows after the expropriation year
    equity *= alive_y
    lender *= alive_y
    project_fcf += (ebitda - tax_u - capex_total) * alive_y

    record_out = None
    if record:
        if not has_debt:
            raise ValueError(f"project {project.id}: record=True needs a loan")
        record_out = CreditRecord(state=rec_state, equity_flow=rec["equity_flow"], voluntary=rec["voluntary"],
                                  live=rec_live, cfads=rec["cfads"], service_due=rec["service_due"],
                                  principal_due=rec["principal_due"], completed=rec_completed)
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
        loan_draws_musd=loan_draws.T if has_debt else None,
        ore_mined_mt=ore_mt.T,
        lender_loss_musd=written_off.T,
        insurable_loss_musd=insurable.T,
        debt_outstanding_musd=outstanding.T,
        tonnes_produced_t=tonnes.transpose(0, 2, 1),
        tonnes_eu_t=tonnes_eu.transpose(0, 2, 1),
        first_production_year=first_prod,
        default_year=default_year,
        min_dscr=dscr_min,
        acquisition_musd=capex.acquisition_musd,
        debt_close_year=np.where(amount > 0, close, n_years),
        default_claim_musd=default_claim,
        default_recovery_musd=default_recovery,
        default_value_musd=default_value,
        credit_record=record_out,
        sustaining_musd=sustaining.T,
        closure_musd=closure.T,
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
    equity_npv = present_value(equity_eur) - entry_eur
    # Flows that turn negative again late (cures, closure after a default) can have an NPV that
    # is negative at the fund's rate yet positive between two higher roots: the highest falling
    # root then says "beats the hurdle" where the NPV says it does not. Such an IRR is not a
    # return (Brealey, Myers & Allen, Principles of Corporate Finance, ch. 5.3, "multiple rates
    # of return"): reported as undefined, counted in equity_irr_undefined_share.
    equity_irr[(equity_npv <= 0) & (equity_irr > discount_rate)] = np.nan
    return ProjectValues(
        project_npv_meur=present_value(project_eur),
        equity_npv_meur=equity_npv,
        lender_npv_meur=present_value(lender_eur),
        equity_irr=equity_irr,
        equity_cf_meur=equity_eur.T,
        lender_cf_meur=lender_eur.T,
    )
