"""Speed figures of the portfolio optimiser (printed, not asserted).

Run from the repository root::

    python benchmarks/bench_optimize.py              # all figures (~5 minutes on 2 cores)
    python benchmarks/bench_optimize.py --repeats 1  # one run of each

Figures, on the default assumptions at 20,000 scenarios (the simulation is run once and
its scenario files re-used for 1 and 2):

1. time to solve the fund's allocation (``optimize_fund``: the CVaR-capped LP over
   20,000 scenarios x the default decision variables), after the problem is built;
2. the 15-point frontiers (expected PV vs CVaR and weighted supply vs CVaR, sharing the
   min-CVaR point, warm-started), and the PV frontier alone solved cold (every point a fresh
   ``linprog``, as before warm starts) for comparison;
3. whole ``fundmodel optimize`` wall time in a fresh interpreter, simulation, stresses and
   writing included, new output directory each time.

Machines are shared and noisy: each timing is the median of several repeats.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenarios", type=int, default=20_000)
    parser.add_argument("--skip-cold", action="store_true", help="skip the cold-frontier comparison")
    args = parser.parse_args()

    from fundmodel.assumptions import load_assumptions
    from fundmodel.portfolio import efficient_frontier, efficient_frontiers
    from fundmodel.portfolio.fund import build_fund_problem, frontier_job, optimize_fund
    from fundmodel.pipeline import simulate_to_directory
    from fundmodel.simulation import RunSettings, load_scenarios

    a = load_assumptions(ROOT / "assumptions")
    with tempfile.TemporaryDirectory() as tmp:
        simulate_to_directory(a, RunSettings.from_assumptions(a, scenarios=args.scenarios, risk_attribution=False),
                              tmp)
        problem = build_fund_problem(a, load_scenarios(Path(tmp) / "simulation" / "scenarios"))
        n_s, n_x = problem.values_meur.shape
        print(f"problem: {n_s:,} scenarios x {n_x} decision variables")

        t, runs = median_time(lambda: optimize_fund(a, problem), args.repeats)
        print(f"1. optimize_fund (CVaR-capped LP): median {t:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in runs)})")

        job = frontier_job(a, problem, 15)
        t, runs = median_time(lambda: efficient_frontiers(**job), args.repeats)
        print(f"2. 15-point PV and supply frontiers, warm-started: median {t:.2f} s  "
              f"(runs: {', '.join(f'{x:.2f}' for x in runs)})")
        pv_job = {k: v for k, v in job.items() if k != "merits"}
        t, runs = median_time(lambda: efficient_frontier(**pv_job, warm_start=True), args.repeats)
        print(f"   15-point PV frontier alone, warm-started: median {t:.2f} s  "
              f"(runs: {', '.join(f'{x:.2f}' for x in runs)})")
        if not args.skip_cold:
            t, runs = median_time(lambda: efficient_frontier(**pv_job, warm_start=False), 1)
            print(f"   15-point PV frontier alone, cold linprog per point: {t:.2f} s (one run)")

    def whole() -> None:
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "fundmodel.cli", "optimize", "--scenarios", str(args.scenarios),
                            "--out", out], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)

    t, runs = median_time(whole, args.repeats)
    print(f"3. fundmodel optimize (new simulation, 2 workers, stresses): median {t:.1f} s  "
          f"(runs: {', '.join(f'{x:.1f}' for x in runs)})")


if __name__ == "__main__":
    main()
