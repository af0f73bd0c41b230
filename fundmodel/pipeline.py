"""The commands as one pipeline: validate -> simulate -> optimise -> memos, atomically, under one lock.

Every command that reads or writes an output folder goes through here
(:func:`simulate_into`, :func:`run_all` for ``run`` and ``optimize``, :func:`memos_into`):
it holds the folder's lock (:func:`fundmodel.outdir.output_folder`), checks that the
machine can hold the run (:func:`fundmodel.resources.check_resources`), writes every step
into a hidden staging folder and moves the results into place only when all steps
succeeded, so a failed or interrupted run leaves the previous ``simulation/``,
``portfolio/`` and ``memos/`` intact and mutually consistent, and files the tool did not
write are never removed. The run manifest (code version and hash, git commit, seed,
scenario count, SHA-256 of every assumption file, the steps run) is written last to
``OUT/manifest.json``; :func:`results_are_current` is the one rule deciding whether earlier
results can be reused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .assumptions import Assumptions
from .errors import UsageError
from .io import owned_files, write_json_atomic
from .outdir import STEPS, check_output_path, output_folder, staged_run
from .simulation import RunSettings

__all__ = ["STEPS", "RunReport", "previous_settings", "results_are_current", "simulate_into", "run_all",
           "memos_into"]


@dataclass
class RunReport:
    """What a run did and how long each step took (seconds)."""

    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    memos: list[Path] = field(default_factory=list)
    reused_simulation: bool = False
    #: outcome of a ``--precision`` run (``simulation/metrics.json``), else None
    precision: dict | None = None


def _comparable(settings: dict) -> dict:
    # workers, chunk size, engine and attribution do not change the scenario results; a --precision
    # run is identified by its target and maximum (the scenarios it used follow from them)
    skip = ("risk_attribution", "workers", "chunk_size")
    if settings.get("precision_meur") is not None or settings.get("precision_rel") is not None:
        skip += ("scenarios",)
    return {k: v for k, v in settings.items() if k not in skip}


def _used_settings(settings: RunSettings, simulation_dir: Path) -> RunSettings:
    """``settings`` with the scenario count a ``--precision`` simulation in ``simulation_dir`` used."""
    if settings.precision_meur is None and settings.precision_rel is None:
        return settings
    from dataclasses import replace

    used = ((_read_json(simulation_dir / "manifest.json") or {}).get("settings") or {}).get("scenarios")
    return replace(settings, scenarios=int(used), scenarios_max=settings.scenarios) if used else settings


def _read_json(path: Path) -> dict | None:
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
    top = (_read_json(Path(out_dir) / "manifest.json")
           or _read_json(Path(out_dir) / "simulation" / "manifest.json") or {})
    recorded = top.get("settings") if isinstance(top.get("settings"), dict) else {}
    precision = {k: recorded[k] for k in ("precision_meur", "precision_rel") if recorded.get(k) is not None}
    if precision and recorded.get("scenarios_max"):  # a --precision run: its target and maximum
        precision["scenarios"] = recorded["scenarios_max"]
    recorded = {k: recorded[k] for k in ("scenarios", "seed", "sampling", "copula", "copula_dof") if k in recorded}
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
    copula); and every file the simulation listed is there, complete and unchanged
    (:func:`verify_owned_files`: a truncated or edited cached array means "recompute",
    never a failed run). With ``need_portfolio``, ``OUT/manifest.json`` must also record
    an optimisation of the same run. A missing or corrupt manifest is simply "not current".
    """
    from .results import run_manifest

    out = Path(out_dir)
    want = run_manifest(a, settings)
    have = _read_json(out / "simulation" / "manifest.json")
    if have is None or not _same_run(have, want) or verify_owned_files(out / "simulation"):
        return False
    if need_portfolio:
        top = _read_json(out / "manifest.json")
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

    record = _read_json(folder / "manifest.json")
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


def _link_simulation(source: Path, target: Path) -> None:
    """Reuse an up-to-date simulation in a staged run: its own files only (hard links, no copy)."""
    for rel in [*owned_files(source), "manifest.json"]:
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source / rel, dest)
        except OSError:
            shutil.copy2(source / rel, dest)


def simulate_into(a: Assumptions, settings: RunSettings, out_dir: str | Path, *, progress=None,
                  command: str | None = None):
    """``fundmodel simulate``: simulate and swap ``OUT/simulation/`` in, under the folder's lock.

    Returns
    -------
    result : SimulationResult
    summary : pandas.DataFrame
    """
    from .engine import preflight
    from .resources import check_resources
    from .results import simulate_to_directory

    check_output_path(Path(out_dir), write=True)
    check_resources(a, settings, out_dir)
    preflight(settings)
    with output_folder(out_dir, write=True, command=command):
        return simulate_to_directory(a, settings, out_dir, progress=progress, command=command)


