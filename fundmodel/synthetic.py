"""Synthetic project pipelines for scale tests: many fictional, plausible, valid mine projects.

A fund screens 100-200 candidate mines; the shipped assumptions hold a dozen.
:func:`generate_pipeline` writes a complete assumption directory with ``n`` generated
projects so that the simulation, the optimiser and the memos can be exercised at that scale.

Method
------
Every generated project is a *template* of the source directory (one of its
``projects/*.yaml``) with seeded random perturbations. The templates are dealt out in
shuffled rounds (each round a random permutation of all templates), so every template,
and hence every material of the source, appears once ``n`` reaches the number of
templates, and the mix stays balanced. Randomness comes from
``numpy.random.SeedSequence(seed)``: one generator deals the templates, and project ``i``
draws its perturbations from the ``i``-th spawned child sequence. Project ``i`` therefore
depends only on ``(source, seed, i)``: the first 20 projects of a 200-project pipeline
are those of a 20-project one.

What is varied, and how (``LN(s)`` is a lognormal factor ``exp(N(0, s^2))``, clipped):

==========================  ==============================================================
item                        rule
==========================  ==============================================================
host country                80 %: uniform among the countries of ``countries.yaml`` where
                            the primary material plausibly occurs (a built-in list, plus the
                            template's country); 20 %: uniform among all of them
stage                       50 %: the template's; else exploration 30 %, feasibility 35 %,
                            construction 20 %, production 15 %
size ``s``                  ``ore_mtpa`` x LN(0.35) in [0.4, 2.5]
grade                       x LN(0.25) in [0.5, 2] (at most 100 %); recovery and
                            payability +- N(0, 0.03), in [0.3, 0.98] and [0.3, 1]
reserves / life             ``mine_life_years`` x LN(0.3) in [0.5, 2], 5-50 years; a mine
                            turned producing keeps 40-90 % of it (the rest is mined out)
capex                       build capex x ``s``^0.7 (economies of scale) x LN(0.25) in
                            [0.5, 2]; sustaining capex alike; closure x ``s``^0.6
opex                        per tonne of ore x ``s``^-0.1 x LN(0.2) in [0.6, 1.6]; fixed x
                            ``s``^0.5 x LN(0.2) in [0.6, 1.6]; their uncertainties x LN(0.2)
timing                      exploration, construction and ramp-up triangles each x LN(0.25)
                            in [0.6, 1.7]; development probability of an exploration
                            project: the template's +- 0.1 (else U(0.3, 0.6)), in [0.2, 0.8]
capex overrun               mean x LN(0.3) in [0.5, 2] (kept when infeasible with the
                            template's tail probability and shift)
debt                        exploration: none; otherwise U(0.25, 0.65) of the initial capex;
                            tenor the template's +- 2 years (5-20); grace covers construction
                            and half the ramp-up; interest the template's plus the difference
                            of the median rates of the source projects in the new and the
                            template's country, + N(0, 0.5 pp), in [4 %, 20 %]
fiscal                      income tax: the median of the source projects in the new
                            country; royalty: that of a source project with the same country
                            and primary material, else the template's (royalties are mostly
                            material-specific)
EU offtake share            the template's + U(-0.15, 0.15), in [0.05, 0.95]
entry (not producing)       discount 20 / 15 / 10 % (exploration / feasibility / construction,
                            as the shipped projects); a primary round of the template's size
                            x ``s``^0.7 when the template raises one at the same stage, else
                            a secondary stake
other                       depreciation years x LN(0.15) in [0.7, 1.4] (5-25); debt
                            distress-cost share +- U(0.05) in [0.05, 0.3]; completion
                            guarantee and sponsor support x ``s``^0.7 (unlimited / none as the
                            template's); standby share the template's; overrun-delay correlation
                            +- U(0.1) in [0, 0.9]; product factors and the overrun tail
                            probability and shift are the template's
==========================  ==============================================================

Stage changes keep every stage rule of the schema: an exploration project gets exploration
and construction phases, studies costs (2-6 % of capex unless the template has them) and a
development probability below one; feasibility 1-3 % studies; a construction project has
50-100 % of the build (capex and construction time) left; a producing mine gets no
construction, an expansion capex of 0-15 % of the build (a producing template's own
expansion capex, scaled) and an entry price (``acquisition_musd``) of 3-6 x its EBITDA at
long-run prices less its debt, at least 15 % of the build capex. The build capex of a
producing template is taken as the larger of its initial capex and 70 % of its entry price;
templates without an exploration or construction phase get {2, 4, 7} and {2, 3, 4.5}
years, those without a ramp-up {1, 1.5, 3} (min, mode, max). A project-level permitting
time is kept only in the template's own country (elsewhere the country's default applies).

The projects are **fictional**: ids ``syn_<nnn>_<country>_<material>``, names
``Synthetic <nnn> (<material>, <COUNTRY>)``, and a ``sources.synthetic`` entry naming the
command, seed and template in every file. They are meant for scale and robustness tests,
not as investment cases.

Non-project files
-----------------
``fund.yaml``, ``markets.yaml``, ``countries.yaml``, ``instruments.yaml``, ``stress.yaml``
and ``calibration.yaml`` are copied byte for byte when present. A mapping keyed only by
source project ids (e.g. ``fund.yaml: portfolio.min_ticket_by_project_meur``) or a list made
only of source project ids is *remapped*: each entry of a template is given to every
generated project drawn from that template (entries of templates no project was drawn from
are dropped). A file changed that way is rewritten (comments are lost) with a header saying
what changed and a note in its top-level ``source``. The new directory is validated with
:func:`fundmodel.assumptions.load_assumptions` before it is published.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .assumptions import load_assumptions
from .assumptions.model import Assumptions
from .assumptions.schema import Project, Stage, Triangular
from .errors import AssumptionError, Issue, UsageError
from .io import staged_directory

__all__ = ["COPIED_FILES", "PLAUSIBLE_COUNTRIES", "generate_pipeline"]

#: Non-project files copied from the source directory (when present).
COPIED_FILES = ("fund.yaml", "markets.yaml", "countries.yaml", "instruments.yaml", "stress.yaml",
                "calibration.yaml")

#: Countries (ISO 3166 alpha-2, as in the shipped ``countries.yaml``) with known deposits or
#: production of a material; only those defined in ``countries.yaml`` are used. Illustrative.
PLAUSIBLE_COUNTRIES: dict[str, tuple[str, ...]] = {
    "ndpr": ("AU", "BR", "CA", "MN", "KZ", "CL"),
    "lithium": ("CL", "AU", "CA", "BR", "GH", "CD", "PE"),
    "cobalt": ("CD", "AU", "CA", "BR"),
    "graphite": ("CA", "BR", "AU"),
    "tungsten": ("KZ", "CA", "AU", "UZ", "MN", "PE", "BR"),
    "copper": ("CL", "PE", "CD", "MN", "UZ", "KZ", "AU", "CA", "BR"),
    "nickel": ("AU", "CA", "BR"),
    "gallium": ("KZ", "AU", "BR", "CA", "GH"),
}

_STAGE_WEIGHTS = {Stage.EXPLORATION: 0.30, Stage.FEASIBILITY: 0.35, Stage.CONSTRUCTION: 0.20,
                  Stage.PRODUCTION: 0.15}
_KEEP_STAGE = 0.5  # probability of keeping the template's stage
#: discount to the pre-money value by stage, as in the shipped projects' entry terms
_ENTRY_DISCOUNT = {Stage.EXPLORATION: 0.20, Stage.FEASIBILITY: 0.15, Stage.CONSTRUCTION: 0.10}
_PLAUSIBLE_COUNTRY = 0.8  # probability of drawing the country among the plausible ones
_DEFAULT_EXPLORATION = (2.0, 4.0, 7.0)
_DEFAULT_CONSTRUCTION = (2.0, 3.0, 4.5)
_DEFAULT_RAMPUP = (1.0, 1.5, 3.0)
_COMMAND = "fundmodel generate-pipeline"
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when available: same text, 6x faster
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# ----------------------------------------------------------------------------- helpers
def _sig(x: float, digits: int = 3) -> float:
    """``x`` rounded to ``digits`` significant digits, as a plain float."""
    return float(f"{float(x):.{digits}g}")


def _lognormal(rng: np.random.Generator, sigma: float, lo: float, hi: float) -> float:
    """A lognormal factor ``exp(N(0, sigma^2))`` clipped to ``[lo, hi]``."""
    return float(np.clip(math.exp(rng.normal(0.0, sigma)), lo, hi))


def _tri(values: tuple[float, float, float] | Triangular, factor: float = 1.0) -> dict[str, float]:
    """A triangular duration scaled by ``factor``, rounded to 0.1 year (order is kept)."""
    lo, mode, hi = ((values.min, values.mode, values.max) if isinstance(values, Triangular) else values)
    return {"min": round(lo * factor, 1), "mode": round(mode * factor, 1), "max": round(hi * factor, 1)}


def _slug(text: str) -> str:
    """Lower-case ``text`` reduced to the characters a project id may hold."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).lower()).strip("_") or "x"


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _steady_ebitda_musd(a: Assumptions, products: dict[str, dict], ore_mtpa: float, unit_opex: float,
                        fixed_opex: float, royalty: float) -> float:
    """EBITDA per year at nameplate and long-run prices (real USD m)."""
    revenue = 0.0
    for material, p in products.items():
        price = a.markets.materials[material].long_run_usd_per_t
        revenue += (ore_mtpa * p["grade_pct"] / 100.0 * p["product_factor"] * p["recovery"]
                    * p["payability"] * price)  # Mt x t/t x USD/t = USD m
    return revenue * (1.0 - royalty) - ore_mtpa * unit_opex - fixed_opex


