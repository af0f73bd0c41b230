"""What each memo says: template contexts built from the run's results and the assumptions.

The numbers come from :class:`fundmodel.memo.data.RunResults` (the CSV/JSON/NPY files of
one run) and are formatted once, here, by :class:`fundmodel.memo.labels.Formatter`. The
assumptions supply only descriptions (names, terms, sources), never a figure that the run
computed. Charts are SVG strings from :mod:`fundmodel.memo.charts`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..assumptions.model import Assumptions
from . import charts
from .data import RunResults
from ..portfolio.stress import stress_scenario_count
from .labels import LABELS, STAGES, Formatter
from .wording import stress_base_description, tornado_in_words

_RISKS = ("price", "political", "schedule")
_RISK_LABELS = {"price": "price_risk", "political": "political_risk", "schedule": "schedule_risk_short"}
_CATEGORICAL = {"project", "instrument", "material", "unit", "name", "country", "stage", "materials"}


def _value(row, key):
    """A float from a CSV row or dict; None for missing/empty/NaN."""
    try:
        value = row[key]
    except (KeyError, IndexError):
        return None
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _pm(text: str, se: float | None, fmt: Formatter, percent: bool = False) -> str:
    """``text`` followed by its Monte Carlo standard error, e.g. ``EUR 20.7 m ± 0.8`` (none: ``text``)."""
    if text == "n/a" or se is None or not math.isfinite(se) or se == 0:
        return text
    return f"{text} \u00b1 {fmt.num(100.0 * se if percent else se, 1)}"


def _se_text(se: float | None, fmt: Formatter, percent: bool = False) -> str:
    """A standard error alone, e.g. ``± 0.8`` (empty when there is none)."""
    return _pm("", se, fmt, percent).strip()


def _se_note(results: RunResults, fmt: Formatter, L: dict) -> str:
    """One line saying what the ± figures are (``simulation/metrics.json: standard_errors``)."""
    se = results.simulation.get("standard_errors") or {}
    method = L["se_rqmc"] if se.get("method") == "rqmc" else L["se_batch"]
    return L["note_se"].format(method=method.format(k=se.get("groups", "?")))


def run_info(results: RunResults, fmt: Formatter) -> dict[str, Any]:
    """Manifest fields shown in every footer and the manifest appendix."""
    m = results.manifest
    files = m.get("assumption_files_sha256", {})
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {
        "version": m.get("version", "?"),
        # the code that made the results: a hash of the package's own files (works without git),
        # the commit and whether the package differed from it
        "code": (m.get("code_sha256") or "?")[:8],
        "code_full": m.get("code_sha256") or "?",
        "commit": ((m.get("git_commit") or "none")[:10]
                   + (f" ({LABELS[fmt.lang]['modified']})" if m.get("git_dirty") else "")),
        "seed": m["settings"]["seed"],
        "scenarios": fmt.num(m["settings"]["scenarios"], 0),
        "scenarios_n": int(m["settings"]["scenarios"]),
        "sampling": m["settings"].get("sampling", ""),
        "created": (m.get("created_utc") or "")[:10],
        "valuation_date": results.simulation.get("valuation_date", ""),
        "assumptions_digest": digest[:12],
        "files": [{"name": k, "sha256": v} for k, v in sorted(files.items())],
    }


def _instrument_label(L: dict, instrument: str, material: str | None) -> str:
    text = L.get(instrument, instrument.replace("_", " "))
    return f"{text} ({material})" if material else text


def _size_text(row, entries: dict, fmt: Formatter, L: dict) -> str:
    """The size column: a share; for a stake bought in a primary round, the share of the project's
    equity it gives and (in brackets) the share of the round taken."""
    if row.get("unit", "share") == "musd":
        return fmt.num(row["size"], 2)
    size = float(row["size"])
    entry = entries.get(row["project"]) or {}
    if row["instrument"] == "equity" and entry.get("kind") == "primary":
        return L["size_primary"].format(equity=fmt.pct(size * float(entry.get("stake_per_unit") or 0.0)),
                                        round=fmt.pct(size))
    return fmt.pct(size)


def _equity_share(row, entries: dict) -> float:
    """Share of the project's equity a stake row holds (a primary round's unit is the round)."""
    entry = entries.get(row["project"]) or {}
    per_unit = float(entry.get("stake_per_unit") or 1.0) if entry.get("kind") == "primary" else 1.0
    return float(row["size"]) * per_unit


def _position_text(a: Assumptions, row, fmt: Formatter, L: dict) -> str:
    """One line describing a recommended position, from allocation.csv and the instrument terms."""
    instrument, size = row["instrument"], float(row["size"])
    values = {"label": L.get(instrument, instrument), "size": fmt.pct(size), "capital": fmt.meur(row["capital_meur"]),
              "contingent": fmt.meur(row["contingent_meur"]), "material": row.get("material", "")}
    if instrument == "equity":
        return L["pos_equity"].format(**values)
    if instrument == "loan_guarantee":
        return L["pos_guarantee"].format(**values)
    if instrument == "political_risk_cover":
        return L["pos_cover"].format(**values)
    if instrument == "price_floor" and a.instruments is not None:
        terms = a.instruments.price_floor
        return L["pos_floor"].format(floor=fmt.num(terms.floors_usd_per_t.get(row["material"]), 0),
                                     tenor=terms.tenor_years, **values)
    return f"{_instrument_label(L, instrument, row.get('material'))}: {fmt.num(size, 3)} {row.get('unit', '')}"


def _conditions(a: Assumptions, results: RunResults, pid: str, positions: pd.DataFrame, fmt: Formatter,
                L: dict) -> list[str]:
    """Conditions attached to the recommendation, each derived from a term or a modelled figure."""
    out: list[str] = []
    s = results.summary.loc[pid]
    instruments = set(positions["instrument"]) if not positions.empty else set()
    terms = a.instruments
    if "equity" in instruments and terms is not None:
        stake = positions.loc[positions["instrument"] == "equity"].iloc[0]
        share = _equity_share(stake, (results.portfolio or {}).get("entry") or {})
        if not terms.equity.sole_largest_shareholder_allowed:
            out.append(L["cond_equity"].format(share=fmt.pct(share), cap=fmt.pct(terms.equity.max_share)))
        # the stake's own offtake (the guarantees' supply commitments are listed with them)
        tonnes = [f"{fmt.tonnes(float(stake[c]))} {c[7:]}"
                  for c in positions.columns if c.startswith("tonnes_") and _value(stake, c) and stake[c] > 0.5]
        if tonnes:
            out.append(L["cond_offtake"].format(tonnes=", ".join(tonnes)))
    p_default = _value(s, "prob_debt_default")
    if p_default is not None and p_default > 0.10:
        out.append(L["cond_default"].format(p=fmt.pct(p_default)))
    pricing = [g for g in (results.portfolio or {}).get("guarantee_pricing", []) if g["project"] == pid
               and g["instrument"] in instruments]
    for g in pricing:
        if g.get("subsidised"):
            out.append(L["cond_subsidy"].format(instrument=_instrument_label(L, g["instrument"], g.get("material")),
                                                ratio=fmt.ratio(g.get("premium_to_expected_loss"))))
    p_prod = _value(s, "prob_production")
    if p_prod is not None and p_prod < 0.9:
        out.append(L["cond_staging"].format(p=fmt.pct(p_prod)))
    return out


def _key_figures(results: RunResults, pid: str, fmt: Formatter, L: dict) -> list[dict[str, str]]:
    s = results.summary.loc[pid]

    def mean(key):  # a mean with its standard error
        return _pm(fmt.meur(_value(s, key)), _value(s, key.replace("_meur", "_se_meur")), fmt)

    def prob(key):
        return _pm(fmt.pct(_value(s, key)), _value(s, f"{key}_se"), fmt, percent=True)

    rows = [
        (f"{L['equity_npv']}, {L['mean'].lower()} ({L['at_policy_rate']})", mean("equity_npv_mean_meur"),
         "equity_npv_mean_meur"),
        (f"{L['equity_npv']}, {L['mean'].lower()} ({L['at_market_rate'].format(rate=fmt.pct(_value(s, 'cost_of_equity')))})",
         mean("equity_npv_market_mean_meur"), "equity_npv_market_mean_meur"),
        (f"{L['equity_npv']} P5 / P50 / P95",
         " / ".join(fmt.meur(_value(s, f"equity_npv_p{q}_meur")) for q in (5, 50, 95)), "equity_npv_p"),
        (f"{L['project_npv']}, {L['mean'].lower()} ({L['at_policy_rate']})", mean("npv_mean_meur"),
         "npv_mean_meur"),
        (f"{L['project_npv']}, {L['mean'].lower()} ({L['at_market_rate'].format(rate=fmt.pct(_value(s, 'asset_rate')))})",
         mean("npv_market_mean_meur"), "npv_market_mean_meur"),
        (f"{L['project_npv']} P5 / P50 / P95",
         " / ".join(fmt.meur(_value(s, f"npv_p{q}_meur")) for q in (5, 50, 95)), "npv_p"),
        (f"{L['equity_irr']} P5 / P50 / P95",
         " / ".join(fmt.pct(_value(s, f"equity_irr_p{q}")) for q in (5, 50, 95)), "equity_irr_p"),
        (L["prob_loss"], prob("prob_equity_npv_negative"), "prob_equity_npv_negative"),
        (L["prob_total_loss"], prob("prob_equity_total_loss"), "prob_equity_total_loss"),
        (L["prob_default"], prob("prob_debt_default"), "prob_debt_default"),
        (L["prob_default_10y"], _pm(fmt.pct(_value(s, "prob_debt_default_10y")),
                                    _value(results.simulation["projects"][pid], "prob_debt_default_10y_se"), fmt,
                                    percent=True), "prob_debt_default_10y"),
        (L["debt_recovery"], _recovery_text(s, fmt, L), "debt_recovery_rate_mean"),
        (L["prob_production"], prob("prob_production"), "prob_production"),
        (L["first_production"], " / ".join(fmt.year(_value(s, f"first_production_year_p{q}")) for q in (5, 50, 95)),
         "first_production_year"),
    ]
    return [{"label": a, "value": b, "key": c} for a, b, c in rows]


def _breakeven_figure(a: Assumptions, results: RunResults, pid: str, fmt: Formatter, L: dict) -> list[dict[str, str]]:
    """Break-even long-run price of the primary material (summary ``breakeven_long_run_price``), vs the shipped level."""
    s = results.summary.loc[pid]
    if "breakeven_long_run_price" not in s:  # results of an older run
        return []
    material = a.markets.materials[a.projects[pid].materials[0]]
    price, se = _value(s, "breakeven_long_run_price"), _value(s, "breakeven_long_run_price_se")
    if price is None:
        value = fmt.num(None)
    else:
        value = L["breakeven_value"].format(price=fmt.num(price, 0), se=fmt.num(se, 0),
                                            shipped=fmt.num(material.long_run_usd_per_t, 0))
    return [{"label": L["breakeven"].format(material=material.name), "value": value,
             "key": "breakeven_long_run_price"}]


def _options_figure(results: RunResults, pid: str, fmt: Formatter, L: dict) -> list[dict[str, str]]:
    """Committed NPV vs NPV with options at the asset rate, option value ± SE and the probabilities."""
    s = results.summary.loc[pid]
    value = _value(s, "option_value_meur")
    if value is None:  # options off, or results of an older run
        return []
    text = L["options_value"].format(
        committed=fmt.meur(_value(s, "npv_committed_mean_meur")), options=fmt.meur(_value(s, "npv_options_mean_meur")),
        value=fmt.meur(value), se=fmt.num(_value(s, "option_value_se_meur")))
    probabilities = L["options_probabilities_value"].format(
        develop=fmt.pct(_value(s, "prob_development")), closure=fmt.pct(_value(s, "prob_temporary_closure")),
        abandon=fmt.pct(_value(s, "prob_abandonment")))
    return [{"label": L["options"], "value": text, "key": "option_value_meur"},
            {"label": L["options_probabilities"], "value": probabilities, "key": "prob_development"}]


def _breakeven_note(a: Assumptions, results: RunResults, pid: str, fmt: Formatter, L: dict) -> str:
    """What the break-even is: the NPV zeroed, the unit, the sample; or why there is none."""
    s = results.summary.loc[pid]
    if "breakeven_long_run_price" not in s:
        return ""
    stats = results.simulation.get("projects", {}).get(pid, {})
    material = a.markets.materials[a.projects[pid].materials[0]]
    note = L["note_breakeven"].format(material=material.name, product=material.product,
                                      rate=fmt.pct(_value(s, "asset_rate")),
                                      n=fmt.num(stats.get("breakeven_scenarios"), 0))
    if _value(s, "breakeven_long_run_price") is None and stats.get("breakeven_reason"):
        note += " " + L["breakeven_none"].format(reason=stats["breakeven_reason"])
    return note


def _parameter_note(a: Assumptions, results: RunResults, L: dict) -> str:
    """Whether the run drew the price parameters per scenario, for which materials, and which stay fixed."""
    info = results.simulation.get("parameter_uncertainty")
    if info is None:  # results of an older run
        return ""
    names = {mid: m.name for mid, m in a.markets.materials.items()}
    drawn = [names.get(mid, mid) for mid in info.get("materials", {})]
    fixed = [names[mid] for mid in a.markets.materials if names[mid] not in drawn]
    if not info.get("enabled") or not drawn:
        return L["note_parameters_off"]
    return L["note_parameters_on"].format(drawn=", ".join(drawn), fixed=", ".join(fixed) or "-")


def _recovery_text(s, fmt: Formatter, L: dict) -> str:
    """Mean recovery at default and the share of defaults with the project worth more than the debt."""
    rate, above = _value(s, "debt_recovery_rate_mean"), _value(s, "default_share_value_above_debt")
    if rate is None:
        return fmt.pct(None)
    return f"{fmt.pct(rate)} ({L['value_above_debt'].format(p=fmt.pct(above, 0))})"


def _assumption_rows(a: Assumptions, pid: str, fmt: Formatter, L: dict) -> list[dict[str, str]]:
    p = a.projects[pid]
    src = p.sources
    country = a.countries.countries[p.country]
    rows = []
    for mid, prod in p.products.items():
        m = a.markets.materials[mid]
        rows.append((f"{m.name}: {L['grade_recovery']}",
                     f"{fmt.num(prod.grade_pct, 3)} %, {fmt.pct(prod.recovery, 0)}, {fmt.pct(prod.payability, 0)}",
                     src.get("products", "")))
        rows.append((f"{m.name}: {L['spot_long_run']}",
                     f"USD {fmt.num(m.spot_usd_per_t, 0)}/t / USD {fmt.num(m.long_run_usd_per_t, 0)}/t",
                     m.source))
        rows.append((f"{m.name}: {L['vol_reversion']}",
                     f"{fmt.pct(m.volatility, 0)} p.a., {fmt.num(m.mean_reversion_per_year, 2)} p.a.", m.source))
    ops = p.operations
    rows.append((L["capacity"], f"{fmt.num(ops.ore_mtpa, 2)} Mt/yr, {fmt.num(ops.mine_life_years, 0)} {L['years']}",
                 src.get("operations", "")))
    rows.append((L["operating_cost"], f"USD {fmt.num(ops.opex_usd_per_t_ore, 1)}/t ore + "
                 f"{fmt.musd(ops.fixed_opex_musd_per_year)}/yr", src.get("operations", "")))
    c = p.capex
    rows.append((L["capex"], f"{fmt.musd(c.initial_musd)} (+{fmt.musd(c.acquisition_musd)} {L['acquisition']})"
                 if c.acquisition_musd else fmt.musd(c.initial_musd), src.get("capex", "")))
    rows.append((L["overrun"], f"{fmt.pct(c.overrun_mean, 0)}, {fmt.pct(c.overrun_prob_ge_100pct, 0)}",
                 src.get("capex", "")))
    sched = p.schedule
    for key, label in (("exploration_years", L["exploration"]), ("permitting_years", L["permitting"]),
                       ("construction_years", L["construction"]), ("rampup_years", L["rampup"])):
        t = getattr(sched, key)
        if t is not None:
            rows.append((f"{label} (min / mode / max)",
                         f"{fmt.num(t.min, 1)} / {fmt.num(t.mode, 1)} / {fmt.num(t.max, 1)} {L['years']}",
                         src.get("schedule", "")))
    rows.append((L["royalty_tax"], f"{fmt.pct(p.fiscal.royalty_rate)}, {fmt.pct(p.fiscal.tax_rate)}",
                 src.get("fiscal", "")))
    d = p.debt
    if d.amount_musd > 0:
        sized = (f"; DSCR >= {fmt.num(d.sizing.min_dscr, 2)}x, <= {fmt.pct(d.sizing.max_gearing, 0)} "
                 f"({d.sized.binding})" if d.sized is not None else "")
        rows.append((L["debt"], f"{fmt.musd(d.amount_musd)} at {fmt.pct(d.interest_rate)}, {d.tenor_years} "
                     f"{L['years']} ({d.grace_years} {L['grace']}){sized}", src.get("debt", "")))
    elif d.sized is not None:  # sized by rule to nothing: say so, a committee asks where the loan went
        rows.append((L["debt"], L["no_bankable_debt"].format(dscr=fmt.num(d.sizing.min_dscr, 2)),
                     src.get("debt", "")))
    rows.append((L["offtake"], fmt.pct(p.offtake.eu_share, 0), src.get("offtake", "")))
    ev = country.events
    rows.append((f"{country.name}: {L['hazards']}",
                 " / ".join(fmt.pct(getattr(ev, e).annual_probability, 2) for e in
                            ("expropriation", "fiscal_grab", "transfer_restriction", "unrest")),
                 country.source))
    return [{"item": i, "value": v, "source": s} for i, v, s in rows]


def _market_rows(a: Assumptions, results: RunResults, pid: str, positions: pd.DataFrame, fmt: Formatter,
                 L: dict) -> tuple[list[dict[str, str]], str]:
    """Each claim at the fund's policy rate and at its market rate, and the concession of the positions."""
    s = results.summary.loc[pid]
    policy = a.fund.discount_rate_nominal
    rows = [
        {"label": L["project_npv"], "policy": fmt.meur(_value(s, "npv_mean_meur")),
         "rate": fmt.pct(_value(s, "asset_rate")), "market": fmt.meur(_value(s, "npv_market_mean_meur"))},
        {"label": L["equity_npv"], "policy": fmt.meur(_value(s, "equity_npv_mean_meur")),
         "rate": fmt.pct(_value(s, "cost_of_equity")), "market": fmt.meur(_value(s, "equity_npv_market_mean_meur"))},
    ]
    if not positions.empty and "concession_meur" in positions:
        for _, r in positions.iterrows():
            rows.append({"label": f"{L['concession']}: {_instrument_label(L, r['instrument'], r['material'] or None)}",
                         "policy": "", "rate": fmt.pct(_value(r, "market_rate")),
                         "market": fmt.meur(_value(r, "concession_meur"))})
    m = a.fund.market_rates
    crp = a.countries.countries[a.projects[pid].country].country_risk_premium
    note = L["note_market"].format(rf=fmt.pct(m.risk_free_eur), crp=fmt.pct(crp), policy=fmt.pct(policy))
    return rows, note


