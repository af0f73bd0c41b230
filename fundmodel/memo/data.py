"""Read the results of one run (``OUT/simulation``, ``OUT/portfolio``) for the memos.

The memos print only what these files hold, so a memo and the CSV/JSON files of the same
run always agree. :func:`load_results` checks that the files are complete and belong to
the same run (same seed, scenario count and assumption hashes) before anything is drawn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FundmodelError
from ..io import read_csv


class ResultsError(FundmodelError):
    """Results missing, incomplete or from different runs (exit code 2)."""

    exit_code = 2


@dataclass
class RunResults:
    """Everything a memo prints, read from one output directory.

    Attributes
    ----------
    directory : Path
        The output root (``OUT``).
    manifest : dict
        ``simulation/manifest.json`` (version, commit, seed, scenarios, assumption hashes).
    simulation : dict
        ``simulation/metrics.json``.
    summary : pandas.DataFrame
        ``simulation/summary.csv`` indexed by project id.
    tonnes : pandas.DataFrame
        ``simulation/tonnes.csv``.
    portfolio : dict or None
        ``portfolio/metrics.json`` when the run optimised the portfolio.
    allocation, frontier, stress, supply : pandas.DataFrame or None
        ``portfolio/*.csv``.
    sensitivity, price_fan, first_production : pandas.DataFrame or None
        Optional ``simulation/*.csv`` written by newer simulations.
    """

    directory: Path
    manifest: dict
    simulation: dict
    summary: pd.DataFrame
    tonnes: pd.DataFrame
    portfolio: dict | None = None
    allocation: pd.DataFrame | None = None
    frontier: pd.DataFrame | None = None
    stress: pd.DataFrame | None = None
    supply: pd.DataFrame | None = None
    sensitivity: pd.DataFrame | None = None
    price_fan: pd.DataFrame | None = None
    first_production: pd.DataFrame | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def projects(self) -> list[str]:
        """Project ids in the order of ``summary.csv``."""
        return list(self.summary.index)

    def scenario_values(self, project: str, name: str) -> np.ndarray | None:
        """Per-scenario values saved by the simulation (e.g. ``equity_npv_meur``), or None."""
        key = (project, name)
        if key not in self._cache:
            path = self.directory / "simulation" / "scenarios" / project / f"{name}.npy"
            self._cache[key] = np.load(path, mmap_mode="r") if path.is_file() else None
        return self._cache[key]

    def positions(self, project: str) -> pd.DataFrame:
        """Rows of ``allocation.csv`` for one project (empty if none)."""
        if self.allocation is None or self.allocation.empty:
            return pd.DataFrame()
        return self.allocation[self.allocation["project"] == project]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: missing; run `fundmodel simulate` / `fundmodel optimize` first") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _read_csv(path: Path, required: bool = True, **kwargs) -> pd.DataFrame | None:
    if not path.is_file():
        if required:
            raise ResultsError(f"{path}: missing; run `fundmodel simulate` / `fundmodel optimize` first")
        return None
    # a project called "NA" stays a string, empty cells are NaN, neutralised text is restored
    return read_csv(path, **kwargs)


def load_results(out_dir: str | Path, *, require_portfolio: bool = True) -> RunResults:
    """Read and cross-check the results of one run.

    Parameters
    ----------
    out_dir : str or Path
        Output root holding ``simulation/`` and (if optimised) ``portfolio/``.
    require_portfolio : bool
        Fail if ``portfolio/`` is missing.

    Returns
    -------
    RunResults

    Raises
    ------
    ResultsError
        A file is missing or unreadable, or the simulation and portfolio files come from
        different runs.
    """
    root = Path(out_dir)
    sim = root / "simulation"
    manifest = _read_json(sim / "manifest.json")
    metrics = _read_json(sim / "metrics.json")
    summary = _read_csv(sim / "summary.csv", dtype={"project": str}).set_index("project", drop=False)
    tonnes = _read_csv(sim / "tonnes.csv", dtype={"project": str})
    if metrics.get("seed") != manifest["settings"]["seed"] or metrics.get("scenarios") != manifest["settings"]["scenarios"]:
        raise ResultsError(f"{sim}: metrics.json and manifest.json come from different runs")
    results = RunResults(directory=root, manifest=manifest, simulation=metrics, summary=summary, tonnes=tonnes,
                         sensitivity=_read_csv(sim / "sensitivity.csv", required=False, dtype={"project": str}),
                         price_fan=_read_csv(sim / "price_fan.csv", required=False, dtype={"material": str}),
                         first_production=_read_csv(sim / "first_production.csv", required=False,
                                                    dtype={"project": str}))
    port = root / "portfolio"
    if (port / "metrics.json").is_file() or require_portfolio:
        results.portfolio = _read_json(port / "metrics.json")
        results.allocation = _read_csv(port / "allocation.csv", dtype={"project": str, "material": str})
        results.frontier = _read_csv(port / "frontier.csv")
        results.stress = _read_csv(port / "stress.csv", required=False)
        results.supply = _read_csv(port / "supply.csv", required=False, dtype={"project": str, "material": str})
        if results.allocation is not None and "material" in results.allocation:
            results.allocation["material"] = results.allocation["material"].fillna("")
        run = results.portfolio.get("run")
        if run is not None and (run.get("seed"), run.get("scenarios")) != (manifest["settings"]["seed"],
                                                                           manifest["settings"]["scenarios"]):
            raise ResultsError(f"{port}: optimised on a different simulation than {sim}; re-run `fundmodel run`")
    return results
