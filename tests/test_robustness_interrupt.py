"""Failures mid-run: a killed ``fundmodel run`` loses nothing; two runs into one folder cannot collide.

One small but real run (3 projects, 128 scenarios, no risk attribution, the portfolio memo)
makes the "previous" output folder. Copies of it are then overwritten by
``fundmodel run`` processes (one worker, 8,192 scenarios when killed in the simulation,
256 otherwise, the memo of one project)
that are interrupted at five points, found by polling their staging folders (the runs are
forked from the test process: no interpreter start-up; the second run of the lock test is
a real ``python -m fundmodel.cli`` subprocess):

- ``SIGKILL`` during the simulation (the stage's ``scenarios/`` exists), while a second
  ``fundmodel run`` into the same folder is started and refused (exit 2, the victim is
  held with ``SIGSTOP`` so that it certainly holds the lock);
- ``SIGINT`` during the simulation (exit 130, "interrupted", stage removed);
- ``SIGKILL`` during the optimisation (the staged ``simulation/summary.csv`` exists);
- ``SIGKILL`` and ``SIGINT`` during memo rendering (a memo's HTML exists in the staged
  ``memos/``, its PDF not yet).

After each, every file of the previous output is byte-identical and readable (results load,
PDFs parse). A later run into a folder left by ``SIGKILL`` removes the stale staging folders
and writes new results. The stale-folder cleanup itself is unit-tested: only our hidden
patterns, only folders no live process holds.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pypdf
import pytest
from conftest import slow_fixture
import yaml

from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.io import hold_staging_lock, release_staging_lock, remove_stale_staging
from fundmodel.memo import load_results
from fundmodel.outdir import MARKER
from fundmodel.pipeline import run_all
from fundmodel.simulation import RunSettings

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ["mn_ree", "br_ree", "cd_cobalt"]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
TIMEOUT = 150  # seconds for all the interrupted runs together (a loaded 2-core machine)


def snapshot(out: Path) -> dict[str, bytes]:
    """Every result file (not the lock, not hidden staging folders), by relative path."""
    files = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if path.is_file() and not any(part.startswith(".") for part in rel.parts):
            files[str(rel)] = path.read_bytes()
    return files


def hidden(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name.startswith(".") and p.name not in (".lock", MARKER))


def fork_cli(argv: list[str], log: Path) -> int:
    """``fundmodel ARGV`` in a forked child process (no interpreter start-up); returns its pid.

    The child is a separate process running :func:`fundmodel.cli.main`, stderr to ``log``,
    and exits with its exit code, so signals hit it exactly as they hit the command.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        # a command starts with Python's default handlers; the test worker it is forked from may
        # have changed them (an earlier test in the same worker process), so restore them
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 2)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", buffering=1, closefd=False)
            code = main(argv)
        finally:
            try:
                sys.stderr.flush()
            finally:
                os._exit(code)
    return pid


def matches(root: Path, pattern: str) -> bool:
    """``root.glob(pattern)`` finds something (a folder vanishing mid-glob counts as no match)."""
    try:
        return any(True for _ in root.glob(pattern))
    except OSError:
        return False


