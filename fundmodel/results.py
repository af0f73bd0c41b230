"""Summaries of a simulation: the per-project table, annual tonnes, metrics and files.

Conventions of the summary (documented here because committee members read them):

- NPVs are EUR m at the fund's nominal (policy) rate, cash flows at year ends from the valuation
  date; ``npv_market_mean_meur`` (project, at the asset rate) and ``equity_npv_market_mean_meur``
  (sponsors' equity, at the cost of equity) are the same flows at the market rates of
  :mod:`fundmodel.rates` (``asset_rate``, ``cost_of_equity``), what a counterparty would pay.
- ``npv_*`` is the *project* NPV (unlevered, all capital providers, after political events);
  ``equity_npv_*`` is the sponsors' equity NPV (after debt, dilution and trapped cash).
- The equity IRR is the investment root (highest rate at which the equity NPV falls through
  zero), so a late closure cost cannot produce a spurious -90 % root; where flows that turn
  negative again late leave the NPV negative at the fund's rate but that root above it, the
  IRR is undefined (multiple rates of return; Brealey, Myers & Allen ch. 5). Percentiles rank a
  total loss, and flows with no IRR and a negative NPV, at -100 %; flows with no
  investment are left out. ``equity_irr_undefined_share`` counts scenarios without an IRR. A
  producing mine's equity is valued against its entry price today (``capex.acquisition_musd``).
  No summary figure is NaN; figures that do not exist are empty ("n/a"): ``debt_market_rate``
  and ``loan_value_to_principal`` without a loan, the recovery figures without a default.
- ``first_production_year_*`` are calendar years among scenarios that produce within the
  horizon; ``prob_production`` is the share that does.
- ``tonnes_per_year_mean_y1_10`` / ``_y11_20``: expected tonnes of the primary material per
  year over years 1-10 / 11-20 from the valuation date (calendar, not production years),
  counted in its priced product (``primary_product``: t LCE, t WO3 contained, ...).
- ``value_lost_<risk>_meur`` is mean project NPV with that risk switched off minus mean NPV
  with all risks, on the same first ``attribution_scenarios`` scenarios (common random
  numbers), with the standard error of that difference; negative when the risk adds value
  (convexity).
- Senior debt (:mod:`fundmodel.valuation`, credit model): ``prob_debt_default`` is the share
  of all scenarios in which the loan defaults within the horizon; ``prob_debt_default_10y``
  the cumulative default rate within 10 years of financial close (the first draw; the
  valuation date for a producing mine's loan) among the scenarios where the loan is drawn,
  the measure of Moody's project-finance default study; ``debt_recovery_rate_mean`` the mean
  over defaults of the recovery as a fraction of the lenders' claim at default (balance plus
  the year's unpaid interest); ``default_share_value_above_debt`` the share of defaults in
  which the project's going-concern value (the compensation, at expropriation) exceeded that
  claim. Empty when the project has no loan or no default. ``metrics.json`` adds their
  standard errors, the loan amount and how it was sized (``debt_amount_musd``,
  ``debt_sizing``), the number of defaults and the share recovering in full.
- ``breakeven_long_run_price`` (issue 14, :mod:`fundmodel.breakeven`): the long-run level of the
  project's primary material (``primary_material``) at which the mean project NPV at the asset
  rate, ``npv_market_mean_meur``, is zero; in real USD per tonne of its priced product
  (``primary_product``; valuation-date money), a long-run **median** like ``long_run_price``, the
  shipped ``markets.yaml`` level it compares with. Solved with common random numbers on the
  first ``fund.yaml: simulation.breakeven_scenarios`` scenarios (2,048) by ``brentq``;
  ``breakeven_long_run_price_se`` is its Monte Carlo standard error. Empty when there is no root
  within a factor 20 of the shipped level (or it was not computed), with ``breakeven_reason`` in
  ``metrics.json``. Computed when the risk attribution runs.
- Parameter uncertainty (``fund.yaml: simulation.parameter_uncertainty``, default on): every
  scenario draws its own long-run level and mean reversion of the materials with an estimated
  covariance (:func:`fundmodel.market.draw_price_parameters`); ``metrics.json:
  parameter_uncertainty`` lists them and their law. All NPV figures include it when on.

- Monte Carlo standard errors (:mod:`fundmodel.precision`): ``<figure>_se_meur`` for EUR m
  figures (``npv_mean_se_meur``, ``npv_p5_se_meur``, ``npv_cvar5_se_meur``, ...) and
  ``<figure>_se`` for shares and IRRs (``prob_npv_negative_se``, ``equity_irr_p50_se``), each
  the spread of the figure over 16 independently scrambled Sobol' replicates (RQMC) or over
  batches of scenarios (pseudo-random, Latin hypercube) divided by sqrt(groups);
  ``metrics.json: standard_errors`` says which. A ``--precision`` run adds
  ``precision_reached``, ``precision_target_meur`` / ``precision_target_rel``,
  ``scenarios_max`` (``scenarios``: those used) and the project furthest from the target.

Files of ``OUT/simulation/`` (written atomically by :func:`fundmodel.pipeline.simulate_to_directory`):

- ``summary.csv``: one row per project (:data:`SUMMARY_COLUMNS`).
- ``tonnes.csv``: expected tonnes produced and delivered to European buyers, per project,
  material and calendar year.
- ``sensitivity.csv``: tornado data, one row per project and driver (prices, initial
  capex, opex, political hazards, development time, EUR/USD, discount rate), mean equity
  and project NPV in the base run and with the driver low and high on the same first
  ``attribution_scenarios`` scenarios, ``swing_meur`` and its standard error
  (:data:`~fundmodel.sensitivity.SENSITIVITY_COLUMNS`, see :mod:`fundmodel.sensitivity`);
  written when the risk attribution runs and ``fund.yaml: simulation.sensitivity`` is true.
- ``price_fan.csv``: per material (and ``EURUSD``) and calendar year, mean and
  P5/P25/P50/P75/P95 over scenarios of the simulated nominal price (USD/t; USD per EUR)
  (:data:`PRICE_FAN_COLUMNS`); written with the scenario files.
- ``first_production.csv``: per project, the share of scenarios whose first production
  falls in each calendar year, and (``year`` = ``never``) the share that does not produce
  within the horizon (:data:`FIRST_PRODUCTION_COLUMNS`); shares add up to 1 per project.
- ``metrics.json``: every figure of the summary plus percentiles, attribution standard
  errors, event statistics. Per project, ``event_year_share[event]`` is the share of
  scenario-years in which the event's bit is set (expropriation once, in its year; windows
  every year they last) and ``political_events[event]`` holds ``annual_probability`` (the
  calibrated ``p`` of ``countries.yaml``: the event's unconditional mean annual probability,
  see :mod:`fundmodel.political`), ``prob_within_10y`` and ``prob_within_20y``: the share of
  scenarios in which the event first occurs within the first 10 / 20 years of the horizon
  (year indices 0-9 / 0-19; for expropriation the absorbing event, for windows their first
  onset, for fiscal grabs the first grab; null when the horizon is shorter than 10 / 20 years).
  The event process runs on after an expropriation, so these compare with ``p``: without the
  geopolitical factor and price term they would be ``1 - (1 - p)^n``.
- ``manifest.json``: package version, git commit, settings, assumption hashes.
- ``scenarios/``: scenario-level arrays (:class:`~fundmodel.scenarios.ScenarioWriter`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .assumptions.model import Assumptions
from .portfolio.measures import lower_tail_mean
from .rates import market_rates
from .precision import Replicates
from .simulation import ATTRIBUTION, SimulationResult

PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 99)


def _pct(x: np.ndarray, q: float) -> float | None:
    x = x[np.isfinite(x)]
    return float(np.percentile(x, q)) if x.size else None


def _pct_se(groups, x: np.ndarray, qs) -> dict[float, float | None]:
    """Standard errors of percentiles ``qs`` of ``x`` (finite values) from their spread over the groups."""
    rows = []
    for part in groups.split(x):
        part = part[np.isfinite(part)]
        if part.size:
            rows.append(np.percentile(part, qs))
    if len(rows) < 2:
        return dict.fromkeys(qs)
    sd = np.std(np.array(rows), axis=0, ddof=1) / np.sqrt(len(rows))
    return {q: float(v) for q, v in zip(qs, sd)}


def irr_for_ranking(irr: np.ndarray, total_loss: np.ndarray, no_investment: np.ndarray,
                    npv: np.ndarray) -> np.ndarray:
    """IRRs for percentiles: losses without an IRR at -100 %, undefined ones NaN.

    A total loss (no positive equity flow), or flows with no IRR and a negative equity NPV
    (the investment does not pay back at any rate), rank at -100 %. Flows whose first
    non-zero flow is positive (no investment to earn a return on) have no meaningful IRR
    and are left out (NaN).
    """
    ranked = np.where(total_loss | (np.isnan(irr) & (npv < 0)), -1.0, irr)
    return np.where(no_investment, np.nan, ranked)


def _loan_ratio(a: Assumptions, p, s: dict) -> float:
    """Market value of the senior loan per unit of principal lent (1 = fair), from the per-scenario PVs."""
    at_start = p.debt.amount_musd / a.markets.fx.spot if p.stage.value == "production" else 0.0
    lent = at_start + float(s["lender_draws_market_meur"].mean())
    return float(s["lender_inflows_market_meur"].mean()) / lent if lent > 0 else float("nan")


def project_statistics(a: Assumptions, r: SimulationResult) -> dict[str, dict]:
    """All per-project figures (a superset of ``summary.csv``), JSON-ready.

    Returns
    -------
    dict
        ``{project_id: {figure: value}}``.
    """
    out: dict[str, dict] = {}
    n_years = r.n_years
    for pid, p in a.projects.items():
        s = r.scalars[pid]
        npv, eq = s["project_npv_meur"], s["equity_npv_meur"]
        rates = market_rates(a, pid)
        irr = irr_for_ranking(s["equity_irr"], s["equity_total_loss"], s["equity_no_investment"], eq)
        first = s["first_production_year"]
        produces = first < n_years
        first_cal = (r.valuation_year + first[produces]).astype(float)
        has_debt = bool(p.debt.amount_musd)
        primary = p.materials[0]
        tonnes = r.tonnes_mean_t[pid][primary]
        groups = Replicates(npv.size, r.settings.sampling)
        npv_pct_se, eq_pct_se = _pct_se(groups, npv, PERCENTILES), _pct_se(groups, eq, PERCENTILES)
        irr_pct_se = _pct_se(groups, irr, (5, 50, 95))
        d = {
            "project": pid,
            "name": p.name,
            "country": p.country,
            "stage": p.stage.value,
            "materials": "+".join(p.materials),
            "npv_mean_meur": float(npv.mean()),
            "npv_std_meur": float(npv.std()),
            **{f"npv_p{q}_meur": _pct(npv, q) for q in PERCENTILES},
            "npv_cvar5_meur": lower_tail_mean(npv, 0.05),
            "prob_npv_negative": float((npv < 0).mean()),
            "equity_npv_mean_meur": float(eq.mean()),
            **{f"equity_npv_p{q}_meur": _pct(eq, q) for q in PERCENTILES},
            "prob_equity_npv_negative": float((eq < 0).mean()),
            "npv_market_mean_meur": float(s["project_npv_market_meur"].mean()),
            "equity_npv_market_mean_meur": float(s["equity_npv_market_meur"].mean()),
            "asset_rate": rates.asset,
            "cost_of_equity": rates.equity,
            "debt_market_rate": rates.debt if has_debt else None,
            # a loan is fair when its flows at its market rate equal its principal (fundmodel.rates)
            "loan_value_to_principal": _loan_ratio(a, p, s) if has_debt else None,
            **{f"equity_irr_p{q}": _pct(irr, q) for q in PERCENTILES},
            "equity_irr_undefined_share": float(np.isnan(s["equity_irr"]).mean()),
            # Monte Carlo standard errors (fundmodel.precision): RQMC replicates or batch means
            "npv_mean_se_meur": groups.se(npv),
            **{f"npv_p{q}_se_meur": npv_pct_se[q] for q in PERCENTILES},
            "npv_cvar5_se_meur": groups.se(npv, lambda x: lower_tail_mean(x, 0.05)),
            "prob_npv_negative_se": groups.se(npv < 0),
            "equity_npv_mean_se_meur": groups.se(eq),
            **{f"equity_npv_p{q}_se_meur": eq_pct_se[q] for q in PERCENTILES},
            "equity_npv_cvar5_meur": lower_tail_mean(eq, 0.05),
            "equity_npv_cvar5_se_meur": groups.se(eq, lambda x: lower_tail_mean(x, 0.05)),
            "prob_equity_npv_negative_se": groups.se(eq < 0),
            "npv_market_mean_se_meur": groups.se(s["project_npv_market_meur"]),
            "equity_npv_market_mean_se_meur": groups.se(s["equity_npv_market_meur"]),
            **{f"equity_irr_p{q}_se": irr_pct_se[q] for q in (5, 50, 95)},
            "equity_irr_undefined_share_se": groups.se(np.isnan(s["equity_irr"])),
            "prob_equity_total_loss_se": groups.se(s["equity_total_loss"]),
            "prob_debt_default_se": groups.se(s["default_year"] < n_years) if has_debt else 0.0,
            "prob_production_se": groups.se(produces),
            "prob_equity_total_loss": float(s["equity_total_loss"].mean()),
            "prob_debt_default": float((s["default_year"] < n_years).mean()) if has_debt else 0.0,
            "min_dscr_p50": _pct(s["min_dscr"], 50) if has_debt else None,
            "prob_production": float(produces.mean()),
            **{f"first_production_year_p{q}": (float(np.percentile(first_cal, q, method="inverted_cdf"))
                                               if first_cal.size else None) for q in (5, 50, 95)},
            **credit_statistics(s, n_years, has_debt),
            "primary_material": primary,
            "primary_product": a.markets.materials[primary].product,
            "tonnes_per_year_mean_y1_10": float(tonnes["produced"][:10].mean()),
            "tonnes_per_year_mean_y11_20": float(tonnes["produced"][10:20].mean()) if n_years > 10 else None,
            "eu_tonnes_per_year_mean_y1_10": float(tonnes["eu"][:10].mean()),
            "eu_tonnes_per_year_mean_y11_20": float(tonnes["eu"][10:20].mean()) if n_years > 10 else None,
        }
        d.update(option_statistics(s, groups))
        if r.attribution_meur:
            att = r.attribution_meur[pid]
            base = att["base"]
            d["attribution_scenarios"] = att["scenarios"]
            for risk in ATTRIBUTION:
                d[f"value_lost_{risk}_meur"] = att[risk]["project_npv_meur"] - base["project_npv_meur"]
                d[f"value_lost_{risk}_se_meur"] = att[risk]["project_npv_diff_se_meur"]
                d[f"equity_value_lost_{risk}_meur"] = att[risk]["equity_npv_meur"] - base["equity_npv_meur"]
                d[f"equity_value_lost_{risk}_se_meur"] = att[risk]["equity_npv_diff_se_meur"]
        d["debt_amount_musd"] = float(p.debt.amount_musd or 0.0)
        d["debt_sizing"] = (p.debt.sized.model_dump(mode="json") if p.debt.sized is not None
                            else {"rule": "explicit" if has_debt else "none"})
        d["event_year_share"] = r.event_year_share[pid]
        if r.event_first_year_counts:
            d["political_events"] = _event_probabilities(a, r, pid)
        out[pid] = d
    return out


def option_statistics(s: dict[str, np.ndarray], groups) -> dict:
    """The project with its investment and operating options (:mod:`fundmodel.operating_options`).

    All at the asset rate: ``npv_committed_mean_meur`` is today's rigid plan (the same figure as
    ``npv_market_mean_meur``), ``npv_options_mean_meur`` the value with the fitted policies, and
    ``option_value_meur`` their difference, with its standard error over the scenario groups
    (common random numbers). None where the options were not valued (``fund.yaml:
    simulation.operating_options: false``), except the committed figure.
    """
    names = ("npv_committed_mean_meur", "npv_options_mean_meur", "option_value_meur", "option_value_se_meur",
             "option_value_fid_meur", "option_value_operating_meur", "prob_development", "prob_temporary_closure",
             "prob_abandonment")
    with_options = s.get("npv_options_market_meur")
    if with_options is None or not np.isfinite(with_options).all():
        return {**dict.fromkeys(names), "npv_committed_mean_meur": float(s["project_npv_market_meur"].mean())}
    gain = with_options - s["project_npv_market_meur"]
    return dict(zip(names, (
        float(s["project_npv_market_meur"].mean()), float(with_options.mean()), float(gain.mean()), groups.se(gain),
        float(s["option_value_fid_meur"].mean()), float(s["option_value_operating_meur"].mean()),
        float(s["option_developed"].mean()), float(s["option_closed"].mean()), float(s["option_abandoned"].mean()))))


#: Years after financial close over which ``prob_debt_default_10y`` counts defaults (Moody's horizon).
DEFAULT_WINDOW_YEARS = 10


def credit_statistics(s: dict[str, np.ndarray], n_years: int, has_debt: bool) -> dict:
    """Default and recovery figures of one project's loan, with standard errors.

    Parameters
    ----------
    s : dict
        The project's per-scenario results (:data:`~fundmodel.simulation.SCALARS`).
    n_years : int
    has_debt : bool

    Returns
    -------
    dict
        ``prob_debt_default_10y`` (and ``_se``): defaults within :data:`DEFAULT_WINDOW_YEARS`
        of financial close among scenarios where the loan is drawn (binomial standard error);
        ``debt_recovery_rate_mean`` (and ``_se``, the standard error of the mean over defaults);
        ``default_share_value_above_debt`` (and ``_se``); ``debt_default_count``;
        ``debt_drawn_share``; ``default_share_full_recovery`` (recovery >= 99.9 % of the claim).
        Rates without a loan are 0 and figures over defaults are None when there is none.
    """
    keys = ("prob_debt_default_10y", "prob_debt_default_10y_se", "debt_recovery_rate_mean",
            "debt_recovery_rate_mean_se", "default_share_value_above_debt", "default_share_value_above_debt_se",
            "default_share_full_recovery", "debt_default_count", "debt_drawn_share")
    out: dict = dict.fromkeys(keys)
    if not has_debt:
        out.update(prob_debt_default_10y=0.0, prob_debt_default_10y_se=0.0, debt_default_count=0,
                   debt_drawn_share=0.0)
        return out
    close = s["debt_close_year"]
    drawn = close < n_years
    default = s["default_year"] < n_years
    n_drawn = int(drawn.sum())
    early = default & drawn & (s["default_year"] - close < DEFAULT_WINDOW_YEARS)
    p10 = float(early.sum() / n_drawn) if n_drawn else 0.0
    out.update(prob_debt_default_10y=p10,
               prob_debt_default_10y_se=float(np.sqrt(p10 * (1 - p10) / n_drawn)) if n_drawn else 0.0,
               debt_default_count=int(default.sum()), debt_drawn_share=float(drawn.mean()))
    k = int(default.sum())
    if k:
        claim = s["default_claim_musd"][default]
        rate = np.clip(s["default_recovery_musd"][default] / np.maximum(claim, 1e-12), 0.0, 1.0)
        above = s["default_value_musd"][default] > claim
        share = float(above.mean())
        out.update(debt_recovery_rate_mean=float(rate.mean()),
                   debt_recovery_rate_mean_se=float(rate.std(ddof=1) / np.sqrt(k)) if k > 1 else None,
                   default_share_value_above_debt=share,
                   default_share_value_above_debt_se=float(np.sqrt(share * (1 - share) / k)),
                   default_share_full_recovery=float((rate >= 0.999).mean()))
    return out


def _event_probabilities(a: Assumptions, r: SimulationResult, pid: str) -> dict[str, dict]:
    """Calibrated ``p`` and simulated chance of a first occurrence within 10 and 20 years, per event."""
    events = a.countries.countries[a.projects[pid].country].events
    out = {}
    for event, counts in r.event_first_year_counts[pid].items():
        cum = np.cumsum(counts) / counts.sum()
        out[event] = {
            "annual_probability": getattr(events, event).annual_probability,
            **{f"prob_within_{n}y": (float(cum[n - 1]) if n <= r.n_years else None) for n in (10, 20)},
        }
    return out


#: Standard-error columns of ``summary.csv`` (``<figure>_se``, units last), after the figures.
SE_COLUMNS = [
    "npv_mean_se_meur", "npv_p5_se_meur", "npv_p50_se_meur", "npv_p95_se_meur", "npv_cvar5_se_meur",
    "prob_npv_negative_se",
    "equity_npv_mean_se_meur", "equity_npv_p5_se_meur", "equity_npv_p50_se_meur", "equity_npv_p95_se_meur",
    "prob_equity_npv_negative_se",
    "equity_irr_p5_se", "equity_irr_p50_se", "equity_irr_p95_se", "equity_irr_undefined_share_se",
    "prob_equity_total_loss_se", "prob_debt_default_se", "prob_production_se",
    "npv_market_mean_se_meur", "equity_npv_market_mean_se_meur",
]

#: Columns of ``summary.csv``, in order.
SUMMARY_COLUMNS = [
    "project", "name", "country", "stage", "materials",
    "npv_mean_meur", "npv_p5_meur", "npv_p50_meur", "npv_p95_meur", "npv_cvar5_meur",
    "prob_npv_negative",
    "equity_npv_mean_meur", "equity_npv_p5_meur", "equity_npv_p50_meur", "equity_npv_p95_meur",
    "prob_equity_npv_negative",
    "equity_irr_p5", "equity_irr_p50", "equity_irr_p95", "equity_irr_undefined_share",
    "prob_equity_total_loss", "prob_debt_default",
    "prob_production", "first_production_year_p5", "first_production_year_p50",
    "first_production_year_p95",
    "primary_material", "primary_product", "tonnes_per_year_mean_y1_10", "tonnes_per_year_mean_y11_20",
    "eu_tonnes_per_year_mean_y1_10", "eu_tonnes_per_year_mean_y11_20",
    "value_lost_price_meur", "value_lost_political_meur", "value_lost_schedule_meur",
    # issue 13: each claim at its market rate (fundmodel.rates); the columns above stay at the fund's rate
    "npv_market_mean_meur", "equity_npv_market_mean_meur", "asset_rate", "cost_of_equity",
    "debt_market_rate", "loan_value_to_principal",
    "prob_debt_default_10y", "debt_recovery_rate_mean", "default_share_value_above_debt",
    # issue 14: Monte Carlo standard errors of the figures above (fundmodel.precision)
    *SE_COLUMNS,
    # issue 14: long-run level of the primary material (real USD per tonne of its priced product, the
    # long-run median of markets.yaml's convention) at which npv_market_mean_meur is zero (fundmodel.breakeven)
    "breakeven_long_run_price", "breakeven_long_run_price_se", "long_run_price",
    # issue 14: the project with its investment and operating options, at the asset rate
    # (fundmodel.operating_options); npv_committed_mean_meur = npv_market_mean_meur
    "npv_committed_mean_meur", "npv_options_mean_meur", "option_value_meur", "option_value_se_meur",
    "option_value_fid_meur", "option_value_operating_meur",
    "prob_development", "prob_temporary_closure", "prob_abandonment",
]


def add_breakevens(a: Assumptions, stats: dict[str, dict], found: dict | None, reason_off: str = "") -> None:
    """Put each project's break-even long-run price (:mod:`fundmodel.breakeven`) into ``stats``.

    ``breakeven_long_run_price`` and its Monte Carlo SE are in the primary material's unit, real USD
    per tonne of its priced product (``primary_product``), a long-run median as
    ``long_run_price`` (markets.yaml ``long_run_usd_per_t``); empty when there is no root, with
    ``breakeven_reason`` in metrics.json.
    """
    for pid, d in stats.items():
        material = a.projects[pid].materials[0]
        d["long_run_price"] = float(a.markets.materials[material].long_run_usd_per_t)
        b = (found or {}).get(pid)
        if b is None:
            d.update(breakeven_long_run_price=None, breakeven_long_run_price_se=None,
                     breakeven_reason=reason_off or "not computed")
            continue
        ok = bool(np.isfinite(b.price_usd_per_t))
        d.update(breakeven_long_run_price=float(b.price_usd_per_t) if ok else None,
                 breakeven_long_run_price_se=float(b.se_usd_per_t) if ok and np.isfinite(b.se_usd_per_t) else None,
                 breakeven_reason=b.reason, breakeven_scenarios=b.scenarios, breakeven_evaluations=b.evaluations,
                 breakeven_npv="npv_market_mean_meur (project NPV at the asset rate)")


def parameter_uncertainty_info(a: Assumptions) -> dict:
    """Which materials draw their long-run level and mean reversion per scenario, and from what law."""
    from .market import parameter_law

    on = bool(a.fund.simulation.parameter_uncertainty)
    out: dict = {"enabled": on, "materials": {}}
    for mid, m in a.markets.materials.items():
        law = parameter_law(m)
        if law is None:
            continue
        out["materials"][mid] = {"origin": law.origin, "log_long_run_sd": law.sd[0], "mean_reversion_sd": law.sd[1],
                                 "correlation": law.correlation, "kappa_truncated_share": law.truncated_share}
    return out


def summary_table(stats: dict[str, dict]) -> pd.DataFrame:
    """One row per project with :data:`SUMMARY_COLUMNS` (attribution columns only if run)."""
    df = pd.DataFrame([{k: v for k, v in d.items() if k in SUMMARY_COLUMNS} for d in stats.values()])
    return df[[c for c in SUMMARY_COLUMNS if c in df.columns]]


def tonnes_table(a: Assumptions, r: SimulationResult) -> pd.DataFrame:
    """Expected tonnes per project, material and calendar year (long format)."""
    rows = []
    for pid, mats in r.tonnes_mean_t.items():
        for material, d in mats.items():
            for j in range(r.n_years):
                rows.append({
                    "project": pid, "material": material, "product": a.markets.materials[material].product,
                    "year": r.valuation_year + j,
                    "expected_produced_t": float(d["produced"][j]),
                    "expected_eu_delivered_t": float(d["eu"][j]),
                })
    return pd.DataFrame(rows)


#: Percentiles of ``price_fan.csv``.
FAN_PERCENTILES = (5, 25, 50, 75, 95)
#: Columns of ``price_fan.csv``, in order.
PRICE_FAN_COLUMNS = ["material", "year", "mean", *(f"p{q}" for q in FAN_PERCENTILES), "unit"]
#: Columns of ``first_production.csv``, in order.
FIRST_PRODUCTION_COLUMNS = ["project", "year", "share", "cumulative_share"]


def price_fan_table(a: Assumptions, prices_usd_per_t: np.ndarray, fx_usd_per_eur: np.ndarray,
                    valuation_year: int) -> pd.DataFrame:
    """Fan chart of every simulated price: mean and percentiles over scenarios, per year.

    Parameters
    ----------
    a : Assumptions
    prices_usd_per_t : ndarray of shape (n_materials, n_scenarios, n_years)
        Nominal prices in ``markets.yaml`` material order (``market/price_usd_per_t.npy``).
    fx_usd_per_eur : ndarray of shape (n_scenarios, n_years)
        EUR/USD (``market/fx_usd_per_eur.npy``).
    valuation_year : int
        Calendar year of year index 0.

    Returns
    -------
    pandas.DataFrame
        :data:`PRICE_FAN_COLUMNS`: one row per material (then ``EURUSD``) and calendar year;
        the statistics are those of the arrays as given, in float64 (``numpy.percentile``,
        linear interpolation); ``unit`` is ``USD/t nominal`` or ``USD per EUR``.
    """
    series = [(m, prices_usd_per_t[i], "USD/t nominal") for i, m in enumerate(a.markets.materials)]
    series.append(("EURUSD", fx_usd_per_eur, "USD per EUR"))
    frames = []
    for name, arr, unit in series:  # loop over materials; vectorised over scenarios and years
        x = np.asarray(arr, dtype=np.float64)
        pct = np.percentile(x, FAN_PERCENTILES, axis=0)
        frame = pd.DataFrame({"material": name, "year": valuation_year + np.arange(x.shape[1]),
                              "mean": x.mean(axis=0)})
        for q, row in zip(FAN_PERCENTILES, pct):
            frame[f"p{q}"] = row
        frame["unit"] = unit
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)[PRICE_FAN_COLUMNS]


def first_production_table(a: Assumptions, r: SimulationResult) -> pd.DataFrame:
    """Distribution of every project's first production year over the scenarios.

    Returns
    -------
    pandas.DataFrame
        :data:`FIRST_PRODUCTION_COLUMNS`: per project (assumption order), one row per calendar
        year in which some scenarios start producing (ascending), with the share of scenarios
        and the cumulative share, then a row with ``year`` = ``"never"`` for the share that
        does not produce within the horizon (also when it is 0); shares add up to 1.
    """
    frames = []
    for pid in a.projects:
        first = r.scalars[pid]["first_production_year"]
        counts = np.bincount(np.minimum(first, r.n_years), minlength=r.n_years + 1)
        shares = counts / first.size
        years = np.flatnonzero(counts[:r.n_years])
        frames.append(pd.DataFrame({
            "project": pid,
            "year": [*(str(r.valuation_year + j) for j in years), "never"],
            "share": [*shares[years], shares[r.n_years]],
            "cumulative_share": [*np.cumsum(shares[:r.n_years])[years], 1.0],
        }))
    return pd.concat(frames, ignore_index=True)[FIRST_PRODUCTION_COLUMNS]


def format_console_table(summary: pd.DataFrame) -> str:
    """Readable fixed-width table of the key figures for the terminal."""
    def pct(x):
        return "n/a" if x is None or pd.isna(x) else f"{100 * x:5.1f}%"

    def meur(x):
        return "n/a" if x is None or pd.isna(x) else f"{x:8.0f}"

    def year(x):
        return "never" if x is None or pd.isna(x) else f"{int(x)}"

    view = pd.DataFrame({
        "project": summary["project"],
        "country": summary["country"],
        "stage": summary["stage"],
        "materials": summary["materials"],
        "NPV mean": summary["npv_mean_meur"].map(meur),
        "P5": summary["npv_p5_meur"].map(meur),
        "P50": summary["npv_p50_meur"].map(meur),
        "P95": summary["npv_p95_meur"].map(meur),
        "P(NPV<0)": summary["prob_npv_negative"].map(pct),
        "eq IRR P50": summary["equity_irr_p50"].map(pct),
        "P(default)": summary["prob_debt_default"].map(pct),
        "1st prod P50": summary["first_production_year_p50"].map(year),
    })
    return "Project NPV in EUR m at the fund rate\n" + view.to_string(index=False)


def simulation_metrics(a: Assumptions, settings, result: SimulationResult, stats: dict[str, dict]) -> dict:
    """Every figure of ``metrics.json`` of a simulation (JSON-ready: non-finite floats become None).

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
        The run's settings (seed, sampling).
    result : SimulationResult
    stats : dict
        :func:`project_statistics` of ``result`` (with break-evens added).

    Returns
    -------
    dict
    """
    metrics = {
        "valuation_date": a.fund.valuation_date.isoformat(),
        "currency": a.fund.reporting_currency,
        "discount_rate_nominal": a.fund.discount_rate_nominal,
        "inflation": a.fund.inflation,
        "horizon_years": a.fund.horizon_years,
        "scenarios": result.settings.scenarios,
        "seed": settings.seed,
        "sampling": settings.sampling.value,
        "standard_errors": Replicates(result.settings.scenarios, settings.sampling).describe(),
        **(result.precision or {}),
        "export_restriction_year_share": result.export_restriction_share,
        "parameter_uncertainty": parameter_uncertainty_info(a),
        "projects": stats,
    }
    return json_ready(metrics)


def json_ready(obj):
    """Replace non-finite floats (never expected) by None so JSON stays standard."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
