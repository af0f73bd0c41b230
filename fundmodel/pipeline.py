"""The end-to-end job: validate -> simulate -> optimise -> memos, as one atomic run.

``fundmodel run`` writes every step into a hidden staging folder beside the output and moves
the results into place only when all steps succeeded, so a failed or interrupted run leaves
the previous ``simulation/``, ``portfolio/`` and ``memos/`` intact and mutually consistent.
The run manifest (package version, git commit, seed, scenario count, SHA-256 of every
assumption file, the steps run) is written last to ``OUT/manifest.json``; ``fundmodel memo``
uses it to decide whether the results are up to date with the assumption files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .assumptions import Assumptions
from .errors import UsageError
from .io import hold_staging_lock, release_staging_lock, remove_stale_staging, write_json_atomic
from .simulation import RunSettings

#: Result folders of a run, in the order they are moved into place.
STEPS = ("simulation", "portfolio", "memos")


@dataclass
class RunReport:
    """What a run did and how long each step took (seconds)."""

    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    memos: list[Path] = field(default_factory=list)
    reused_simulation: bool = False


def _comparable(settings: dict) -> dict:
    # workers, chunk size, engine and attribution do not change the scenario results
    return {k: v for k, v in settings.items() if k not in ("risk_attribution", "workers", "chunk_size")}


def previous_settings(a: Assumptions, out_dir: str | Path, **overrides) -> RunSettings:
    """Settings of the run recorded in ``OUT/manifest.json`` (fund.yaml defaults if there is none).

    ``fundmodel memo`` repeats the previous run (same seed and scenario count) when the
    results are stale, instead of silently switching to the defaults.
    """
    recorded = {}
    try:
        top = json.loads((Path(out_dir) / "manifest.json").read_text())
        recorded = {k: top["settings"][k] for k in ("scenarios", "seed", "sampling", "copula", "copula_dof")
                    if k in top.get("settings", {})}
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        recorded = {}
    return RunSettings.from_assumptions(a, **{**recorded, **overrides})


def results_are_current(a: Assumptions, settings: RunSettings, out_dir: str | Path, *,
                        need_portfolio: bool = False) -> bool:
    """True if ``OUT/simulation`` (and ``OUT/portfolio``) were made from these files and settings."""
    from .results import run_manifest

    sim_manifest = Path(out_dir) / "simulation" / "manifest.json"
    if not sim_manifest.is_file():
        return False
    try:
        have = json.loads(sim_manifest.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    want = run_manifest(a, settings)
    if _comparable(have.get("settings", {})) != _comparable(want["settings"]):
        return False
    if have.get("assumption_files_sha256") != want["assumption_files_sha256"]:
        return False
    if need_portfolio:
        run = Path(out_dir) / "manifest.json"
        if not (Path(out_dir) / "portfolio" / "metrics.json").is_file() or not run.is_file():
            return False
        try:
            top = json.loads(run.read_text())
        except (OSError, json.JSONDecodeError):
            return False
        return ("portfolio" in top.get("steps", []) and top.get("assumption_files_sha256") == want[
            "assumption_files_sha256"] and _comparable(top.get("settings", {})) == _comparable(want["settings"]))
    return True


@contextmanager
def staged_run(out_dir: str | Path) -> Iterator[Path]:
    """A staging output root whose step folders replace those of ``out_dir`` on success.

    Yields
    ------
    Path
        Empty folder on the same file system; write ``simulation/``, ``portfolio/``,
        ``memos/`` and ``manifest.json`` into it.

    Notes
    -----
    On error nothing in ``out_dir`` changes. On success each step folder present in the
    stage is swapped in by renames (old aside, new in place), then ``manifest.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out):
        remove_stale_run_folders(out)
        stage = Path(tempfile.mkdtemp(prefix=".run.tmp-", dir=out))
        lock = hold_staging_lock(stage)
        try:
            try:
                yield stage
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            old = Path(tempfile.mkdtemp(prefix=".run.old-", dir=out))
            try:
                for step in STEPS:
                    if (stage / step).exists():
                        if (out / step).exists():
                            os.replace(out / step, old / step)
                        os.replace(stage / step, out / step)
                if (stage / "manifest.json").exists():
                    os.replace(stage / "manifest.json", out / "manifest.json")
            finally:
                shutil.rmtree(old, ignore_errors=True)
                shutil.rmtree(stage, ignore_errors=True)
        finally:
            release_staging_lock(lock)


