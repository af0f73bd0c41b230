"""Wall time of the main job, ``fundmodel run``, on the default assumptions (printed, not asserted).

Run from the repository root::

    python benchmarks/bench_run.py                 # 3 runs at 20,000 scenarios (~4 minutes)
    python benchmarks/bench_run.py --repeats 1 --scenarios 5000

Each run is a fresh process (start-up included) writing into a new temporary folder, so no
step can reuse an earlier simulation. The step timings (simulate, optimise, memos) are the
lines ``fundmodel run`` prints on stderr. Target (issue 4): < 60 s on 2 cores at 20,000
scenarios. Machines are shared and noisy: medians of the repeats, and the memo share
measured within each run.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"^(simulate|optimize|memos): .*?([0-9.]+) s$", re.M)


def one_run(scenarios: int, workers: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "fundmodel.cli", "run", "--assumptions", str(ROOT / "assumptions"),
             "--scenarios", str(scenarios), "--workers", str(workers), "--out", out],
            capture_output=True, text=True, cwd=ROOT, check=False)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"fundmodel run failed ({proc.returncode}):\n{proc.stderr}")
        steps = {name: float(seconds) for name, seconds in STEP.findall(proc.stderr)}
        n_pdf = len(list((Path(out) / "memos").glob("*.pdf")))
    return {"wall": wall, **steps, "pdfs": n_pdf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    runs = [one_run(args.scenarios, args.workers) for _ in range(args.repeats)]
    for i, r in enumerate(runs, 1):
        print(f"run {i}: wall {r['wall']:.1f} s = simulate {r.get('simulate', float('nan')):.1f} + optimize "
              f"{r.get('optimize', float('nan')):.1f} + memos {r.get('memos', float('nan')):.1f} "
              f"({r['pdfs']} PDFs) + start-up/validation; memo share {r.get('memos', 0) / r['wall']:.0%}")
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall", "simulate", "optimize", "memos")}
    share = statistics.median(r["memos"] / r["wall"] for r in runs)
    print(f"fundmodel run, {args.scenarios:,} scenarios, {args.workers} workers, median of {len(runs)}: "
          f"{med['wall']:.1f} s wall (target < 60 s); simulate {med['simulate']:.1f} s, optimize "
          f"{med['optimize']:.1f} s, memos {med['memos']:.1f} s ({share:.0%} of the wall time rendering)")


if __name__ == "__main__":
    main()
