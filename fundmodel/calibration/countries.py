"""Country-risk calibration: governance indicators -> political-event hazards.

One documented, monotone mapping (parameters in ``calibration.yaml: countries``):

1. Indicators, each a z-score with higher = better governance: WGI political stability
   ``pv``, rule of law ``rl`` and control of corruption ``cc`` (already ~N(0,1)); the CPI
   score standardised over every country TI scores that year, ``cpi = (CPI - mean) / sd``;
   the OECD country-risk category, ``oecd = (center - category) / scale`` (unclassified
   high-income countries count as category 0).
2. Per event, a score ``G = sum_k w_k z_k / sum_k w_k`` with weights ``w_k >= 0``.
3. ``ln p`` is linear in ``G`` between the ``worst`` and ``best`` anchors and flat outside
   them: ``p = exp(ln p_worst + (ln p_best - ln p_worst) * clip((G - G_worst) / (G_best -
   G_worst), 0, 1))``. With ``p_best <= p_worst`` the hazard never rises when an indicator
   improves.
4. A documented country overlay multiplies the mapped hazard where the mining record differs
   from the general indicators (capped at ``max_annual_probability``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import data as d
from .data import CalibrationDataError

EVENTS = ("expropriation", "forced_participation", "fiscal_grab", "transfer_restriction", "unrest",
          "licence_suspension")


@dataclass(frozen=True)
class CountryCalibration:
    """Result of ``fundmodel calibrate countries``.

    Attributes
    ----------
    indicators : DataFrame
        Per country: raw indicators (pv, rl, cc, cpi_score, oecd_category) and z-scores.
    hazards : DataFrame
        Long table: country, event, score, mapped, overlay, new, old, change.
    cpi_mean, cpi_sd : float
        Standardisation of the CPI score.
    fitted_on : str
    """

    indicators: pd.DataFrame
    hazards: pd.DataFrame
    cpi_mean: float
    cpi_sd: float
    wgi_year: int
    cpi_year: int
    fitted_on: str

    def wide(self) -> pd.DataFrame:
        """Old and new hazards side by side: one row per country, ``event_old``/``event_new`` columns."""
        old = self.hazards.pivot(index="country", columns="event", values="old")
        new = self.hazards.pivot(index="country", columns="event", values="new")
        cols = {}
        for e in EVENTS:
            cols[f"{e}_old"] = old[e]
            cols[f"{e}_new"] = new[e]
        return pd.DataFrame(cols).loc[list(dict.fromkeys(self.hazards["country"]))]


def hazard_from_score(score: np.ndarray, mapping) -> np.ndarray:
    """Annual probability from a governance score (log-linear between the anchors, flat outside).

    Examples
    --------
    >>> from fundmodel.assumptions.schema import HazardMapping
    >>> m = HazardMapping(weights={"rl": 1}, best={"score": 1, "annual_probability": 0.01},
    ...                   worst={"score": -1, "annual_probability": 0.04})
    >>> hazard_from_score(np.array([2.0, 1.0, 0.0, -1.0, -3.0]), m).round(4).tolist()
    [0.01, 0.01, 0.02, 0.04, 0.04]
    """
    g = np.asarray(score, dtype=float)
    u = np.clip((g - mapping.worst.score) / (mapping.best.score - mapping.worst.score), 0.0, 1.0)
    lo, hi = np.log(mapping.worst.annual_probability), np.log(mapping.best.annual_probability)
    return np.exp(lo + (hi - lo) * u)


def governance_indicators(assumptions, wgi_path: str | Path = d.WGI_FILE, cpi_path: str | Path = d.CPI_FILE
                          ) -> tuple[pd.DataFrame, float, float]:
    """Raw indicators and z-scores of every country of ``countries.yaml``.

    Raises
    ------
    CalibrationDataError
        A country missing from the WGI or CPI file (naming file and country).
    """
    s = assumptions.calibration.countries
    wgi = d.read_wgi(wgi_path)
    cpi = d.read_cpi(cpi_path, s.cpi_year)
    if cpi.size < 30:
        raise CalibrationDataError(f"{cpi_path}: only {cpi.size} CPI {s.cpi_year} scores; cannot standardise")
    cpi_mean, cpi_sd = float(cpi.mean()), float(cpi.std(ddof=1))
    years = range(s.wgi_year - s.wgi_years + 1, s.wgi_year + 1)
    sub = wgi[wgi["year"].isin(list(years))]
    rows = []
    for cid, c in assumptions.countries.countries.items():
        row: dict[str, Any] = {"country": cid, "iso3": c.iso3, "name": c.name}
        for ind in ("pv", "rl", "cc"):
            vals = sub[(sub["iso3"] == c.iso3) & (sub["indicator"] == ind)]["estimate"].dropna()
            if len(vals) < len(years):
                raise CalibrationDataError(f"{wgi_path}: country {c.iso3} ({cid}) has no WGI '{ind}' estimate for "
                                           f"every year {years.start}-{years.stop - 1}")
            row[ind] = float(vals.mean())
        if c.iso3 not in cpi.index:
            raise CalibrationDataError(f"{cpi_path}: country {c.iso3} ({cid}) has no CPI {s.cpi_year} score")
        row["cpi_score"] = float(cpi[c.iso3])
        row["oecd_category"] = int(c.oecd_category) if c.oecd_category is not None else 0
        rows.append(row)
    frame = pd.DataFrame(rows).set_index("country")
    frame["z_pv"], frame["z_rl"], frame["z_cc"] = frame["pv"], frame["rl"], frame["cc"]
    frame["z_cpi"] = (frame["cpi_score"] - cpi_mean) / cpi_sd
    frame["z_oecd"] = (s.oecd_center - frame["oecd_category"]) / s.oecd_scale
    return frame, cpi_mean, cpi_sd


def calibrate_countries(assumptions, fitted_on: str | None = None) -> CountryCalibration:
    """Map every country's indicators to its six political-event hazards.

    Parameters
    ----------
    assumptions : Assumptions
        With ``calibration.yaml`` (mapping parameters and overlays).
    fitted_on : str, optional
        Date stamp (default today).

    Returns
    -------
    CountryCalibration
    """
    cal = assumptions.calibration
    if cal is None:
        raise CalibrationDataError(f"{assumptions.directory}/calibration.yaml: file is missing "
                                   "(it holds the hazard mapping)")
    s = cal.countries
    unknown = [c for c in s.overlays if c not in assumptions.countries.countries]
    if unknown:
        raise CalibrationDataError(f"calibration.yaml: countries.overlays names unknown countries {unknown}")
    ind, mean, sd = governance_indicators(assumptions)
    rows = []
    for event in EVENTS:
        mapping = s.events[event]
        names = list(mapping.weights)
        w = np.array([mapping.weights[k] for k in names], dtype=float)
        z = ind[[f"z_{k}" for k in names]].to_numpy(dtype=float)
        score = z @ w / w.sum()
        mapped = hazard_from_score(score, mapping)
        for i, cid in enumerate(ind.index):
            ov = s.overlays.get(cid, {}).get(event)
            mult = ov.multiplier if ov is not None else 1.0
            new = round(float(min(mapped[i] * mult, s.max_annual_probability)), s.decimals)
            old = getattr(assumptions.countries.countries[cid].events, event).annual_probability
            rows.append({"country": cid, "event": event, "score": float(score[i]), "mapped": float(mapped[i]),
                         "overlay": mult, "overlay_reason": ov.reason if ov is not None else "",
                         "old": float(old), "new": new, "change": new - float(old)})
    hazards = pd.DataFrame(rows)
    if not np.all(np.isfinite(hazards[["score", "mapped", "new"]].to_numpy())):  # pragma: no cover
        raise CalibrationDataError("country hazards: non-finite value from the mapping")
    return CountryCalibration(indicators=ind, hazards=hazards, cpi_mean=mean, cpi_sd=sd, wgi_year=s.wgi_year,
                              cpi_year=s.cpi_year,
                              fitted_on=fitted_on or pd.Timestamp.today().strftime("%Y-%m-%d"))


def update_countries(result: CountryCalibration, directory: str | Path) -> str:
    """New text of ``countries.yaml``: mapped hazards and a ``calibration`` record per country."""
    from ruamel.yaml.comments import CommentedMap

    from .yamlio import dump_round_trip, load_round_trip

    doc = load_round_trip(Path(directory) / "countries.yaml")
    for row in result.hazards.itertuples(index=False):
        doc["countries"][row.country]["events"][row.event]["annual_probability"] = row.new
    for cid, r in result.indicators.iterrows():
        c = doc["countries"][cid]
        rec = CommentedMap()
        rec.fa.set_flow_style()
        rec["wgi_year"] = result.wgi_year
        rec["political_stability"] = round(float(r["pv"]), 2)
        rec["rule_of_law"] = round(float(r["rl"]), 2)
        rec["control_of_corruption"] = round(float(r["cc"]), 2)
        rec["cpi_year"] = result.cpi_year
        rec["cpi_score"] = float(r["cpi_score"])
        rec["oecd_category_used"] = int(r["oecd_category"])
        rec["fitted_on"] = _dt.date.fromisoformat(result.fitted_on)
        rec["source"] = (f"{d.WGI_SOURCE}; {d.CPI_SOURCE}; hazards mapped by fundmodel calibrate countries "
                         "(calibration.yaml: countries)")
        c["calibration"] = rec
    return dump_round_trip(doc)


def write_countries(result: CountryCalibration, assumptions) -> None:
    """Update ``countries.yaml`` in place (validated first, written atomically)."""
    from .yamlio import replace_validated

    replace_validated(assumptions.directory, "countries.yaml", update_countries(result, assumptions.directory))
