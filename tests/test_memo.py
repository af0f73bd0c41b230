"""PDF memos and ``fundmodel run``: rendered from the default assumptions and read back.

One small run (1,024 scenarios) of the whole pipeline is shared by the module; the PDFs are
read with pypdf and their numbers compared with ``summary.csv`` and ``metrics.json`` of the
same run, formatted independently here.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pypdf
import pytest
from conftest import slow_fixture
import yaml

from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.memo import Formatter, load_results, render_memos
from fundmodel.outdir import MARKER
from fundmodel.pipeline import run_all
from fundmodel.simulation import RunSettings

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = 1024


@functools.lru_cache(maxsize=64)
def _pdf_text(path: Path, mtime_ns: int) -> str:
    reader = pypdf.PdfReader(str(path))
    text = " ".join(page.extract_text() for page in reader.pages).replace("\u200b", "")  # break points
    return re.sub(r"\s+", " ", text)


def pdf_text(path: Path) -> str:
    """All text of a PDF, whitespace collapsed (line breaks inside table cells do not matter) and without
    the invisible break points (zero-width spaces) that long tokens get."""
    return _pdf_text(Path(path), Path(path).stat().st_mtime_ns)


def meur(value: float) -> str:
    """EUR m as a memo prints it, formatted independently of fundmodel.memo.labels."""
    text = f"{value:,.1f}"
    if text in ("-0.0",):
        text = "0.0"
    return "EUR " + text.replace("-", "\u2212") + " m"


def pct(value: float) -> str:
    return f"{100 * value:,.1f} %".replace("-", "\u2212")


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.split("```", 1)[0].strip() for b in text.split("```bash")[1:3]]


@slow_fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """The README's first command (the main job), on a small scenario count."""
    out = tmp_path_factory.mktemp("run")
    command = readme_commands()[0].split("&&")[-1].split()
    assert command[0] == "fundmodel"
    code = main(command[1:] + ["--assumptions", str(ROOT / "assumptions"), "--scenarios", str(SCENARIOS),
                               "--out", str(out), "--workers", "2"])
    assert code == 0
    return out


@pytest.mark.slow
def test_readme_starts_with_the_two_commands(run_dir):
    first, second = readme_commands()
    assert first.startswith("pip install .") and "fundmodel run" in first, "the first command runs the main job"
    assert "pytest" in second, "the second README command runs the tests"
    assert (run_dir / "memos" / "portfolio.pdf").is_file()


def test_every_project_has_a_memo_and_the_portfolio_memo_exists(run_dir):
    a = load_assumptions(ROOT / "assumptions")
    memos = run_dir / "memos"
    for pid in a.projects:
        assert (memos / f"{pid}.pdf").stat().st_size > 10_000
        assert (memos / f"{pid}.html").is_file()
        assert len(pypdf.PdfReader(str(memos / f"{pid}.pdf")).pages) >= 3
    reader = pypdf.PdfReader(str(memos / "portfolio.pdf"))
    assert len(reader.pages) >= 3
    assert sorted(p.name for p in memos.iterdir()) == sorted(
        [f"{p}.{ext}" for p in [*a.projects, "portfolio"] for ext in ("pdf", "html")] + ["manifest.json"])


