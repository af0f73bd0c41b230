"""``fundmodel calibrate prices|countries``: the command-line side of the calibration."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import UsageError


def _old_vs_new(result, assumptions) -> pd.DataFrame:
    """Current ``markets.yaml`` values next to the fitted ones, per material and parameter."""
    from .prices import written_values

    rows = []
    for f in result.fits:
        if f.material is None or f.material not in assumptions.markets.materials:
            continue
        if result.model == "log_ou" and f.ou is None:
            continue
        m = assumptions.markets.materials[f.material]
        for key, new in written_values(f, result.model).items():
            old = getattr(m, key)
            old = old.value if hasattr(old, "value") else old
            rows.append({"material": f.material, "series": f.name, "parameter": key, "old": old, "fitted": new,
                         "written": "yes" if f.write else "no (calibration.yaml write: false)"})
    return pd.DataFrame(rows, columns=["material", "series", "parameter", "old", "fitted", "written"])


def cmd_calibrate(args) -> int:
    """Dispatch ``fundmodel calibrate TARGET``."""
    if args.target is None:
        raise UsageError("fundmodel calibrate: choose what to calibrate: 'prices' or 'countries'")
    return {"prices": calibrate_prices_command, "countries": calibrate_countries_command}[args.target](args)


def calibrate_prices_command(args) -> int:
    """Fit the price models, print the table, write the report (and markets.yaml with ``--write``)."""
    from ..assumptions import load_assumptions
    from .prices import calibrate_prices, write_markets
    from .report import price_table, write_price_report

    if args.start is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.start):
        raise UsageError(f"fundmodel calibrate prices: --start must be YYYY-MM, got {args.start!r}")
    series = [s for s in args.series.split(",") if s.strip()] if args.series else None
    if args.series is not None and not series:
        raise UsageError("fundmodel calibrate prices: --series must name at least one series")
    a = load_assumptions(args.assumptions)
    model = {"ou": "log_ou", "gbm": "gbm", None: None}[args.model]
    result = calibrate_prices(a, data=args.data, series=series, start=args.start, model=model)
    old = _old_vs_new(result, a)
    price_table(result)  # refuses a non-finite number before anything is written
    changes, notes = (write_markets(result, a) if args.write else ([], []))
    out = write_price_report(result, args.out, changes=changes, old=old)
    rows = []
    for f in result.fits:
        o, g = f.ou, f.gbm
        rows.append({"series": f.name, "material": f.material or "-", "sample": f.sample,
                     "kappa": o.kappa if o else float("nan"), "kappa_se": o.kappa_se if o else float("nan"),
                     "half_life_y": o.half_life if o else float("nan"),
                     "long_run": o.long_run if o else float("nan"),
                     "sigma": (o.sigma if (o and result.model == "log_ou") else g.sigma),
                     "drift_gbm": g.drift, "aic_ou-gbm": (o.aic - g.aic) if o else float("nan"),
                     "LB_p": f.diagnostics.ljung_box_pvalue, "ex_kurt": f.diagnostics.excess_kurtosis,
                     "regimes": len(f.diagnostics.regimes)})
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"))
    if result.correlation_annual is not None:
        print("residual correlation (annual shocks):")
        print(result.correlation_annual.round(2).to_string())
    if not old.empty:
        print("markets.yaml, old vs fitted:")
        print(old.to_string(index=False))
    for w in result.warnings + notes:
        print(f"warning: {w}")
    if args.write:
        print(f"{Path(args.assumptions) / 'markets.yaml'}: {len(changes)} values written "
              f"(comments and other materials kept)")
    print(f"report -> {out}/report.html")
    return 0


def calibrate_countries_command(args) -> int:
    """Map governance indicators to hazards, show old vs new, write the report (and countries.yaml)."""
    from ..assumptions import load_assumptions
    from .countries import EVENTS, calibrate_countries, write_countries
    from .report import write_country_report

    a = load_assumptions(args.assumptions)
    result = calibrate_countries(a)
    wide = result.wide()
    short = {"expropriation": "exprop", "forced_participation": "forced", "fiscal_grab": "fiscal",
             "transfer_restriction": "transfer", "unrest": "unrest", "licence_suspension": "licence"}
    shown = pd.DataFrame({f"{short[e]} {k}": wide[f"{e}_{k}"] for e in EVENTS for k in ("old", "new")})
    print("annual hazards, old vs new:")
    print(shown.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.write:
        write_countries(result, a)
        print(f"{Path(args.assumptions) / 'countries.yaml'}: {len(result.hazards)} hazards written "
              "(comments, severities and other keys kept)")
    out = write_country_report(result, args.out)
    print(f"report -> {out}/report.html")
    return 0
