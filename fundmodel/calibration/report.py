"""Calibration reports: CSV, JSON and a short HTML page with fitted-vs-actual charts.

``OUT/calibration/prices/`` and ``OUT/calibration/countries/`` are each written through a
staging directory (:func:`fundmodel.io.staged_directory`): a failed run leaves the previous
report untouched.

Series and country names come from input files and are data, never markup or paths: the
HTML pages are rendered by jinja2 with autoescaping (as the memos are), chart titles are
drawn without matplotlib's mathtext, and chart file names are sanitised
(:func:`chart_file_names`), unique and always inside the report directory. Every number
in the CSV and JSON files is finite; a value that does not apply (no OU fit, an open
confidence interval) is an empty cell / ``null``.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from ..io import staged_directory, write_csv, write_json_atomic, write_text_atomic
from ..outdir import output_folder
from .countries import CountryCalibration
from .data import CalibrationDataError, excerpt
from .prices import PriceCalibration, SeriesCalibration

#: characters allowed in a file name derived from a series name
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_MAX_STEM = 64


def _num(v: Any) -> Any:
    """JSON-safe number: None for NaN/inf."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def chart_file_names(names: list[str]) -> dict[str, str]:
    """A safe, unique ``chart_*.png`` file name for every series name.

    A name made only of ``A-Z a-z 0-9 _ . -`` (at most 64 characters) keeps its spelling
    (``chart_COPPER.png``); any other name has each other character replaced by ``_``, is
    cut to 40 characters and gets 8 hex digits of its SHA-256, so that ``CU/X`` and
    ``CU_X`` cannot share a file. The names are unique ignoring case (file systems that
    ignore case), never contain a path separator and never start with a dot.

    Examples
    --------
    >>> chart_file_names(["COPPER", "CU/X", "CU_X"])["COPPER"]
    'chart_COPPER.png'
    >>> a = chart_file_names(["CU/X", "CU_X"]); a["CU/X"] != a["CU_X"] and "/" not in a["CU/X"]
    True
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        stem = _UNSAFE.sub("_", name)
        if stem != name or len(stem) > _MAX_STEM or not stem:
            stem = f"{stem[:40]}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"
        file = f"chart_{stem}.png"
        k = 2
        while file.casefold() in used:
            file = f"chart_{stem}-{k}.png"
            k += 1
        used.add(file.casefold())
        out[name] = file
    return out


def _inside(directory: Path, file: str) -> Path:
    """``directory / file``, refusing anything that would resolve outside ``directory``."""
    path = (directory / file).resolve()
    if _UNSAFE.search(file) or file.startswith(".") or path.parent != directory.resolve():
        raise CalibrationDataError(f"unsafe report file name {excerpt(file)}")  # pragma: no cover - by construction
    return path


def _finite_row(fit: SeriesCalibration, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every number checked finite (None = does not apply)."""
    for key, value in row.items():
        if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
            raise CalibrationDataError(f"{fit.file}: series {excerpt(fit.name)}: the fit gives a non-finite "
                                       f"{key} ({float(value)}); the series is degenerate, check the data")
    return row


def price_table(result: PriceCalibration) -> pd.DataFrame:
    """One row per series: parameters, standard errors, confidence intervals, diagnostics.

    Raises
    ------
    CalibrationDataError
        A number of a fit is NaN or infinite (naming file, series and quantity).
    """
    rows = []
    for f in result.fits:
        o, g, dg = f.ou, f.gbm, f.diagnostics
        row: dict[str, Any] = {
            "series": f.name, "material": f.material or "", "written": f.write, "frequency": f.frequency,
            "sample": f.sample, "observations": f.n_obs, "spot_real_usd": f.spot,
        }
        if o is not None:
            row.update({
                "kappa": o.kappa, "kappa_se": o.kappa_se, "kappa_ci_low": o.kappa_ci[0], "kappa_ci_high": o.kappa_ci[1],
                "half_life_years": o.half_life, "half_life_ci_low": o.half_life_ci[0],
                "half_life_ci_high": o.half_life_ci[1],
                "long_run_usd": o.long_run, "long_run_se": o.long_run_se, "long_run_ci_low": o.long_run_ci[0],
                "long_run_ci_high": o.long_run_ci[1], "sigma_ou": o.sigma, "sigma_ou_se": o.sigma_se,
                "sigma_ou_ci_low": o.sigma_ci[0], "sigma_ou_ci_high": o.sigma_ci[1], "phi": o.phi, "phi_se": o.phi_se,
                "loglik_ou": o.loglik, "aic_ou": o.aic,
            })
        row.update({"sigma_gbm": g.sigma, "sigma_gbm_se": g.sigma_se, "drift_gbm": g.drift,
                    "drift_gbm_se": g.drift_se, "loglik_gbm": g.loglik, "aic_gbm": g.aic})
        if dg is not None:
            row.update({
                "preferred_by_aic": dg.preferred, "ljung_box_lags": dg.ljung_box_lags,
                "ljung_box_pvalue": dg.ljung_box_pvalue, "jarque_bera_pvalue": dg.jarque_bera_pvalue,
                "skewness": dg.skewness, "excess_kurtosis": dg.excess_kurtosis, "adf_pvalue": dg.adf_pvalue,
                "regime_sigma_calm": dg.regime_sigma[0] if dg.regime_sigma else None,
                "regime_sigma_turbulent": dg.regime_sigma[1] if dg.regime_sigma else None,
                "regime_share_turbulent": dg.regime_share_turbulent,
                "regime_episodes": "; ".join(f"{r.start}..{r.end} {r.kind}" for r in dg.regimes),
            })
        rows.append(_finite_row(f, row))
    return pd.DataFrame(rows)