class Victim:
    """A ``fundmodel run`` process to interrupt when ``trigger`` (a glob under OUT, or ``log:TEXT``) matches."""

    def __init__(self, name: str, out: Path, assumptions: Path, trigger: str, sig: int, scenarios: int):
        self.name, self.out, self.trigger, self.sig = name, out, trigger, sig
        self.log = out.parent / f"{name}.stderr"
        self.pid = fork_cli(["run", "--assumptions", str(assumptions), "--scenarios", str(scenarios),
                             "--workers", "1", "--project", "mn_ree", "--out", str(out)], self.log)
        self.returncode: int | None = None
        self.fired = False
        self.rival: subprocess.Popen | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def triggered(self) -> bool:
        """The trigger glob matches under OUT (``log:TEXT``: the run's log holds TEXT)."""
        if self.trigger.startswith("log:"):
            return self.trigger[4:] in self.log.read_text()
        return matches(self.out, self.trigger)

    def fire(self) -> None:
        if self.fired or self.poll() is not None:
            return
        if self.triggered():
            if self.name == "sigkill-simulation":  # hold it (and its lock), start a second run
                os.kill(self.pid, signal.SIGSTOP)
                self.rival = subprocess.Popen(
                    [sys.executable, "-m", "fundmodel.cli", "run", "--assumptions",
                     str(self.out.parent.parent / "assumptions"), "--scenarios", "64", "--workers", "1",
                     "--out", str(self.out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            else:
                os.kill(self.pid, self.sig)
            self.fired = True

    def settle(self) -> None:
        if self.rival is not None and self.rival.poll() is not None and self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)  # the second run was answered: now kill the first

    @property
    def done(self) -> bool:
        return self.poll() is not None and (self.rival is None or self.rival.poll() is not None)

    def stop(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        if self.rival is not None and self.rival.poll() is None:
            self.rival.kill()
            self.rival.wait()


@slow_fixture(scope="module")
def interrupted(tmp_path_factory):
    base = tmp_path_factory.mktemp("interrupt")
    work = base / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    for path in (work / "projects").glob("*.yaml"):
        if path.stem not in PROJECTS:
            path.unlink()
    stress = yaml.load((work / "stress.yaml").read_text(), Loader=_LOADER)  # noqa: S506 - safe loader
    stress["stress_scenarios"] = 64
    (work / "stress.yaml").write_text(yaml.dump(stress, Dumper=_DUMPER, sort_keys=False))
    fund = yaml.load((work / "fund.yaml").read_text(), Loader=_LOADER)  # noqa: S506 - safe loader
    fund["portfolio"].update(max_country_share=1.0, max_material_share=1.0)  # a non-empty portfolio of 3
    fund["simulation"].update(risk_attribution=False, sensitivity=False, operating_options=False,
                              breakeven=False)  # speed: interruptions do not depend on them
    (work / "fund.yaml").write_text(yaml.dump(fund, Dumper=_DUMPER, sort_keys=False))
    previous = base / "previous"
    a = load_assumptions(work)  # the portfolio memo only (a PDF takes ~3 s)
    run_all(a, RunSettings.from_assumptions(a, scenarios=128, workers=1), previous, projects=[])
    before = snapshot(previous)
    assert {"memos/portfolio.pdf", "memos/portfolio.html", "portfolio/allocation.csv", "simulation/summary.csv",
            "manifest.json"} <= set(before)

    points = [  # name, trigger, signal, scenarios (enough for the simulation to last, few for the later steps)
        ("sigkill-simulation", ".run.tmp-*/.simulation.tmp-*/scenarios", signal.SIGKILL, 8192),
        ("sigint-simulation", ".run.tmp-*/.simulation.tmp-*/scenarios", signal.SIGINT, 8192),
        ("sigkill-optimize", "log:simulate: done", signal.SIGKILL, 256),
        ("sigkill-memos", ".run.tmp-*/.memos.tmp-*/*.html", signal.SIGKILL, 256),
        ("sigint-memos", ".run.tmp-*/.memos.tmp-*/*.html", signal.SIGINT, 256),
    ]
    victims = {}
    for name, trigger, sig, scenarios in points:
        (base / name).mkdir()
        out = base / name / "out"
        shutil.copytree(previous, out)
        victims[name] = Victim(name, out, work, trigger, sig, scenarios)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not all(v.done for v in victims.values()):
            assert time.monotonic() < deadline, {n: (v.fired, v.poll()) for n, v in victims.items()}
            for v in victims.values():
                v.fire()
                v.settle()
            time.sleep(0.01)
    finally:
        for v in victims.values():
            v.stop()
    yield {"before": before, "victims": victims, "assumptions": work}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sigkill-simulation", "sigint-simulation", "sigkill-optimize", "sigkill-memos",
                                  "sigint-memos"])
def test_interrupted_run_leaves_previous_results_intact_and_readable(interrupted, name):
    v = interrupted["victims"][name]
    err = v.log.read_text()
    assert v.fired, f"{name}: the run ended before the interruption point:\n{err}"
    code = v.returncode
    if v.sig == signal.SIGINT:
        assert code == 130 and "interrupted; previous results left untouched" in err, (code, err)
        assert "Traceback" not in err
        assert hidden(v.out) == [], hidden(v.out)  # an interrupted run removes its stage
    else:
        assert code == -signal.SIGKILL, (code, err)
    # it was interrupted where intended
    if name.endswith("simulation"):
        assert "simulate: done" not in err, err
    elif name.endswith("optimize"):
        assert "simulate: done" in err and "optimize: done" not in err, err  # not reused: other settings
    else:
        assert "optimize: done" in err and "memos:" not in err, err
    assert snapshot(v.out) == interrupted["before"]  # byte for byte
    results = load_results(v.out)  # readable
    assert list(results.summary.index) == sorted(PROJECTS)
    assert pypdf.PdfReader(str(v.out / "memos" / "portfolio.pdf")).pages[0].extract_text()


def test_second_run_into_the_same_folder_is_refused_while_the_first_holds_it(interrupted):
    rival = interrupted["victims"]["sigkill-simulation"].rival
    assert rival is not None
    _, err = rival.communicate()
    assert rival.returncode == 2, err
    assert "another fundmodel process (pid " in err and "is writing to this folder" in err and "Traceback" not in err


@pytest.mark.slow
def test_a_later_run_removes_what_a_killed_run_left(interrupted):
    out = interrupted["victims"]["sigkill-memos"].out
    left = hidden(out)
    assert left and all(name.startswith(".run.tmp-") for name in left), left  # SIGKILL leaves its stage
    a = load_assumptions(interrupted["assumptions"])
    run_all(a, RunSettings.from_assumptions(a, scenarios=64, workers=1), out, memos=False)
    assert hidden(out) == []
    after = snapshot(out)
    assert after["simulation/summary.csv"] != interrupted["before"]["simulation/summary.csv"]  # new results
    assert after["memos/portfolio.pdf"] == interrupted["before"]["memos/portfolio.pdf"]  # memos not re-rendered


# ----------------------------------------------------------------------------- stale staging folders
def test_remove_stale_staging_touches_only_abandoned_folders_of_our_patterns(tmp_path):
    (tmp_path / "simulation").mkdir()
    (tmp_path / "simulation" / "summary.csv").write_text("kept")
    stale = tmp_path / ".simulation.tmp-dead1"
    stale.mkdir()
    (stale / "summary.csv").write_text("half")
    live = tmp_path / ".simulation.tmp-live1"
    live.mkdir()
    keep = [tmp_path / ".simulation.tmpx", tmp_path / ".portfolio.tmp-other", tmp_path / "notes",
            tmp_path / ".git"]
    for path in keep:
        path.mkdir()
    lock = hold_staging_lock(live)  # a writer still at work (another open file: flock conflicts)
    try:
        removed = remove_stale_staging(tmp_path, "simulation")
        assert removed == [stale]
        old = tmp_path / ".simulation.old-x"
        old.mkdir()
        assert remove_stale_staging(tmp_path, "simulation") == []  # a writer is live: old kept
    finally:
        release_staging_lock(lock)
    assert remove_stale_staging(tmp_path, "simulation") == [live, old]  # the writer has gone
    assert not live.exists() and not old.exists()
    assert all(path.is_dir() for path in keep)
    assert (tmp_path / "simulation" / "summary.csv").read_text() == "kept"
    # an old folder with the target missing is the only copy (the writer died between the two
    # renames): put back in place
    shutil.rmtree(tmp_path / "simulation")
    only = tmp_path / ".simulation.old-y"
    (only / "simulation").mkdir(parents=True)
    (only / "simulation" / "summary.csv").write_text("the only copy")
    assert remove_stale_staging(tmp_path, "simulation") == [only] and not only.exists()
    assert (tmp_path / "simulation" / "summary.csv").read_text() == "the only copy"


@pytest.mark.slow
def test_killed_simulate_leaves_a_stage_that_the_next_simulate_removes(tmp_path):
    """``fundmodel simulate``: its stage is locked while alive, stale once killed, removed by the next."""
    out = tmp_path / "out"
    pid = fork_cli(["simulate", "--assumptions", str(ROOT / "assumptions"), "--scenarios", "20000", "--workers", "1",
                    "--no-attribution", "--quiet", "--out", str(out)], tmp_path / "simulate.stderr")
    try:
        deadline = time.monotonic() + 60
        while not matches(out, ".simulation.tmp-*/scenarios"):
            assert os.waitpid(pid, os.WNOHANG)[0] == 0, (tmp_path / "simulate.stderr").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert remove_stale_staging(out, "simulation") == []  # alive: its stage is in use
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert [p.name.split("-")[0] for p in out.iterdir() if p.name not in (".lock", MARKER)] == [".simulation.tmp"]
    assert main(["simulate", "--assumptions", str(ROOT / "assumptions"), "--scenarios", "64", "--workers", "1",
                 "--no-attribution", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [MARKER, ".lock", "simulation"]


def test_stale_run_folders_are_removed_and_a_step_left_aside_is_put_back(tmp_path):
    """A run killed between the two renames of a step left it only in ``.run.old-*``: restored."""
    from fundmodel.outdir import remove_stale_run_folders

    out = tmp_path / "out"
    (out / "portfolio").mkdir(parents=True)
    (out / "portfolio" / "allocation.csv").write_text("new")
    old = out / ".run.old-k1"
    for step, text in (("simulation", "previous"), ("portfolio", "previous")):
        (old / step).mkdir(parents=True)
        (old / step / "file.csv").write_text(text)
    stage = out / ".run.tmp-k1"
    (stage / ".memos.tmp-x").mkdir(parents=True)
    for keep in (".lock", ".git", ".run.tmpx", "notes"):
        (out / keep).mkdir()
    removed = remove_stale_run_folders(out)
    assert removed == [old, stage]
    assert (out / "simulation" / "file.csv").read_text() == "previous"  # the only copy, put back
    assert (out / "portfolio" / "allocation.csv").read_text() == "new"  # the newer one kept
    assert sorted(p.name for p in out.iterdir()) == [".git", ".lock", ".run.tmpx", "notes", "portfolio",
                                                     "simulation"]
