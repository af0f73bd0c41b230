"""The one rule for "results are current", and the run manifest it compares.

A later command reuses earlier results only when :func:`results_are_current` says so: the
simulation's manifest (:func:`run_manifest`) records the same code, assumption files and
settings, and every file it lists is intact (:func:`verify_owned_files`). ``run``, ``optimize``
and ``memo`` all ask this function; a missing or corrupt manifest is simply "not current".
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..assumptions.model import Assumptions
from ..io import owned_files
from ..simulation import RunSettings

__all__ = ["run_manifest", "previous_settings", "results_are_current", "verify_owned_files", "read_json",
           "link_simulation", "used_settings"]


def run_manifest(a: Assumptions, settings, command: str | None = None) -> dict:
    """Provenance of a run: the code (version, hash, commit), settings and assumption hashes."""
    import datetime as dt
    import platform

    from ..provenance import code_identity

    code = code_identity()
    return {
        "package": "fundmodel",
        "version": code["version"],
        "code_sha256": code["code_sha256"],
        "git_commit": code["git_commit"],
        "git_dirty": code["git_dirty"],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": command,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "assumptions_dir": str(a.directory),
        "assumption_files_sha256": dict(sorted(a.file_sha256.items())),
        "settings": {
            "scenarios": settings.scenarios,
            "seed": settings.seed,
            "sampling": settings.sampling.value,
            "chunk_size": settings.chunk_size,
            "copula": settings.copula.value,
            "copula_dof": settings.copula_dof,
            "risk_attribution": settings.risk_attribution,
            # --precision runs only: the target and the maximum ("scenarios": those used)
            **({"precision_meur": settings.precision_meur, "precision_rel": settings.precision_rel,
                "scenarios_max": settings.scenarios_max or settings.scenarios}
               if getattr(settings, "precision_meur", None) is not None
               or getattr(settings, "precision_rel", None) is not None else {}),
        },
        # where it ran; the numbers do not depend on it (fundmodel.engine)
        "execution": {"engine": getattr(settings, "engine", "serial"), "workers": settings.workers,
                      "scheduler": getattr(settings, "scheduler", None)},
    }


def _comparable(settings: dict) -> dict:
    # workers, chunk size, engine and attribution do not change the scenario results; a --precision
    # run is identified by its target and maximum (the scenarios it used follow from them)
    skip = ("risk_attribution", "workers", "chunk_size")
    if settings.get("precision_meur") is not None or settings.get("precision_rel") is not None:
        skip += ("scenarios",)
    return {k: v for k, v in settings.items() if k not in skip}


def used_settings(settings: RunSettings, simulation_dir: Path) -> RunSettings:
    """``settings`` with the scenario count a ``--precision`` simulation in ``simulation_dir`` used."""
    if settings.precision_meur is None and settings.precision_rel is None:
        return settings
    from dataclasses import replace

    used = ((read_json(simulation_dir / "manifest.json") or {}).get("settings") or {}).get("scenarios")
    return replace(settings, scenarios=int(used), scenarios_max=settings.scenarios) if used else settings


def read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def previous_settings(a: Assumptions, out_dir: str | Path, **overrides) -> RunSettings:
    """Settings of the run recorded in ``OUT/manifest.json``, else of the simulation recorded in
    ``OUT/simulation/manifest.json`` (a ``fundmodel simulate`` alone, e.g. with ``--precision``),
    else the fund.yaml defaults.

    ``fundmodel memo`` repeats the previous run (same seed, scenario count and precision target)
    when the results are stale or the portfolio is missing, instead of silently switching to the
    defaults.
    """
    top = (read_json(Path(out_dir) / "manifest.json")
           or read_json(Path(out_dir) / "simulation" / "manifest.json") or {})
    recorded = top.get("settings") if isinstance(top.get("settings"), dict) else {}
    precision = {k: recorded[k] for k in ("precision_meur", "precision_rel") if recorded.get(k) is not None}
    if precision and recorded.get("scenarios_max"):  # a --precision run: its target and maximum
        precision["scenarios"] = recorded["scenarios_max"]
    recorded = {k: recorded[k] for k in ("scenarios", "seed", "sampling", "copula", "copula_dof", "risk_attribution")
                if k in recorded}
    recorded.update(precision)
    return RunSettings.from_assumptions(a, **{**recorded, **overrides})


def _same_run(have: dict, want: dict) -> bool:
    """Same code, assumption files and settings (the key of reusable results)."""
    return (have.get("code_sha256") == want["code_sha256"]
            and have.get("assumption_files_sha256") == want["assumption_files_sha256"]
            and isinstance(have.get("settings"), dict)
            and _comparable(have["settings"]) == _comparable(want["settings"]))


def results_are_current(a: Assumptions, settings: RunSettings, out_dir: str | Path, *,
                        need_portfolio: bool = False) -> bool:
    """True if the results in ``OUT`` were made by this code from these files and settings, and are intact.

    The one rule for reusing results (``run`` reuses the simulation, ``memo`` renders
    without re-running). Current means: ``simulation/manifest.json`` records the same code
    (:func:`fundmodel.provenance.code_sha256`: the package's own files, whatever git
    says), the same assumption hashes and the same settings (seed, scenarios, sampling,
    copula); a run that wants the risk attribution (``settings.risk_attribution``: tornado,
    break-evens) finds only a simulation that made it current; and every file the simulation
    listed is there, complete and unchanged (:func:`verify_owned_files`: a truncated or
    edited cached array means "recompute", never a failed run). With ``need_portfolio``, ``OUT/manifest.json`` must also record
    an optimisation of the same run. A missing or corrupt manifest is simply "not current".
    """
    out = Path(out_dir)
    want = run_manifest(a, settings)
    have = read_json(out / "simulation" / "manifest.json")
    if have is None or not _same_run(have, want) or verify_owned_files(out / "simulation"):
        return False
    if settings.risk_attribution and not (have.get("settings") or {}).get("risk_attribution", False):
        return False  # the attribution, tornado and break-evens are wanted but were not made
    if need_portfolio:
        top = read_json(out / "manifest.json")
        if (top is None or "portfolio" not in (top.get("steps") or []) or not _same_run(top, want)
                or verify_owned_files(out / "portfolio")):
            return False
    return True


def verify_owned_files(folder: Path) -> list[str]:
    """Problems with the files the tool listed in ``folder/manifest.json`` (empty: all intact).

    Each listed file must exist with its recorded size and, where recorded, SHA-256; a
    ``.npy`` array must have a readable header whose shape and type fill the file exactly.
    A folder without a ``files`` list (older versions) counts as unverifiable.
    """
    import hashlib

    record = read_json(folder / "manifest.json")
    if record is None or not isinstance(record.get("files"), dict):
        return [f"{folder}: no list of its files"]
    problems = []
    for rel, meta in owned_files(folder).items():
        path = folder / rel
        try:
            size = path.stat().st_size
        except OSError:
            problems.append(f"{path}: missing")
            continue
        if meta.get("bytes") != size:
            problems.append(f"{path}: {size} bytes, {meta.get('bytes')} written")
        elif "sha256" in meta:
            with open(path, "rb") as fh:
                if hashlib.sha256(fh.read()).hexdigest() != meta["sha256"]:
                    problems.append(f"{path}: changed since it was written")
        elif path.suffix == ".npy" and not _npy_intact(path, size):
            problems.append(f"{path}: not a complete array")
    return problems


def _npy_intact(path: Path, size: int) -> bool:
    """The ``.npy`` header parses and header + data fill the file exactly."""
    from numpy.lib import format as npy

    try:
        with open(path, "rb") as fh:
            version = npy.read_magic(fh)
            # the public readers of the two header versions (numpy >= 1.9; 3.0 is 2.0 with utf-8)
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, _, dtype = read_header(fh)
            offset = fh.tell()
    except (OSError, ValueError, EOFError):
        return False
    return offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize == size


def link_simulation(source: Path, target: Path) -> None:
    """Reuse an up-to-date simulation in a staged run: its own files only (hard links, no copy)."""
    for rel in [*owned_files(source), "manifest.json"]:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / rel, dest)
        except OSError:
            shutil.copy2(source / rel, dest)
