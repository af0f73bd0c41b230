"""Trustworthy outputs under faults (issue 12): kills, other people's files, concurrent commands,
code changes, full disks, hung clusters, spreadsheet formulas, broken caches.

Each test reproduces a defect found on the code before this work (and failed there): a killed
run's workers kept the folder locked for good; ``--out`` deleted files the tool had not written;
``memo``/``simulate``/``optimize`` took no lock; results of other code were reused; a full disk
killed the run with ``SIGBUS``; a Dask scheduler that never answered hung the run; text cells
ran as spreadsheet formulas; a truncated cached array failed every later run.

Runs are real ``fundmodel`` processes (``python -m fundmodel.cli``) where a signal or a second
process is part of the test; the rest call :func:`fundmodel.cli.main` in this process.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fundmodel.cli import main
from fundmodel.outdir import MARKER, output_folder

from conftest import REPO_ROOT, copy_assumptions, slow_fixture

PROJECTS = ["mn_ree", "cd_cobalt", "cl_lithium"]


def cli(argv: list[str]) -> tuple[int, str]:
    """``fundmodel ARGV`` in this process: exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def spawn(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """``python -m fundmodel.cli ARGV`` as a separate process (its own session), stderr to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "fundmodel.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), start_new_session=True, cwd=REPO_ROOT,
                            env={**os.environ, **(env or {})})


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_for(condition, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before {what}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Three projects, light attribution, sensitivity and stresses; no operating options or break-evens.

    The faults tested here (kills, locks, foreign files, stale code) do not depend on the model's
    options, which cost two thirds of a small run (their pilot fits do not shrink with the run).
    """
    return copy_assumptions(tmp_path_factory.mktemp("faults") / "assumptions", PROJECTS, {
        "fund.yaml": lambda d: (d["simulation"].update(attribution_scenarios=256, operating_options=False,
                                                       breakeven=False),
                                d["portfolio"].update(max_country_share=1.0, max_material_share=1.0)),
        "stress.yaml": lambda d: d.update(stress_scenarios=128)})


@slow_fixture(scope="module")
def previous(work, tmp_path_factory) -> Path:
    """A complete earlier output folder (3 project memos and the portfolio memo)."""
    out = tmp_path_factory.mktemp("previous") / "out"
    code, err = cli(["run", "--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--out", str(out)])
    assert code == 0, err
    return out


# ----------------------------------------------------------------------------- 1. kill and lock-out
@pytest.mark.slow
@pytest.mark.parametrize("sig, step", [(signal.SIGKILL, "simulation"), (signal.SIGTERM, "simulation"),
                                       (signal.SIGTERM, "memos")])
def test_a_killed_run_leaves_no_process_behind_and_the_next_run_proceeds(work, tmp_path, sig, step):
    """Workers die with the run within 2 s; SIGTERM is a clean exit 143; the folder is never locked out."""
    out, log = tmp_path / "out", tmp_path / "run.stderr"
    scenarios = "60000" if step == "simulation" else "256"
    proc = spawn(["run", "--assumptions", str(work), "--scenarios", scenarios, "--workers", "2", "--out", str(out)],
                 log)
    try:
        if step == "simulation":  # the two workers are simulating chunks
            wait_for(lambda: list(out.glob(".run.tmp-*/.simulation.tmp-*/scenarios"))
                     and len(descendants(proc.pid)) >= 2, 120, "the simulation workers", proc)
        else:  # the memo workers (a forkserver and its children) are rendering
            wait_for(lambda: list(out.glob(".run.tmp-*/.memos.tmp-*/*.html")), 180, "the first memo", proc)
        family = descendants(proc.pid)
        assert family, "the run has worker processes"
        os.kill(proc.pid, sig)
        code = proc.wait(60)
        killed_at = time.monotonic()
        wait_for(lambda: not any(running(p) for p in family), 2.0, "the workers to die with the run")
        assert time.monotonic() - killed_at <= 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    err = log.read_text()
    if sig == signal.SIGTERM:
        assert code == 143 and "terminated (SIGTERM); previous results left untouched" in err, (code, err)
        assert "Traceback" not in err
        assert not list(out.glob(".run.*")), "a terminated run removes its stage"
    else:
        assert code == -signal.SIGKILL
    # the folder is not locked out: the next run proceeds (and removes what a killed run left)
    code, err = cli(["run", "--assumptions", str(work), "--scenarios", "64", "--workers", "1", "--project",
                     "mn_ree", "--out", str(out)])
    assert code == 0, err
    assert not list(out.glob(".run.*")) and not list(out.glob(".*.tmp-*"))


def test_the_output_lock_is_not_inherited_by_child_processes(tmp_path):
    """A child forked while the run holds the lock does not hold it once the run lets go."""
    out = tmp_path / "out"
    with output_folder(out, write=True):
        child = os.fork()
        if child == 0:  # pragma: no cover - the child: outlives the lock's holder
            time.sleep(5)
            os._exit(0)
    try:
        probe = subprocess.run([sys.executable, "-c", "import sys\nfrom fundmodel.outdir import output_folder\n"
                                "with output_folder(sys.argv[1], write=True): print('locked')", str(out)],
                               capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
        assert running(child), "the child is still alive"
        assert probe.returncode == 0 and "locked" in probe.stdout, probe.stderr
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def _hold(out: Path, *, write: bool = True, command: str = "fundmodel run") -> subprocess.Popen:
    """Another process holding ``out``'s lock (for writing, or shared for reading) until killed."""
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom fundmodel.outdir import output_folder\n"
                               "with output_folder(sys.argv[1], write=sys.argv[2] == 'w', command=sys.argv[3]):\n"
                               "    print('held', flush=True); time.sleep(120)", str(out), "w" if write else "r",
                               command], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.slow
def test_a_refused_command_names_who_holds_the_folder(tmp_path):
    out = tmp_path / "out"
    holder = _hold(out, command="fundmodel run --seed 7")
    try:
        code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "64",
                         "--out", str(out), "--quiet"])
        assert code == 2
        assert f"another fundmodel process (pid {holder.pid}: fundmodel run --seed 7" in err, err
    finally:
        holder.kill()
        holder.wait()
    assert cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "64", "--out",
                str(out), "--quiet", "--no-attribution", "--workers", "1"])[0] == 0  # holder gone: free


