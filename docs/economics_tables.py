"""Print the old-vs-new tables of docs/economics.md from two ``fundmodel run`` output folders.

Usage::

    python docs/economics_tables.py OLD_OUT NEW_OUT

``OLD_OUT`` is a run of the code before issue 13 (commit 28837fe), ``NEW_OUT`` a run of today's
code, both on the shipped assumptions with the default seed and 20,000 scenarios. Figures the
old code did not compute are printed as ``n/a``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd


def _read(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    summary = pd.read_csv(out / "simulation" / "summary.csv").set_index("project")
    allocation = pd.read_csv(out / "portfolio" / "allocation.csv")
    metrics = json.loads((out / "portfolio" / "metrics.json").read_text(encoding="utf-8"))
    return summary, allocation, metrics


def _num(x, digits: int = 0) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{x:,.{digits}f}"


def _pct(x) -> str:
    return "n/a" if x is None or pd.isna(x) else f"{100 * x:.1f} %"


def _equity(allocation: pd.DataFrame, pid: str) -> pd.Series | None:
    rows = allocation[(allocation["project"] == pid) & (allocation["instrument"] == "equity")]
    return rows.iloc[0] if len(rows) else None


def project_table(old: Path, new: Path) -> str:
    """Per project: NPVs, entry price, default, recovery, fund PV per EUR of capital, old -> new."""
    s0, a0, _ = _read(old)
    s1, a1, m1 = _read(new)
    head = ("| project | stage | NPV @policy old → new | NPV @market new | equity NPV @policy old → new "
            "| equity NPV @market new | entry price of 100 % old → new | PD old (horizon) → new (10 y) "
            "| recovery new | fund PV / EUR capital (equity) old → new |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for pid in s1.index:
        o = s0.loc[pid] if pid in s0.index else None
        n = s1.loc[pid]
        e0, e1 = _equity(a0, pid), _equity(a1, pid)
        entry = m1.get("entry", {}).get(pid, {})
        price_old = _num(e0["capital_meur"] / e0["size"]) if e0 is not None else "not held"
        price_new = (_num(entry.get("price_meur") / max(entry.get("stake_per_unit") or 1.0, 1e-12))
                     if entry.get("available") else "unavailable")
        pv_old = _num(e0["expected_pv_meur"] / e0["capital_meur"], 2) if e0 is not None and e0["capital_meur"] else "–"
        pv_new = _num(e1["expected_pv_meur"] / e1["capital_meur"], 2) if e1 is not None and e1["capital_meur"] else "–"
        lines.append(
            f"| {pid} | {n['stage']} | {_num(o['npv_mean_meur'] if o is not None else None)} → {_num(n['npv_mean_meur'])} "
            f"| {_num(n['npv_market_mean_meur'])} "
            f"| {_num(o['equity_npv_mean_meur'] if o is not None else None)} → {_num(n['equity_npv_mean_meur'])} "
            f"| {_num(n['equity_npv_market_mean_meur'])} | {price_old} → {price_new} "
            f"| {_pct(o['prob_debt_default'] if o is not None else None)} → {_pct(n['prob_debt_default_10y'])} "
            f"| {_pct(n['debt_recovery_rate_mean'])} | {pv_old} → {pv_new} |")
    return "\n".join(lines)


def portfolio_table(old: Path, new: Path) -> str:
    """The portfolio's headline figures and supply secured, old -> new."""
    _, _, m0 = _read(old)
    _, _, m1 = _read(new)
    rows = [("expected PV (EUR m)", m0["expected_pv_meur"], m1["expected_pv_meur"]),
            ("CVaR 95 % (EUR m)", m0["cvar_meur"], m1["cvar_meur"]),
            ("capital used (EUR m)", m0["capital_used_meur"], m1["capital_used_meur"]),
            ("contingent used (EUR m)", m0["contingent_used_meur"], m1["contingent_used_meur"]),
            ("concession (EUR m)", m0.get("concession_meur"), m1.get("concession_meur"))]
    materials = sorted(set(m0["supply_secured_t_per_year"]) | set(m1["supply_secured_t_per_year"]))
    for mat in materials:
        rows.append((f"supply secured, {mat} (t/yr)", m0["supply_secured_t_per_year"].get(mat),
                     m1["supply_secured_t_per_year"].get(mat)))
    lines = ["| figure | old | new |", "|---|---|---|"]
    lines += [f"| {name} | {_num(a, 1)} | {_num(b, 1)} |" for name, a, b in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    old_dir, new_dir = Path(sys.argv[1]), Path(sys.argv[2])
    print(project_table(old_dir, new_dir))
    print()
    print(portfolio_table(old_dir, new_dir))
