"""Hostile text in the assumption files prints literally, loads nothing and writes nowhere else.

One project memo (``kz_gallium``; a PDF takes ~3 s) carries :data:`HOSTILE` strings (HTML,
script tags, CSS, ``url(file:///etc/passwd)``, remote images, jinja2 syntax, LaTeX-like
``$...$``, ``%`` formats, pre-escaped entities, SVG, table-breaking markup) in every text
field the memo prints: the project's name and sources, the material's name and source,
the country's name and source. Each string must appear literally in the PDF text (pypdf)
and escaped in the HTML; WeasyPrint's URL fetcher must not be asked for anything. YAML
tags that construct objects and a project id like ``../../x`` end ``fundmodel run`` with
exit code 2 before anything is written. The number of hostile strings and placements is
printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
from pathlib import Path

import pypdf
import pytest
import yaml

from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.memo import load_results, render_memos

ROOT = Path(__file__).resolve().parent.parent
PID = "kz_gallium"  # country KZ, material gallium
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

HOSTILE = [
    "<script>alert(1)</script>",
    "<b>Bold</b> & <i>italic</i>",
    '<img src="http://example.com/x.png">',
    '<img src="file:///etc/passwd">',
    "url(file:///etc/passwd)",
    "<style>body{display:none}</style>",
    '<link rel="stylesheet" href="http://example.com/evil.css">',
    '@import url("http://example.com/x.css");',
    "background: url('http://example.com/bg.png')",
    '<iframe src="https://example.com/"></iframe>',
    '<a href="javascript:alert(1)">click</a>',
    '<object data="file:///etc/shadow"></object>',
    "{{ 7*7 }}",
    "{% for x in range(3) %}loop{% endfor %}",
    "{{ config.__class__.__init__.__globals__ }}",
    "{# a jinja comment #}",
    "$x^2$ and $$\\int_0^1 f(x)\\,dx$$",
    "\\textbf{bold} \\input{/etc/passwd}",
    "100% of 50%",
    "%s %d %(name)s %%",
    "&lt;already escaped&gt; &amp; &#60;",
    '<svg onload="alert(1)"><image href="http://example.com/i.png"/></svg>',
    "\"double\" 'single' `back`",
    "<!-- comment --> <![CDATA[x]]>",
    "${HOME} $(id)",
    '<base href="http://example.com/">',
    '<meta http-equiv="refresh" content="0;url=http://example.com/">',
    "</td></tr></table><h1>Injected</h1>",
]


def _edit(directory: Path, rel: str, change) -> None:
    path = directory / rel
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe loader
    change(data)
    path.write_text(yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def _flat(text: str) -> str:
    """Text without whitespace and without the invisible break points of long tokens (zero-width spaces)."""
    return re.sub(r"[\s\u200b]+", "", text)


@pytest.mark.slow
def test_hostile_text_prints_literally_and_nothing_is_fetched(tmp_path, monkeypatch, capsys):
    work = _one_project(tmp_path)
    placements: dict[str, list[str]] = {}  # field -> hostile strings in it

    def put(field: str, strings: list[str]) -> str:
        placements[field] = strings
        return f"{field}: " + " | ".join(strings)

    fields = ["project.name", "sources.products", "sources.operations", "sources.capex", "sources.schedule",
              "sources.fiscal", "sources.debt", "sources.offtake", "material.name", "material.source",
              "country.name", "country.source"]
    batches = {f: HOSTILE[i::len(fields)] for i, f in enumerate(fields)}

    def project(d):
        d["name"] = put("project.name", batches["project.name"])
        for key in ("products", "operations", "capex", "schedule", "fiscal", "debt", "offtake"):
            d["sources"][key] = put(f"sources.{key}", batches[f"sources.{key}"])

    def markets(d):
        m = d["materials"]["gallium"]
        m["name"] = put("material.name", batches["material.name"])
        m["source"] = put("material.source", batches["material.source"])

    def countries(d):
        c = d["countries"]["KZ"]
        c["name"] = put("country.name", batches["country.name"])
        c["source"] = put("country.source", batches["country.source"])

    _edit(work, f"projects/{PID}.yaml", project)
    _edit(work, "markets.yaml", markets)
    _edit(work, "countries.yaml", countries)
    assert sorted(s for v in placements.values() for s in v) == sorted(HOSTILE)

    out = tmp_path / "out"
    code, err = _cli(["simulate", "--assumptions", str(work), "--scenarios", "64", "--workers", "1",
                      "--no-attribution", "--quiet", "--out", str(out)])
    assert code == 0, err
    a = load_assumptions(work)
    assert a.projects[PID].name.endswith(" | ".join(batches["project.name"]))

    import fundmodel.memo.render as render

    asked: list[str] = []
    original = render.html_to_pdf

    def recording(html, path, title):
        refused = original(html, path, title)
        asked.extend(refused)
        return refused

    monkeypatch.setattr(render, "html_to_pdf", recording)
    written = render_memos(a, load_results(out, require_portfolio=False), out, projects=[PID], workers=1)
    assert [p.name for p in written] == [f"{PID}.pdf"]  # one PDF: the project memo
    assert asked == []  # WeasyPrint was not even asked for a URL

    html = (out / "memos" / f"{PID}.html").read_text(encoding="utf-8").replace("\u200b", "")  # break points
    for tag in ("<script", "<img", "<iframe", "<object", "<link", "<base", "<meta http-equiv", "<b>Bold",
                "<h1>Injected", "<svg onload", "<a href=\"javascript"):
        assert tag not in html, tag
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "49" not in re.findall(r"\{\{ ?(\S+)", html)

    text = " ".join(page.extract_text() for page in pypdf.PdfReader(str(out / "memos" / f"{PID}.pdf")).pages)
    flat = _flat(text)
    missing = [(field, s) for field, strings in placements.items() for s in strings if _flat(s) not in flat]
    assert not missing, missing
    # nothing was written outside the output folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assumptions", "out"]
    with capsys.disabled():
        print(f"\nhostile text: {len(HOSTILE)} strings in {len(placements)} fields of one memo, "
              f"all printed literally, 0 URLs requested")


# ----------------------------------------------------------------------------- tags and paths
TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.call [["touch", "{marker}"]]',
    '!!python/object/new:subprocess.Popen [["touch", "{marker}"]]',
    '!!python/object/apply:builtins.eval ["__import__(\'os\').system(\'touch {marker}\')"]',
    "!!python/name:os.system",
    "!!python/module:os",
]


@pytest.mark.parametrize("tag", TAGS)
def test_object_constructing_tag_ends_the_run_with_exit_2(tmp_path, tag):
    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    marker = tmp_path / "code-was-run"
    path = work / "projects" / f"{PID}.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"^name: .*$", "name: " + tag.format(marker=marker), text, count=1, flags=re.M),
                    encoding="utf-8")
    out = tmp_path / "out"
    code, err = _cli(["run", "--assumptions", str(work), "--scenarios", "64", "--out", str(out)])
    assert code == 2, err
    assert f"projects/{PID}.yaml: invalid YAML: line" in err and "Traceback" not in err, err
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("evil", ["../../x", "../x", "/tmp/x", "x/../../y", "..", "x\\..\\..\\y", "X-Y", ""])
def test_project_id_cannot_name_a_path_outside_the_output(tmp_path, evil):
    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    # the id in the file (the file name must equal it, so a path-like id is refused twice)
    _edit(work, f"projects/{PID}.yaml", lambda d: d.update(id=evil))
    out = tmp_path / "deep" / "er" / "out"
    code, err = _cli(["run", "--assumptions", str(work), "--scenarios", "64", "--out", str(out)])
    assert code == 2, err
    assert f"projects/{PID}.yaml: id: must match the pattern" in err, err
    assert not (tmp_path / "deep").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assumptions"]


def _one_project(tmp_path: Path) -> Path:
    """A copy of the shipped assumptions with only the project :data:`PID`."""
    work = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", work)
    for path in (work / "projects").glob("*.yaml"):
        if path.stem != PID:
            path.unlink()
    return work


def test_run_project_argument_cannot_name_a_path(tmp_path):
    work = _one_project(tmp_path)
    _edit(work, "fund.yaml", lambda d: d["portfolio"].update(max_country_share=1.0, max_material_share=1.0))
    _edit(work, "stress.yaml", lambda d: d.update(stress_scenarios=64))
    out = tmp_path / "deep" / "out"
    evil = "../../x"
    code, err = _cli(["run", "--assumptions", str(work), "--scenarios", "64", "--workers", "1", "--out", str(out),
                      "--project", evil])
    assert code == 2, err
    assert f"unknown project id(s): {evil}" in err, err
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and out not in p.parents and work not in p.parents]
    assert outside == [], outside
    assert not out.exists()  # refused before anything ran: the output folder was not even created


def overflowing_boxes(html: str) -> list[str]:
    """Boxes of the rendered pages that reach beyond the page's right edge (WeasyPrint's layout tree)."""
    import weasyprint

    from fundmodel.memo.render import refusing_url_fetcher

    document = weasyprint.HTML(string=html, url_fetcher=refusing_url_fetcher()).render()
    found = []
    for number, page in enumerate(document.pages, 1):
        for box in page._page_box.descendants():  # noqa: SLF001 - WeasyPrint's layout tree
            if getattr(box, "width", None) is None or not hasattr(box, "margin_width"):
                continue
            right = box.position_x + box.margin_width()
            if right > page.width + 0.5:
                text = getattr(box, "text", "") or type(box).__name__
                found.append(f"page {number}: {text[:40]!r} ends at {right:.0f} > {page.width:.0f} px")
    return found


@pytest.mark.slow
def test_long_tokens_wrap_inside_the_page(tmp_path):
    """A name or source without break points (an id, a URL) wraps in its cell: no box leaves the page."""
    work = _one_project(tmp_path)
    token = "Kazakhstan_Gallium_Recovery_From_Alumina_Refinery_Liquors_" * 3
    url = "https://example.org/" + "a_very_long_path_segment_without_any_break_point_" * 6

    def project(d):
        d["name"] = token[:190]
        for key in d["sources"]:
            d["sources"][key] = url

    _edit(work, f"projects/{PID}.yaml", project)
    out = tmp_path / "out"
    code, err = _cli(["simulate", "--assumptions", str(work), "--scenarios", "64", "--workers", "1",
                      "--no-attribution", "--quiet", "--out", str(out)])
    assert code == 0, err
    a = load_assumptions(work)
    render_memos(a, load_results(out, require_portfolio=False), out, projects=[PID], workers=1)
    html = (out / "memos" / f"{PID}.html").read_text(encoding="utf-8")
    visible = html.replace("\u200b", "")  # invisible break points inside long tokens
    assert token[:190] in visible and url in visible
    assert overflowing_boxes(html) == []