def _entry_rows(results: RunResults, pid: str, positions: pd.DataFrame, fmt: Formatter, L: dict) -> dict | None:
    """The equity's entry terms (``portfolio/metrics.json: entry``) and the price of a stake held."""
    entry = ((results.portfolio or {}).get("entry") or {}).get(pid)
    if entry is None:
        return None
    rows = [{"label": L["entry_kind"], "value": L.get(f"entry_{entry['kind']}", entry["kind"])}]
    if entry["kind"] != "acquisition":
        rows.append({"label": L["entry_discount"], "value": fmt.pct(entry["discount"], 0)})
    rows.append({"label": L["pre_money"], "value": fmt.meur(entry["pre_money_meur"])})
    if entry["kind"] == "primary":
        rows.append({"label": L["round_size"], "value": fmt.meur(entry["raise_meur"])})
    held = positions[positions["instrument"] == "equity"] if not positions.empty else positions
    if not held.empty and "entry_price_meur" in held:
        rows.append({"label": L["entry_price"], "value": fmt.meur(float(held["entry_price_meur"].sum()))})
    return {"rows": rows, "unavailable": entry["reason"] if not entry["available"] else ""}


def _supply_rows(a: Assumptions, results: RunResults, pid: str | None, fmt: Formatter, L: dict) -> list[dict]:
    """Available vs secured tonnes per project and material (``portfolio/supply.csv``)."""
    table = results.supply
    if table is None or table.empty:
        return []
    if pid is not None:
        table = table[table["project"] == pid]
    rows = []
    for _, r in table.iterrows():
        name = a.markets.materials[r["material"]].name if r["material"] in a.markets.materials else r["material"]
        parts = [f"{fmt.tonnes(r[f'by_{k}_t_per_year'])} {L['by_' + k]}"
                 for k in ("equity", "loan_guarantee", "price_floor") if _value(r, f"by_{k}_t_per_year")]
        rows.append({"project": r["project"], "material": name,
                     "available": fmt.tonnes(_value(r, "eu_available_t_per_year")),
                     "secured": fmt.tonnes(_value(r, "secured_t_per_year")),
                     "share": fmt.pct(_value(r, "secured_share")), "by": ", ".join(parts) or "-"})
    return rows