# ----------------------------------------------------------------------------- one project
def _country_tables(a: Assumptions) -> tuple[dict[str, float], dict[str, float], dict[tuple[str, str], float]]:
    """Median tax and interest rate per country and royalty per (country, primary material)."""
    tax: dict[str, list[float]] = {}
    interest: dict[str, list[float]] = {}
    royalty: dict[tuple[str, str], list[float]] = {}
    for p in a.projects.values():
        tax.setdefault(p.country, []).append(p.fiscal.tax_rate)
        interest.setdefault(p.country, []).append(p.debt.interest_rate)
        royalty.setdefault((p.country, p.materials[0]), []).append(p.fiscal.royalty_rate)
    return ({c: _median(v) for c, v in tax.items()}, {c: _median(v) for c, v in interest.items()},
            {k: _median(v) for k, v in royalty.items()})


def _draw_country(rng: np.random.Generator, template: Project, countries: list[str]) -> str:
    plausible = set(PLAUSIBLE_COUNTRIES.get(template.materials[0], ())) | {template.country}
    candidates = [c for c in countries if c in plausible]
    if rng.random() >= _PLAUSIBLE_COUNTRY or not candidates:
        candidates = countries
    return candidates[int(rng.integers(len(candidates)))]


def _draw_stage(rng: np.random.Generator, template: Project) -> Stage:
    if rng.random() < _KEEP_STAGE:
        return template.stage
    stages = list(_STAGE_WEIGHTS)
    return stages[int(rng.choice(len(stages), p=list(_STAGE_WEIGHTS.values())))]