# ----------------------------------------------------------------------------- 2. files the tool did not write
@pytest.mark.slow
def test_user_files_beside_the_results_survive_every_command(work, previous, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    mine = {"simulation/my_model.xlsx": b"PK\x03\x04 the analyst's workbook", "portfolio/plan.docx": b"plan",
            "memos/board_notes.txt": b"notes for the board", "memos/drafts/v2.txt": b"a draft", "README.txt": b"hi"}
    for rel, data in mine.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(data)
    before = {p.name: p.read_bytes() for p in (out / "memos").glob("*.pdf")}
    assert before
    for argv in (["simulate", "--seed", "11", "--scenarios", "64", "--quiet", "--no-attribution"],
                 ["optimize", "--seed", "11", "--scenarios", "64"], ["memo", "--project", "cd_cobalt"],
                 ["run", "--seed", "12", "--scenarios", "64", "--project", "mn_ree"]):
        code, err = cli([*argv, "--assumptions", str(work), "--workers", "1", "--out", str(out)])
        assert code == 0, (argv, err)
        for rel, data in mine.items():
            assert (out / rel).read_bytes() == data, f"{argv[0]} removed or changed {rel}"
    # the user's files are not listed as the tool's
    for step in ("simulation", "portfolio", "memos"):
        files = json.loads((out / step / "manifest.json").read_text())["files"]
        assert not any(rel.endswith((".xlsx", ".docx", ".txt")) for rel in files), files
    # memos of projects not asked for by --project stay in place
    assert sorted(p.name for p in (out / "memos").glob("*.pdf")) == sorted(before)


@pytest.mark.slow
def test_a_folder_that_is_not_a_fundmodel_output_is_refused(tmp_path):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine")
    for target in (foreign, Path("/")):
        code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "64",
                         "--out", str(target), "--quiet"])
        assert code == 2 and "is not a fundmodel output" in err, err
    assert sorted(p.name for p in foreign.iterdir()) == ["thesis.tex"], "nothing written into it"
    assert not (Path("/") / "simulation").exists()
    # a file, not a folder
    (tmp_path / "file").write_text("x")
    code, err = cli(["run", "--assumptions", str(REPO_ROOT / "assumptions"), "--out", str(tmp_path / "file")])
    assert code == 2 and "is a file" in err
    # hidden files (reports/.gitkeep) and a killed run's leftovers do not make a folder foreign
    reports = tmp_path / "reports"
    (reports / ".run.tmp-dead" / "simulation").mkdir(parents=True)
    (reports / ".gitkeep").write_text("")
    code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "64",
                     "--workers", "1", "--no-attribution", "--quiet", "--out", str(reports)])
    assert code == 0, err
    assert sorted(p.name for p in reports.iterdir()) == [MARKER, ".gitkeep", ".lock", "simulation"]


