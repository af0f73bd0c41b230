"""Print the simulated tables of docs/schedule.md (run: python docs/schedule_tables.py [assumptions]).

2^16 Latin-hypercube scenarios per project (seed 99), the shipped evidence of fund.yaml.
"""

from __future__ import annotations

import sys

import numpy as np

from fundmodel.assumptions import load_assumptions
from fundmodel.assumptions.schema import SamplingMethod, Stage
from fundmodel.sampling import ScenarioStreams
from fundmodel.schedule import SCHEDULE_DRAWS, draw_schedule, lead_time_years, schedule_parameters

N = 2**16


def main(directory: str = "assumptions") -> None:
    a = load_assumptions(directory)
    ev = a.fund.schedule_evidence
    streams = ScenarioStreams(99, SamplingMethod.LHS)
    draws, pooled = {}, []
    for pid, p in a.projects.items():
        u = streams.uniforms(f"schedule/{pid}", 0, N, len(SCHEDULE_DRAWS))
        draws[pid] = (p, u, draw_schedule(p, a.countries.countries[p.country].permitting_years, u, evidence=ev))

    print("### Overrun and delay by size class (targets vs simulated)\n")
    print("| class (project) | P(over budget) | E[R \\| R > 0] | P(R >= +100 %) | E[R] | E[delay] | P(late) |")
    print("|---|---|---|---|---|---|---|")
    for cls, pid in (("megaproject", "pe_copper"), ("standard", "kz_gallium")):
        oc, law = ev.overrun[cls], schedule_parameters(a.projects[pid], ev).overrun
        p, _, d = draws[pid]
        r = d.capex_multiplier - 1
        dl = d.construction_delay
        t_mc = f"{oc.mean_if_over:.3f}" if oc.mean_if_over is not None else f"({law.mean_if_over:.3f})"
        t_m = f"{oc.mean:.3f}" if oc.mean is not None else f"({law.mean:.3f})"
        print(f"| {cls} target | {oc.prob_over:.3f} | {t_mc} | {oc.prob_ge_100pct:.4f} | {t_m} | "
              f"{ev.delay.mean:.3f} | {ev.delay.prob_late:.3f} |")
        print(f"| {cls} simulated ({pid}) | {(r > 0).mean():.3f} | {r[r > 0].mean():.3f} | {(r >= 1).mean():.4f} | "
              f"{r.mean():.3f} | {dl.mean():.3f} | {(dl > 0).mean():.3f} |")

    print("\n### Per project (simulated)\n")
    print("| project | stage | class | series | E[R] | P(R > 0) | P(R >= 1) | E[delay] | E[financing wait] y "
          "| P99 wait y | P(below nameplate) | E[nameplate share] |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for pid, (p, u, d) in draws.items():
        par = schedule_parameters(p, ev)
        r = d.capex_multiplier - 1
        before = p.stage in (Stage.EXPLORATION, Stage.FEASIBILITY)
        wait = f"{d.financing_wait.mean():.2f} | {np.quantile(d.financing_wait, 0.99):.1f}" if before else "— | —"
        built = p.stage is not Stage.PRODUCTION
        print(f"| {pid} | {p.stage.value} | {par.size_class} | {par.rampup_series} | "
              + (f"{r.mean():.3f} | {(r > 0).mean():.3f} | {(r >= 1).mean():.4f} | {d.construction_delay.mean():.3f} | "
                 if built else "— | — | — | — | ")
              + f"{wait} | {(d.nameplate_share < 1).mean():.3f} | {d.nameplate_share.mean():.3f} |")

    lt = ev.lead_time
    k = 1 / (lt.mines + 1)
    print(f"\n### Discovery to first production, exploration projects (developed scenarios)\n")
    print("| project | P0.8 | P5 | P50 | P95 | P99.2 | mean | remaining (from today) mean |")
    print("|---|---|---|---|---|---|---|---|")
    for pid, (p, u, d) in draws.items():
        if p.stage is not Stage.EXPLORATION:
            continue
        disc = streams.uniforms(f"discovery/{pid}", 0, N, 1)[:, 0]
        t = lead_time_years(p, a.countries.countries[p.country].permitting_years, u, disc, ev)
        pooled.append(t)
        q = np.quantile(t, [k, 0.05, 0.5, 0.95, 1 - k])
        print(f"| {pid} | " + " | ".join(f"{x:.1f}" for x in q) + f" | {t.mean():.1f} | "
              f"{d.construction_end[d.developed].mean():.1f} |")
    t = np.concatenate(pooled)
    q = np.quantile(t, [k, 0.05, 0.5, 0.95, 1 - k])
    print("| pooled | " + " | ".join(f"{x:.1f}" for x in q) + f" | {t.mean():.1f} | |")
    print(f"| S&P Global ({lt.mines} mines) | {lt.min_years:.0f} (min) | | | | {lt.max_years:.0f} (max) | "
          f"{lt.mean_years} ({lt.recent_mean_years} for 2020-23) | |")


if __name__ == "__main__":
    main(*sys.argv[1:])