def _generate_project(a: Assumptions, template: Project, rng: np.random.Generator, pid: str, number: str,
                      country: str, stage: Stage, seed: int,
                      tables: tuple[dict[str, float], dict[str, float], dict[tuple[str, str], float]]) -> dict:
    """The YAML mapping of one generated project (plain types, schema key order)."""
    from .schedule import overrun_law  # local, as in the loader

    tax_by_country, interest_by_country, royalty_by_country_material = tables
    tp, ops, sched, capex = template, template.operations, template.schedule, template.capex
    primary = tp.materials[0]

    # --- size, ore body and operations
    size = _lognormal(rng, 0.35, 0.4, 2.5)
    products: dict[str, dict] = {}
    for material, prod in tp.products.items():
        grade = min(100.0, prod.grade_pct * _lognormal(rng, 0.25, 0.5, 2.0))
        products[material] = {
            "grade_pct": _sig(grade),
            "product_factor": float(prod.product_factor),
            "recovery": round(float(np.clip(prod.recovery + rng.normal(0.0, 0.03), 0.3, 0.98)), 3),
            "payability": round(float(np.clip(prod.payability + rng.normal(0.0, 0.03), 0.3, 1.0)), 3),
        }
    ore_mtpa = _sig(ops.ore_mtpa * size)
    life = ops.mine_life_years * _lognormal(rng, 0.3, 0.5, 2.0)
    remaining = float(rng.uniform(0.4, 0.9))  # share of the reserve left, if the mine is producing
    if stage is Stage.PRODUCTION and tp.stage is not Stage.PRODUCTION:
        life *= remaining
    life = round(float(np.clip(life, 5.0, 50.0)), 1)
    unit_opex = _sig(ops.opex_usd_per_t_ore * size ** -0.1 * _lognormal(rng, 0.2, 0.6, 1.6))
    fixed_opex = _sig(ops.fixed_opex_musd_per_year * size ** 0.5 * _lognormal(rng, 0.2, 0.6, 1.6))
    operations = {
        "ore_mtpa": ore_mtpa,
        "mine_life_years": life,
        "opex_usd_per_t_ore": unit_opex,
        "fixed_opex_musd_per_year": fixed_opex,
        "opex_uncertainty_sigma": round(float(np.clip(ops.opex_uncertainty_sigma * _lognormal(rng, 0.2, 0.6, 1.6),
                                                      0.05, 0.4)), 3),
        "recovery_uncertainty_sd": round(float(np.clip(ops.recovery_uncertainty_sd * _lognormal(rng, 0.2, 0.6, 1.6),
                                                       0.005, 0.1)), 3),
    }

    # --- capex (build = the whole initial capex of a new mine, before the stage adjustments)
    build = capex.initial_musd
    if tp.stage is Stage.PRODUCTION:
        build = max(capex.initial_musd, 0.7 * capex.acquisition_musd)
    cost_noise = _lognormal(rng, 0.25, 0.5, 2.0)
    scale = size ** 0.7 * cost_noise
    build *= scale
    left = float(rng.uniform(0.5, 1.0))  # share of the build left, if it is under construction
    if stage is Stage.PRODUCTION:
        if tp.stage is Stage.PRODUCTION:
            initial = capex.initial_musd * scale
        else:
            initial = build * float(rng.uniform(0.0, 0.15))
    elif stage is Stage.CONSTRUCTION and tp.stage is not Stage.CONSTRUCTION:
        initial = build * left
    else:
        initial = build
    initial = _sig(initial)
    if stage is Stage.EXPLORATION:
        studies = (capex.studies_musd * scale if capex.studies_musd > 0 and tp.stage is Stage.EXPLORATION
                   else initial * float(rng.uniform(0.02, 0.06)))
    elif stage is Stage.FEASIBILITY:
        studies = (capex.studies_musd * scale if capex.studies_musd > 0 and tp.stage in (Stage.EXPLORATION,
                                                                                         Stage.FEASIBILITY)
                   else initial * float(rng.uniform(0.01, 0.03)))
    else:
        studies = 0.0
    overrun_mean = round(float(np.clip(capex.overrun_mean * _lognormal(rng, 0.3, 0.5, 2.0), 0.03, 1.0)), 3)
    try:
        overrun_law(capex.overrun_prob_over, capex.overrun_prob_ge_100pct, -capex.overrun_shift,
                    capex.overrun_tail_index, mean=overrun_mean)
    except ValueError:
        overrun_mean = float(capex.overrun_mean)

    # --- schedule
    f_expl, f_constr, f_ramp = (_lognormal(rng, 0.25, 0.6, 1.7) for _ in range(3))
    construction_tri = sched.construction_years or _DEFAULT_CONSTRUCTION
    rampup_tri = sched.rampup_years if sched.rampup_years.max > 0 else _DEFAULT_RAMPUP
    if stage is Stage.CONSTRUCTION and tp.stage is not Stage.CONSTRUCTION:
        f_constr *= left
    schedule: dict[str, Any] = {}
    if stage is Stage.EXPLORATION:
        schedule["exploration_years"] = _tri(sched.exploration_years or _DEFAULT_EXPLORATION, f_expl)
    if stage in (Stage.EXPLORATION, Stage.FEASIBILITY) and sched.permitting_years is not None \
            and country == tp.country:
        schedule["permitting_years"] = _tri(sched.permitting_years)
    if stage is Stage.PRODUCTION:
        schedule["rampup_years"] = {"min": 0.0, "mode": 0.0, "max": 0.0}
    else:
        schedule["construction_years"] = _tri(construction_tri, f_constr)
        schedule["rampup_years"] = _tri(rampup_tri, f_ramp)
        if sched.rampup_series is not None:  # the template's flowsheet, hence its ramp-up record
            schedule["rampup_series"] = int(sched.rampup_series)
    dev_draw = float(rng.uniform(-0.1, 0.1))
    if stage is Stage.EXPLORATION:
        if tp.stage is Stage.EXPLORATION:
            dev = tp.schedule.development_probability + dev_draw
        else:
            dev = 0.45 + 1.5 * dev_draw  # U(0.3, 0.6)
        schedule["development_probability"] = round(float(np.clip(dev, 0.2, 0.8)), 2)

    # --- fiscal terms of the host country
    tax = tax_by_country.get(country)
    tax = float(tp.fiscal.tax_rate) if tax is None or country == tp.country else tax
    royalty = royalty_by_country_material.get((country, primary))
    royalty = float(tp.fiscal.royalty_rate) if royalty is None or country == tp.country else royalty
    fiscal = {"royalty_rate": round(royalty, 4), "tax_rate": round(tax, 4)}

    # --- debt
    debt_share = float(rng.uniform(0.25, 0.65))
    amount = 0.0 if stage is Stage.EXPLORATION else min(_sig(initial * debt_share), initial)
    shift = 0.0
    if country != tp.country and country in interest_by_country and tp.country in interest_by_country:
        shift = interest_by_country[country] - interest_by_country[tp.country]
    interest = round(float(np.clip(tp.debt.interest_rate + shift + rng.normal(0.0, 0.005), 0.04, 0.2)), 4)
    tenor = int(np.clip(tp.debt.tenor_years + int(rng.integers(-2, 3)), 5, 20))
    if stage is Stage.PRODUCTION:
        grace = int(rng.integers(0, 3))
    else:
        grace = int(round(schedule["construction_years"]["mode"] + 0.5 * schedule["rampup_years"]["mode"]))
    grace = int(np.clip(grace, 0 if stage is Stage.PRODUCTION else 1, tenor - 3))
    support = tp.debt.sponsor_support_musd
    sponsor_support = _sig(support * size ** 0.7) if amount > 0 and support is not None else None
    guarantee = tp.debt.completion_guarantee_musd
    debt = {
        "amount_musd": amount,
        "interest_rate": interest,
        "tenor_years": tenor,
        "grace_years": grace,
        "reserve_months": float(tp.debt.reserve_months),
        "completion_guarantee_musd": None if guarantee is None else _sig(guarantee * size ** 0.7),
        "standby_share": float(tp.debt.standby_share),
        "distress_cost_share": round(float(np.clip(tp.debt.distress_cost_share + rng.uniform(-0.05, 0.05),
                                                   0.05, 0.3)), 3),
        "sponsor_support_musd": sponsor_support,
    }

    # --- entry price of a producing mine: EV/EBITDA multiple less debt, floored
    multiple = float(rng.uniform(3.0, 6.0))
    capex_out: dict[str, Any] = {"initial_musd": initial}
    if stage is Stage.PRODUCTION:
        ebitda = _steady_ebitda_musd(a, products, ore_mtpa, unit_opex, fixed_opex, royalty)
        acquisition = max(multiple * ebitda - amount, 0.15 * build, 10.0)
        capex_out["acquisition_musd"] = _sig(acquisition)
    capex_out.update({
        "studies_musd": _sig(studies),
        "sustaining_musd_per_year": _sig(capex.sustaining_musd_per_year * scale),
        "closure_musd": _sig(capex.closure_musd * size ** 0.6),
        "depreciation_years": int(np.clip(round(capex.depreciation_years * _lognormal(rng, 0.15, 0.7, 1.4)), 5, 25)),
        "overrun_prob_over": float(capex.overrun_prob_over),
        "overrun_mean": overrun_mean,
        "overrun_prob_ge_100pct": float(capex.overrun_prob_ge_100pct),
        "overrun_shift": float(capex.overrun_shift),
        "overrun_delay_correlation": round(float(np.clip(capex.overrun_delay_correlation
                                                         + rng.uniform(-0.1, 0.1), 0.0, 0.9)), 2),
    })

    # --- entry terms of a stake in a project not yet producing (the shipped convention: a
    # discount of 20 / 15 / 10 % by stage, a primary round where the template raises one)
    entry = None
    if stage is not Stage.PRODUCTION:
        discount = _ENTRY_DISCOUNT[stage]
        if tp.entry is not None and tp.entry.kind == "primary" and stage is tp.stage:
            entry = {"kind": "primary", "discount": discount,
                     "raise_musd": _sig(max(tp.entry.raise_musd * scale, 1.0)),
                     "source": f"Synthetic: {tp.id}'s primary round scaled with the project"}
        else:
            entry = {"kind": "secondary", "discount": discount,
                     "source": "Synthetic: secondary stake at the shipped discount for the stage"}

    eu_share = round(float(np.clip(tp.offtake.eu_share + rng.uniform(-0.15, 0.15), 0.05, 0.95)), 2)
    sources = {
        "synthetic": (f"Synthetic, fictional project generated by {_COMMAND} (seed {seed}, template "
                      f"{tp.id}): the template's figures with seeded random perturbations "
                      "(fundmodel.synthetic); not data of any real mine."),
        "template": f"{tp.id}: {tp.name}",
    }
    for key, text in tp.sources.items():
        sources[f"template_{key}"] = f"{tp.id} (before perturbation): {text}"
    return {
        "id": pid,
        "name": f"Synthetic {number} ({primary}, {country})",
        "country": country,
        "stage": stage.value,
        "products": products,
        "operations": operations,
        "schedule": schedule,
        "capex": capex_out,
        "fiscal": fiscal,
        "debt": debt,
        "offtake": {"eu_share": eu_share},
        **({"entry": entry} if entry is not None else {}),
        "sources": sources,
    }