def test_run_writes_the_manifest_with_every_assumption_hash(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    a = load_assumptions(ROOT / "assumptions")
    assert manifest["assumption_files_sha256"] == dict(sorted(a.file_sha256.items()))
    assert manifest["settings"]["scenarios"] == SCENARIOS
    assert manifest["steps"] == ["simulation", "portfolio", "memos"]
    # no staging leftovers (the lock file stays: it is how concurrent runs are refused)
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [MARKER, ".lock"]


@pytest.mark.slow
def test_project_memo_numbers_equal_summary_csv(run_dir):
    summary = pd.read_csv(run_dir / "simulation" / "summary.csv").set_index("project")
    for pid in ("br_ree", "kz_tungsten", "au_nickel"):
        s = summary.loc[pid]
        text = pdf_text(run_dir / "memos" / f"{pid}.pdf")
        assert s["name"] in text
        for key in ("equity_npv_mean_meur", "equity_npv_p5_meur", "equity_npv_p50_meur", "equity_npv_p95_meur",
                    "npv_mean_meur", "npv_p5_meur", "npv_p50_meur", "npv_p95_meur"):
            assert meur(s[key]) in text, (pid, key, meur(s[key]))
        for key in ("prob_equity_npv_negative", "prob_debt_default", "prob_production", "equity_irr_p50"):
            assert pct(s[key]) in text, (pid, key, pct(s[key]))
        assert f"{int(s['first_production_year_p50'])}" in text


@pytest.mark.slow
def test_project_memo_states_breakeven_and_parameter_uncertainty(run_dir):
    """Issue 14: the break-even long-run price (summary.csv, USD/t) and whether parameters were drawn."""
    summary = pd.read_csv(run_dir / "simulation" / "summary.csv").set_index("project")
    for pid in ("pe_copper", "kz_tungsten"):
        s = summary.loc[pid]
        text = pdf_text(run_dir / "memos" / f"{pid}.pdf")
        assert f"USD {s['breakeven_long_run_price']:,.0f}/t" in text, pid
        assert f"assumed USD {s['long_run_price']:,.0f}/t" in text, pid
        assert "mean project NPV at its market rate" in text
        assert "Parameter uncertainty is on" in text and "Copper, Nickel" in text


@pytest.mark.slow
def test_project_memo_positions_equal_allocation_csv(run_dir):
    import html as html_lib

    allocation = pd.read_csv(run_dir / "portfolio" / "allocation.csv", keep_default_na=False)
    assert not allocation.empty
    invested = sorted(set(allocation["project"]))
    for pid in invested:
        # every position in the memo's HTML; the PDF itself read back for the first three projects
        text = html_lib.unescape((run_dir / "memos" / f"{pid}.html").read_text())
        if pid in invested[:3]:
            text = pdf_text(run_dir / "memos" / f"{pid}.pdf")
        assert "Recommendation: Invest" in text
        for _, row in allocation[allocation["project"] == pid].iterrows():
            assert meur(row["expected_pv_meur"]) in text
            assert meur(row["cvar_contribution_meur"]) in text
    summary = pd.read_csv(run_dir / "simulation" / "summary.csv")
    for pid in sorted(set(summary["project"]) - set(invested))[:2]:
        assert "Do not invest" in pdf_text(run_dir / "memos" / f"{pid}.pdf")


@pytest.mark.slow
def test_portfolio_memo_numbers_equal_metrics_json(run_dir):
    m = json.loads((run_dir / "portfolio" / "metrics.json").read_text())
    text = pdf_text(run_dir / "memos" / "portfolio.pdf")
    for key in ("expected_pv_meur", "var_meur", "cvar_meur", "capital_used_meur", "contingent_used_meur"):
        assert meur(m[key]) in text, key
    stress = pd.read_csv(run_dir / "portfolio" / "stress.csv")
    for _, row in stress.iterrows():
        assert row["stress"] in text
        assert meur(row["expected_pv_meur"]) in text
    for material, tonnes in m["supply_secured_t_per_year"].items():
        assert f"{tonnes:,.0f} t" in text
    # table of contents with page numbers, page numbers in the footer, the manifest
    assert "Contents" in text and "Run manifest" in text
    assert re.search(r"\b1 / \d+\b", text)


@pytest.mark.slow
def test_no_unrendered_template_syntax_and_footer_manifest(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for pdf in (run_dir / "memos").glob("*.pdf"):
        text = pdf_text(pdf)
        assert "{{" not in text and "{%" not in text and "}}" not in text, pdf.name
        assert "Undefined" not in text and "None" not in text and "nan" not in text.split(), pdf.name
        assert f"seed {manifest['settings']['seed']}" in text
        assert manifest["assumption_files_sha256"]["fund.yaml"] in text


@pytest.mark.slow
def test_same_results_render_the_same_html(run_dir):
    from fundmodel.memo.context import portfolio_context, project_context
    from fundmodel.memo.render import render_html

    a = load_assumptions(ROOT / "assumptions")
    results = load_results(run_dir)
    assert render_html("project.html", project_context(a, results, "kz_gallium")) == (
        run_dir / "memos" / "kz_gallium.html").read_text()
    assert render_html("portfolio.html", portfolio_context(a, results)) == (
        run_dir / "memos" / "portfolio.html").read_text()


@pytest.mark.slow
def test_german_memo_has_german_headings_and_number_format(run_dir, tmp_path):
    a = load_assumptions(ROOT / "assumptions")
    results = load_results(run_dir)
    render_memos(a, results, tmp_path, projects=["br_ree"], lang="de", portfolio=False)
    text = pdf_text(tmp_path / "memos" / "br_ree.pdf")
    assert "Zusammenfassung" in text and "Empfehlung" in text and "Kennzahlen" in text
    value = results.summary.loc["br_ree", "equity_npv_mean_meur"]
    assert Formatter("de").meur(value) in text
    assert "Executive summary" not in text
    from fundmodel.memo.context import portfolio_context
    from fundmodel.memo.render import render_html

    html = render_html("portfolio.html", portfolio_context(a, results, "de"))
    assert "Inhalt" in html and "Contents" not in html


@pytest.mark.slow
def test_baseline_section_lists_changes(run_dir, tmp_path):
    baseline = tmp_path / "baseline"
    shutil.copytree(run_dir, baseline)
    metrics = json.loads((baseline / "portfolio" / "metrics.json").read_text())
    metrics["expected_pv_meur"] -= 100.0
    (baseline / "portfolio" / "metrics.json").write_text(json.dumps(metrics))
    import html as html_lib

    from fundmodel.memo.context import portfolio_context
    from fundmodel.memo.render import render_html

    a = load_assumptions(ROOT / "assumptions")
    text = html_lib.unescape(render_html("portfolio.html", portfolio_context(a, load_results(run_dir),
                                                                             baseline=load_results(baseline))))
    assert "Changes since the previous run" in text
    assert meur(100.0) in text  # after - before
    assert "No baseline given" in (run_dir / "memos" / "portfolio.html").read_text()


@pytest.mark.slow
def test_failed_rendering_leaves_previous_memos_intact(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(run_dir, out)
    before = {p.name: p.read_bytes() for p in (out / "memos").iterdir()}
    import fundmodel.memo.render as render

    calls = []

    def failing(html, path, title):
        calls.append(path)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return []

    monkeypatch.setattr(render, "html_to_pdf", failing)
    a = load_assumptions(ROOT / "assumptions")
    with pytest.raises(RuntimeError):
        render_memos(a, load_results(out), out)
    assert {p.name: p.read_bytes() for p in (out / "memos").iterdir()} == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [MARKER, ".lock"]


HOSTILE = ('<b>Bold</b> & <script>alert(1)</script> {{ 7*7 }} {% raw %} $x^2$ 100% '
           'url(file:///etc/passwd) <img src="http://example.com/x.png"> <style>body{display:none}</style>')


@pytest.mark.slow
def test_hostile_text_prints_literally_and_loads_nothing(run_dir, tmp_path, monkeypatch):
    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    path = work / "projects" / "kz_gallium.yaml"
    data = path.read_text()
    data = re.sub(r"^name: .*$", "name: " + json.dumps(HOSTILE), data, count=1, flags=re.M)
    data = re.sub(r"^(  capex: ).*$", r"\1" + json.dumps("See " + HOSTILE), data, count=1, flags=re.M)
    path.write_text(data)
    a = load_assumptions(work)
    assert a.projects["kz_gallium"].name == HOSTILE
    assert "See " + HOSTILE == a.projects["kz_gallium"].sources["capex"]

    import fundmodel.memo.render as render

    refused = []
    original = render.html_to_pdf

    def recording(html, out_path, title):
        refused.extend(original(html, out_path, title))
        return refused

    monkeypatch.setattr(render, "html_to_pdf", recording)
    out = tmp_path / "out"
    # the results of the default run, described by the hostile assumption files
    render_memos(a, load_results(run_dir), out, projects=["kz_gallium"], portfolio=False)
    assert refused == []  # nothing even tried to load a URL
    html = (out / "memos" / "kz_gallium.html").read_text().replace("\u200b", "")  # invisible break points
    assert "<script>" not in html and "<img" not in html and "<b>Bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    text = pdf_text(out / "memos" / "kz_gallium.pdf")
    collapsed = re.sub(r"\s+", " ", HOSTILE)
    assert collapsed in text or collapsed.replace(" ", "") in text.replace(" ", "")
    assert "49" not in re.findall(r"\{\{ ?(\S+)", text)


def test_url_fetcher_refuses_everything():
    from fundmodel.memo.render import refusing_url_fetcher

    fetcher = refusing_url_fetcher()
    for url in ("file:///etc/passwd", "http://example.com/x.png", "data:text/plain,hi"):
        with pytest.raises(ValueError):
            fetcher(url)
    assert fetcher.refused == ["file:///etc/passwd", "http://example.com/x.png", "data:text/plain,hi"]


def test_cli_memo_exit_codes(run_dir, capsys):
    assert main(["memo", "--out", str(run_dir), "--lang", "fr"]) == 2
    assert main(["memo", "--assumptions", str(ROOT / "assumptions"), "--out", str(run_dir),
                 "--project", "no_such_project"]) == 2
    assert "no_such_project" in capsys.readouterr().err


def test_cli_run_bad_assumptions_exits_2_and_keeps_previous_output(run_dir, tmp_path, capsys):
    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    fund = yaml.safe_load((work / "fund.yaml").read_text())
    fund["discount_rate_nominal"] = "eight"
    (work / "fund.yaml").write_text(yaml.safe_dump(fund))
    out = tmp_path / "out"
    shutil.copytree(run_dir, out)
    before = (out / "memos" / "portfolio.pdf").read_bytes()
    assert main(["run", "--assumptions", str(work), "--out", str(out), "--scenarios", "64"]) == 2
    assert "discount_rate_nominal" in capsys.readouterr().err
    assert (out / "memos" / "portfolio.pdf").read_bytes() == before


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    import fcntl

    from fundmodel.errors import UsageError

    out = tmp_path / "out"
    out.mkdir()
    a = load_assumptions(ROOT / "assumptions")
    with open(out / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
        with pytest.raises(UsageError, match="another fundmodel process.* is writing to this folder"):
            run_all(a, RunSettings.from_assumptions(a, scenarios=64, workers=1), out)
    assert [p.name for p in out.iterdir()] == [".lock"]


@pytest.mark.slow
def test_cli_memo_reuses_current_results_and_repeats_the_run_when_stale(run_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(run_dir, out)
    summary_before = (out / "simulation" / "summary.csv").read_bytes()
    memos_before = {p.name: p.read_bytes() for p in (out / "memos").glob("*.pdf")}
    for path in (out / "memos").glob("*.pdf"):
        os.utime(path, (0, 0))  # so a re-rendered memo shows by its time
    assert main(["memo", "--assumptions", str(ROOT / "assumptions"), "--out", str(out),
                 "--project", "kz_gallium", "--workers", "1"]) == 0
    assert "results up to date" in capsys.readouterr().out
    # only the memo asked for (and the portfolio memo) re-rendered; every other memo stays as it was
    pdfs = {p.name: p for p in (out / "memos").glob("*.pdf")}
    assert sorted(pdfs) == sorted(memos_before)
    assert sorted(n for n, p in pdfs.items() if p.stat().st_mtime > 0) == ["kz_gallium.pdf", "portfolio.pdf"]
    assert all(p.read_bytes() == memos_before[n] for n, p in pdfs.items() if p.stat().st_mtime == 0)
    record = json.loads((out / "memos" / "manifest.json").read_text())
    assert sorted(record["memos"]) == sorted(n[:-4] for n in memos_before)
    assert sorted(record["files"]) == sorted([*memos_before, *(n[:-4] + ".html" for n in memos_before)])
    assert (out / "simulation" / "summary.csv").read_bytes() == summary_before

    # an edited assumption file makes the results stale: the same run (seed, scenarios) is repeated
    from fundmodel.pipeline import previous_settings, results_are_current

    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    (work / "fund.yaml").write_text((work / "fund.yaml").read_text() + "\n# edited\n")
    a = load_assumptions(work)
    settings = previous_settings(a, out)
    assert settings.scenarios == SCENARIOS
    assert not results_are_current(a, settings, out, need_portfolio=True)
