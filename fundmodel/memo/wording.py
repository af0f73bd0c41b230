"""Words for the keys and values the model emits: tornado drivers, their settings, the stresses' base row.

The model's modules emit keys and numbers (:mod:`fundmodel.sensitivity`: a driver key and its
low/high setting; :mod:`fundmodel.portfolio.stress`: a stress key); this module words them
in the memo's language, and the pipeline words the result files in English with the same
functions, so ``sensitivity.csv`` and a German memo say the same thing in two languages.
"""

from __future__ import annotations

import pandas as pd

from ..assumptions.model import Assumptions
from ..assumptions.schema import Stage
from ..sensitivity import DRIVERS
from .labels import Formatter

__all__ = ["driver_label", "driver_setting", "tornado_in_words", "stress_base_description"]

_PHASES = {
    "en": {"exploration": "exploration", "permitting": "permitting", "construction": "construction",
           "remaining": "remaining construction", "none": "none left: producing"},
    "de": {"exploration": "Exploration", "permitting": "Genehmigung", "construction": "Bau",
           "remaining": "restlicher Bau", "none": "keine mehr: in Produktion"},
}


def _phases(a: Assumptions, pid: str, lang: str) -> str:
    p = a.projects[pid]
    keys = {Stage.EXPLORATION: ["exploration", "permitting", "construction"],
            Stage.FEASIBILITY: ["permitting", "construction"],
            Stage.CONSTRUCTION: ["remaining"], Stage.PRODUCTION: []}[p.stage]
    if p.stage is Stage.EXPLORATION and p.schedule.exploration_years is None:
        keys.remove("exploration")
    return ", ".join(_PHASES[lang][k] for k in keys) or _PHASES[lang]["none"]


def driver_label(a: Assumptions, pid: str, driver: str, lang: str = "en") -> str:
    """Name of a tornado driver for one project, with the base value it moves.

    Examples
    --------
    >>> from fundmodel.assumptions import load_assumptions            # doctest: +SKIP
    >>> driver_label(load_assumptions("assumptions"), "mn_ree", "political")   # doctest: +SKIP
    'Political hazards, Mongolia'
    """
    p = a.projects[pid]
    if lang == "en":
        if driver == "price":
            names = [a.markets.materials[m].name for m in p.materials]
            return f"{' + '.join(names)} price{'s' if len(names) > 1 else ''} (spot and long-run)"
        if driver == "capex":
            return f"Initial capex (budget USD {p.capex.initial_musd:,.0f} m)"
        if driver == "opex":
            ops = p.operations
            return (f"Operating cost (USD {ops.opex_usd_per_t_ore:,.0f}/t ore + "
                    f"USD {ops.fixed_opex_musd_per_year:,.0f} m/yr fixed)")
        if driver == "political":
            return f"Political hazards, {a.countries.countries[p.country].name}"
        if driver == "schedule":
            return f"Development time ({_phases(a, pid, lang)})"
        if driver == "fx":
            return f"EUR/USD spot ({a.markets.fx.spot:.2f} USD per EUR)"
        if driver == "discount_rate":
            return f"Discount rate ({a.fund.discount_rate_nominal:.1%} nominal)".replace("%", " %")
    else:
        fmt = Formatter(lang)
        if driver == "price":
            names = [a.markets.materials[m].name for m in p.materials]
            return f"{'Preise' if len(names) > 1 else 'Preis'} {' + '.join(names)} (Kassa und langfristig)"
        if driver == "capex":
            return f"Anfangsinvestition (Budget {fmt.musd(p.capex.initial_musd)})"
        if driver == "opex":
            ops = p.operations
            return (f"Betriebskosten (USD {fmt.num(ops.opex_usd_per_t_ore, 0)}/t Erz + "
                    f"{fmt.musd(ops.fixed_opex_musd_per_year)}/Jahr fix)")
        if driver == "political":
            return f"Politische Risiken, {a.countries.countries[p.country].name}"
        if driver == "schedule":
            return f"Entwicklungsdauer ({_phases(a, pid, lang)})"
        if driver == "fx":
            return f"EUR/USD-Kassakurs ({fmt.num(a.markets.fx.spot, 2)} USD je EUR)"
        if driver == "discount_rate":
            return f"Diskontsatz ({fmt.pct(a.fund.discount_rate_nominal)} nominal)"
    raise KeyError(f"no words for tornado driver {driver!r} in {lang!r}")


def driver_setting(a: Assumptions, driver: str, value: float, lang: str = "en") -> str:
    """A driver's setting in words: a change (``-20 %``), a multiple (``x2``) or a rate (``10.0 %``).

    Examples
    --------
    >>> driver_setting(None, "price", 0.8), driver_setting(None, "political", 2.0)
    ('-20 %', 'x2')
    >>> driver_setting(None, "political", 0.5, "de")
    '×0,5'
    """
    kind = DRIVERS[driver].setting
    if lang == "en":
        if kind == "change":
            return f"{value - 1:+.0%}".replace("%", " %")
        if kind == "multiple":
            return f"x{value:g}"
        return f"{a.fund.discount_rate_nominal + value:.1%}".replace("%", " %")
    fmt = Formatter(lang)
    if kind == "change":
        return ("+" if value >= 1 else "") + fmt.pct(value - 1, 0)
    if kind == "multiple":
        return "×" + f"{value:g}".replace(".", ",")
    return fmt.pct(a.fund.discount_rate_nominal + value)


def tornado_in_words(a: Assumptions, table: pd.DataFrame, lang: str = "en") -> pd.DataFrame:
    """The tornado table (:func:`fundmodel.sensitivity.sensitivity_table`) with ``label``,
    ``low_setting`` and ``high_setting`` worded, in the column order of ``sensitivity.csv``."""
    from ..sensitivity import SENSITIVITY_COLUMNS

    out = table.copy()
    out["label"] = [driver_label(a, pid, d, lang) for pid, d in zip(out["project"], out["driver"])]
    out["low_setting"] = [driver_setting(a, d, DRIVERS[d].low, lang) for d in out["driver"]]
    out["high_setting"] = [driver_setting(a, d, DRIVERS[d].high, lang) for d in out["driver"]]
    return out[SENSITIVITY_COLUMNS]


def stress_base_description(n_scenarios: int, lang: str = "en") -> str:
    """What the base row of the stress table is (its sample is not the headline's)."""
    if lang == "en":
        return (f"no stress: the run's seed and first {n_scenarios:,} scenarios (the stresses' sample, so its "
                "figures differ from the headline's)")
    return (f"ohne Stress: Startwert des Laufs und dessen erste {Formatter(lang).num(n_scenarios, 0)} Szenarien "
            "(die Stichprobe der Stresstests, daher weichen die Zahlen von den Kennzahlen oben ab)")
