"""The fund's instruments: per-scenario payoffs of one unit of each, priced at market rates.

Reads the scenarios of a simulation (:class:`fundmodel.scenarios.ScenarioSet`, :func:`fundmodel.simulation.load_scenarios`) and
turns each project into the fund's payoff, per scenario, for one unit of each decision
variable — the columns of the optimiser's scenario matrix — as a counterparty would sign it:

======================  ==================================  =========================================
instrument              unit (decision variable)            pays / earns (to the fund, EUR m)
======================  ==================================  =========================================
equity, secondary       share of the project's equity       its share of every equity flow, less the
                        bought from the sponsors            entry price (the share of the pre-money
                                                            value at the cost of equity, less the
                                                            negotiated discount), paid to the sellers
equity, primary         the project's share issue (1 = the  the round's share of the post-money equity
                        whole round of ``raise_musd``)      flows (the round's cash funds the first
                                                            cash calls), less the round's cash
loan_guarantee          share of the senior loan covered    premium on the covered outstanding, less the
                                                            covered share of the debt written off
political_risk_cover    share of the sponsors' equity       premium on the insured net investment while
                        insured                             the cover is in force, less the claims
price_floor             share of the EU-available output    the upside share above the floor, less the
                        of one material under contract      shortfall below it, on the payable volume
                                                            for ``tenor_years`` from first delivery
======================  ==================================  =========================================

Every PV is at the claim's market rate (:func:`fundmodel.rates.market_rates`): the equity at
the cost of equity, the guarantee at the loan's rate, the cover at the risk-free rate plus
the country risk premium, the floor at the risk-free rate. The same flows at the fund's
policy rate give the concession (value at the policy rate minus market value), reported per
position and limited by ``portfolio.concession_budget_meur``; the optimiser maximises
market value, never the concession. Capital deployed (entry price and cash calls) is in
today's money at the risk-free rate. Flows fall at year ends and are converted at the
simulated EUR/USD.

Tonnes secured are physical (contained product) and counted once: per project and material,
the EU-available output (``eu_available_t``, the average per year over the next
``supply_window_years``) is shared by all instruments — equity offtake pro rata of its
stake, a guarantee's supply commitment, a floor's contracted volume — and the optimiser
caps their sum at it (:func:`fundmodel.portfolio.fund.fund_constraints`).

For every guarantee-like instrument :func:`guarantee_pricing` sets the premium against the
modelled expected loss and, where the host country has an OECD category, against the OECD
Arrangement minimum premium rate, so that hidden subsidies are visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .assumptions.model import Assumptions
from .assumptions.schema import Stage
from .rates import MarketRates, market_rates, present_value
from .scenarios import ScenarioSet

#: OECD Arrangement country-risk coefficients a_i, b_i by country category 1..7
#: (domain brief §3: MPR = (a_i HOR + b_i) max(PCC, PCP)/0.95 ... , upfront % of principal).
OECD_A = {1: 0.090, 2: 0.200, 3: 0.350, 4: 0.550, 5: 0.740, 6: 0.900, 7: 1.100}
OECD_B = {1: 0.35, 2: 0.35, 3: 0.35, 4: 0.35, 5: 0.75, 6: 1.20, 7: 1.80}


@dataclass(frozen=True)
class EntryPrice:
    """The terms on which the fund can buy into one project's equity.

    Attributes
    ----------
    project : str
    kind : {"secondary", "primary", "acquisition"}
        Existing shares from the sponsors; a primary round of new shares; a producing mine
        bought at its acquisition price.
    discount : float
        Negotiated discount to the pre-money value (0 for an acquisition at a set price).
    pre_money_meur : float
        Mean PV of 100 % of the sponsors' equity flows at the cost of equity (EUR m).
    price_meur : float
        Price of one unit: of 100 % of the equity (secondary, acquisition) or of the whole
        round (primary: the round's cash).
    stake_per_unit : float
        Share of the post-money equity one unit buys (1 for secondary; the round's share
        ``R / ((1 - discount) pre_money + R)`` for primary).
    raise_meur : float
        Cash of a primary round (0 otherwise).
    available : bool
        False when the pre-money value is not positive: no stake can be bought on these terms.
    reason : str
        Why the stake is unavailable (empty when available).
    """

    project: str
    kind: str
    discount: float
    pre_money_meur: float
    price_meur: float
    stake_per_unit: float = 1.0
    raise_meur: float = 0.0
    available: bool = True
    reason: str = ""


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
        Cap on the decision variable from the instrument terms (0 when unavailable).
    pv_meur : ndarray of shape (n_scenarios,)
        Present value to the fund of one unit at the instrument's market rate (EUR m).
    capital_meur : ndarray of shape (n_scenarios,)
        Present value at the risk-free rate of the cash the fund pays in for one unit (entry
        price, cash calls).
    contingent_meur : float
        Largest exposure of one unit (guaranteed amount, insured amount, floor volume x price).
    tonnes_t : dict of str to ndarray of shape (n_scenarios,)
        Tonnes per year secured for European buyers by one unit, per material (contained
        product, average over the supply window).
    material : str
    premium_pv_meur, expected_loss_pv_meur : float
        For guarantee-like instruments: mean PV of the premiums and of the payouts per unit
        (at the market rate).
    market_rate : float
        Rate the PV is discounted at.
    policy_pv_meur : float
        Mean PV of one unit at the fund's policy rate; ``policy_pv_meur - mean(pv_meur)`` is
        the concession per unit.
    entry : EntryPrice or None
        Entry terms (equity only).
    eu_available_t : dict of str to float
        EU-available output of the project per material (t/year over the supply window): the
        cap on the tonnes all its instruments secure together.
    reason : str
        Why the instrument is unavailable (``max_units == 0``), else empty.
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
    market_rate: float = 0.0
    policy_pv_meur: float = 0.0
    entry: EntryPrice | None = None
    eu_available_t: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    @property
    def concession_meur(self) -> float:
        """Concession of one unit: mean value at the policy rate minus mean market value (EUR m)."""
        return float(self.policy_pv_meur - np.mean(self.pv_meur))


def _pv(flows_eur: np.ndarray, rate: float) -> np.ndarray:
    """PV per scenario of (n, H) EUR year-end flows at ``rate``."""
    return present_value(np.asarray(flows_eur, dtype=float), rate)


def _window_mean(tonnes: np.ndarray, years: int) -> np.ndarray:
    """Average per year over the first ``years`` years, per scenario."""
    return np.asarray(tonnes[:, :years], dtype=float).mean(axis=1)


def _first_year(mask: np.ndarray) -> np.ndarray:
    """Index of the first True per row, ``n_years`` where there is none."""
    mask = np.asarray(mask, dtype=bool)
    return np.where(mask.any(axis=1), mask.argmax(axis=1), mask.shape[1])


def primary_round_flows(equity_cf_eur: np.ndarray, raise_eur: float, release_year: np.ndarray) -> np.ndarray:
    """Equity flows of 100 % of the post-money equity after a primary round of ``raise_eur`` at t = 0.

    The round's cash pays the equity's cash calls (negative flows) as they come, earliest
    first, until it is used up; what is left is paid out to the shareholders at the end of
    ``release_year`` (e.g. the year of first production, or the last year).

    Parameters
    ----------
    equity_cf_eur : ndarray of shape (n_scenarios, n_years)
    raise_eur : float
    release_year : ndarray of int, shape (n_scenarios,)

    Returns
    -------
    ndarray of shape (n_scenarios, n_years)

    Examples
    --------
    >>> primary_round_flows(np.array([[-30.0, -50.0, 40.0]]), 60.0, np.array([2])).tolist()
    [[0.0, -20.0, 40.0]]
    >>> primary_round_flows(np.array([[-30.0, 10.0, 40.0]]), 60.0, np.array([1])).tolist()
    [[0.0, 40.0, 40.0]]
    """
    cf = np.array(equity_cf_eur, dtype=float)
    n, n_years = cf.shape
    pool = np.full(n, float(raise_eur))
    for t in range(n_years):  # loop over years, vectorised over scenarios
        use = np.minimum(pool, np.maximum(-cf[:, t], 0.0))
        cf[:, t] += use
        pool -= use
        release = (release_year == t) & (pool > 0)
        cf[release, t] += pool[release]
        pool[release] = 0.0
    return cf


def entry_prices(a: Assumptions, scenarios: ScenarioSet, projects=None) -> dict[str, EntryPrice]:
    """The entry terms of every project's equity, priced on these scenarios.

    The pre-money value is the mean PV of 100 % of the sponsors' equity flows at the cost
    of equity (:mod:`fundmodel.rates`); the price of a stake is its share of it less the
    project's negotiated discount (``entry``), its ``price_musd`` where one is known, and a
    producing mine's acquisition price. Price once, on the base case: a stressed
    re-simulation values the same stake bought at the same price
    (:func:`fundmodel.portfolio.stress.stress_test`).

    ``projects``: the project ids to price (default: every project of ``a``).

    Returns
    -------
    dict of str to EntryPrice
    """
    fx_spot = a.markets.fx.spot
    out: dict[str, EntryPrice] = {}
    for pid in (a.projects if projects is None else projects):
        p = a.projects[pid]
        rates = market_rates(a, pid)
        equity_cf = np.asarray(scenarios.projects[pid].equity_cf_meur, dtype=float)
        pre_money = float(_pv(equity_cf, rates.equity).mean())
        if p.stage is Stage.PRODUCTION or p.entry is None:
            out[pid] = EntryPrice(pid, "acquisition", 0.0, pre_money, p.capex.acquisition_musd / fx_spot)
            continue
        e = p.entry
        if pre_money <= 0:
            reason = (f"the sponsors' equity has no positive value at the cost of equity "
                      f"({rates.equity:.1%}): pre-money value EUR {pre_money:,.1f} m, so no stake can be bought "
                      "at a price a seller would accept")
            out[pid] = EntryPrice(pid, e.kind, e.discount, pre_money, 0.0, 0.0, 0.0, False, reason)
            continue
        if e.kind == "primary":
            raise_eur = e.raise_musd / fx_spot
            pre_price = e.price_musd / fx_spot if e.price_musd is not None else (1.0 - e.discount) * pre_money
            out[pid] = EntryPrice(pid, "primary", e.discount, pre_money, raise_eur,
                                  stake_per_unit=raise_eur / (pre_price + raise_eur), raise_meur=raise_eur)
        else:
            price = e.price_musd / fx_spot if e.price_musd is not None else (1.0 - e.discount) * pre_money
            out[pid] = EntryPrice(pid, "secondary", e.discount, pre_money, price)
    return out


def project_payoffs(a: Assumptions, scenarios: ScenarioSet, project_id: str,
                    entry: EntryPrice | None = None) -> list[InstrumentPayoff]:
    """Payoffs of one unit of every instrument the terms allow on a project, at market rates.

    Parameters
    ----------
    a : Assumptions
        Validated assumptions with ``instruments.yaml``.
    scenarios : ScenarioSet
        The simulation's scenarios (:class:`fundmodel.scenarios.ScenarioSet`), with the
        per-scenario results (``first_production_year``, ``default_year``) in ``results``.
    project_id : str
    entry : EntryPrice, optional
        The equity's entry terms (default: priced on these scenarios, :func:`entry_prices`).

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
    s = scenarios.projects[project_id]
    market = scenarios.market
    rates = market_rates(a, project_id)
    fx = np.asarray(market.fx_usd_per_eur, dtype=float)
    n, n_years = fx.shape
    fx_spot = a.markets.fx.spot
    window = min(terms.supply_window_years, n_years)
    eu_tonnes = {m: np.asarray(s.tonnes_eu_t[k], dtype=float) for k, m in enumerate(p.products)}
    eu_available = {m: float(_window_mean(t, window).mean()) for m, t in eu_tonnes.items()}
    category = a.countries.countries[p.country].oecd_category
    if entry is None:
        entry = entry_prices(a, scenarios, [project_id])[project_id]
    equity_cf = np.asarray(s.equity_cf_meur, dtype=float)
    common = dict(project=project_id, eu_available_t=eu_available)
    out = [_equity(a, p, equity_cf, entry, rates, eu_tonnes, window, s, n_years, common)]

    # --- loan guarantee: premium on the covered outstanding, pays the covered write-off ------
    if p.debt.amount_musd > 0:
        g = terms.loan_guarantee
        outstanding = np.asarray(s.debt_outstanding_musd, dtype=float)
        # premium on the balance outstanding at the start of each year (a producing mine's
        # loan is outstanding at the valuation date)
        at_start = p.debt.amount_musd if p.stage is Stage.PRODUCTION else 0.0
        opening = np.concatenate([np.full((n, 1), at_start), outstanding[:, :-1]], axis=1)
        premium_eur = g.rate_for(category) * opening / fx
        loss_eur = np.asarray(s.lender_loss_musd, dtype=float) / fx
        premium, loss = _pv(premium_eur, rates.debt), _pv(loss_eur, rates.debt)
        out.append(InstrumentPayoff(
            instrument="loan_guarantee", unit="share of the senior loan covered",
            max_units=g.max_cover, pv_meur=premium - loss, capital_meur=np.zeros(n),
            contingent_meur=p.debt.amount_musd / fx_spot,
            tonnes_t={m: g.supply_commitment_share * _window_mean(t, window) for m, t in eu_tonnes.items()},
            premium_pv_meur=float(premium.mean()), expected_loss_pv_meur=float(loss.mean()),
            market_rate=rates.debt, policy_pv_meur=float(_pv(premium_eur - loss_eur, rates.policy).mean()),
            **common))

    out.append(_political_risk_cover(a, p, equity_cf, entry, rates, s, fx, category, n, n_years, common))

    # --- price floor with offtake, per product that has a floor -----------------------------
    f = terms.price_floor
    escalation = (1.0 + a.fund.inflation) ** np.arange(n_years)
    years = np.arange(n_years)[None, :]
    for material, volume in eu_tonnes.items():
        if material not in f.floors_usd_per_t:
            continue
        price = np.asarray(market.price_usd_per_t[list(a.markets.materials).index(material)], dtype=float)
        floor = f.floors_usd_per_t[material] * escalation
        start = _first_year(volume > 0) if f.contract_start == "first_delivery" else np.zeros(n, dtype=int)
        in_tenor = (years >= start[:, None]) & (years < start[:, None] + f.tenor_years)
        contracted = volume * in_tenor  # contained tonnes delivered to EU buyers under the contract
        payable = contracted * p.products[material].payability  # the floor applies to payable tonnes
        payoff_eur = payable * (f.upside_share * np.maximum(price - floor, 0.0)
                                - np.maximum(floor - price, 0.0)) / 1e6 / fx
        shortfall_eur = payable * np.maximum(floor - price, 0.0) / 1e6 / fx
        pv, shortfall = _pv(payoff_eur, rates.risk_free), _pv(shortfall_eur, rates.risk_free)
        out.append(InstrumentPayoff(
            instrument="price_floor", material=material,
            unit=f"share of the EU-available {material} output under contract", max_units=f.max_volume_share,
            pv_meur=pv, capital_meur=np.zeros(n),
            contingent_meur=float(_pv((payable * floor / 1e6).mean(axis=0)[None, :] / fx_spot,
                                      rates.risk_free)[0]),
            tonnes_t={material: _window_mean(contracted, window)},
            premium_pv_meur=float((pv + shortfall).mean()), expected_loss_pv_meur=float(shortfall.mean()),
            market_rate=rates.risk_free, policy_pv_meur=float(_pv(payoff_eur, rates.policy).mean()), **common))
    return out


def _equity(a, p, equity_cf, entry: EntryPrice, rates: MarketRates, eu_tonnes, window, s, n_years,
            common) -> InstrumentPayoff:
    """The equity stake: its share of the equity flows at the cost of equity, less the entry price."""
    terms = a.instruments.equity
    max_share = terms.max_share
    if not terms.sole_largest_shareholder_allowed:
        max_share = min(max_share, 0.5)  # a stake of 50 % or more would make the fund the largest holder
    n = equity_cf.shape[0]
    if not entry.available:
        zeros = np.zeros(n)
        return InstrumentPayoff(instrument="equity", unit="share of project equity", max_units=0.0,
                                pv_meur=zeros, capital_meur=zeros, contingent_meur=0.0, entry=entry,
                                market_rate=rates.equity, reason=entry.reason, **common)
    price = entry.price_meur
    if entry.kind == "primary":
        # Post-money value = pre-money value + the cash raised (Modigliani-Miller: cash is worth
        # its face value, whether it waits in the bank or pays the cash calls it was raised for).
        # The stake is stake_per_unit of it; the flows after the round (the round's cash paying
        # the calls, the rest released at first production) only set the capital profile.
        stake = entry.stake_per_unit
        release = np.asarray(s.results["first_production_year"], dtype=int).clip(max=n_years - 1)
        flows = primary_round_flows(equity_cf, entry.raise_meur, release) * stake
        pv = stake * (_pv(equity_cf, rates.equity) + entry.raise_meur) - price
        policy_pv = stake * (_pv(equity_cf, rates.policy) + entry.raise_meur) - price
        unit, max_units = "share of the primary round (1 = the whole round)", min(1.0, max_share / stake)
    else:
        flows = equity_cf
        pv, policy_pv = _pv(flows, rates.equity) - price, _pv(flows, rates.policy) - price
        unit, max_units = "share of project equity", max_share
    cash_calls = -np.minimum(flows, 0.0)
    return InstrumentPayoff(
        instrument="equity", unit=unit, max_units=max_units,
        pv_meur=pv,
        capital_meur=price + _pv(cash_calls, rates.risk_free),
        contingent_meur=0.0,
        # offtake pro rata of the stake, out of the uncommitted (EU-available) volume
        tonnes_t={m: entry.stake_per_unit * _window_mean(t, window) for m, t in eu_tonnes.items()},
        market_rate=rates.equity, policy_pv_meur=float(policy_pv.mean()),
        entry=entry, **common)


def _political_risk_cover(a, p, equity_cf, entry: EntryPrice, rates: MarketRates, s, fx, category, n, n_years,
                          common) -> InstrumentPayoff:
    """MIGA-style cover of the sponsors' equity: premium while in force on the insured net investment.

    The insured amount is the net investment: the purchase price (a stake bought, or a
    producing mine's acquisition) plus contributions less distributions. The premium is
    charged on it while the cover is in force: it ends at a claim (expropriation), a debt
    default (the equity is gone), abandonment (no equity flow any more) or after
    ``tenor_years``. Claims while in force: at expropriation the insured amount less the
    compensation (MIGA, Contract of Guarantee for Equity Investments, General Conditions
    art. 8 and 18: net investment, i.e. purchase and contributions less distributions, the
    compensation being a distribution) less the claims already paid; before it, the equity
    losses of :mod:`fundmodel.valuation` from forced participation (uncompensated share taken)
    and inconvertibility (the haircut on trapped cash).
    """
    c = a.instruments.political_risk_cover
    years = np.arange(n_years)[None, :]
    purchase = entry.price_meur if entry.kind in ("secondary", "acquisition") and entry.available else 0.0
    net_investment = np.maximum(purchase - np.cumsum(equity_cf, axis=1), 0.0)
    opening = np.concatenate([np.full((n, 1), purchase), net_investment[:, :-1]], axis=1)
    events = np.asarray(s.political_events)
    claim_year = _first_year((events & 1) > 0)  # expropriation: the policy pays and ends
    default_year = (np.asarray(s.results["default_year"], dtype=int) if "default_year" in s.results
                    else np.full(n, n_years))
    active = np.abs(equity_cf) > 1e-9
    last_flow = np.where(active.any(axis=1), n_years - 1 - active[:, ::-1].argmax(axis=1), -1)
    end = np.minimum.reduce([claim_year + 1, default_year + 1, last_flow + 1, np.full(n, c.tenor_years)])
    in_force = years < end[:, None]
    premium_eur = c.rate_for(category) * opening * in_force
    loss_eur = np.asarray(s.insurable_loss_musd, dtype=float) / fx
    expropriated = years == claim_year[:, None]
    loss_eur[expropriated] = 0.0  # replaced by the insured amount less compensation, below
    loss_eur *= in_force
    # the year of the expropriation: the net investment after that year's flows (the compensation
    # paid to the equity is a distribution), less the claims paid before, if the cover is in force
    paid_before = np.cumsum(loss_eur, axis=1)
    rows = np.flatnonzero((claim_year < n_years) & (claim_year < end))
    if rows.size:
        t = claim_year[rows]
        loss_eur[rows, t] = np.maximum(net_investment[rows, t] - paid_before[rows, t], 0.0)
    premium, loss = _pv(premium_eur, rates.country), _pv(loss_eur, rates.country)
    return InstrumentPayoff(
        instrument="political_risk_cover", unit="share of the sponsors' equity insured",
        max_units=c.max_cover, pv_meur=premium - loss, capital_meur=np.zeros(n),
        contingent_meur=float(opening.mean(axis=0).max()),
        premium_pv_meur=float(premium.mean()), expected_loss_pv_meur=float(loss.mean()),
        market_rate=rates.country, policy_pv_meur=float(_pv(premium_eur - loss_eur, rates.policy).mean()),
        **common)


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
