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

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..assumptions.model import Assumptions
from ..engine import engine_for, preflight
from ..errors import UsageError
from ..io import write_json_atomic
from ..outdir import STEPS, check_output_path, output_folder, staged_run
from ..resources import check_resources
from ..simulation import RunSettings, load_scenarios
from .current import link_simulation, previous_settings, read_json, results_are_current, run_manifest, used_settings
from .stages import optimize_to_directory, simulate_to_directory

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


def simulate_into(a: Assumptions, settings: RunSettings, out_dir: str | Path, *, progress=None,
                  command: str | None = None):
    """``fundmodel simulate``: simulate and swap ``OUT/simulation/`` in, under the folder's lock.

    Returns
    -------
    result : SimulationResult
    summary : pandas.DataFrame
    """
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
    from ..memo import load_results, render_memos  # here: the memo step's libraries load only when it runs
    from ..memo.labels import LANGUAGES

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
        current = results_are_current(a, settings, out)
        with staged_run(out, keep_owned=("memos",) if projects else ()) as stage:
            with engine_for(settings) as engine:  # one engine (e.g. one Dask cluster) for both steps
                if current:
                    link_simulation(out / "simulation", stage / "simulation")
                    report.reused_simulation = True
                else:
                    simulate_to_directory(a, settings, stage, command=command, engine=engine)
                settings = used_settings(settings, stage / "simulation")
                if settings.scenarios_max is not None:
                    keys = ("precision_reached", "precision_target_meur", "precision_target_rel", "scenarios",
                            "scenarios_max", "worst_project", "worst_npv_mean_se_meur")
                    recorded = read_json(stage / "simulation" / "metrics.json") or {}
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
    from ..memo import load_results, render_memos

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