def _stress_sample(a: Assumptions, results: RunResults) -> int | None:
    """Scenarios of the stressed runs of these results (the base row's sample)."""
    scenarios = (results.manifest.get("settings") or {}).get("scenarios")
    return None if a.stress is None or scenarios is None else stress_scenario_count(a, scenarios)


def _stress_rows(results: RunResults, fmt: Formatter, project: str | None = None,
                 n_stress: int | None = None) -> list[dict[str, str]]:
    if results.stress is None:
        return []
    rows = []
    for _, r in results.stress.iterrows():
        description = r.get("description", "")
        if r["stress"] == "base" and n_stress is not None:  # its words are ours: in the memo's language
            description = stress_base_description(n_stress, fmt.lang)
        row = {"stress": r["stress"], "description": description,
               "pv": fmt.meur(_value(r, "expected_pv_meur")), "change": fmt.meur(_value(r, "change_meur")),
               "cvar": fmt.meur(_value(r, "cvar_meur"))}
        if project is not None:
            key = f"change_{project}_meur"
            row["project_change"] = fmt.meur(_value(r, key)) if key in results.stress.columns else None
        rows.append(row)
    return rows


def project_context(a: Assumptions, results: RunResults, pid: str, lang: str = "en") -> dict[str, Any]:
    """Template context of one project memo.

    Parameters
    ----------
    a : Assumptions
        The assumptions the run used (descriptions, terms and sources only).
    results : RunResults
        The run's results.
    pid : str
        Project id.
    lang : {"en", "de"}

    Returns
    -------
    dict
        Everything ``project.html`` prints, already formatted.
    """
    fmt, L = Formatter(lang), LABELS[lang]
    p = a.projects[pid]
    s = results.summary.loc[pid]
    positions = results.positions(pid)
    country = a.countries.countries[p.country]

    equity = results.scenario_values(pid, "equity_npv_meur")
    project_npv = results.scenario_values(pid, "project_npv_meur")
    irr = results.scenario_values(pid, "equity_irr")
    distribution = None
    if equity is not None and project_npv is not None:
        distribution = charts.value_distribution(
            np.asarray(equity), np.asarray(project_npv), None if irr is None else np.asarray(irr),
            {f"P{q}": _value(s, f"equity_npv_p{q}_meur") for q in (5, 50, 95)}, L)

    attribution = None
    attribution_rows = []
    if _value(s, "value_lost_price_meur") is not None:
        stats = results.simulation["projects"][pid]
        lost = [stats.get(f"value_lost_{r}_meur") for r in _RISKS]
        se = [stats.get(f"value_lost_{r}_se_meur") or 0.0 for r in _RISKS]
        names = [L[_RISK_LABELS[r]] for r in _RISKS]
        attribution = charts.risk_attribution(names, lost, se, L)
        attribution_rows = [{"risk": n, "lost": fmt.meur(v), "se": fmt.meur(e)} for n, v, e in zip(names, lost, se)]

    tornado = None
    tornado_rows = []
    if results.sensitivity is not None:
        sens = results.sensitivity[results.sensitivity["project"] == pid]
        sens = sens.sort_values("swing_meur", ascending=False).head(8)
        if not sens.empty:
            base = float(sens["base_equity_npv_meur"].iloc[0])
            sens = tornado_in_words(a, sens, lang)  # the driver keys worded in the memo's language
            tornado = charts.tornado(list(sens["label"]), sens["low_equity_npv_meur"].to_numpy(),
                                     sens["high_equity_npv_meur"].to_numpy(), base,
                                     [str(x) for x in sens["low_setting"]], [str(x) for x in sens["high_setting"]], L)
            tornado_rows = [{"driver": r["label"], "low_setting": r["low_setting"], "high_setting": r["high_setting"],
                             "low": fmt.meur(r["low_equity_npv_meur"]), "high": fmt.meur(r["high_equity_npv_meur"]),
                             "swing": fmt.meur(r["swing_meur"])} for _, r in sens.iterrows()]

    fans = []
    if results.price_fan is not None:
        for mid in p.products:
            rows = results.price_fan[results.price_fan["material"] == mid].sort_values("year")
            if rows.empty:
                continue
            rows = rows[rows["year"] <= rows["year"].min() + 20]
            unit = str(rows["unit"].iloc[0]) if "unit" in rows else "USD/t"
            fans.append(charts.price_fan(rows["year"].to_numpy(), {q: rows[q].to_numpy() for q in
                                                                     ("p5", "p25", "p50", "p75", "p95")},
                                         a.markets.materials[mid].name, unit))

    schedule_chart = None
    if results.first_production is not None:
        fp = results.first_production[results.first_production["project"] == pid]
        if not fp.empty:
            never = fp["year"].astype(str) == "never"
            producing = fp[~never]
            schedule_chart = charts.first_production(producing["year"].astype(int).to_numpy(),
                                                     producing["share"].to_numpy(dtype=float),
                                                     float(fp.loc[never, "share"].sum()), L)

    position_rows = []
    for _, r in positions.iterrows():
        tonnes = {c[7:]: r[c] for c in positions.columns if c.startswith("tonnes_") and _value(r, c)}
        position_rows.append({
            "text": _position_text(a, r, fmt, L),
            "instrument": _instrument_label(L, r["instrument"], r["material"] or None),
            "size": _size_text(r, (results.portfolio or {}).get("entry") or {}, fmt, L),
            "capital": fmt.meur(r["capital_meur"]), "contingent": fmt.meur(r["contingent_meur"]),
            "expected_pv": fmt.meur(r["expected_pv_meur"]), "cvar": fmt.meur(r["cvar_contribution_meur"]),
            "tonnes": ", ".join(f"{fmt.tonnes(v)} {k}" for k, v in tonnes.items() if v >= 0.5) or "-",
        })
    pricing_rows = []
    for g in (results.portfolio or {}).get("guarantee_pricing", []):
        if g["project"] != pid:
            continue
        pricing_rows.append({
            "instrument": _instrument_label(L, g["instrument"], g.get("material") or None),
            "premium": fmt.meur(g.get("premium_pv_meur_per_unit")),
            "expected_loss": fmt.meur(g.get("expected_loss_pv_meur_per_unit")),
            "ratio": fmt.ratio(g.get("premium_to_expected_loss")),
            "oecd": fmt.meur(g.get("oecd_minimum_premium_pv_meur_per_unit")),
            "subsidised": L["yes"] if g.get("subsidised") else L["no"],
        })
    portfolio_effect = None
    if results.portfolio is not None:
        total_cvar = results.portfolio.get("cvar_meur")
        contribution = float(positions["cvar_contribution_meur"].sum()) if not positions.empty else 0.0
        pv = float(positions["expected_pv_meur"].sum()) if not positions.empty else 0.0
        tonnes = {c[7:]: float(positions[c].sum()) for c in positions.columns
                  if c.startswith("tonnes_")} if not positions.empty else {}
        portfolio_effect = {
            "cvar_contribution": fmt.meur(contribution),
            "cvar_share": fmt.pct(contribution / total_cvar) if total_cvar else "n/a",
            "portfolio_cvar": fmt.meur(total_cvar),
            "expected_pv": fmt.meur(pv),
            "tonnes": [{"material": k, "tonnes": fmt.tonnes(v)} for k, v in tonnes.items() if v >= 0.5],
        }

    market_rows, market_note = _market_rows(a, results, pid, positions, fmt, L)
    entry = _entry_rows(results, pid, positions, fmt, L)
    supply = _supply_rows(a, results, pid, fmt, L)

    sched = p.schedule
    permitting = sched.permitting_years or (country.permitting_years if p.stage.value in ("exploration", "feasibility")
                                            else None)
    facts = [
        (L["country"], f"{country.name} ({p.country})"),
        (L["materials"], ", ".join(a.markets.materials[m].name for m in p.products)),
        (L["stage"], STAGES[lang].get(p.stage.value, p.stage.value)),
        (L["capex"], fmt.musd(p.capex.initial_musd)),
        (L["capacity"], f"{fmt.num(p.operations.ore_mtpa, 2)} Mt/yr"),
        (L["mine_life"], f"{fmt.num(p.operations.mine_life_years, 0)} {L['years']}"),
        (L["debt"], fmt.musd(p.debt.amount_musd)),
        (L["offtake"], fmt.pct(p.offtake.eu_share, 0)),
        (L["first_production"], " / ".join(fmt.year(_value(s, f"first_production_year_p{q}")) for q in (5, 50, 95))),
        (L["output_mean"],
         f"{fmt.tonnes(_value(s, 'tonnes_per_year_mean_y1_10'))} / {fmt.tonnes(_value(s, 'tonnes_per_year_mean_y11_20'))}"
         f" {s['primary_material']}/yr"),
    ]
    if permitting is not None:
        facts.insert(4, (L["permitting"], f"{fmt.num(permitting.mode, 1)} {L['years']} (mode)"))

    return {
        "lang": lang, "L": L, "kind": "project",
        "title": p.name, "project_id": pid,
        "run": run_info(results, fmt),
        "recommendation": L["recommend_invest"] if position_rows else L["recommend_no"],
        "invest": bool(position_rows),
        "positions": position_rows,
        "no_position_reason": L["no_position_reason"],
        "conditions": _conditions(a, results, pid, positions, fmt, L),
        "key_figures": (_key_figures(results, pid, fmt, L) + _breakeven_figure(a, results, pid, fmt, L)
                        + _options_figure(results, pid, fmt, L)),
        "breakeven_note": _breakeven_note(a, results, pid, fmt, L),
        "parameter_note": _parameter_note(a, results, L),
        "facts": [{"label": k, "value": v} for k, v in facts],
        "distribution_chart": distribution,
        "valuation_rows": [
            {"label": L["equity_npv"],
             "mean": _pm(fmt.meur(_value(s, "equity_npv_mean_meur")), _value(s, "equity_npv_mean_se_meur"), fmt),
             **{f"p{q}": _pm(fmt.meur(_value(s, f"equity_npv_p{q}_meur")), _value(s, f"equity_npv_p{q}_se_meur"), fmt)
                for q in (5, 50, 95)}},
            {"label": L["project_npv"],
             "mean": _pm(fmt.meur(_value(s, "npv_mean_meur")), _value(s, "npv_mean_se_meur"), fmt),
             **{f"p{q}": _pm(fmt.meur(_value(s, f"npv_p{q}_meur")), _value(s, f"npv_p{q}_se_meur"), fmt)
                for q in (5, 50, 95)}},
            {"label": L["equity_irr"], "mean": "",
             **{f"p{q}": _pm(fmt.pct(_value(s, f"equity_irr_p{q}")), _value(s, f"equity_irr_p{q}_se"), fmt,
                             percent=True) for q in (5, 50, 95)}},
        ],
        "se_note": _se_note(results, fmt, L),
        "irr_undefined": fmt.pct(_value(s, "equity_irr_undefined_share")),
        "attribution_chart": attribution, "attribution_rows": attribution_rows,
        "attribution_scenarios": fmt.num(results.simulation["projects"][pid].get("attribution_scenarios"), 0),
        "tornado_chart": tornado, "tornado_rows": tornado_rows,
        "price_charts": fans, "schedule_chart": schedule_chart,
        "pricing": pricing_rows,
        "market_rows": market_rows, "market_note": market_note,
        "entry": entry,
        "supply": supply,
        "portfolio_effect": portfolio_effect,
        "stress": _stress_rows(results, fmt, pid, _stress_sample(a, results)),
        "assumptions": _assumption_rows(a, pid, fmt, L),
        "events": {k: fmt.pct(v, 2) for k, v in results.simulation["projects"][pid].get("event_year_share", {}).items()},
    }