# ----------------------------------------------------------------------------- cross-references
def _remap(node: Any, by_template: dict[str, list[str]], template_ids: set[str], path: str,
           changed: list[str]) -> Any:
    """Replace per-project mappings and lists of source project ids by the generated projects."""
    if isinstance(node, dict):
        if node and all(isinstance(k, str) and k in template_ids for k in node):
            changed.append(path)
            return {new: node[tid] for tid in node for new in by_template.get(tid, [])}
        return {k: _remap(v, by_template, template_ids, f"{path}.{k}" if path else str(k), changed)
                for k, v in node.items()}
    if isinstance(node, list):
        if node and all(isinstance(v, str) and v in template_ids for v in node):
            changed.append(path)
            return [new for tid in node for new in by_template.get(tid, [])]
        return [_remap(v, by_template, template_ids, f"{path}[{i}]", changed) for i, v in enumerate(node)]
    return node


def _stale_refs(node: Any, stale: set[str], path: str = "") -> list[tuple[str, str]]:
    """``(key path, id)`` of every remaining reference to a project that is not generated."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(k, str) and k in stale:
                found.append((sub, k))
            found += _stale_refs(v, stale, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _stale_refs(v, stale, f"{path}[{i}]")
    elif isinstance(node, str) and node in stale:
        found.append((path, node))
    return found


def _copy_file(src: Path, dst: Path, by_template: dict[str, list[str]], template_ids: set[str],
               generated: set[str], seed: int) -> None:
    """Copy one non-project file, remapping its per-project entries (see the module docstring)."""
    data = yaml.load(src.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a safe loader
    changed: list[str] = []
    new = _remap(data, by_template, template_ids, "", changed)
    stale = _stale_refs(new, template_ids - generated)
    if stale:
        raise AssumptionError([Issue(src.name, key, f"refers to project '{pid}' of the source directory, which "
                                     "the synthetic pipeline does not contain (remap it by hand)", pid, False)
                               for key, pid in stale])
    if not changed:
        shutil.copyfile(src, dst)
        return
    note = (f"Per-project entries ({', '.join(changed)}) remapped to the synthetic projects by "
            f"{_COMMAND} (seed {seed}): each generated project takes its template's entry.")
    if isinstance(new, dict) and isinstance(new.get("source"), str):
        new["source"] = f"{new['source']} {note}"
    header = (f"# {src.name}: copied from {src.parent.name}/{src.name} by {_COMMAND} (seed {seed}).\n"
              f"# {note}\n# Comments of the original are not kept.\n")
    dst.write_text(header + _dump(new), encoding="utf-8")


def _dump(data: Any) -> str:
    """``yaml.safe_dump(data, sort_keys=False)``, block style, long lines kept whole."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=1000)


