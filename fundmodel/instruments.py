"""The fund's instruments: per-scenario payoffs of one unit of each, and guarantee pricing.

Reads the scenario files of a simulation (:func:`fundmodel.simulation.load_scenarios`) and
turns each project into the fund's payoff, per scenario, for one unit of each decision
variable — the columns of the optimiser's scenario matrix:

======================  =================================  =========================================
instrument              unit (decision variable)           pays / earns (to the fund, EUR m)
======================  =================================  =========================================
equity                  share of project equity            its share of every equity flow: cash calls
                                                           (capex incl. overruns), distributions after
                                                           political events, the entry price of a
                                                           producing mine
loan_guarantee          share of the senior loan covered   premium on the covered outstanding, less the
                                                           covered share of the debt written off
political_risk_cover    share of the sponsors' equity      premium on the insured net investment, less
                        insured                            the insured equity loss (expropriation incl.
                                                           forced participation, trapped cash)
price_floor             share of the EU-available output   the upside share above the floor, less the
                        of one material under contract     shortfall below it, on the delivered volume
======================  =================================  =========================================

All values are present values at the fund's nominal EUR rate, flows at year ends, converted at
the simulated EUR/USD. Tonnes secured are the average per year over the next
``supply_window_years``: pro-rata offtake for equity, a supply commitment proportional to the
covered loan for guarantees (UFK-style), the contracted volume for a price floor.

For every guarantee-like instrument :func:`guarantee_pricing` sets the premium against the
modelled expected loss and, where the host country has an OECD category, against the OECD
Arrangement minimum premium rate, so that hidden subsidies are visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .assumptions import Assumptions, Stage
from .finance import discount_factors

#: OECD Arrangement country-risk coefficients a_i, b_i by country category 1..7
#: (domain brief §3: MPR = (a_i HOR + b_i) max(PCC, PCP)/0.95 ... , upfront % of principal).
OECD_A = {1: 0.090, 2: 0.200, 3: 0.350, 4: 0.550, 5: 0.740, 6: 0.900, 7: 1.100}
OECD_B = {1: 0.35, 2: 0.35, 3: 0.35, 4: 0.35, 5: 0.75, 6: 1.20, 7: 1.80}


@dataclass(frozen=True)
class InstrumentPayoff:
    """One unit of one instrument on one project, in every scenario.

    Attributes
    ----------
    project, instrument, material : str
        Project id, instrument name, and the material for a price floor (else "").
    unit : str
        What one unit of the decision variable is.
    max_units : float
        Cap on the decision variable from the instrument terms.
    pv_meur : ndarray of shape (n_scenarios,)
        Present value to the fund of one unit (EUR m).
    capital_meur : ndarray of shape (n_scenarios,)
        Present value of the cash the fund pays in for one unit (cash calls, entry price).
    contingent_meur : float
        Largest exposure of one unit (guaranteed amount, insured amount, floor volume x price).
    tonnes_t : dict of str to ndarray of shape (n_scenarios,)
        Tonnes per year secured for European buyers by one unit, per material.
    premium_pv_meur, expected_loss_pv_meur : float
        For guarantee-like instruments: mean PV of the premiums and of the payouts per unit.
    """

    project: str
    instrument: str
    unit: str
    max_units: float
    pv_meur: np.ndarray
    capital_meur: np.ndarray
    contingent_meur: float
    tonnes_t: dict[str, np.ndarray] = field(default_factory=dict)
    material: str = ""
    premium_pv_meur: float = 0.0
    expected_loss_pv_meur: float = 0.0


def _pv_eur(flows_usd: np.ndarray, fx: np.ndarray, df: np.ndarray) -> np.ndarray:
    """PV in EUR of (n, H) USD flows at year ends, converted at the simulated rate."""
    return (np.asarray(flows_usd, dtype=float) / fx) @ df


def _window_mean(tonnes: np.ndarray, years: int) -> np.ndarray:
    """Average per year over the first ``years`` years, per scenario."""
    return np.asarray(tonnes[:, :years], dtype=float).mean(axis=1)


def project_payoffs(a: Assumptions, scenarios: dict, project_id: str) -> list[InstrumentPayoff]:
    """Payoffs of one unit of every instrument the terms allow on a project.

    Parameters
    ----------
    a : Assumptions
        Validated assumptions with ``instruments.yaml``.
    scenarios : dict
        Scenario arrays as returned by :func:`fundmodel.simulation.load_scenarios`.
    project_id : str

    Returns
    -------
    list of InstrumentPayoff
        Equity, loan guarantee (if the project has debt), political-risk cover, and a price
        floor per product that has a floor in the terms.
    """
    if a.instruments is None:
        raise ValueError("the assumptions have no instruments.yaml")
    terms = a.instruments
    p = a.projects[project_id]
    s = scenarios[project_id]
    market = scenarios["market"]
    fx = np.asarray(market["fx_usd_per_eur"], dtype=float)
    n, n_years = fx.shape
    df = discount_factors(a.fund.discount_rate_nominal, n_years)
    fx_spot = a.markets.fx.spot
    window = min(terms.supply_window_years, n_years)
    eu_tonnes = {m: np.asarray(s["tonnes_eu_t"][k], dtype=float) for k, m in enumerate(p.products)}
    eu_share = p.offtake.eu_share
    category = a.countries.countries[p.country].oecd_category
    out: list[InstrumentPayoff] = []

    # --- equity: its share of every equity flow and of the entry price ----------------------
    equity_cf = np.asarray(s["equity_cf_meur"], dtype=float)
    entry_eur = p.capex.acquisition_musd / fx_spot
    cash_calls = np.minimum(equity_cf, 0.0) @ df
    max_share = terms.equity.max_share
    if not terms.equity.sole_largest_shareholder_allowed:
        max_share = min(max_share, 0.5)  # a stake of 50 % or more would make the fund the largest holder
    delivered = {m: t / eu_share for m, t in eu_tonnes.items()} if eu_share > 0 else {}
    out.append(InstrumentPayoff(
        project=project_id, instrument="equity", unit="share of project equity", max_units=max_share,
        pv_meur=np.asarray(s["equity_npv_meur"], dtype=float),
        capital_meur=entry_eur - cash_calls,
        contingent_meur=0.0,
        # pro-rata offtake of the delivered output (JOGMEC), out of the EU-available share
        tonnes_t={m: _window_mean(t, window) for m, t in delivered.items()},
    ))

    # --- loan guarantee: premium on the covered outstanding, pays the covered write-off ------
    if p.debt.amount_musd > 0:
        g = terms.loan_guarantee
        outstanding = np.asarray(s["debt_outstanding_musd"], dtype=float)
        # premium on the balance outstanding at the start of each year (a producing mine's
        # loan is outstanding at the valuation date)
        at_start = p.debt.amount_musd if p.stage is Stage.PRODUCTION else 0.0
        opening = np.concatenate([np.full((n, 1), at_start), outstanding[:, :-1]], axis=1)
        premium = _pv_eur(g.rate_for(category) * opening, fx, df)
        loss = _pv_eur(np.asarray(s["lender_loss_musd"], dtype=float), fx, df)
        out.append(InstrumentPayoff(
            project=project_id, instrument="loan_guarantee", unit="share of the senior loan covered",
            max_units=g.max_cover, pv_meur=premium - loss, capital_meur=np.zeros(n),
            contingent_meur=p.debt.amount_musd / fx_spot,
            tonnes_t={m: g.supply_commitment_share * _window_mean(t, window) for m, t in eu_tonnes.items()},
            premium_pv_meur=float(premium.mean()), expected_loss_pv_meur=float(loss.mean()),
        ))

    # --- political-risk cover: premium on the insured net investment, pays insured losses ---
    c = terms.political_risk_cover
    invested = np.maximum(-np.cumsum(np.asarray(s["equity_cf_meur"], dtype=float), axis=1) + entry_eur, 0.0)
    opening_invested = np.concatenate([np.full((n, 1), entry_eur), invested[:, :-1]], axis=1)
    premium = (c.rate_for(category) * opening_invested) @ df
    loss = _pv_eur(np.asarray(s["insurable_loss_musd"], dtype=float), fx, df)
    out.append(InstrumentPayoff(
        project=project_id, instrument="political_risk_cover", unit="share of the sponsors' equity insured",
        max_units=c.max_cover, pv_meur=premium - loss, capital_meur=np.zeros(n),
        contingent_meur=float(opening_invested.mean(axis=0).max()),
        premium_pv_meur=float(premium.mean()), expected_loss_pv_meur=float(loss.mean()),
    ))

    # --- price floor with offtake, per product that has a floor -----------------------------
    f = terms.price_floor
    escalation = (1.0 + a.fund.inflation) ** np.arange(n_years)
    tenor = np.arange(n_years) < f.tenor_years
    for material, volume in eu_tonnes.items():
        if material not in f.floors_usd_per_t:
            continue
        price = np.asarray(market["price_usd_per_t"][list(a.markets.materials).index(material)], dtype=float)
        floor = f.floors_usd_per_t[material] * escalation
        contracted = volume * tenor  # delivered EU volume within the tenor
        payoff_usd = contracted * (f.upside_share * np.maximum(price - floor, 0.0) - np.maximum(floor - price, 0.0))
        pv = _pv_eur(payoff_usd / 1e6, fx, df)
        shortfall = _pv_eur(contracted * np.maximum(floor - price, 0.0) / 1e6, fx, df)
        out.append(InstrumentPayoff(
            project=project_id, instrument="price_floor", material=material,
            unit=f"share of the EU-available {material} output under contract", max_units=f.max_volume_share,
            pv_meur=pv, capital_meur=np.zeros(n),
            contingent_meur=float(((contracted * floor / 1e6).mean(axis=0) / fx_spot) @ df),
            tonnes_t={material: _window_mean(contracted, window)},
            premium_pv_meur=float((pv + shortfall).mean()), expected_loss_pv_meur=float(shortfall.mean()),
        ))
    return out


def oecd_minimum_premium_rate(country_category: int | None, hor_years: float) -> float | None:
    """OECD Arrangement minimum premium rate, country-risk part, upfront fraction of principal.

    Parameters
    ----------
    country_category : int or None
        OECD country-risk category 1..7; None or 0 (high-income, market pricing) gives None.
    hor_years : float
        Horizon of risk: half the disbursement period plus the repayment period (years).

    Returns
    -------
    float or None
        ``(a_i HOR + b_i) / 100`` for 95 % cover (``max(PCC, PCP)/0.95 = 1``), without the
        buyer-risk term ``c_in`` (i.e. the rate for a sovereign-equivalent buyer, a lower
        bound) and with the other factors at 1.

    Examples
    --------
    >>> round(oecd_minimum_premium_rate(6, 10.0), 4)
    0.102
    """
    if not country_category:
        return None
    return (OECD_A[country_category] * hor_years + OECD_B[country_category]) / 100.0


def guarantee_pricing(a: Assumptions, payoffs: list[InstrumentPayoff]) -> list[dict]:
    """Premium against modelled expected loss (and the OECD minimum premium) per guarantee.

    Returns
    -------
    list of dict
        One row per guarantee-like instrument with premium and expected-loss PVs per unit,
        their ratio, whether the premium is below the expected loss (a subsidy), and for loan
        guarantees the OECD minimum premium as a PV per unit of cover.
    """
    rows = []
    for x in payoffs:
        if x.instrument not in ("loan_guarantee", "political_risk_cover", "price_floor"):
            continue
        p = a.projects[x.project]
        country = a.countries.countries[p.country]
        row = {
            "project": x.project, "instrument": x.instrument, "material": x.material,
            "premium_pv_meur_per_unit": x.premium_pv_meur,
            "expected_loss_pv_meur_per_unit": x.expected_loss_pv_meur,
            "premium_to_expected_loss": (x.premium_pv_meur / x.expected_loss_pv_meur
                                         if x.expected_loss_pv_meur > 0 else None),
            "subsidised": x.premium_pv_meur < x.expected_loss_pv_meur,
            "oecd_category": country.oecd_category,
            "oecd_minimum_premium_pv_meur_per_unit": None,
        }
        if x.instrument == "loan_guarantee":
            construction = p.schedule.construction_years.mode if p.schedule.construction_years else 0.0
            hor = construction / 2 + (p.debt.tenor_years - p.debt.grace_years)
            rate = oecd_minimum_premium_rate(country.oecd_category, hor)
            if rate is not None:
                row["oecd_minimum_premium_pv_meur_per_unit"] = rate * x.contingent_meur
        rows.append(row)
    return rows