def remove_stale_run_folders(out: Path) -> list[Path]:
    """Remove the staging folders of runs that were killed (call with the run lock held).

    ``.run.tmp-*`` (a run's stage) and ``.run.old-*`` (previous step folders set aside
    during the final renames) in ``out``: under the run lock no other run is writing, so
    these are left by a killed run. A step folder found only in a ``.run.old-*`` (the run
    died between the two renames of that step) is moved back into place first, so the
    previous results are never lost. Then the stale stages of single steps
    (``.simulation.tmp-*``, ... of ``fundmodel simulate``, ``optimize``, ``memo``; see
    :func:`fundmodel.io.remove_stale_staging`). Nothing else is touched.
    """
    removed: list[Path] = []
    for old in sorted(out.glob(".run.old-*")):
        if not old.is_dir() or old.is_symlink():
            continue
        for step in STEPS:
            if (old / step).is_dir() and not (out / step).exists():
                os.replace(old / step, out / step)
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    for stage in sorted(out.glob(".run.tmp-*")):
        if stage.is_dir() and not stage.is_symlink():
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    for step in STEPS:
        removed += remove_stale_staging(out, step)
    return removed


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Refuse a second run into the same output folder while one is running (POSIX advisory lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no lock, each step is still atomic
        yield
        return
    with open(out / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(f"{out}: another fundmodel run is writing to this folder; wait for it to finish "
                             "or choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _link_or_copy_simulation(source: Path, target: Path) -> None:
    """Reuse an up-to-date simulation in a staged run (hard links: no copy of the scenario files)."""
    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def run_all(a: Assumptions, settings: RunSettings, out_dir: str | Path, *, lang: str = "en",
            projects: list[str] | None = None, baseline_dir: str | Path | None = None,
            memos: bool = True, command: str | None = None,
            log: Callable[[str], None] = lambda message: None) -> RunReport:
    """Simulate, optimise and render the memos into ``out_dir``, atomically.

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
        Only these project memos.
    baseline_dir : str or Path, optional
        Earlier output root for the "changes since the previous run" section.
    memos : bool
        Render the memos (``fundmodel optimize`` runs the same pipeline without them).
    command : str, optional
        Command line recorded in the manifests.
    log : callable
        Receives one line per finished step.

    Returns
    -------
    RunReport
    """
    from .engine import engine_for
    from .memo import load_results, render_memos
    from .memo.labels import LANGUAGES
    from .portfolio.fund import optimize_to_directory
    from .results import run_manifest, simulate_to_directory
    from .simulation import load_scenarios

    if a.fund.portfolio is None or a.instruments is None:
        raise UsageError(f"{a.directory}: the run needs fund.yaml 'portfolio' limits and instruments.yaml")
    if lang not in LANGUAGES:
        raise UsageError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    baseline = None
    if baseline_dir is not None:
        baseline = load_results(baseline_dir)
    report = RunReport(out_dir=Path(out_dir))
    with staged_run(out_dir) as stage:
        started = time.perf_counter()
        current = results_are_current(a, settings, out_dir) and (
            not settings.risk_attribution
            or json.loads((Path(out_dir) / "simulation" / "manifest.json").read_text())["settings"].get(
                "risk_attribution", False))
        with engine_for(settings) as engine:  # one engine (e.g. one Dask cluster) for both steps
            if current:
                _link_or_copy_simulation(Path(out_dir) / "simulation", stage / "simulation")
                report.reused_simulation = True
            else:
                simulate_to_directory(a, settings, stage, command=command, engine=engine)
            report.timings["simulate"] = time.perf_counter() - started
            log(f"simulate: {'reused' if current else 'done'} in {report.timings['simulate']:.1f} s")

            started = time.perf_counter()
            optimize_to_directory(a, load_scenarios(stage / "simulation" / "scenarios"), stage, settings=settings,
                                  engine=engine)
            report.timings["optimize"] = time.perf_counter() - started
            log(f"optimize: done in {report.timings['optimize']:.1f} s")

        steps = ["simulation", "portfolio"]
        if memos:
            started = time.perf_counter()
            results = load_results(stage)
            written = render_memos(a, results, stage, lang=lang, projects=projects, baseline=baseline,
                                   workers=settings.workers)
            report.memos = [Path(out_dir) / "memos" / p.name for p in written]
            report.timings["memos"] = time.perf_counter() - started
            log(f"memos: {len(written)} PDFs in {report.timings['memos']:.1f} s")
            steps.append("memos")
        manifest = run_manifest(a, settings, command)
        manifest["steps"] = steps
        manifest["lang"] = lang
        write_json_atomic(stage / "manifest.json", manifest)
    return report
