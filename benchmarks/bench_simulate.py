"""Speed figures of the Monte Carlo valuation (printed, not asserted).

Run from the repository root::

    python benchmarks/bench_simulate.py            # all figures (~3 minutes on 2 cores)
    python benchmarks/bench_simulate.py --quick    # engine and IRR only

Figures:

1. engine throughput: project x scenario x years per second of the cash-flow engine
   (``project_cash_flows`` + ``value_cash_flows`` without IRR) on one core, default portfolio;
2. vectorised equity IRR vs a ``numpy_financial.irr`` loop on the model's own equity flows
   (time per row, speed-up, largest difference);
3. wall time and peak memory (largest process) of ``fundmodel simulate`` at 20,000 and
   100,000 scenarios on the default assumptions, start-up included.

Machines are shared and noisy: each timing is the median of several repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def engine_and_irr(n: int, repeats: int) -> None:
    import numpy_financial as npf
    from threadpoolctl import threadpool_limits

    from fundmodel.assumptions import load_assumptions
    from fundmodel.finance import irr
    from fundmodel.sampling import ScenarioStreams
    from fundmodel.simulation import simulate_chunk
    from fundmodel.valuation import project_cash_flows, value_cash_flows

    threadpool_limits(1)
    a = load_assumptions(ROOT / "assumptions")
    chunk = simulate_chunk(a, ScenarioStreams(1, "sobol"), 0, n)
    n_years = a.fund.horizon_years

    def engine():
        for pid, pc in chunk.projects.items():
            flows = project_cash_flows(a.projects[pid], a.fund.inflation, chunk.market, pc.schedule, pc.politics)
            value_cash_flows(flows, chunk.market.fx_usd_per_eur, a.fund.discount_rate_nominal, with_irr=False)

    t = median_time(engine, repeats)
    volume = len(a.projects) * n * n_years
    print(f"engine: {len(a.projects)} projects x {n:,} scenarios x {n_years} years in {t:.3f} s (median of "
          f"{repeats}) = {volume / t / 1e6:.2f} million project-scenario-years per second on one core")

    rows = np.concatenate([pc.values.equity_cf_meur for pc in chunk.projects.values()])
    invested = rows[:, 0] < 0
    sample = rows[invested][:2000]
    t_vec = median_time(lambda: irr(sample), repeats)
    t_loop = median_time(lambda: [npf.irr(r) for r in sample], max(1, repeats // 2))
    ours, ref = irr(sample), np.array([npf.irr(r) for r in sample])
    both = ~np.isnan(ours) & ~np.isnan(ref)
    print(f"irr: {sample.shape[0]:,} equity cash-flow rows of the model: vectorised {t_vec / sample.shape[0] * 1e6:.1f} "
          f"us/row, numpy_financial loop {t_loop / sample.shape[0] * 1e6:.1f} us/row, speed-up {t_loop / t_vec:.0f}x; "
          f"max |difference| {np.max(np.abs(ours[both] - ref[both])):.1e}, "
          f"NaN agree on {int((np.isnan(ours) == np.isnan(ref)).sum())}/{sample.shape[0]} rows")


def run_cli(scenarios: int, repeats: int) -> None:
    times, peaks = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            probe = (
                "import resource, subprocess, sys, time\n"
                "t = time.perf_counter()\n"
                "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
                "dt = time.perf_counter() - t\n"
                "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
                "print(dt, peak, r.returncode)\n"
            )
            cmd = [sys.executable, "-c", probe, sys.executable, "-m", "fundmodel.cli", "simulate", "--scenarios",
                   str(scenarios), "--out", out, "--quiet"]
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=os.environ, check=True)
            dt, peak_kib, code = res.stdout.split()
            if code != "0":
                raise SystemExit(f"fundmodel simulate failed with exit code {code}")
            times.append(float(dt))
            peaks.append(int(peak_kib) / 1024)
    print(f"fundmodel simulate --scenarios {scenarios:,}: wall {statistics.median(times):.1f} s (median of {repeats}, "
          f"start-up and writing included), peak memory {max(peaks):,.0f} MiB in the largest process")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="engine and IRR only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores")
    engine_and_irr(8192, args.repeats)
    if not args.quick:
        run_cli(20_000, 3)
        run_cli(100_000, 1)


if __name__ == "__main__":
    main()