def test_a_home_folder_a_repository_and_a_result_subfolder_are_refused(tmp_path, monkeypatch, previous):
    """Hidden entries other than a placeholder or a killed run's leftovers are someone else's."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for target, says in ((home, "your home folder"), (repo, ".git")):
        code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "64",
                         "--out", str(target), "--quiet"])
        assert code == 2 and says in err and "is not a fundmodel output" in err, err
    assert sorted(p.name for p in home.iterdir()) == [".bashrc"] and sorted(p.name for p in repo.iterdir()) == [".git"]
    code, err = cli(["optimize", "--out", str(previous / "memos")])
    assert code == 2 and f"--out {previous}" in err, err


def test_a_dead_writer_is_never_named_as_the_holder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text("{}")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "command": "fundmodel run", "since_utc": "x"}))
    reader = _hold(out, write=False)
    try:
        code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "64",
                         "--out", str(out), "--quiet"])
        assert code == 2 and "is reading this folder" in err and str(dead.pid) not in err, err
    finally:
        reader.kill()
        reader.wait()


def test_an_installed_copy_outside_the_work_tree_records_no_commit(tmp_path):
    """A non-editable install in an ignored .venv inside the repository is not the commit's code."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / ".gitignore").write_text(".venv/\n")
    subprocess.run([*git, "add", ".gitignore"], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    site = repo / ".venv" / "site-packages"
    shutil.copytree(REPO_ROOT / "fundmodel", site / "fundmodel", ignore=shutil.ignore_patterns("__pycache__"))
    res = subprocess.run([sys.executable, "-c", "from fundmodel.provenance import git_state; print(git_state())"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(site)}, cwd=tmp_path,
                         timeout=60)
    assert res.stdout.strip() == "(None, None)", res.stdout + res.stderr


@pytest.mark.slow
def test_memos_kept_beside_newer_results_are_named(work, previous, tmp_path):
    """`--project` keeps the other memos (as asked) but says they come from other results."""
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    pid = PROJECTS[0]
    code, err = cli(["memo", "--assumptions", str(work), "--project", pid, "--out", str(out)])
    assert code == 0 and "note:" not in err, err  # same results: nothing is stale
    code, err = cli(["run", "--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--seed", "7",
                     "--project", pid, "--out", str(out)])
    assert code == 0, err
    others = [p for p in PROJECTS if p != pid]
    assert f"note: {len(others)} other memo(s) in memos/" in err and all(p in err for p in others), err
    assert all((out / "memos" / f"{p}.pdf").exists() for p in others)


# ----------------------------------------------------------------------------- 3. mixed results
def test_every_command_takes_the_folders_lock(work, previous, tmp_path):
    """While a run writes, memo, simulate and optimize are refused; so is reading it as a baseline."""
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    snapshot = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    holder = _hold(out)
    try:
        for argv in (["memo"], ["simulate", "--quiet"], ["optimize"]):
            code, err = cli([*argv, "--assumptions", str(work), "--out", str(out), "--workers", "1"])
            assert code == 2 and "is writing to this folder" in err, (argv, err)
        other = tmp_path / "other"
        code, err = cli(["run", "--assumptions", str(work), "--scenarios", "64", "--workers", "1", "--project",
                         "mn_ree", "--out", str(other), "--baseline", str(out)])
        assert code == 2 and f"{out}: another fundmodel process" in err, err
        assert not (other / "simulation").exists()
    finally:
        holder.kill()
        holder.wait()
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"} == snapshot


def test_readers_share_the_folder(previous):
    """Two readers at once (shared locks); a writer waits for neither in vain: it is refused at once."""
    reader = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom fundmodel.outdir import output_folder\n"
                               "with output_folder(sys.argv[1], write=False):\n"
                               "    print('reading', flush=True); time.sleep(60)", str(previous)],
                              stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        assert reader.stdout.readline().strip() == "reading"
        with output_folder(previous, write=False):
            pass  # a second reader is welcome
        from fundmodel.errors import UsageError

        with pytest.raises(UsageError, match="is writing to this folder|is reading"):
            with output_folder(previous, write=True):
                pass
    finally:
        reader.kill()
        reader.wait()


