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


#: The tornado drivers' names per language, with the base value each one moves (str.format fields
#: filled by :func:`driver_label` with numbers in the language's format).
_DRIVER_LABELS = {
    "en": {"price": "{names} {price_word} (spot and long-run)",
           "capex": "Initial capex (budget {budget})",
           "opex": "Operating cost (USD {unit_opex}/t ore + {fixed_opex}/yr fixed)",
           "political": "Political hazards, {country}",
           "schedule": "Development time ({phases})",
           "fx": "EUR/USD spot ({fx} USD per EUR)",
           "discount_rate": "Discount rate ({rate} nominal)"},
    "de": {"price": "{price_word} {names} (Kassa und langfristig)",
           "capex": "Anfangsinvestition (Budget {budget})",
           "opex": "Betriebskosten (USD {unit_opex}/t Erz + {fixed_opex}/Jahr fix)",
           "political": "Politische Risiken, {country}",
           "schedule": "Entwicklungsdauer ({phases})",
           "fx": "EUR/USD-Kassakurs ({fx} USD je EUR)",
           "discount_rate": "Diskontsatz ({rate} nominal)"},
}
#: "price" in the singular and the plural.
_PRICE_WORD = {"en": ("price", "prices"), "de": ("Preis", "Preise")}


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
    template = _DRIVER_LABELS[lang].get(driver)
    if template is None:
        raise KeyError(f"no words for tornado driver {driver!r} in {lang!r}")
    p, fmt = a.projects[pid], Formatter(lang)
    names = [a.markets.materials[m].name for m in p.materials]
    return template.format(
        names=" + ".join(names), price_word=_PRICE_WORD[lang][len(names) > 1],
        budget=fmt.musd(p.capex.initial_musd), unit_opex=fmt.num(p.operations.opex_usd_per_t_ore, 0),
        fixed_opex=fmt.musd(p.operations.fixed_opex_musd_per_year),
        country=a.countries.countries[p.country].name, phases=_phases(a, pid, lang),
        fx=fmt.num(a.markets.fx.spot, 2), rate=fmt.pct(a.fund.discount_rate_nominal))


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
