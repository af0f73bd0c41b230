"""Charts of the memos: matplotlib figures returned as SVG text (vector, crisp in print).

Every chart takes the numbers it draws as arguments (read from the run's results files by
:mod:`fundmodel.memo.data`); nothing is re-simulated here. Text from assumption files
(project names, labels) is drawn literally: mathtext is switched off, so ``$`` and ``%``
stay characters. The SVG is deterministic (fixed ids, no date), so the same run gives the
same memo.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

#: One colour per concept, used by every chart and table swatch.
COLOURS = {
    "equity": "#1f4e79",
    "loan_guarantee": "#c55a11",
    "political_risk_cover": "#548235",
    "price_floor": "#7f6000",
    "mezzanine_loan": "#7030a0",
    "direct_loan": "#7030a0",
    "project": "#8faadc",
    "price": "#1f4e79",
    "political": "#c00000",
    "schedule": "#bf9000",
    "low": "#9dc3e6",  # tornado: input at its low setting
    "high": "#1f4e79",  # ... at its high setting
    "neutral": "#7f7f7f",
    "limit": "#c00000",
}

WIDTH_IN = 6.7  # A4 text width at 20 mm margins

_STYLE = {
    "svg.hashsalt": "fundmodel",  # deterministic element ids
    "svg.fonttype": "none",  # text stays text: WeasyPrint embeds the font; glyph paths are 5x slower to render
    "text.parse_math": False,  # "$" in a project name is a character, not mathtext
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.titlesize": 8,
    "axes.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.5,
    "legend.frameon": False,
    "legend.fontsize": 7,
}


def _svg(fig) -> str:
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "fundmodel"})
    plt.close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # inline in HTML: drop the XML prolog and doctype


def _figure(height_in: float, ncols: int = 1, **kwargs):
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(WIDTH_IN, height_in), **kwargs)
    return fig, axes


def _clip(values: np.ndarray, lo_q: float = 0.5, hi_q: float = 99.5) -> tuple[float, float]:
    lo, hi = np.percentile(values, [lo_q, hi_q])
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    return float(lo), float(hi)


def value_distribution(equity_npv_meur: np.ndarray, project_npv_meur: np.ndarray, equity_irr: np.ndarray | None,
                       percentiles: dict[str, float], labels: dict[str, str]) -> str:
    """Histogram of equity NPV with P5/P50/P95, CDFs of equity and project NPV, IRR histogram.

    Parameters
    ----------
    equity_npv_meur, project_npv_meur : ndarray of shape (n_scenarios,)
        Per-scenario NPVs (EUR m) as saved by the simulation.
    equity_irr : ndarray of shape (n_scenarios,) or None
        Equity IRR (fraction; NaN where undefined).
    percentiles : dict
        ``{"P5": v, "P50": v, "P95": v}`` of the equity NPV, from ``summary.csv``, drawn as lines.
    labels : dict
        Language labels.
    """
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(WIDTH_IN, 2.2))
        ax = axes[0]
        lo, hi = _clip(np.concatenate([equity_npv_meur, project_npv_meur]))
        bins = np.linspace(lo, hi, 50)
        # stepfilled: one polygon instead of 50 rectangles (a lighter SVG renders faster in WeasyPrint)
        ax.hist(np.clip(equity_npv_meur, lo, hi), bins=bins, color=COLOURS["equity"], alpha=0.85,
                histtype="stepfilled")
        for name, value in percentiles.items():
            if value is not None and np.isfinite(value):
                ax.axvline(value, color=COLOURS["limit"] if name == "P5" else COLOURS["neutral"], lw=0.8, ls="--")
                ax.annotate(name, (value, 1.0), xycoords=("data", "axes fraction"), fontsize=6,
                            ha="center", va="bottom")
        ax.set_xlabel(f"{labels['equity_npv']} (EUR m)")
        ax.set_yticks([])
        ax = axes[1]
        for values, key, colour in ((equity_npv_meur, "equity_npv", COLOURS["equity"]),
                                    (project_npv_meur, "project_npv", COLOURS["project"])):
            # The empirical CDF at 401 probability levels: exact at those points, light enough to print.
            levels = np.linspace(0.0, 1.0, 401)
            xs = np.quantile(np.asarray(values), levels, method="inverted_cdf")
            ax.step(xs, levels, where="post", color=colour, lw=1.2, label=labels[key])
        ax.axvline(0.0, color=COLOURS["neutral"], lw=0.6)
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1)
        ax.set_xlabel("EUR m")
        ax.set_ylabel(labels["prob_of_npv"])
        ax.legend(loc="upper left")
        ax = axes[2]
        if equity_irr is not None and np.isfinite(equity_irr).any():
            irr = np.asarray(equity_irr)[np.isfinite(equity_irr)] * 100.0
            ilo, ihi = _clip(irr, 1, 99)
            ax.hist(np.clip(irr, ilo, ihi), bins=40, color=COLOURS["equity"], alpha=0.85, histtype="stepfilled")
            ax.set_yticks([])
        ax.set_xlabel(f"{labels['equity_irr']} (%)")
        for ax in axes:
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))
        fig.tight_layout()
        return _svg(fig)


def tornado(drivers: list[str], low_meur: np.ndarray, high_meur: np.ndarray, base_meur: float,
            low_labels: list[str], high_labels: list[str], labels: dict[str, str]) -> str:
    """Tornado of mean equity NPV when each input is moved to its low and high setting.

    Bars start at the base mean NPV; the widest swing is on top.
    """
    n = len(drivers)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.3 * n + 0.7))
        ys = np.arange(n)[::-1]
        low = np.asarray(low_meur, dtype=float)
        high = np.asarray(high_meur, dtype=float)
        ax.barh(ys, low - base_meur, left=base_meur, color=COLOURS["low"], height=0.6, label=labels["low"])
        ax.barh(ys, high - base_meur, left=base_meur, color=COLOURS["high"], height=0.6, label=labels["high"])
        ax.axvline(base_meur, color="black", lw=0.8)
        ax.set_yticks(ys, drivers)
        span = max(float(np.nanmax(np.abs(np.r_[low, high] - base_meur))), 1e-9)
        for y, lo, hi, llab, hlab in zip(ys, low, high, low_labels, high_labels):
            for value, text in ((lo, llab), (hi, hlab)):
                ax.annotate(text, (value, y), xytext=(3 if value >= base_meur else -3, 0),
                            textcoords="offset points", ha="left" if value >= base_meur else "right",
                            va="center", fontsize=6)
        ax.set_xlim(base_meur - 1.35 * span, base_meur + 1.35 * span)
        ax.set_xlabel(f"{labels['equity_npv']}, {labels['mean'].lower()} (EUR m)")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        fig.tight_layout()
        return _svg(fig)


def risk_attribution(risks: list[str], lost_meur: list[float], se_meur: list[float], labels: dict[str, str]) -> str:
    """Bars of the project NPV lost to each risk (risk switched off vs on, common random numbers)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.48, 1.6))
        colours = [COLOURS.get(r, COLOURS["neutral"]) for r in ("price", "political", "schedule")][:len(risks)]
        ys = np.arange(len(risks))[::-1]
        ax.barh(ys, lost_meur, xerr=1.96 * np.asarray(se_meur), color=colours, height=0.6,
                error_kw={"lw": 0.8, "capsize": 2})
        ax.set_yticks(ys, risks)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel("EUR m")
        ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return _svg(fig)


