"""Will the run fit? Disk and memory a simulation needs, checked before anything is written.

A run that fills the disk or the memory half-way is the worst way to fail: a memory-mapped
write into a full disk is a ``SIGBUS`` (the process dies without a word) and an
oversubscribed machine is killed by the kernel. So before simulating, the pipeline
estimates what the run needs and refuses (exit 2, with the figures) a run this machine
cannot hold; and the scenario files are preallocated (:func:`fundmodel.io.reserve_file`), so a disk that
fills up anyway is an ``ENOSPC`` error, not a signal.

The estimates are linear in scenarios and projects, with coefficients measured on the
default assumptions (``benchmarks/README.md``, "memory"): the scenario files exactly (their
layout is fixed, :class:`fundmodel.scenarios.ScenarioWriter`), the memory with a margin.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

GIB = 2**30

#: Memory of a process that has imported fundmodel and its libraries, and of the run's fixed data.
BASE_PROCESS_BYTES = 400 * 2**20
#: Client memory per project and scenario: the per-scenario results of the simulation
#: (SCALARS, float64 and int64), the optimiser's scenario matrix and its working copies.
#: Measured: 4.5 GB peak in ``optimize`` at 10^6 scenarios x 12 projects (``benchmarks/README.md``).
CLIENT_BYTES_PER_PROJECT_SCENARIO = 400
#: Memory of one worker process holding one chunk (at most ~50,000 project-scenarios,
#: :func:`fundmodel.simulation.chunk_rows`; measured 1.05 GB).
WORKER_BYTES = int(1.1 * GIB)
#: Results, memos and manifests beside the scenario files (the default run's are about 5 MB).
FIXED_OUTPUT_BYTES = 16 * 2**20


@dataclass(frozen=True)
class Needs:
    """What a run needs (bytes) and what the machine has."""

    disk_bytes: int
    memory_bytes: int
    disk_free_bytes: int | None
    memory_available_bytes: int | None

    def describe(self) -> str:
        """One line with the figures, for the log and for error messages."""
        def size(n):
            return "?" if n is None else (f"{n / GIB:,.1f} GB" if n < 1000 * GIB else f"{n / 1024 / GIB:,.1f} TB")

        return (f"needs about {size(self.disk_bytes)} of disk and {size(self.memory_bytes)} of memory; "
                f"{size(self.disk_free_bytes)} free on disk, {size(self.memory_available_bytes)} of memory available")


def scenario_file_bytes(n_scenarios: int, n_years: int, n_materials: int, products_per_project: list[int]) -> int:
    """Bytes of the scenario files (:class:`fundmodel.scenarios.ScenarioWriter` layout).

    Market: float32 prices per material, float32 EUR/USD, a bool restriction flag per
    scenario-year. Per project: five float32 year arrays, float32 tonnes per product, a uint8
    event mask, and the per-scenario results (:data:`fundmodel.simulation.SCALARS`). The
    ``.npy`` headers (128 bytes a file) are left out.

    Examples
    --------
    >>> scenario_file_bytes(1, 1, 1, [1])  # 9 market + 25 project bytes + 149 of per-scenario results
    183
    """
    import numpy as np

    from .simulation import SCALARS

    cells = n_scenarios * n_years
    per_scenario_results = sum(np.dtype(dtype).itemsize for dtype in SCALARS.values())
    market = cells * (4 * n_materials + 4 + 1)
    per_project = sum(cells * (5 * 4 + 4 * n_products + 1) + n_scenarios * per_scenario_results
                      for n_products in products_per_project)
    return market + per_project


def memory_available_bytes() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` (Linux), else free physical pages; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return None


def estimate(a, settings, out_dir: str | Path) -> Needs:
    """Disk and memory the simulation of ``settings.scenarios`` scenarios needs, and what there is.

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
    out_dir : str or Path
        Output root (an existing folder; its file system is the one measured).
    """
    n = int(settings.scenarios)
    projects = list(a.projects.values())
    disk = scenario_file_bytes(n, a.fund.horizon_years, len(a.markets.materials),
                               [len(p.products) for p in projects]) + FIXED_OUTPUT_BYTES
    local_workers = settings.workers if getattr(settings, "engine", "serial") == "serial" and settings.workers > 1 \
        else 0
    memory = BASE_PROCESS_BYTES + CLIENT_BYTES_PER_PROJECT_SCENARIO * n * max(len(projects), 1) \
        + local_workers * WORKER_BYTES
    try:
        free = shutil.disk_usage(out_dir).free
    except OSError:
        free = None
    return Needs(disk, memory, free, memory_available_bytes())


def check_resources(a, settings, out_dir: str | Path) -> Needs:
    """Refuse (exit 2) a run the machine cannot hold; return the estimate otherwise.

    Called before anything is written (``out_dir`` need not exist yet: the file system of
    its nearest existing parent is measured).

    Raises
    ------
    UsageError
        Not enough free disk for the scenario files, or not enough memory for the client and
        its worker processes; the message gives the figures and the largest ``--scenarios``
        (and ``--workers``) that fit.
    """
    needs = estimate(a, settings, _existing_parent(Path(out_dir)))
    disk_short = needs.disk_free_bytes is not None and needs.disk_bytes > needs.disk_free_bytes
    memory_short = needs.memory_available_bytes is not None and needs.memory_bytes > needs.memory_available_bytes
    if not (disk_short or memory_short):
        return needs
    n, n_projects = int(settings.scenarios), max(len(a.projects), 1)
    workers = settings.workers if getattr(settings, "engine", "serial") == "serial" and settings.workers > 1 else 0
    fits = []
    if needs.disk_free_bytes is not None:
        per_scenario = max((needs.disk_bytes - FIXED_OUTPUT_BYTES) / n, 1.0)
        fits.append(int(max(needs.disk_free_bytes - FIXED_OUTPUT_BYTES, 0) / per_scenario))
    if needs.memory_available_bytes is not None:
        spare = needs.memory_available_bytes - BASE_PROCESS_BYTES - workers * WORKER_BYTES
        fits.append(int(max(spare, 0) / (CLIENT_BYTES_PER_PROJECT_SCENARIO * n_projects)))
    what = " and ".join(w for w, short in (("disk", disk_short), ("memory", memory_short)) if short)
    hint = f"at most about {min(fits):,} scenarios fit" if min(fits) > 0 else "no run of this size fits"
    if memory_short and workers:
        client = BASE_PROCESS_BYTES + CLIENT_BYTES_PER_PROJECT_SCENARIO * n * n_projects
        room = int(max(needs.memory_available_bytes - client, 0) // WORKER_BYTES)
        hint += f" with --workers {settings.workers}; with {n:,} scenarios at most {room} --workers fit in memory"
    asked = f"--scenarios {n:,}" + (f" with --workers {settings.workers}" if memory_short and workers else "")
    raise UsageError(f"{asked} does not fit on this machine ({what}): the run {needs.describe()} "
                     f"(output in {out_dir}); {hint}")


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


__all__ = ["Needs", "estimate", "check_resources", "scenario_file_bytes",
           "memory_available_bytes"]