def run_all(a: Assumptions, settings: RunSettings, out_dir: str | Path, *, lang: str = "en",
            projects: list[str] | None = None, baseline_dir: str | Path | None = None,
            memos: bool = True, command: str | None = None,
            log: Callable[[str], None] = lambda message: None) -> RunReport:
    """Simulate, optimise and render the memos into ``out_dir``, atomically, under the folder's lock.

    Parameters
    ----------
    a : Assumptions
        Validated assumptions (with ``instruments.yaml`` and ``fund.yaml`` ``portfolio``).
    settings : RunSettings
        Scenario count, seed, sampling, workers.
    out_dir : str or Path
        Output root (``reports`` by default on the command line).
    lang : {"en", "de"}
        Memo language.
    projects : list of str, optional
        Only these project memos; the other memos in ``OUT/memos`` stay in place.
    baseline_dir : str or Path, optional
        Earlier output root for the "changes since the previous run" section (read under
        its shared lock).
    memos : bool
        Render the memos (``fundmodel optimize`` runs the same pipeline without them).
    command : str, optional
        Command line recorded in the manifests and the lock.
    log : callable
        Receives one line per finished step.

    Returns
    -------
    RunReport
    """
    from .engine import engine_for, preflight
    from .memo import load_results, render_memos
    from .memo.labels import LANGUAGES
    from .portfolio.fund import optimize_to_directory
    from .resources import check_resources
    from .results import run_manifest, simulate_to_directory
    from .simulation import load_scenarios

    if a.fund.portfolio is None or a.instruments is None:
        raise UsageError(f"{a.directory}: the run needs fund.yaml 'portfolio' limits and instruments.yaml")
    if lang not in LANGUAGES:
        raise UsageError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    out = Path(out_dir)
    report = RunReport(out_dir=out)
    check_output_path(out, write=True)
    if not results_are_current(a, settings, out):
        check_resources(a, settings, out)  # before anything is written
    preflight(settings)
    with ExitStack() as held:
        held.enter_context(output_folder(out, write=True, command=command))
        baseline = None
        if baseline_dir is not None:
            held.enter_context(output_folder(baseline_dir, write=False, command=command))
            baseline = load_results(baseline_dir)
        started = time.perf_counter()
        current = results_are_current(a, settings, out) and (
            not settings.risk_attribution
            or bool((_read_json(out / "simulation" / "manifest.json") or {}).get("settings", {}).get(
                "risk_attribution", False)))
        with staged_run(out, keep_owned=("memos",) if projects else ()) as stage:
            with engine_for(settings) as engine:  # one engine (e.g. one Dask cluster) for both steps
                if current:
                    _link_simulation(out / "simulation", stage / "simulation")
                    report.reused_simulation = True
                else:
                    simulate_to_directory(a, settings, stage, command=command, engine=engine)
                settings = _used_settings(settings, stage / "simulation")
                if settings.scenarios_max is not None:
                    keys = ("precision_reached", "precision_target_meur", "precision_target_rel", "scenarios",
                            "scenarios_max", "worst_project", "worst_npv_mean_se_meur")
                    recorded = _read_json(stage / "simulation" / "metrics.json") or {}
                    report.precision = {k: recorded.get(k) for k in keys}
                report.timings["simulate"] = time.perf_counter() - started
                log(f"simulate: {'reused' if current else 'done'} in {report.timings['simulate']:.1f} s")

                started = time.perf_counter()
                optimize_to_directory(a, load_scenarios(stage / "simulation" / "scenarios"), stage,
                                      settings=settings, engine=engine)
                report.timings["optimize"] = time.perf_counter() - started
                log(f"optimize: done in {report.timings['optimize']:.1f} s")

            steps = ["simulation", "portfolio"]
            if memos:
                started = time.perf_counter()
                results = load_results(stage)
                written = render_memos(a, results, stage, lang=lang, projects=projects, baseline=baseline,
                                       workers=settings.workers, previous=out / "memos")
                report.memos = [out / "memos" / p.name for p in written]
                report.timings["memos"] = time.perf_counter() - started
                log(f"memos: {len(written)} PDFs in {report.timings['memos']:.1f} s")
                steps.append("memos")
            manifest = run_manifest(a, settings, command)
            manifest["steps"] = steps
            manifest["lang"] = lang
            write_json_atomic(stage / "manifest.json", manifest)
    return report


def memos_into(a: Assumptions, out_dir: str | Path, *, lang: str = "en", projects: list[str] | None = None,
               baseline_dir: str | Path | None = None, workers: int | None = None, command: str | None = None,
               log: Callable[[str], None] = lambda message: None) -> tuple[list[Path], RunReport | None]:
    """``fundmodel memo``: render the memos from current results, or re-run the recorded run first.

    The results are read and the memos written under the folder's exclusive lock, so the
    memos always come from one consistent set of results (never from files a concurrent
    run is replacing).

    Returns
    -------
    memos : list of Path
        The PDFs written.
    report : RunReport or None
        The re-run, when the results were missing or stale.
    """
    from .memo import load_results, render_memos

    with output_folder(out_dir, write=True, command=command):
        settings = previous_settings(a, out_dir, workers=workers)
        if not results_are_current(a, settings, out_dir, need_portfolio=True):
            log("results missing or older than the assumption files or the code: running the model first")
            report = run_all(a, settings, out_dir, lang=lang, projects=projects, baseline_dir=baseline_dir,
                             command=command, log=log)
            return report.memos, report
        with ExitStack() as held:
            baseline = None
            if baseline_dir is not None:
                held.enter_context(output_folder(baseline_dir, write=False, command=command))
                baseline = load_results(baseline_dir)
            written = render_memos(a, load_results(out_dir), out_dir, lang=lang, projects=projects,
                                   baseline=baseline, workers=settings.workers)
        return written, None
