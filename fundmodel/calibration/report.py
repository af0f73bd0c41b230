"""Calibration reports: CSV, JSON and a short HTML page with fitted-vs-actual charts.

``OUT/calibration/prices/`` and ``OUT/calibration/countries/`` are each written through a
staging directory (:func:`fundmodel.io.staged_directory`): a failed run leaves the previous
report untouched.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..io import staged_directory, write_json_atomic, write_text_atomic
from .countries import CountryCalibration
from .prices import PriceCalibration, SeriesCalibration


def _num(v: Any) -> Any:
    """JSON-safe number: None for NaN/inf."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    return v


def price_table(result: PriceCalibration) -> pd.DataFrame:
    """One row per series: parameters, standard errors, confidence intervals, diagnostics."""
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
        rows.append(row)
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
    ax.set_title(f"{fit.name}" + (f" ({fit.material})" if fit.material else "") + f", {fit.sample}", fontsize=9)
    ax.legend(fontsize=6.5, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


_CSS = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
        "td:first-child,th:first-child{text-align:left}.warn{color:#a33}")


def _table_html(frame: pd.DataFrame, digits: int = 4) -> str:
    def fmt(v: float) -> str:
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"

    return frame.to_html(index=False, float_format=fmt, na_rep="", border=0)


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
    with staged_directory(target) as stage:
        table.to_csv(stage / "prices.csv", index=False)
        if result.correlation_monthly is not None:
            result.correlation_monthly.to_csv(stage / "correlation_monthly.csv", index_label="series")
            result.correlation_annual.to_csv(stage / "correlation_annual.csv", index_label="series")
        if old is not None:
            old.to_csv(stage / "old_vs_new.csv", index=False)
        if changes:
            pd.DataFrame(changes).to_csv(stage / "written.csv", index=False)
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
        for f in result.fits:
            name = f"chart_{f.name}.png"
            _chart(f, stage / name)
            charts.append((f, name))
        cols = ["series", "material", "sample", "observations", "kappa", "kappa_se", "half_life_years",
                "long_run_usd", "long_run_ci_low", "long_run_ci_high", "sigma_ou", "sigma_ou_se", "sigma_gbm",
                "aic_ou", "aic_gbm", "ljung_box_pvalue", "excess_kurtosis", "adf_pvalue", "regime_episodes"]
        parts = [f"<html><head><meta charset='utf-8'><title>Price calibration</title><style>{_CSS}</style></head><body>",
                 "<h1>Price calibration</h1>",
                 f"<p>Fitted {html.escape(result.fitted_on)}; model <b>{html.escape(result.model)}</b>; data "
                 f"{html.escape(Path(result.data_file).name)} (World Bank Commodity Price Data (The Pink Sheet), "
                 f"CC BY 4.0), from {html.escape(result.start)}; prices {html.escape(result.deflator_note)}.</p>",
                 _table_html(table[[c for c in cols if c in table.columns]])]
        if result.warnings:
            parts.append("<ul>" + "".join(f"<li class='warn'>{html.escape(w)}</li>" for w in result.warnings) + "</ul>")
        if old is not None:
            parts += ["<h2>markets.yaml: before and after</h2>", _table_html(old)]
        if result.correlation_annual is not None:
            parts += ["<h2>Correlation of the residuals (annual shocks)</h2>",
                      result.correlation_annual.round(3).to_html(border=0)]
        parts.append("<h2>Fitted vs actual</h2>")
        parts += [f"<p><img src='{n}' alt='{html.escape(f.name)}' width='800'></p>" for f, n in charts]
        parts.append("</body></html>")
        write_text_atomic(stage / "report.html", "\n".join(parts))
    return target


def write_country_report(result: CountryCalibration, out: str | Path) -> Path:
    """Write ``OUT/calibration/countries/``: countries.csv (old vs new), hazards.csv, indicators.csv, JSON, HTML."""
    target = Path(out) / "calibration" / "countries"
    wide = result.wide().reset_index()
    with staged_directory(target) as stage:
        wide.to_csv(stage / "countries.csv", index=False)
        result.hazards.to_csv(stage / "hazards.csv", index=False)
        result.indicators.reset_index().to_csv(stage / "indicators.csv", index=False)
        write_json_atomic(stage / "countries.json", {
            "fitted_on": result.fitted_on, "wgi_year": result.wgi_year, "cpi_year": result.cpi_year,
            "cpi_mean": result.cpi_mean, "cpi_sd": result.cpi_sd,
            "hazards": [{k: _num(v) for k, v in r.items()} for r in result.hazards.to_dict(orient="records")],
        })
        parts = [f"<html><head><meta charset='utf-8'><title>Country calibration</title><style>{_CSS}</style></head><body>",
                 "<h1>Country-risk calibration</h1>",
                 f"<p>WGI {result.wgi_year} (World Bank, CC BY 4.0), CPI {result.cpi_year} (Transparency International, "
                 f"CC BY-ND 4.0; mean {result.cpi_mean:.1f}, sd {result.cpi_sd:.1f}); fitted {result.fitted_on}.</p>",
                 "<h2>Annual hazards, old vs new</h2>", _table_html(wide),
                 "<h2>Indicators</h2>", _table_html(result.indicators.reset_index(), 3),
                 "</body></html>"]
        write_text_atomic(stage / "report.html", "\n".join(parts))
    return target
