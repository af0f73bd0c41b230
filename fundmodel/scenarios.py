"""The scenario contract between the simulation and the instruments and portfolio.

A simulation (:mod:`fundmodel.simulation`) writes, per scenario and year, the market and each
project's flows (:class:`ScenarioWriter`, one ``.npy`` file per array);
the instruments (:mod:`fundmodel.instruments`) and the fund's problem
(:mod:`fundmodel.portfolio.fund`) read them as a :class:`ScenarioSet`: typed fields with
documented units and shapes, checked once when the set is built or loaded, instead of a dict
of arrays whose keys and shapes every reader had to know.

Layout on disk (``OUT/simulation/scenarios/``)::

    market/<field>.npy        one file per field of MarketScenarios
    <project>/<field>.npy     one file per field of ProjectScenarios
    <project>/<result>.npy    one file per per-scenario result (ProjectScenarios.results)

Examples
--------
>>> import numpy as np
>>> n, years = 2, 3
>>> market = MarketScenarios(price_usd_per_t=np.ones((1, n, years)), fx_usd_per_eur=np.full((n, years), 1.1),
...                          export_restriction=np.zeros((n, years), bool))
>>> zero = np.zeros((n, years))
>>> project = ProjectScenarios(equity_cf_meur=zero, lender_cf_meur=zero, debt_outstanding_musd=zero,
...                            lender_loss_musd=zero, insurable_loss_musd=zero,
...                            tonnes_eu_t=np.zeros((1, n, years)), political_events=np.zeros((n, years), np.uint8))
>>> s = ScenarioSet(market, {"demo": project})
>>> s.n_scenarios, s.n_years, s.head(1).n_scenarios
(2, 3, 1)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .assumptions.model import Assumptions
from .io import reserve_file

__all__ = ["MarketScenarios", "ProjectScenarios", "ScenarioSet", "ScenarioFileError", "ScenarioWriter",
           "shrink_scenario_files"]


class ScenarioFileError(ValueError):
    """A scenario folder is incomplete or its arrays do not fit together (names the file)."""


def _years_shape(name: str, arr: np.ndarray, n: int, years: int, lead: tuple[int, ...] = ()) -> None:
    want = (*lead, n, years)
    if arr.shape != want:
        raise ScenarioFileError(f"{name}: shape {arr.shape}, expected {want} (… scenarios x years)")


@dataclass(frozen=True)
class MarketScenarios:
    """Market paths of every scenario.

    Attributes
    ----------
    price_usd_per_t : ndarray of shape (n_materials, n_scenarios, n_years)
        Nominal price of each material of ``markets.yaml`` (file order) [USD/t].
    fx_usd_per_eur : ndarray of shape (n_scenarios, n_years)
        EUR/USD [USD per EUR].
    export_restriction : ndarray of bool, shape (n_scenarios, n_years)
        Chinese export-restriction regime on in that year.
    """

    price_usd_per_t: np.ndarray
    fx_usd_per_eur: np.ndarray
    export_restriction: np.ndarray

    def __post_init__(self):
        n, years = np.shape(self.fx_usd_per_eur)
        _years_shape("market/price_usd_per_t", self.price_usd_per_t, n, years, np.shape(self.price_usd_per_t)[:1])
        _years_shape("market/export_restriction", self.export_restriction, n, years)


@dataclass(frozen=True)
class ProjectScenarios:
    """One project's flows in every scenario (EUR m flows are nominal, at year ends).

    Attributes
    ----------
    equity_cf_meur : ndarray of shape (n_scenarios, n_years)
        Sponsors' equity cash flow [EUR m].
    lender_cf_meur : ndarray of shape (n_scenarios, n_years)
        Senior lenders' cash flow (draws negative) [EUR m].
    debt_outstanding_musd : ndarray of shape (n_scenarios, n_years)
        Senior debt outstanding at year end [USD m].
    lender_loss_musd : ndarray of shape (n_scenarios, n_years)
        Debt written off at a default [USD m].
    insurable_loss_musd : ndarray of shape (n_scenarios, n_years)
        Equity loss a political-risk cover pays [USD m].
    tonnes_eu_t : ndarray of shape (n_products, n_scenarios, n_years)
        Tonnes available to European buyers per product of the project file (file order) [t].
    political_events : ndarray of uint8, shape (n_scenarios, n_years)
        Bits of :data:`fundmodel.political.EVENT_BITS` (1: expropriation).
    results : mapping of str to ndarray of shape (n_scenarios,)
        Per-scenario results of the simulation (:data:`fundmodel.simulation.SCALARS`: NPVs,
        IRR, ``first_production_year``, ``default_year`` ...); may be empty.
    """

    equity_cf_meur: np.ndarray
    lender_cf_meur: np.ndarray
    debt_outstanding_musd: np.ndarray
    lender_loss_musd: np.ndarray
    insurable_loss_musd: np.ndarray
    tonnes_eu_t: np.ndarray
    political_events: np.ndarray
    results: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        n, years = np.shape(self.equity_cf_meur)
        for name in YEARLY_FIELDS[1:]:
            lead = np.shape(self.tonnes_eu_t)[:1] if name == "tonnes_eu_t" else ()
            _years_shape(name, getattr(self, name), n, years, lead)
        for name, arr in self.results.items():
            if np.shape(arr) != (n,):
                raise ScenarioFileError(f"{name}: shape {np.shape(arr)}, expected ({n},) (one value per scenario)")

    def result(self, name: str, default=None) -> np.ndarray | None:
        """The per-scenario result ``name``, or ``default`` when the simulation did not write it."""
        return self.results.get(name, default)


#: The yearly arrays of a project, in file order.
YEARLY_FIELDS = tuple(f.name for f in dataclasses.fields(ProjectScenarios) if f.name != "results")
#: The arrays of the market, in file order.
MARKET_FIELDS = tuple(f.name for f in dataclasses.fields(MarketScenarios))


@dataclass(frozen=True)
class ScenarioSet:
    """The market and every project's flows in the same scenarios.

    Attributes
    ----------
    market : MarketScenarios
    projects : mapping of str to ProjectScenarios
        By project id.
    """

    market: MarketScenarios
    projects: Mapping[str, ProjectScenarios]

    def __post_init__(self):
        n, years = self.n_scenarios, self.n_years
        for pid, p in self.projects.items():
            if np.shape(p.equity_cf_meur) != (n, years):
                raise ScenarioFileError(f"{pid}: {np.shape(p.equity_cf_meur)[0]} scenarios x "
                                        f"{np.shape(p.equity_cf_meur)[1]} years, the market has {n} x {years}")

    @property
    def n_scenarios(self) -> int:
        """Number of scenarios."""
        return int(np.shape(self.market.fx_usd_per_eur)[0])

    @property
    def n_years(self) -> int:
        """Number of years."""
        return int(np.shape(self.market.fx_usd_per_eur)[1])

    @classmethod
    def load(cls, directory: str | Path) -> "ScenarioSet":
        """Read a scenario folder (memory-mapped, read-only) and check that its arrays fit together.

        Raises
        ------
        ScenarioFileError
            A market or project array is missing or has the wrong shape (the message names it).
        """
        root = Path(directory)

        def read(folder: Path, name: str) -> np.ndarray:
            path = folder / f"{name}.npy"
            if not path.is_file():
                raise ScenarioFileError(f"{path}: missing from the scenario folder")
            return np.load(path, mmap_mode="r")

        market = MarketScenarios(**{name: read(root / "market", name) for name in MARKET_FIELDS})
        projects = {}
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "market"):
            yearly = {name: read(folder, name) for name in YEARLY_FIELDS}
            results = {f.stem: np.load(f, mmap_mode="r") for f in sorted(folder.glob("*.npy"))
                       if f.stem not in YEARLY_FIELDS}
            projects[folder.name] = ProjectScenarios(**yearly, results=results)
        return cls(market, projects)

    def save(self, directory: str | Path) -> None:
        """Write the set in the layout :meth:`load` reads (one ``.npy`` file per array)."""
        for rel, arr in self.arrays():
            path = Path(directory) / f"{rel}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, np.asarray(arr))

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """``(relative path without .npy, array)`` of every array, market first, in file order."""
        for name in MARKET_FIELDS:
            yield f"market/{name}", getattr(self.market, name)
        for pid, p in self.projects.items():
            for name in YEARLY_FIELDS:
                yield f"{pid}/{name}", getattr(p, name)
            for name, arr in p.results.items():
                yield f"{pid}/{name}", arr

    def head(self, n: int) -> "ScenarioSet":
        """The first ``n`` scenarios (those of a run of ``n`` scenarios with the same seed)."""
        market = MarketScenarios(self.market.price_usd_per_t[:, :n], self.market.fx_usd_per_eur[:n],
                                 self.market.export_restriction[:n])
        projects = {pid: ProjectScenarios(
            **{name: (getattr(p, name)[:, :n] if name == "tonnes_eu_t" else getattr(p, name)[:n])
               for name in YEARLY_FIELDS},
            results={k: v[:n] for k, v in p.results.items()}) for pid, p in self.projects.items()}
        return ScenarioSet(market, projects)

    def with_results(self, results: Mapping[str, Mapping[str, np.ndarray]]) -> "ScenarioSet":
        """The set with per-scenario results added (``{project: {name: array}}``, e.g. ``SimulationResult.scalars``)."""
        projects = {pid: dataclasses.replace(p, results={**p.results, **results.get(pid, {})})
                    for pid, p in self.projects.items()}
        return ScenarioSet(self.market, projects)


def shrink_scenario_files(directory: str | Path, n_old: int, n_new: int) -> None:
    """Cut the scenario files of :class:`ScenarioWriter` from ``n_old`` to their first ``n_new`` scenarios.

    A ``--precision`` run creates them for the maximum number of scenarios and keeps the
    scenarios it ran (each file rewritten, then moved over the old one).
    """
    import os

    from numpy.lib.format import open_memmap

    for path in sorted(Path(directory).rglob("*.npy")):  # loop over files
        old = np.load(path, mmap_mode="r")
        axis = 1 if old.ndim == 3 else 0  # (n_materials or n_products, scenarios, years)
        if old.shape[axis] != n_old:
            continue
        shape = list(old.shape)
        shape[axis] = n_new
        tmp = path.with_name(path.stem + ".part")
        new = open_memmap(tmp, mode="w+", dtype=old.dtype, shape=tuple(shape))
        new[...] = old[:, :n_new] if axis == 1 else old[:n_new]
        new.flush()
        del new, old
        os.replace(tmp, path)


class ScenarioWriter:
    """Writes year-by-scenario arrays into ``.npy`` files, chunk by chunk (memory-mapped).

    Layout under ``directory``::

        market/price_usd_per_t.npy        float32 (n_materials, n_scenarios, n_years)
        market/fx_usd_per_eur.npy         float32 (n_scenarios, n_years)
        market/export_restriction.npy     bool    (n_scenarios, n_years)
        <project>/equity_cf_meur.npy      float32 (n_scenarios, n_years)
        <project>/lender_cf_meur.npy      float32 (n_scenarios, n_years)
        <project>/debt_outstanding_musd.npy float32 (n_scenarios, n_years)
        <project>/lender_loss_musd.npy    float32 (n_scenarios, n_years), debt written off at default
        <project>/insurable_loss_musd.npy float32 (n_scenarios, n_years), equity loss political-risk cover pays
        <project>/tonnes_eu_t.npy         float32 (n_products, n_scenarios, n_years)
        <project>/political_events.npy    uint8   (n_scenarios, n_years), bits of EVENT_BITS
        <project>/<scalar>.npy            (n_scenarios,) for each name in SCALARS (NPVs, IRR,
                                          default and first-production year index, ...),
                                          written by pipeline.simulate_to_directory

    Read them back with :func:`load_scenarios`.
    """

    def __init__(self, market: dict[str, np.ndarray], projects: dict[str, dict[str, np.ndarray]]):
        self.market = market
        self.projects = projects

    @classmethod
    def create(cls, directory: str | Path, a: Assumptions, n_scenarios: int) -> "ScenarioWriter":
        """Create the files, sized for ``n_scenarios``."""
        from numpy.lib.format import open_memmap

        root = Path(directory)
        h = a.fund.horizon_years
        n_mat = len(a.markets.materials)

        def mm(rel: str, dtype, shape):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            array = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            reserve_file(path)  # a full disk is ENOSPC now, not SIGBUS mid-run
            return array

        market = {
            "price_usd_per_t": mm("market/price_usd_per_t.npy", np.float32, (n_mat, n_scenarios, h)),
            "fx_usd_per_eur": mm("market/fx_usd_per_eur.npy", np.float32, (n_scenarios, h)),
            "export_restriction": mm("market/export_restriction.npy", bool, (n_scenarios, h)),
        }
        projects = {
            pid: {
                "equity_cf_meur": mm(f"{pid}/equity_cf_meur.npy", np.float32, (n_scenarios, h)),
                "lender_cf_meur": mm(f"{pid}/lender_cf_meur.npy", np.float32, (n_scenarios, h)),
                "debt_outstanding_musd": mm(f"{pid}/debt_outstanding_musd.npy", np.float32, (n_scenarios, h)),
                "lender_loss_musd": mm(f"{pid}/lender_loss_musd.npy", np.float32, (n_scenarios, h)),
                "insurable_loss_musd": mm(f"{pid}/insurable_loss_musd.npy", np.float32, (n_scenarios, h)),
                "tonnes_eu_t": mm(f"{pid}/tonnes_eu_t.npy", np.float32, (len(p.products), n_scenarios, h)),
                "political_events": mm(f"{pid}/political_events.npy", np.uint8, (n_scenarios, h)),
            }
            for pid, p in a.projects.items()
        }
        return cls(market, projects)

    @classmethod
    def open(cls, directory: str | Path) -> "ScenarioWriter":
        """Open existing files for writing rows (e.g. in a worker process)."""
        arrays = {
            sub.name: {f.stem: np.load(f, mmap_mode="r+") for f in sorted(sub.glob("*.npy"))}
            for sub in sorted(p for p in Path(directory).iterdir() if p.is_dir())
        }
        market = arrays.pop("market")
        return cls(market, arrays)

    def write(self, start: int, arrays: dict[str, dict[str, np.ndarray]]) -> None:
        """Store one chunk's arrays (:func:`chunk_arrays`) at scenario rows from ``start``."""
        for group, values in arrays.items():
            target = self.market if group == "market" else self.projects[group]
            for name, arr in values.items():
                rows = arr.shape[-2] if arr.ndim == 3 else arr.shape[0]
                if arr.ndim == 3:  # (n_materials or n_products, scenarios, years)
                    target[name][:, start:start + rows] = arr
                else:
                    target[name][start:start + rows] = arr
        # no flush (msync) here: the pages are in the shared page cache and reach the files;
        # forcing them to disk per chunk cost ~1.5 s per 20,000-scenario run

    def close(self) -> None:
        """Flush every memory map to disk."""
        for arrays in [self.market, *self.projects.values()]:
            for arr in arrays.values():
                arr.flush()