def price_fan(years: np.ndarray, bands: dict[str, np.ndarray], title: str, unit: str) -> str:
    """Fan chart: P5-P95 and P25-P75 bands and the median of a simulated price by year."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.48, 1.8))
        ax.fill_between(years, bands["p5"], bands["p95"], color=COLOURS["price"], alpha=0.18, lw=0,
                        label="P5-P95")
        ax.fill_between(years, bands["p25"], bands["p75"], color=COLOURS["price"], alpha=0.35, lw=0,
                        label="P25-P75")
        ax.plot(years, bands["p50"], color=COLOURS["price"], lw=1.2, label="P50")
        ax.set_title(title, loc="left")
        ax.set_ylabel(unit)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", ncols=3)
        fig.tight_layout()
        return _svg(fig)


def first_production(years: np.ndarray, shares: np.ndarray, never_share: float, labels: dict[str, str]) -> str:
    """Bar chart of the first production year (share of scenarios), with the share that never produces."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.48, 1.6))
        ax.bar(years, np.asarray(shares) * 100, color=COLOURS["schedule"], width=0.8)
        ax.set_ylabel("% " + labels["scenarios"])
        ax.set_title(f"{labels['never_produces']}: {100 * never_share:.1f} %", loc="left")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        fig.tight_layout()
        return _svg(fig)