# ----------------------------------------------------------------------------- entry point
def generate_pipeline(source_dir: str | Path, out_dir: str | Path, n_projects: int, *, seed: int = 0) -> list[str]:
    """Write an assumption directory with ``n_projects`` synthetic projects drawn from templates.

    Parameters
    ----------
    source_dir : str or Path
        A valid assumption directory (e.g. the shipped ``assumptions/``). Its projects are the
        templates; its ``fund.yaml``, ``markets.yaml``, ``countries.yaml`` and, when present,
        ``instruments.yaml``, ``stress.yaml`` and ``calibration.yaml`` are copied.
    out_dir : str or Path
        Directory to create. It must not exist or be an empty directory: an existing,
        non-empty directory is refused (there is no overwrite option; delete it first).
    n_projects : int
        Number of projects to generate, at least 1.
    seed : int, default 0
        Seed (>= 0) of ``numpy.random.SeedSequence``; the same source, ``n_projects`` and
        seed give byte-identical files.

    Returns
    -------
    list of str
        The generated project ids, in generation order (``syn_001_<country>_<material>``, ...).

    Raises
    ------
    UsageError
        When ``n_projects < 1``, ``seed < 0`` or ``out_dir`` exists and is not an empty directory.
    AssumptionError
        When ``source_dir`` is not a valid assumption directory, a copied file refers to a
        source project in a way that cannot be remapped, or (a bug) the generated set does not
        validate; nothing is written then.

    Notes
    -----
    The directory is written into a staging folder beside ``out_dir`` (see
    :func:`fundmodel.io.staged_directory`), validated with
    :func:`fundmodel.assumptions.load_assumptions` and only then renamed into place, so a
    failure leaves no half-written or invalid directory. The method, the perturbations and
    their ranges are described in the module docstring.

    Examples
    --------
    >>> ids = generate_pipeline("assumptions", "/tmp/pipeline200", 200, seed=1)  # doctest: +SKIP
    >>> ids[:2]                                                                   # doctest: +SKIP
    ['syn_001_au_copper', 'syn_002_kz_copper']
    """
    if isinstance(n_projects, bool) or not isinstance(n_projects, (int, np.integer)) or n_projects < 1:
        raise UsageError(f"n_projects: must be a whole number >= 1, got {n_projects!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"seed: must be a whole number >= 0, got {seed!r}")
    n_projects, seed = int(n_projects), int(seed)
    source, target = Path(source_dir), Path(out_dir)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        what = "is not a directory" if not target.is_dir() else "is not empty"
        raise UsageError(f"{target}: output directory {what}; give a new or empty directory "
                         "(generated pipelines are never written over existing files)")
    a = load_assumptions(source)
    templates = list(a.projects.values())  # sorted by id
    countries = list(a.countries.countries)

    ss = np.random.SeedSequence(seed)
    dealer = np.random.Generator(np.random.PCG64(ss))
    rounds = -(-n_projects // len(templates))
    order = np.concatenate([dealer.permutation(len(templates)) for _ in range(rounds)])[:n_projects]
    children = ss.spawn(n_projects)
    width = max(3, len(str(n_projects)))
    tables = _country_tables(a)

    files: dict[str, dict] = {}
    template_of: dict[str, str] = {}
    for i, (k, child) in enumerate(zip(order, children), start=1):
        template = templates[int(k)]
        rng = np.random.Generator(np.random.PCG64(child))
        country = _draw_country(rng, template, countries)
        stage = _draw_stage(rng, template)
        number = f"{i:0{width}d}"
        pid = f"syn_{number}_{_slug(country)}_{_slug(template.materials[0])}"
        files[pid] = _generate_project(a, template, rng, pid, number, country, stage, seed, tables)
        template_of[pid] = template.id

    by_template: dict[str, list[str]] = {}
    for pid, tid in template_of.items():
        by_template.setdefault(tid, []).append(pid)
    with staged_directory(target) as stage_dir:
        for name in COPIED_FILES:
            if (source / name).is_file():
                _copy_file(source / name, stage_dir / name, by_template, set(a.projects), set(files), seed)
        (stage_dir / "projects").mkdir()
        for pid, data in files.items():
            header = (f"# {pid}: synthetic, fictional project generated by {_COMMAND} "
                      f"(seed {seed}, template {template_of[pid]}). Not a real mine.\n")
            (stage_dir / "projects" / f"{pid}.yaml").write_text(header + _dump(data), encoding="utf-8")
        load_assumptions(stage_dir)  # never publish an invalid set
    return list(files)