def _chart(fit: SeriesCalibration, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(fit.n_obs) * fit.dt
    labels = fit.periods
    fig, ax = plt.subplots(figsize=(8, 3.4), dpi=110)
    dg = fit.diagnostics
    if dg is not None and dg.turbulent_probability is not None:
        on = np.concatenate([[False], dg.turbulent_probability > 0.5])
        ax.fill_between(t, 0, 1, where=on, transform=ax.get_xaxis_transform(), color="#f4c7c3", alpha=0.6,
                        step="mid", label="turbulent regime (Markov switching)")
    ax.plot(t, np.exp(fit.log_price), color="#1f3b73", lw=1.2, label="actual (real USD)")
    if fit.ou is not None:
        ax.plot(t[1:], np.exp(fit.ou.fitted), color="#e07b00", lw=0.9, alpha=0.9, label="fitted, one step ahead (log-OU)")
        ax.axhline(fit.ou.long_run, color="#555", ls="--", lw=0.9, label=f"long-run median {fit.ou.long_run:,.0f}")
        ax.axhspan(*fit.ou.long_run_ci, color="#999", alpha=0.12, label="95 % CI of the long run")
    ax.set_yscale("log")
    step = max(1, fit.n_obs // 8)
    ax.set_xticks(t[::step])
    ax.set_xticklabels(labels[::step], fontsize=7)
    ax.set_ylabel("USD per unit, real")
    title = f"{fit.name}" + (f" ({fit.material})" if fit.material else "") + f", {fit.sample}"
    # series names are data: no mathtext ($...$), shortened to fit the chart
    ax.set_title(title if len(title) <= 100 else title[:97] + "...", fontsize=9, parse_math=False)
    ax.legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_CSS = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
        "td:first-child,th:first-child{text-align:left}.warn{color:#a33}")


_TEMPLATES = {
    "macros.html": """\
{% macro table(t) -%}
<table>
<thead><tr>{% for h in t.header %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{%- endmacro %}
""",
    "prices.html": """\
{% from "macros.html" import table %}<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Price calibration</title><style>{{ css }}</style></head><body>
<h1>Price calibration</h1>
<p>Fitted {{ fitted_on }}; model <b>{{ model }}</b>; data {{ data_name }} ({{ source }}), from {{ start }};
prices {{ deflator }}.</p>
{{ table(summary) }}
{% if warnings %}<ul>{% for w in warnings %}<li class="warn">{{ w }}</li>{% endfor %}</ul>{% endif %}
{% if old %}<h2>markets.yaml: before and after</h2>
{{ table(old) }}{% endif %}
{% if correlation %}<h2>Correlation of the residuals (annual shocks)</h2>
{{ table(correlation) }}{% endif %}
<h2>Fitted vs actual</h2>
{% for c in charts %}<p><img src="{{ c.file }}" alt="{{ c.alt }}" width="800"></p>
{% endfor %}</body></html>
""",
    "countries.html": """\
{% from "macros.html" import table %}<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Country calibration</title><style>{{ css }}</style></head><body>
<h1>Country-risk calibration</h1>
<p>WGI {{ wgi_year }} (World Bank, CC BY 4.0), CPI {{ cpi_year }} (Transparency International, CC BY-ND 4.0;
mean {{ cpi_mean }}, sd {{ cpi_sd }}); fitted {{ fitted_on }}.</p>
<h2>Annual hazards, old vs new</h2>
{{ table(hazards) }}
<h2>Indicators</h2>
{{ table(indicators) }}
</body></html>
""",
}


def environment() -> jinja2.Environment:
    """The reports' jinja2 environment: autoescaping every value, failing on an undefined name."""
    return jinja2.Environment(loader=jinja2.DictLoader(_TEMPLATES), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def _render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(css=Markup(_CSS), **context)


def _cell(value: Any, digits: int) -> str:
    """Text of one table cell (numbers as in the old pandas tables; NaN/None empty)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"
    return str(value)


def _table(frame: pd.DataFrame, digits: int = 4, index: bool = False) -> dict[str, list]:
    """Header and rows of cell texts for the ``table`` macro (escaped when rendered)."""
    if index:
        frame = frame.reset_index()
    return {"header": [str(c) for c in frame.columns],
            "rows": [[_cell(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]}


def write_price_report(result: PriceCalibration, out: str | Path, changes: list[dict] | None = None,
                       old: pd.DataFrame | None = None) -> Path:
    """Write ``OUT/calibration/prices/``: prices.csv, prices.json, correlation.csv, charts, report.html.

    Returns
    -------
    Path
        The report directory.
    """
    target = Path(out) / "calibration" / "prices"
    table = price_table(result)
    with output_folder(out, write=True), staged_directory(target) as stage:
        write_csv(table, stage / "prices.csv")
        if result.correlation_monthly is not None:
            write_csv(result.correlation_monthly.rename_axis("series").reset_index(), stage / "correlation_monthly.csv")
            write_csv(result.correlation_annual.rename_axis("series").reset_index(), stage / "correlation_annual.csv")
        if old is not None:
            write_csv(old, stage / "old_vs_new.csv")
        if changes:
            write_csv(pd.DataFrame(changes), stage / "written.csv")
        payload = {
            "fitted_on": result.fitted_on, "model": result.model, "start": result.start,
            "data_file": result.data_file, "deflator": result.deflator_note, "warnings": result.warnings,
            "series": [{k: _num(v) for k, v in row.items()} for row in table.to_dict(orient="records")],
            "regimes": {f.name: [vars(r) for r in f.diagnostics.regimes] for f in result.fits if f.diagnostics},
            "correlation_monthly": None if result.correlation_monthly is None else
            result.correlation_monthly.round(6).to_dict(),
            "correlation_annual": None if result.correlation_annual is None else
            result.correlation_annual.round(6).to_dict(),
            "correlation_common_observations": result.correlation_common_obs,
            "psd_adjustment": {"frobenius": result.psd_frobenius, "max_abs": result.psd_max_abs},
            "written": changes or [],
        }
        write_json_atomic(stage / "prices.json", payload)
        charts = []
        files = chart_file_names([f.name for f in result.fits])
        for f in result.fits:
            _chart(f, _inside(stage, files[f.name]))
            charts.append({"file": files[f.name], "alt": f.name})
        cols = ["series", "material", "sample", "observations", "kappa", "kappa_se", "half_life_years",
                "long_run_usd", "long_run_ci_low", "long_run_ci_high", "sigma_ou", "sigma_ou_se", "sigma_gbm",
                "aic_ou", "aic_gbm", "ljung_box_pvalue", "excess_kurtosis", "adf_pvalue", "regime_episodes"]
        corr = None
        if result.correlation_annual is not None:
            corr = _table(result.correlation_annual.round(3).rename_axis("series"), index=True)
        page = _render("prices.html", fitted_on=result.fitted_on, model=result.model,
                       data_name=Path(result.data_file).name,
                       source="World Bank Commodity Price Data (The Pink Sheet), CC BY 4.0", start=result.start,
                       deflator=result.deflator_note, summary=_table(table[[c for c in cols if c in table.columns]]),
                       warnings=result.warnings, old=_table(old) if old is not None else None, correlation=corr,
                       charts=charts)
        write_text_atomic(stage / "report.html", page)
    return target


def write_country_report(result: CountryCalibration, out: str | Path) -> Path:
    """Write ``OUT/calibration/countries/``: countries.csv (old vs new), hazards.csv, indicators.csv, JSON, HTML."""
    target = Path(out) / "calibration" / "countries"
    wide = result.wide().reset_index()
    with output_folder(out, write=True), staged_directory(target) as stage:
        write_csv(wide, stage / "countries.csv")
        write_csv(result.hazards, stage / "hazards.csv")
        write_csv(result.indicators.reset_index(), stage / "indicators.csv")
        write_json_atomic(stage / "countries.json", {
            "fitted_on": result.fitted_on, "wgi_year": result.wgi_year, "cpi_year": result.cpi_year,
            "cpi_mean": result.cpi_mean, "cpi_sd": result.cpi_sd,
            "hazards": [{k: _num(v) for k, v in r.items()} for r in result.hazards.to_dict(orient="records")],
        })
        page = _render("countries.html", wgi_year=result.wgi_year, cpi_year=result.cpi_year,
                       cpi_mean=f"{result.cpi_mean:.1f}", cpi_sd=f"{result.cpi_sd:.1f}", fitted_on=result.fitted_on,
                       hazards=_table(wide), indicators=_table(result.indicators.reset_index(), 3))
        write_text_atomic(stage / "report.html", page)
    return target
