"""Market rates of the claims the fund takes, and the fund's policy rate.

Each claim is worth its expected cash flows discounted at the rate a counterparty would use
for its risk (issue 13: "each claim at its market rate"); discounting at a lower rate would
create value that no counterparty would pay for. All rates are nominal EUR per year
(``fund.yaml: market_rates``, ``countries.yaml: country_risk_premium``):

======================  ===================================================================
claim                   market rate
======================  ===================================================================
project (all capital)   asset rate ``r_a = r_f + beta_a ERP + CRP``
sponsors' equity        cost of equity ``r_e = r_a + (r_a - r_d) D/E`` (Harris and Pringle
                        1985: equity at ``r_e`` and debt at ``r_d`` add up to the project at
                        ``r_a``, with risky debt), D/E the base-case gearing at financial
                        close; capped at ``r_f + max_equity_beta ERP + CRP``
senior loan             ``r_d = r_f + CRP / equity_to_bond_volatility + PF spread`` (the
                        sovereign default spread plus a project-finance margin); a loan is
                        fair when its expected flows discounted at ``r_d`` equal its principal
loan guarantee          ``r_d`` (it is a short position in the loan's credit risk)
political-risk cover    ``r_f + CRP`` (country risk, no market beta)
price floor             ``r_f`` (a put on the price: no commodity risk premium is assumed, so
                        the payoff is discounted risk-free, as for a forward-priced option)
======================  ===================================================================

``CRP`` is the host country's risk premium (Damodaran's rating-based country risk premium,
``countries.yaml``). The fund's own rate (``fund.yaml: discount_rate_nominal``, 8 %) is its
*policy* rate: value at the policy rate minus value at the market rate is the concession
the fund grants (:func:`concession`), reported next to the market value and limited by
``portfolio.concession_budget_meur``.

References
----------
Damodaran, A. (2025). Equity Risk Premiums: Determinants, Estimation and Implications.
Damodaran, A. Country Default Spreads and Risk Premiums (data, January 2019 and later).
Harris, R. S., and Pringle, J. J. (1985). Risk-adjusted discount rates - extensions from the
average-risk case. *Journal of Financial Research* 8(3), 237-244.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .assumptions.model import Assumptions
from .assumptions.schema import Stage


@dataclass(frozen=True)
class MarketRates:
    """Market rates of one project's claims (nominal EUR per year).

    Attributes
    ----------
    risk_free, asset, equity, debt, country : float
        ``r_f``; the asset rate; the cost of equity; the senior loan's rate; ``r_f + CRP``.
    policy : float
        The fund's policy rate (``fund.yaml: discount_rate_nominal``).
    equity_beta : float
        The levered beta behind ``equity``.
    country_risk_premium : float
    """

    risk_free: float
    asset: float
    equity: float
    debt: float
    country: float
    policy: float
    equity_beta: float
    country_risk_premium: float

    def for_instrument(self, instrument: str) -> float:
        """The market rate of an instrument of :mod:`fundmodel.instruments`."""
        return {"equity": self.equity, "loan_guarantee": self.debt, "political_risk_cover": self.country,
                "price_floor": self.risk_free}[instrument]


def project_gearing(a: Assumptions, project_id: str) -> float:
    """Debt over equity of the project at financial close (budgeted capex; a producing mine: its price).

    Examples
    --------
    >>> from fundmodel.assumptions import load_assumptions  # doctest: +SKIP
    >>> project_gearing(load_assumptions("assumptions"), "mn_ree")  # doctest: +SKIP
    0.8333333333333334
    """
    p = a.projects[project_id]
    debt = p.debt.amount_musd
    if debt <= 0:
        return 0.0
    funded = p.capex.acquisition_musd if p.stage is Stage.PRODUCTION else p.capex.initial_musd
    equity = max(funded - (0.0 if p.stage is Stage.PRODUCTION else debt), 0.1 * funded, 1e-6)
    return debt / equity


def market_rates(a: Assumptions, project_id: str) -> MarketRates:
    """The market rates of every claim on one project (see the module docstring).

    Parameters
    ----------
    a : Assumptions
    project_id : str

    Returns
    -------
    MarketRates
    """
    m = a.fund.market_rates
    p = a.projects[project_id]
    crp = a.countries.countries[p.country].country_risk_premium
    asset = m.risk_free_eur + m.mining_asset_beta * m.equity_risk_premium + crp
    debt = m.risk_free_eur + crp / m.equity_to_bond_volatility + m.project_finance_spread
    # Harris & Pringle (1985): r_e = r_a + (r_a - r_d) D/E, the identity that makes equity at
    # r_e plus debt at r_d add up to the project at r_a (risky debt, unlike Hamada's riskless one)
    equity = asset + max(asset - debt, 0.0) * project_gearing(a, project_id)
    equity = min(equity, m.risk_free_eur + m.max_equity_beta * m.equity_risk_premium + crp)
    beta_e = (equity - m.risk_free_eur - crp) / m.equity_risk_premium if m.equity_risk_premium else m.mining_asset_beta
    return MarketRates(
        risk_free=m.risk_free_eur,
        asset=asset,
        equity=equity,
        debt=debt,
        country=m.risk_free_eur + crp,
        policy=a.fund.discount_rate_nominal,
        equity_beta=beta_e,
        country_risk_premium=crp,
    )


def present_value(flows: np.ndarray, rate: float) -> np.ndarray:
    """PV of year-end flows ``(..., n_years)`` at ``rate`` (flow ``j`` at the end of year ``j``).

    Examples
    --------
    >>> float(present_value(np.array([110.0]), 0.10))
    100.0
    """
    flows = np.asarray(flows, dtype=float)
    return flows @ (1.0 + rate) ** -np.arange(1, flows.shape[-1] + 1, dtype=float)


def market_values(flows, fx_usd_per_eur: np.ndarray, rates: MarketRates) -> dict[str, np.ndarray]:
    """Each claim of one project at its market rate, per scenario (EUR m).

    Parameters
    ----------
    flows : fundmodel.valuation.ProjectCashFlows
        USD flows (project free cash flow, equity flow and its acquisition price, lender flow).
    fx_usd_per_eur : ndarray of shape (n_scenarios, n_years)
    rates : MarketRates

    Returns
    -------
    dict of str to ndarray of shape (n_scenarios,)
        ``project_npv_market_meur`` (at the asset rate), ``equity_npv_market_meur`` (at the
        cost of equity, net of the acquisition price at the spot rate of year 0, as
        :func:`fundmodel.valuation.value_cash_flows`), and the lenders' flows at the loan's
        rate split into ``lender_inflows_market_meur`` (service, recoveries, at the year's end) and
        ``lender_draws_market_meur`` (amounts lent; scheduled draws from mid-year), whose ratio says whether the loan is
        fair (:func:`loan_value_ratio`).
    """
    fx = np.asarray(fx_usd_per_eur, dtype=float)
    lender = flows.lender_cf_musd / fx
    # the scheduled draws are made through the year and pay interest on half of themselves
    # in their year (fundmodel.valuation), so they are valued from mid-year; the rest of the
    # lenders' flows (service, standby draws, recoveries) come at the year's end
    scheduled = getattr(flows, "loan_draws_musd", None)
    draws = scheduled / fx if scheduled is not None else np.zeros_like(lender)
    year_end = lender + draws
    return {
        "project_npv_market_meur": present_value(flows.project_fcf_musd / fx, rates.asset),
        "equity_npv_market_meur": present_value(flows.equity_cf_musd / fx, rates.equity)
        - flows.acquisition_musd / fx[:, 0],
        "lender_inflows_market_meur": present_value(np.maximum(year_end, 0.0), rates.debt),
        "lender_draws_market_meur": (present_value(np.maximum(-year_end, 0.0), rates.debt)
                                     + present_value(draws, rates.debt) * (1.0 + rates.debt) ** 0.5),
    }


def loan_value_ratio(lender_cf_eur: np.ndarray, rate: float, principal_at_start_eur: float = 0.0) -> float:
    """Market value of a loan per unit of the principal lent: 1 when the loan is fair.

    A loan is fair when its expected flows, discounted at the risk-free rate plus a credit
    premium for its risk (the loan's market rate, :func:`market_rates`), equal its principal.

    Parameters
    ----------
    lender_cf_eur : ndarray of shape (n_scenarios, n_years)
        The lenders' year-end flows: draws negative, interest, repayments and recoveries
        positive (EUR m).
    rate : float
        The loan's market rate.
    principal_at_start_eur : float
        Principal already outstanding at the valuation date (a producing mine's loan), lent
        at t = 0; draws within the horizon are in ``lender_cf_eur``.

    Returns
    -------
    float
        ``PV(inflows) / (principal_at_start + PV(draws))``: above 1 the contract rate is
        richer than the market rate for the loan's risk, below 1 poorer.

    Examples
    --------
    >>> # 100 lent at the end of year 0, 8 % interest for three years, repaid at the end: fair at 8 %
    >>> flows = np.array([[-100.0, 8.0, 8.0, 108.0]])
    >>> round(loan_value_ratio(flows, 0.08), 12)
    1.0
    """
    flows = np.asarray(lender_cf_eur, dtype=float)
    inflows = present_value(np.maximum(flows, 0.0), rate).mean()
    lent = principal_at_start_eur + present_value(np.maximum(-flows, 0.0), rate).mean()
    return float(inflows / lent) if lent > 0 else float("nan")


def concession(value_at_policy: float, value_at_market: float) -> float:
    """The concession the fund grants: value at its policy rate minus market value (EUR m).

    Positive when the fund, discounting at its policy rate, sees more value than a market
    counterparty would pay: the subsidy it gives by accepting a lower return.
    """
    return float(value_at_policy - value_at_market)


__all__ = ["MarketRates", "market_rates", "market_values", "project_gearing", "present_value", "loan_value_ratio",
           "concession"]