# ----------------------------------------------------------------------------- 4. code in the results key
def _package_sha256() -> str:
    """An independent hash of the package's files (path and content), as the manifest must record."""
    root = REPO_ROOT / "fundmodel"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix in (
                ".py", ".html", ".css", ".csv", ".md", ".json", ".yaml"):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@pytest.mark.slow
def test_results_of_other_code_are_never_reused(work, previous, tmp_path):
    """A copy of the package with a changed model (prices x 1.5) must not reuse the results."""
    manifest = json.loads((previous / "simulation" / "manifest.json").read_text())
    assert manifest["code_sha256"] == _package_sha256()
    footer = (previous / "memos" / "portfolio.html").read_text()
    assert f"code {manifest['code_sha256'][:8]}" in footer
    # the same code and inputs: current; a changed copy of the package (no git there): stale
    changed = tmp_path / "pkg"
    shutil.copytree(REPO_ROOT / "fundmodel", changed / "fundmodel",
                    ignore=shutil.ignore_patterns("__pycache__"))
    market = changed / "fundmodel" / "market.py"
    market.write_text(market.read_text() + "\n# a committed model change: prices x 1.5\n")
    script = ("import sys\nfrom fundmodel.assumptions import load_assumptions\n"
              "from fundmodel.pipeline import previous_settings, results_are_current\n"
              "import fundmodel\na = load_assumptions(sys.argv[1])\n"
              "print(fundmodel.__file__, results_are_current(a, previous_settings(a, sys.argv[2]), sys.argv[2], "
              "need_portfolio=True))")
    same = subprocess.run([sys.executable, "-c", script, str(work), str(previous)], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert same.stdout.split()[-1] == "True", same.stderr
    other = subprocess.run([sys.executable, "-c", script, str(work), str(previous)], capture_output=True, text=True,
                           cwd=changed, timeout=120, env={**os.environ, "PYTHONPATH": str(changed)})
    assert str(changed) in other.stdout and other.stdout.split()[-1] == "False", (other.stdout, other.stderr)


@pytest.mark.slow
def test_a_run_by_other_code_simulates_again(work, previous, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    settings = ["--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--out", str(out),
                "--project", "mn_ree"]
    code, err = cli(["run", *settings])
    assert code == 0 and "simulate: reused" in err, err
    monkeypatch.setattr("fundmodel.provenance.code_sha256", lambda: "0" * 64)
    code, err = cli(["run", *settings])
    assert code == 0 and "simulate: done" in err, err
    assert json.loads((out / "manifest.json").read_text())["code_sha256"] == "0" * 64