def allocation(projects: list[str], by_instrument: dict[str, np.ndarray], labels: dict[str, str]) -> str:
    """Stacked horizontal bars of exposure (capital + contingent, EUR m) by project and instrument."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.28 * len(projects) + 0.8))
        ys = np.arange(len(projects))[::-1]
        left = np.zeros(len(projects))
        for instrument, values in by_instrument.items():
            ax.barh(ys, values, left=left, color=COLOURS.get(instrument, COLOURS["neutral"]), height=0.6,
                    label=labels.get(instrument, instrument))
            left += values
        ax.set_yticks(ys, projects)
        ax.set_xlabel(f"{labels['exposure']} (EUR m)")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncols=min(len(by_instrument), 4))
        fig.tight_layout()
        return _svg(fig)


def frontier(cvar_meur: np.ndarray, value: np.ndarray, chosen: tuple[float, float], ylabel: str,
             labels: dict[str, str], cvar_limit: float | None = None) -> str:
    """Efficient frontier (value against CVaR) with the chosen portfolio marked."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.48, 2.0))
        ax.plot(cvar_meur, value, "o-", color=COLOURS["equity"], ms=3, lw=1)
        ax.plot([chosen[0]], [chosen[1]], "D", color=COLOURS["limit"], ms=6, label=labels["chosen"])
        if cvar_limit is not None:
            ax.axvline(cvar_limit, color=COLOURS["limit"], lw=0.6, ls="--", label=labels["cvar_limit"])
        ax.set_xlabel(f"{labels['cvar']} (EUR m)")
        ax.set_ylabel(ylabel)
        ax.legend(loc="lower right")
        fig.tight_layout()
        return _svg(fig)


def contributions(names: list[str], values_meur: np.ndarray, labels: dict[str, str]) -> str:
    """Euler contributions of each position to the portfolio CVaR (EUR m)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.48, 0.24 * len(names) + 0.7))
        ys = np.arange(len(names))[::-1]
        values = np.asarray(values_meur, dtype=float)
        ax.barh(ys, values, color=[COLOURS["political"] if v > 0 else COLOURS["high"] for v in values], height=0.6)
        ax.set_yticks(ys, names)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_xlabel(f"{labels['cvar_contribution']} (EUR m)")
        ax.grid(axis="y", visible=False)
        fig.tight_layout()
        return _svg(fig)


def shares_vs_limit(groups: list[str], shares: np.ndarray, limit: float | None, title: str,
                    labels: dict[str, str]) -> str:
    """Share of the fund's exposure per group (country or material) against the limit."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN * 0.48, 1.8))
        ax.bar(groups, np.asarray(shares) * 100, color=COLOURS["equity"], width=0.7)
        if limit is not None and limit < 1:
            ax.axhline(limit * 100, color=COLOURS["limit"], lw=0.8, ls="--", label=labels["limit"])
            ax.legend(loc="upper right")
        ax.set_ylabel(f"% {labels['exposure'].lower()}")
        ax.set_title(title, loc="left")
        ax.tick_params(axis="x", labelrotation=45)
        fig.tight_layout()
        return _svg(fig)


def supply(materials: list[str], secured_t: np.ndarray, target_t: np.ndarray, labels: dict[str, str]) -> str:
    """Tonnes per year secured per material (log scale, value printed on each bar) with the targets."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(WIDTH_IN, 0.26 * len(materials) + 0.7))
        ys = np.arange(len(materials))[::-1]
        secured = np.asarray(secured_t, dtype=float)
        target = np.asarray(target_t, dtype=float)
        shown = secured > 0  # a log axis has no zero: nothing is drawn for nothing secured
        ax.barh(ys[shown], secured[shown], color=COLOURS["price_floor"], height=0.6, label=labels["tonnes_secured"])
        for y, value in zip(ys, secured):
            ax.annotate(f"{value:,.0f} t", (value if value > 0 else 1.0, y), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=6)
        has_target = target > 0
        if has_target.any():
            ax.scatter(target[has_target], ys[has_target], marker="|", s=120, color=COLOURS["limit"],
                       label=labels["target"], zorder=3)
        ax.set_xscale("log")
        positive = np.r_[secured[shown], target[has_target]]
        ax.set_xlim(1.0 if positive.size == 0 else min(1.0, positive.min() / 2),
                    10.0 if positive.size == 0 else positive.max() * 8)
        # plain tick labels: the default log formatter emits mathtext, which is switched off here
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.10g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_yticks(ys, materials)
        ax.set_xlabel("t / year")
        ax.grid(axis="y", visible=False)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncols=2)
        fig.tight_layout()
        return _svg(fig)
