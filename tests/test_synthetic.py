"""Synthetic project pipelines (fundmodel.synthetic): valid, varied, deterministic, atomic."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from conftest import slow_fixture
import yaml

from fundmodel import synthetic
from fundmodel.assumptions import load_assumptions
from fundmodel.errors import AssumptionError, Issue, UsageError
from fundmodel.synthetic import generate_pipeline

N = 200


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@slow_fixture(scope="module")
def pipeline(tmp_path_factory, shipped_assumptions_dir):
    """200 projects generated from the shipped assumptions (seed 0): (directory, ids, Assumptions)."""
    out = tmp_path_factory.mktemp("synthetic") / "pipeline"
    ids = generate_pipeline(shipped_assumptions_dir, out, N, seed=0)
    return out, ids, load_assumptions(out)


@pytest.mark.slow
def test_200_projects_load_with_distinct_ids(pipeline, shipped_assumptions_dir):
    out, ids, a = pipeline
    assert len(ids) == N and len(set(ids)) == N
    assert sorted(ids) == sorted(a.projects)
    assert sorted(p.name for p in (out / "projects").iterdir()) == sorted(f"{i}.yaml" for i in ids)
    for i, pid in enumerate(ids, start=1):
        p = a.projects[pid]
        assert re.fullmatch(rf"syn_{i:03d}_{p.country.lower()}_{p.materials[0]}", pid)
        assert p.name == f"Synthetic {i:03d} ({p.materials[0]}, {p.country})"
        assert "generate-pipeline" in p.sources["synthetic"] and "seed 0" in p.sources["synthetic"]
        assert f"template {p.sources['template'].split(':')[0]}" in p.sources["synthetic"]
    # the non-project files are copied byte for byte (the shipped ones refer to no project)
    for name in synthetic.COPIED_FILES:
        assert (out / name).read_bytes() == (shipped_assumptions_dir / name).read_bytes()
    # plain YAML types only: the files load with the plain safe loader
    text = (out / "projects" / f"{ids[0]}.yaml").read_text(encoding="utf-8")
    assert "!!" not in text and yaml.safe_load(text)["id"] == ids[0]


def test_variety(pipeline, shipped_assumptions_dir):
    _, ids, a = pipeline
    source = load_assumptions(shipped_assumptions_dir)
    projects = list(a.projects.values())
    assert len({p.country for p in projects}) >= 5
    assert {p.country for p in projects} <= set(a.countries.countries)
    assert {m for p in projects for m in p.materials} == {m for p in source.projects.values() for m in p.materials}
    assert {p.stage.value for p in projects} == {"exploration", "feasibility", "construction", "production"}
    # every template is used, and projects of one template actually differ
    by_template = defaultdict(list)
    for p in projects:
        by_template[p.sources["template"].split(":")[0]].append(p)
    assert set(by_template) == set(source.projects)

    def cv(values) -> float:
        v = np.asarray(values, dtype=float)
        return float(v.std() / v.mean())

    build = [p for p in projects if p.stage.value != "production"]
    assert cv([p.capex.initial_musd for p in build]) > 0.2
    for tid, group in by_template.items():
        assert cv([p.operations.ore_mtpa for p in group]) > 0.15, tid
        assert len({p.operations.mine_life_years for p in group}) > len(group) // 2, tid
    assert cv([p.operations.opex_usd_per_t_ore for p in projects]) > 0.2
    shares = [p.debt.amount_musd / p.capex.initial_musd for p in build if p.debt.amount_musd > 0]
    assert min(shares) < 0.35 and max(shares) > 0.55
    modes = [p.schedule.construction_years.mode for p in build]
    assert np.std(modes) > 0.3


@pytest.mark.slow
def test_same_seed_byte_identical_other_seed_differs(pipeline, tmp_path, shipped_assumptions_dir):
    out, ids, _ = pipeline
    again = generate_pipeline(shipped_assumptions_dir, tmp_path / "again", N, seed=0)
    assert again == ids
    assert _files(tmp_path / "again") == _files(out)
    # project i depends on (source, seed, i) only: a shorter pipeline is a prefix
    short = generate_pipeline(shipped_assumptions_dir, tmp_path / "short", 20, seed=0)
    assert short == ids[:20]
    assert all((tmp_path / "short" / "projects" / f"{i}.yaml").read_bytes()
               == (out / "projects" / f"{i}.yaml").read_bytes() for i in short)
    other = generate_pipeline(shipped_assumptions_dir, tmp_path / "other", 20, seed=1)
    assert other != short
    differ = [o for o, s in zip(other, short)
              if (tmp_path / "other" / "projects" / f"{o}.yaml").read_bytes()
              != (tmp_path / "short" / "projects" / f"{s}.yaml").read_bytes()]
    assert len(differ) == 20


@pytest.mark.slow
def test_small_simulation_is_finite(tmp_path, shipped_assumptions_dir):
    from fundmodel.simulation import RunSettings, simulate

    out = tmp_path / "p20"
    ids = generate_pipeline(shipped_assumptions_dir, out, 20, seed=7)
    a = load_assumptions(out)
    result = simulate(a, RunSettings.from_assumptions(a, scenarios=256, risk_attribution=False, workers=1))
    for pid in ids:
        for name in ("project_npv_meur", "equity_npv_meur"):
            values = result.scalars[pid][name]
            assert values.shape == (256,) and np.isfinite(values).all(), (pid, name)


@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_bad_n_refused(tmp_path, shipped_assumptions_dir, n):
    with pytest.raises(UsageError, match="n_projects"):
        generate_pipeline(shipped_assumptions_dir, tmp_path / "out", n)
    assert not (tmp_path / "out").exists()


def test_bad_seed_and_non_empty_out_dir_refused(tmp_path, shipped_assumptions_dir):
    with pytest.raises(UsageError, match="seed"):
        generate_pipeline(shipped_assumptions_dir, tmp_path / "out", 5, seed=-1)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        generate_pipeline(shipped_assumptions_dir, full, 5)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        generate_pipeline(shipped_assumptions_dir, tmp_path / "file", 5)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(generate_pipeline(shipped_assumptions_dir, empty, 3)) == 3  # an empty directory is fine
    load_assumptions(empty)


def test_invalid_result_is_never_published(tmp_path, shipped_assumptions_dir, monkeypatch):
    real = synthetic.load_assumptions

    def failing(directory):
        if Path(directory).name.startswith(".out.tmp-"):  # the staging folder
            raise AssumptionError([Issue("projects/x.yaml", "id", "injected failure")])
        return real(directory)

    monkeypatch.setattr(synthetic, "load_assumptions", failing)
    with pytest.raises(AssumptionError, match="injected failure"):
        generate_pipeline(shipped_assumptions_dir, tmp_path / "out", 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_per_project_tickets_are_remapped(assumptions_copy, tmp_path):
    fund = assumptions_copy / "fund.yaml"
    text = fund.read_text(encoding="utf-8").replace(
        "  go_no_go: false\n",
        "  go_no_go: true\n  min_ticket_meur: 10\n  min_ticket_by_project_meur: {kz_gallium: 20, mn_ree: 35}\n")
    fund.write_text(text, encoding="utf-8")
    load_assumptions(assumptions_copy)
    out = tmp_path / "out"
    ids = generate_pipeline(assumptions_copy, out, 30, seed=3)
    a = load_assumptions(out)
    tickets = a.fund.portfolio.min_ticket_by_project_meur
    expected = {pid: {"kz_gallium": 20.0, "mn_ree": 35.0}[p.sources["template"].split(":")[0]]
                for pid, p in a.projects.items() if p.sources["template"].split(":")[0] in ("kz_gallium", "mn_ree")}
    assert expected and tickets == expected
    assert set(tickets) <= set(ids)
    assert a.fund.portfolio.min_ticket_meur == 10 and a.fund.portfolio.go_no_go
    assert "portfolio.min_ticket_by_project_meur" in a.fund.source and "seed 3" in a.fund.source
    assert (out / "fund.yaml").read_text(encoding="utf-8").startswith("# fund.yaml: copied from")
    # files without project references are still copied byte for byte
    assert (out / "stress.yaml").read_bytes() == (assumptions_copy / "stress.yaml").read_bytes()


def test_unmappable_project_reference_is_refused(assumptions_copy, tmp_path):
    fund = assumptions_copy / "fund.yaml"
    fund.write_text(fund.read_text(encoding="utf-8").replace(
        "  go_no_go: false\n", "  go_no_go: true\n  min_ticket_by_project_meur: {kz_gallium: 20, elsewhere: 5}\n"),
        encoding="utf-8")
    with pytest.raises(AssumptionError, match="kz_gallium"):
        generate_pipeline(assumptions_copy, tmp_path / "out", 4, seed=0)
    assert not (tmp_path / "out").exists()


def test_cli_generate_pipeline_writes_a_valid_set_and_refuses_bad_input(tmp_path, shipped_assumptions_dir, capsys):
    from fundmodel.cli import main

    out = tmp_path / "pipeline"
    code = main(["generate-pipeline", "--assumptions", str(shipped_assumptions_dir), "--projects", "5", "--seed", "3",
                 "--out", str(out)])
    assert code == 0
    assert "5 synthetic projects" in capsys.readouterr().out
    assert len(load_assumptions(out).projects) == 5
    assert main(["validate", "--assumptions", str(out)]) == 0
    # an existing, non-empty folder is never written over; a bad count is refused
    assert main(["generate-pipeline", "--projects", "2", "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["generate-pipeline", "--projects", "0", "--out", str(tmp_path / "other")]) == 2
    assert not (tmp_path / "other").exists()
