"""Scale figures: 10^6 scenarios, 200 generated projects, Dask overhead at small sizes.

Runs the ``fundmodel`` command line in fresh processes (start-up, imports, writing
included) and samples the memory of the command and of every process it starts (local
workers, Dask workers) with psutil every 0.2 s. Memory is reported as the peak *private*
(anonymous) memory per process, RSS minus file-backed shared pages: the scenario files are
memory-mapped and their page-cache pages, which the kernel can drop at any time, would
otherwise count in the RSS of every process that touched them.

Usage::

    python benchmarks/bench_scale.py overhead         # Dask vs serial at small sizes (~5 min)
    python benchmarks/bench_scale.py million          # 10^6 scenarios, 3 engines (~30 min, ~15 GB disk)
    python benchmarks/bench_scale.py pipeline         # 200 projects x 10^5 scenarios (~15 min, ~20 GB)
    python benchmarks/bench_scale.py all

Options: ``--repeats N`` (overhead, default 3), ``--scenarios N`` (million, default 10^6),
``--work DIR`` (scratch folder, default a temporary one, removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20


def run_measured(argv: list[str], cwd: Path) -> dict:
    """Run ``fundmodel argv``; wall time and peak private memory of it and each descendant."""
    peaks: dict[int, dict] = {}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "fundmodel.cli", *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def sample() -> None:
        try:
            root = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            for p in procs:
                try:
                    info = p.memory_info()
                    name = " ".join(p.cmdline()[1:4])[:60]
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                private = info.rss - info.shared
                entry = peaks.setdefault(p.pid, {"name": name, "private_mib": 0.0, "rss_mib": 0.0,
                                                 "main": p.pid == proc.pid})
                entry["private_mib"] = max(entry["private_mib"], private / MIB)
                entry["rss_mib"] = max(entry["rss_mib"], info.rss / MIB)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"fundmodel {' '.join(argv)} failed ({proc.returncode}):\n{err[-3000:]}")
    main = [v for v in peaks.values() if v["main"]]
    busy = [v for v in peaks.values() if not v["main"]]  # local pool or Dask workers (and helpers)
    return {
        "wall_s": wall,
        "main_private_mib": max((v["private_mib"] for v in main), default=0.0),
        "worker_private_mib": max((v["private_mib"] for v in busy), default=0.0),
        "processes": len(peaks),
        "stdout_tail": out.strip().splitlines()[-1:] if out.strip() else [],
    }


def _fmt(r: dict) -> str:
    return (f"{r['wall_s']:7.1f} s  main {r['main_private_mib']:7.0f} MiB  "
            f"largest worker {r['worker_private_mib']:6.0f} MiB  ({r['processes']} processes)")


ENGINES = {
    "serial, 1 process": ["--workers", "1"],
    "serial, 2 local processes": ["--workers", "2"],
    "dask, local cluster of 2 workers": ["--engine", "dask", "--workers", "2"],
}


def bench_overhead(work: Path, repeats: int) -> dict:
    """Dask vs local processes at small scenario counts (medians, runs alternated)."""
    print("\n== Dask overhead at small sizes (fundmodel simulate, default assumptions, 2 workers) ==")
    out = {}
    for n in (2048, 8192, 20000):
        times = {"serial, 2 local processes": [], "dask, local cluster of 2 workers": []}
        for _ in range(repeats):
            for name in times:  # alternate, so that load changes hit both alike
                target = work / "overhead"
                shutil.rmtree(target, ignore_errors=True)
                r = run_measured(["simulate", "--assumptions", str(ROOT / "assumptions"), "--scenarios", str(n),
                                  "--quiet", "--out", str(target), *ENGINES[name]], ROOT)
                times[name].append(r["wall_s"])
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = med["dask, local cluster of 2 workers"] / med["serial, 2 local processes"]
        out[n] = {"median_s": med, "runs_s": times, "dask_over_serial": ratio}
        print(f"{n:>7,} scenarios: serial/2 processes {med['serial, 2 local processes']:6.1f} s, dask "
              f"{med['dask, local cluster of 2 workers']:6.1f} s (ratio {ratio:.2f}; runs "
              f"{[round(t, 1) for t in times['serial, 2 local processes']]} vs "
              f"{[round(t, 1) for t in times['dask, local cluster of 2 workers']]})")
    return out


def bench_million(work: Path, scenarios: int) -> dict:
    """``fundmodel simulate`` then ``optimize`` at 10^6 scenarios on each engine."""
    print(f"\n== {scenarios:,} scenarios, default assumptions (12 projects x 40 years) ==")
    out = {}
    summaries = {}
    for name, extra in ENGINES.items():
        target = work / "million"
        shutil.rmtree(target, ignore_errors=True)
        sim = run_measured(["simulate", "--assumptions", str(ROOT / "assumptions"), "--scenarios", str(scenarios),
                            "--quiet", "--out", str(target), *extra], ROOT)
        print(f"simulate  {name:34s} {_fmt(sim)}")
        opt = run_measured(["optimize", "--assumptions", str(ROOT / "assumptions"), "--scenarios", str(scenarios),
                            "--out", str(target), *extra], ROOT)
        print(f"optimize  {name:34s} {_fmt(opt)}")
        disk = sum(p.stat().st_size for p in (target / "simulation").rglob("*") if p.is_file()) / 2**30
        summaries[name] = ((target / "simulation" / "summary.csv").read_bytes(),
                           (target / "portfolio" / "allocation.csv").read_bytes())
        metrics = json.loads((target / "portfolio" / "metrics.json").read_text())
        out[name] = {"simulate": sim, "optimize": opt, "disk_gib": disk,
                     "optimization_sample": metrics.get("optimization_sample")}
        print(f"          scenario files {disk:.1f} GiB; optimisation sample: "
              f"{json.dumps(metrics.get('optimization_sample', {}).get('gap'))}")
        shutil.rmtree(target, ignore_errors=True)
    same = len(set(summaries.values())) == 1
    print(f"summary.csv and allocation.csv identical on all engines: {same}")
    out["identical"] = same
    return out


def bench_pipeline(work: Path, projects: int = 200, scenarios: int = 100_000, solve_scenarios: int = 4096) -> dict:
    """A generated pipeline of ``projects`` projects at ``scenarios`` scenarios.

    Simulated on 2 local processes and on a local Dask cluster of 2 workers (results
    compared), then optimised once (reusing the Dask simulation) with the CVaR solved on
    the first ``solve_scenarios`` scenarios (``portfolio.optimization_scenarios``; the LP
    has one column per instrument and project, about 670 here, and one row per scenario).
    """
    print(f"\n== {projects} generated projects x {scenarios:,} scenarios ==")
    pipeline = work / "pipeline"
    shutil.rmtree(pipeline, ignore_errors=True)
    gen = run_measured(["generate-pipeline", "--assumptions", str(ROOT / "assumptions"), "--projects",
                        str(projects), "--seed", "1", "--out", str(pipeline)], ROOT)
    fund = pipeline / "fund.yaml"
    text = fund.read_text()
    assert "optimization_scenarios: 20000" in text
    fund.write_text(text.replace("optimization_scenarios: 20000", f"optimization_scenarios: {solve_scenarios}"))
    print(f"generate-pipeline {gen['wall_s']:.1f} s; optimization_scenarios set to {solve_scenarios:,}")
    out = {"generate_s": gen["wall_s"], "optimization_scenarios": solve_scenarios}
    summaries = {}
    for name in ("serial, 2 local processes", "dask, local cluster of 2 workers"):
        target = work / "pipeline-out"
        shutil.rmtree(target, ignore_errors=True)
        sim = run_measured(["simulate", "--assumptions", str(pipeline), "--scenarios", str(scenarios), "--quiet",
                            "--out", str(target), *ENGINES[name]], ROOT)
        print(f"simulate  {name:34s} {_fmt(sim)}")
        disk = sum(p.stat().st_size for p in (target / "simulation").rglob("*") if p.is_file()) / 2**30
        summaries[name] = (target / "simulation" / "summary.csv").read_bytes()
        out[name] = {"simulate": sim, "disk_gib": disk}
    print(f"          scenario files {disk:.1f} GiB; summary.csv identical: {len(set(summaries.values())) == 1}")
    out["identical"] = len(set(summaries.values())) == 1
    name = "dask, local cluster of 2 workers"
    opt = run_measured(["optimize", "--assumptions", str(pipeline), "--scenarios", str(scenarios),
                        "--out", str(target), *ENGINES[name]], ROOT)
    print(f"optimize  {name:34s} {_fmt(opt)}")
    metrics = json.loads((target / "portfolio" / "metrics.json").read_text())
    held = sum(v["selected"] for v in metrics["go_no_go"]["projects"].values())
    sample = metrics.get("optimization_sample") or {}
    print(f"          {held} of {projects} projects held; expected PV {metrics['expected_pv_meur']:,.1f}, CVaR "
          f"{metrics['cvar_meur']:,.1f} on all scenarios, {sample.get('solve_sample', {}).get('cvar_meur', float('nan')):,.1f} "
          f"on the solve sample (limit {metrics['cvar_limit_meur']:,.0f}; met on all: {sample.get('cvar_limit_met')})")
    out["optimize"] = {"run": opt, "projects_held": held, "optimization_sample": sample}
    shutil.rmtree(target, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["overhead", "million", "pipeline", "all"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenarios", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="fundmodel-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"fundmodel scale benchmarks; {os.cpu_count()} CPUs, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM; scratch {work}")
    results = {}
    try:
        if args.what in ("overhead", "all"):
            results["overhead"] = bench_overhead(work, args.repeats)
        if args.what in ("million", "all"):
            results["million"] = bench_million(work, args.scenarios)
        if args.what in ("pipeline", "all"):
            results["pipeline"] = bench_pipeline(work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