def _exposure_by(allocation: pd.DataFrame, key: pd.Series) -> pd.Series:
    exposure = allocation["capital_meur"] + allocation["contingent_meur"]
    return exposure.groupby(key.to_numpy()).sum()


def portfolio_context(a: Assumptions, results: RunResults, lang: str = "en",
                      baseline: RunResults | None = None) -> dict[str, Any]:
    """Template context of the portfolio memo (see :func:`project_context`)."""
    fmt, L = Formatter(lang), LABELS[lang]
    m = results.portfolio
    alloc = results.allocation if results.allocation is not None else pd.DataFrame()
    limits = a.fund.portfolio

    rows = []
    for _, r in alloc.iterrows():
        rows.append({
            "project": r["project"], "name": a.projects[r["project"]].name if r["project"] in a.projects else r["project"],
            "country": a.projects[r["project"]].country if r["project"] in a.projects else "",
            "instrument": _instrument_label(L, r["instrument"], r["material"] or None),
            "colour": charts.COLOURS.get(r["instrument"], charts.COLOURS["neutral"]),
            "size": _size_text(r, (results.portfolio or {}).get("entry") or {}, fmt, L),
            "capital": fmt.meur(r["capital_meur"]), "contingent": fmt.meur(r["contingent_meur"]),
            "expected_pv": fmt.meur(r["expected_pv_meur"]), "cvar": fmt.meur(r["cvar_contribution_meur"]),
        })
    allocation_chart = contributions_chart = None
    if not alloc.empty:
        projects = list(dict.fromkeys(alloc["project"]))
        by_instrument = {}
        for instrument in dict.fromkeys(alloc["instrument"]):
            sub = alloc[alloc["instrument"] == instrument]
            exp = (sub["capital_meur"] + sub["contingent_meur"]).groupby(sub["project"]).sum()
            by_instrument[instrument] = np.array([float(exp.get(p, 0.0)) for p in projects])
        allocation_chart = charts.allocation(projects, by_instrument, L)
        names = [f"{r['project']} {r['instrument'].replace('_', ' ')}" + (f" {r['material']}" if r["material"] else "")
                 for _, r in alloc.iterrows()]
        contributions_chart = charts.contributions(names, alloc["cvar_contribution_meur"].to_numpy(), L)

    frontier_chart = supply_frontier_chart = None
    fr = results.frontier
    if fr is not None and not fr.empty:
        frontier_chart = charts.frontier(fr["cvar_meur"].to_numpy(), fr["expected_pv_meur"].to_numpy(),
                                         (m["cvar_meur"], m["expected_pv_meur"]), f"{L['pv']} (EUR m)", L,
                                         m.get("cvar_limit_meur"))
        if "supply_cvar_meur" in fr.columns and fr["supply_cvar_meur"].notna().any():
            sp = fr[fr["supply_cvar_meur"].notna()]
            supply_frontier_chart = charts.frontier(
                sp["supply_cvar_meur"].to_numpy(), sp["supply_weighted_t_per_year"].to_numpy(),
                (m["cvar_meur"], m.get("weighted_supply_t_per_year", float("nan"))), f"{L['weighted_supply']} (t/yr)",
                L, m.get("cvar_limit_meur"))

    sample_note = None
    sample = m.get("optimization_sample")
    if sample:  # large run: the tail of the solve came from a subsample (fundmodel.portfolio.fund)
        met = sample.get("cvar_limit_met")
        sample_note = L["note_sample"].format(
            solved=fmt.num(sample["scenarios_solved"], 0), evaluated=fmt.num(sample["scenarios_evaluated"], 0),
            cvar_sample=fmt.meur(sample["solve_sample"]["cvar_meur"]),
            cvar_all=fmt.meur(sample["all_scenarios"]["cvar_meur"]), gap=fmt.meur(sample["gap"]["cvar_meur"]),
            met="—" if met is None else (L["yes"] if met else L["no"]))

    concentration = {}
    if not alloc.empty:
        exposure_total = float((alloc["capital_meur"] + alloc["contingent_meur"]).sum())
        countries = alloc["project"].map(lambda p: a.projects[p].country if p in a.projects else "?")
        materials = alloc["project"].map(lambda p: a.projects[p].materials[0] if p in a.projects else "?")
        for label, key, limit in (("country", countries, limits.max_country_share),
                                  ("material", materials, limits.max_material_share)):
            shares = _exposure_by(alloc, key) / exposure_total if exposure_total > 0 else _exposure_by(alloc, key) * 0
            shares = shares.sort_values(ascending=False)
            concentration[label] = {
                "chart": charts.shares_vs_limit(list(shares.index), shares.to_numpy(), limit, L[label], L),
                "rows": [{"group": g, "share": fmt.pct(v), "limit": fmt.pct(limit)} for g, v in shares.items()],
            }

    secured = m.get("supply_secured_t_per_year", {})
    targets = dict(limits.min_supply_t_per_year)
    materials = sorted(set(secured) | set(targets))
    supply_chart = charts.supply(materials, np.array([secured.get(x, 0.0) for x in materials]),
                                 np.array([targets.get(x, 0.0) for x in materials]), L) if materials else None
    supply_rows = [{"material": a.markets.materials[x].name if x in a.markets.materials else x,
                    "secured": fmt.tonnes(secured.get(x, 0.0)),
                    "target": fmt.tonnes(targets[x]) if x in targets else "-"} for x in materials]

    constraint_rows = []
    for name, c in m.get("constraints", {}).items():
        if not c.get("binding") and not name.startswith(("capital budget", "contingent limit", "min supply", "return")):
            continue
        constraint_rows.append({"name": name, "value": fmt.num(c.get("value")), "limit": fmt.num(c.get("limit")),
                                "binding": L["yes"] if c.get("binding") else L["no"],
                                "shadow": fmt.num(c.get("shadow_price"), 3)})
    if m.get("cvar_limit_meur") is not None:
        constraint_rows.append({"name": "CVaR limit", "value": fmt.num(m["cvar_meur"]),
                                "limit": fmt.num(m["cvar_limit_meur"]),
                                "binding": L["yes"] if abs(m["cvar_meur"] - m["cvar_limit_meur"]) < 1e-6 * max(
                                    1.0, m["cvar_limit_meur"]) else L["no"],
                                "shadow": fmt.num(m.get("cvar_cap_shadow_price"), 3)})

    headline = [
        {"label": f"{L['pv']} ({L['chosen']})", "key": "expected_pv_meur",
         "value": _pm(fmt.meur(m["expected_pv_meur"]), m.get("expected_pv_se_meur"), fmt)},
        {"label": f"{L['var']} {fmt.pct(m['cvar_beta'], 0)}", "key": "var_meur",
         "value": _pm(fmt.meur(m["var_meur"]), m.get("var_se_meur"), fmt)},
        {"label": f"{L['cvar']} {fmt.pct(m['cvar_beta'], 0)}", "key": "cvar_meur",
         "value": _pm(fmt.meur(m["cvar_meur"]), m.get("cvar_se_meur"), fmt)},
        {"label": L["budget"], "value": f"{fmt.meur(m['capital_used_meur'])} / {fmt.meur(m['budget_meur'])}",
         "key": "capital_used_meur"},
        {"label": L["contingent_limit"],
         "value": f"{fmt.meur(m['contingent_used_meur'])} / {fmt.meur(m['contingent_limit_meur'])}",
         "key": "contingent_used_meur"},
    ]
    if m.get("cvar_limit_meur") is not None:
        headline.append({"label": L["cvar_limit"], "value": fmt.meur(m["cvar_limit_meur"]), "key": "cvar_limit_meur"})
    if m.get("concession_meur") is not None:
        budget = m.get("concession_budget_meur")
        headline.append({"label": L["concession_granted"], "key": "concession_meur",
                         "value": fmt.meur(m["concession_meur"]) + (f" / {fmt.meur(budget)}" if budget is not None else "")})
    if m.get("entry"):  # why capital may stay unused: stakes that cannot be bought at market prices
        available = sum(1 for e in m["entry"].values() if e.get("available"))
        headline.append({"label": L["stakes_available"], "key": "entry",
                         "value": L["stakes_available_value"].format(k=available, n=len(m["entry"]))})

    terms = []
    for _, r in alloc.iterrows():
        if "concession_meur" not in alloc:
            break
        terms.append({"project": r["project"], "instrument": _instrument_label(L, r["instrument"], r["material"] or None),
                      "entry_price": fmt.meur(_value(r, "entry_price_meur")) if r["instrument"] == "equity" else "-",
                      "rate": fmt.pct(_value(r, "market_rate")), "concession": fmt.meur(_value(r, "concession_meur"))})

    changes = None
    if baseline is not None and baseline.portfolio is not None:
        bm = baseline.portfolio
        changes = []
        for key, label in (("expected_pv_meur", L["pv"]), ("var_meur", L["var"]), ("cvar_meur", L["cvar"]),
                           ("capital_used_meur", L["capital"]), ("contingent_used_meur", L["contingent"])):
            before, after = bm.get(key), m.get(key)
            changes.append({"item": label, "before": fmt.meur(before), "after": fmt.meur(after),
                            "change": fmt.meur(None if before is None or after is None else after - before)})
        old = baseline.allocation if baseline.allocation is not None else pd.DataFrame()

        def sized(frame):
            if frame.empty:
                return {}
            return {(r["project"], r["instrument"], r["material"] or ""): float(r["size"]) for _, r in frame.iterrows()}

        old_sizes, new_sizes = sized(old), sized(alloc)
        for key in sorted(set(old_sizes) | set(new_sizes)):
            b, n = old_sizes.get(key, 0.0), new_sizes.get(key, 0.0)
            if abs(b - n) > 1e-6:
                changes.append({"item": f"{key[0]} {_instrument_label(L, key[1], key[2] or None)}",
                                "before": fmt.pct(b), "after": fmt.pct(n), "change": fmt.pct(n - b)})
        for pid in results.projects:
            if pid in baseline.summary.index:
                b = _value(baseline.summary.loc[pid], "equity_npv_mean_meur")
                n = _value(results.summary.loc[pid], "equity_npv_mean_meur")
                if b is not None and n is not None and abs(b - n) > 0.05:
                    changes.append({"item": f"{pid}: {L['equity_npv']}, {L['mean'].lower()}", "before": fmt.meur(b),
                                    "after": fmt.meur(n), "change": fmt.meur(n - b)})

    project_rows = []
    for pid in results.projects:
        s = results.summary.loc[pid]
        project_rows.append({"project": pid, "name": s["name"], "country": s["country"],
                             "stage": STAGES[lang].get(s["stage"], s["stage"]),
                             # EUR m in the column heads; standard errors on a second line keep the cells narrow
                             "npv": fmt.num(_value(s, "equity_npv_mean_meur")),
                             "npv_se": _se_text(_value(s, "equity_npv_mean_se_meur"), fmt),
                             "p5": fmt.num(_value(s, "equity_npv_p5_meur")),
                             "p5_se": _se_text(_value(s, "equity_npv_p5_se_meur"), fmt),
                             "prob_loss": fmt.pct(_value(s, "prob_equity_npv_negative")),
                             "prob_loss_se": _se_text(_value(s, "prob_equity_npv_negative_se"), fmt, percent=True),
                             "in_portfolio": L["yes"] if not results.positions(pid).empty else L["no"]})

    return {
        "lang": lang, "L": L, "kind": "portfolio",
        "title": a.fund.name, "project_id": "portfolio",
        "run": run_info(results, fmt),
        "objective": m.get("objective"), "beta": fmt.pct(m["cvar_beta"], 0),
        "headline": headline,
        "se_note": _se_note(results, fmt, L),
        "allocation": rows, "allocation_chart": allocation_chart,
        "frontier_chart": frontier_chart, "supply_frontier_chart": supply_frontier_chart,
        "contributions_chart": contributions_chart, "sample_note": sample_note,
        "concentration": concentration,
        "supply_chart": supply_chart, "supply_rows": supply_rows,
        "supply_by_project": _supply_rows(a, results, None, fmt, L),
        "supply_note": L["note_supply"].format(window=a.instruments.supply_window_years if a.instruments else 15),
        "position_terms": terms,
        "unavailable": [{"position": n, "reason": r} for n, r in (m.get("unavailable") or {}).items()],
        "constraints": constraint_rows,
        "stress": _stress_rows(results, fmt, n_stress=_stress_sample(a, results)),
        "projects": project_rows,
        "meur_unit": "EUR m" if lang == "en" else "Mio. EUR",
        "changes": changes,
    }
