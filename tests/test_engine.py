"""Engines (fundmodel.engine): serial, local processes and Dask give identical results.

One local Dask cluster (2 single-threaded worker processes) serves the whole module. Runs
use three default projects, a few thousand scenarios and small chunks, so that every run
has several tasks in flight on both workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.engine import DaskEngine, SerialEngine, open_engine
from fundmodel.errors import UsageError
from fundmodel.simulation import RunSettings, load_scenarios, simulate

from conftest import copy_assumptions, slow_fixture

PROJECTS = ["mn_ree", "cd_cobalt", "cl_lithium"]
RESULT_FILES = ["simulation/summary.csv", "simulation/tonnes.csv", "simulation/first_production.csv",
                "simulation/price_fan.csv", "simulation/metrics.json", "portfolio/allocation.csv",
                "portfolio/frontier.csv", "portfolio/stress.csv", "portfolio/metrics.json"]


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """Three projects, light attribution and stresses."""
    return copy_assumptions(tmp_path_factory.mktemp("engine") / "assumptions", PROJECTS, {
        "fund.yaml": lambda d: (d["simulation"].update(attribution_scenarios=512),
                                d["portfolio"].update(max_country_share=1.0, max_material_share=1.0)),
        "stress.yaml": lambda d: d.update(stress_scenarios=128)})


@slow_fixture(scope="module")
def cluster():
    """A local Dask cluster started by the engine itself (no scheduler address)."""
    engine = DaskEngine(workers=2)
    yield engine
    engine.close()


def _same_scalars(r1, r2) -> None:
    for pid in r1.scalars:
        for name in r1.scalars[pid]:
            np.testing.assert_array_equal(r1.scalars[pid][name], r2.scalars[pid][name], err_msg=f"{pid} {name}")
    assert r1.attribution_meur == r2.attribution_meur
    assert r1.event_year_share == r2.event_year_share
    assert r1.export_restriction_share == r2.export_restriction_share
    for pid, mats in r1.tonnes_mean_t.items():
        for m, d in mats.items():
            for kind, arr in d.items():
                np.testing.assert_array_equal(arr, r2.tonnes_mean_t[pid][m][kind])


@pytest.mark.slow
def test_serial_and_dask_cluster_give_identical_files(work, cluster, tmp_path):
    """simulate + optimize (attribution, sensitivity, stresses) through the CLI: byte-identical.

    (Serial runs on 1 and 2 local processes are compared in test_robustness_repro.)
    """
    common = ["--assumptions", str(work), "--scenarios", "2048", "--seed", "11"]
    outs = {"serial": tmp_path / "serial", "dask": tmp_path / "dask"}
    runs = {"serial": ["--workers", "1"],
            # the module's cluster, reached by its address as a remote cluster would be
            "dask": ["--engine", "dask", "--scheduler", cluster.address]}
    for name, extra in runs.items():
        code, err = _cli(["simulate", *common, *extra, "--chunk-size", "512", "--quiet", "--out", str(outs[name])])
        assert code == 0, err
        code, err = _cli(["optimize", *common, *extra, "--out", str(outs[name])])
        assert code == 0, err
    for rel in RESULT_FILES:
        reference = (outs["serial"] / rel).read_bytes()
        assert (outs["dask"] / rel).read_bytes() == reference, f"{rel} differs on dask"
    arrays = sorted((outs["serial"] / "simulation" / "scenarios").rglob("*.npy"))
    assert len(arrays) > 20
    for path in arrays:
        rel = path.relative_to(outs["serial"])
        assert (outs["dask"] / rel).read_bytes() == path.read_bytes(), rel
    execution = json.loads((outs["dask"] / "simulation" / "manifest.json").read_text())["execution"]
    assert execution == {"engine": "dask", "workers": 2, "scheduler": cluster.address}


@pytest.mark.slow
def test_chunk_count_and_result_transport_do_not_change_dask_results(work, cluster, tmp_path, monkeypatch):
    """3 chunks vs 1 chunk; workers writing the files vs rows sent back (no shared file system)."""
    a = load_assumptions(work)
    settings = RunSettings.from_assumptions(a, scenarios=3072, seed=5, chunk_size=1024, workers=1)
    serial = simulate(a, dataclasses.replace(settings, chunk_size=3072), scenario_dir=_scenario_dir(tmp_path / "s"))
    direct = simulate(a, settings, engine=cluster, scenario_dir=_scenario_dir(tmp_path / "d"))
    monkeypatch.setattr(DaskEngine, "sees_path", lambda self, path: False)
    sent_back = simulate(a, settings, engine=cluster, scenario_dir=_scenario_dir(tmp_path / "b"))
    for other in (direct, sent_back):
        _same_scalars(serial, other)
    reference = load_scenarios(tmp_path / "s")
    for folder in ("d", "b"):
        got = load_scenarios(tmp_path / folder)
        got_arrays = dict(got.arrays())
        for rel, arr in reference.arrays():
            np.testing.assert_array_equal(arr, got_arrays[rel], err_msg=f"{folder} {rel}")


def _scenario_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


@pytest.mark.slow
def test_worker_killed_mid_run_is_retried_and_results_are_identical(work, cluster):
    """SIGKILL one worker process after the first chunk: Dask re-runs its tasks, same numbers."""
    a = load_assumptions(work)
    settings = RunSettings.from_assumptions(a, scenarios=6144, seed=3, chunk_size=1024, workers=1,
                                            risk_attribution=False)
    reference = simulate(a, settings)
    pids = cluster.client.run(os.getpid)
    victim_address, victim = sorted(pids.items())[0]
    done = []
    killed_at = []

    def progress(n: int) -> None:
        done.append(n)
        if not killed_at:  # after the first chunk: the other tasks are queued or running
            os.kill(victim, signal.SIGKILL)
            killed_at.append(sum(done))

    result = simulate(a, settings, engine=cluster, progress=progress)
    assert killed_at == [1024] and sum(done) == 6144
    with pytest.raises(ProcessLookupError):  # the worker really died (the nanny has reaped it)
        _wait_until_gone(victim)
    _same_scalars(reference, result)
    # the nanny restarted a worker: the engine is still usable with two workers
    cluster.client.wait_for_workers(2, timeout=60)
    assert victim not in cluster.client.run(os.getpid).values()


def _wait_until_gone(pid: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        os.kill(pid, 0)  # raises ProcessLookupError once the process is gone
        time.sleep(0.1)


def test_engine_map_keeps_task_order_and_serial_map_equals_builtin():
    tasks = list(range(7))
    with open_engine("serial", workers=2) as engine:
        assert list(engine.map(pow, 3, tasks)) == [3 ** k for k in tasks]
    assert list(SerialEngine(1).map(divmod, 17, [2, 3, 5])) == [divmod(17, 2), divmod(17, 3), divmod(17, 5)]


@pytest.mark.slow
def test_dask_map_returns_results_in_task_order_with_a_small_window(cluster):
    """Results come back in task order even when later tasks finish first."""
    window = cluster.in_flight_per_worker
    cluster.in_flight_per_worker = 1
    try:
        assert list(cluster.map(_sleep_then_return, 0.05, [4, 0, 3, 1, 2])) == [4, 0, 3, 1, 2]
    finally:
        cluster.in_flight_per_worker = window


def _sleep_then_return(unit_s: float, k: int) -> int:
    time.sleep(unit_s * k)
    return k


@pytest.mark.slow
def test_bad_engine_options_exit_2_before_any_work(work, tmp_path, monkeypatch):
    code, err = _cli(["simulate", "--assumptions", str(work), "--scheduler", "tcp://127.0.0.1:1", "--out",
                      str(tmp_path)])
    assert code == 2 and "--scheduler needs --engine dask" in err
    code, err = _cli(["run", "--assumptions", str(work), "--engine", "spark", "--out", str(tmp_path)])
    assert code == 2 and "invalid choice: 'spark'" in err
    monkeypatch.setattr("fundmodel.engine.CONNECT_TIMEOUT_SECONDS", 1.0)
    code, err = _cli(["simulate", "--assumptions", str(work), "--engine", "dask", "--scheduler",
                      "tcp://127.0.0.1:1", "--scenarios", "1024", "--out", str(tmp_path)])
    assert code == 2 and "cannot reach the Dask scheduler at 'tcp://127.0.0.1:1'" in err, err
    assert not (tmp_path / "simulation").exists()
    with pytest.raises(UsageError, match="unknown engine"):
        with open_engine("spark"):
            pass


def test_workers_with_other_versions_are_refused():
    """Other fundmodel/numpy versions on the workers would break reproducibility: refused."""
    mine = {"fundmodel": "0.1.0", "numpy": np.__version__}

    class FakeClient:
        def run(self, fn):
            return {"tcp://a:1": dict(mine), "tcp://b:1": {**mine, "numpy": "1.0.0"}}

    engine = DaskEngine.__new__(DaskEngine)
    engine.client = FakeClient()
    with pytest.MonkeyPatch.context() as m:
        m.setattr("fundmodel.engine._versions", lambda: mine)
        with pytest.raises(UsageError, match="tcp://b:1.*same fundmodel and numpy"):
            engine._check_versions()
