"""Reproducibility: same assumptions + seed => byte-identical results, whatever the chunking and workers.

Two runs of ``fundmodel simulate`` + ``fundmodel optimize`` (through :func:`fundmodel.cli.main`,
3 projects, 2,048 scenarios, risk attribution and tornado on the first 256) with the same
seed but different chunk sizes (2,048 vs 1,024 scenarios per chunk) and worker processes
(1 vs 2) must write byte-identical ``summary.csv``, ``tonnes.csv``, ``sensitivity.csv``,
``first_production.csv``, ``price_fan.csv``, ``metrics.json``, every scenario array, and
``allocation.csv``, ``frontier.csv``, ``stress.csv`` and the portfolio ``metrics.json``;
the memos rendered from them are identical HTML (same numbers). The manifests differ only
in ``created_utc`` (a timestamp), the recorded ``command``, ``execution`` (engine, workers) and ``settings.chunk_size``
(a memory knob recorded for provenance); everything else, including the SHA-256 of every
assumption file, the seed and the git commit, is equal, so a memo can be reproduced from
the repository and its manifest. A different seed changes the results.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import yaml

from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.memo import load_results
from fundmodel.memo.context import project_context
from fundmodel.memo.render import render_html

ROOT = Path(__file__).resolve().parent.parent
PROJECTS = ["mn_ree", "br_ree", "cd_cobalt"]
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: manifest fields that may differ between two runs with the same assumptions and seed
MANIFEST_VOLATILE = {"created_utc", "command", "execution"}


def _cli(argv: list[str]) -> None:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 0, err.getvalue()


def _edit(directory: Path, rel: str, change) -> None:
    path = directory / rel
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe loader
    change(data)
    path.write_text(yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _run(work: Path, out: Path, *, seed: int, chunk: int, workers: int, attribution: bool = True) -> None:
    common = ["--assumptions", str(work), "--scenarios", "2048", "--seed", str(seed), "--workers", str(workers),
              "--out", str(out)]
    _cli(["simulate", *common, "--chunk-size", str(chunk), "--quiet"] + ([] if attribution else ["--no-attribution"]))
    if attribution:
        _cli(["optimize", *common])  # reuses the simulation just written


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != "manifest.json" and not p.name.startswith(".")}


def _memo_html(work: Path, out: Path, pid: str) -> str:
    results = load_results(out)
    html = render_html("project.html", project_context(load_assumptions(work), results, pid))
    return html.replace(results.manifest["created_utc"][:10], "DATE")


@pytest.mark.slow
def test_same_seed_is_byte_identical_across_chunks_and_workers_and_another_seed_differs(tmp_path, capsys):
    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    for path in (work / "projects").glob("*.yaml"):
        if path.stem not in PROJECTS:
            path.unlink()
    _edit(work, "fund.yaml", lambda d: (d["simulation"].update(attribution_scenarios=256),
                                        d["portfolio"].update(max_country_share=1.0, max_material_share=1.0)))
    _edit(work, "stress.yaml", lambda d: d.update(stress_scenarios=64))
    a, b, other = tmp_path / "a", tmp_path / "b", tmp_path / "other"
    _run(work, a, seed=7, chunk=2048, workers=1)
    _run(work, b, seed=7, chunk=1024, workers=2)
    _run(work, other, seed=8, chunk=2048, workers=1, attribution=False)

    files_a, files_b = _files(a), _files(b)
    expected = {"simulation/summary.csv", "simulation/tonnes.csv", "simulation/sensitivity.csv",
                "simulation/first_production.csv", "simulation/price_fan.csv", "simulation/metrics.json",
                "portfolio/allocation.csv", "portfolio/frontier.csv", "portfolio/stress.csv",
                "portfolio/metrics.json"}
    assert expected <= set(files_a), sorted(files_a)
    assert set(files_a) == set(files_b)
    different = [name for name in files_a if files_a[name] != files_b[name]]
    assert different == [], different
    n_arrays = sum(name.endswith(".npy") for name in files_a)
    assert n_arrays > 3 * 10  # the scenario arrays are compared too

    # manifests: only the timestamp, the command line and the chunk size (a memory knob) differ
    ma, mb = (json.loads((d / "simulation" / "manifest.json").read_text()) for d in (a, b))
    diff = {k for k in ma.keys() | mb.keys() if ma.get(k) != mb.get(k)}
    assert diff <= MANIFEST_VOLATILE | {"settings"}, diff
    settings_diff = {k for k in ma["settings"] if ma["settings"][k] != mb["settings"][k]}
    assert settings_diff == {"chunk_size"}, settings_diff
    assert "created_utc" in ma and ma["assumption_files_sha256"] == mb["assumption_files_sha256"]

    # the memos print the same numbers
    assert _memo_html(work, a, "mn_ree") == _memo_html(work, b, "mn_ree")

    # another seed, other numbers
    summary_a = (a / "simulation" / "summary.csv").read_bytes()
    summary_other = (other / "simulation" / "summary.csv").read_bytes()
    assert summary_other != summary_a
    with capsys.disabled():
        print(f"\nreproducibility: {len(files_a)} result files ({n_arrays} scenario arrays) byte-identical "
              f"across chunk size 2048/1024 and 1/2 workers; seed 8 differs")
