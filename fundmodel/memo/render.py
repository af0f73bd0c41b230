"""Render memos: jinja2 templates -> HTML -> PDF (WeasyPrint), written atomically.

Text from assumption files is data, never markup: the jinja2 environment autoescapes every
value and fails on an undefined name, charts are generated SVG inlined by the package
itself, and WeasyPrint gets a URL fetcher that refuses every URL, so a project note with
``<img src="http://...">`` or ``url(file:///etc/passwd)`` prints as text and loads nothing.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable

import jinja2
import markupsafe

from ..assumptions.model import Assumptions
from ..errors import UsageError
from .context import portfolio_context, project_context
from .data import RunResults
from .labels import LANGUAGES

_TEMPLATES = Path(__file__).with_name("templates")


#: A run of this many characters without a break point (a URL, an identifier) gets invisible
#: break opportunities, so it wraps inside its table cell instead of pushing columns off the page.
LONG_TOKEN = 24
_LONG_RUN = re.compile(r"[^\s\u200b]{%d,}" % LONG_TOKEN)
_HEX = re.compile(r"[0-9a-f]+")


def breakable(value):
    """``value`` with a zero-width space every 12 characters inside runs of 24 or more without a break.

    Applied to every value a template prints (jinja2 ``finalize``): WeasyPrint breaks lines
    only at break opportunities, and a long token in a table cell otherwise widens the
    table beyond the page. Hexadecimal digests (commit, SHA-256) are left whole so that
    they can be copied. CSS ``overflow-wrap: anywhere`` would do the same but makes
    WeasyPrint's table layout about twice as slow on every memo.

    Examples
    --------
    >>> breakable("see https://example.org/a_long_path").split("\u200b")
    ['see https://exam', 'ple.org/a_lo', 'ng_path']
    >>> breakable("Mongolia REE (feasibility)"), breakable(3.5)
    ('Mongolia REE (feasibility)', 3.5)
    """
    if not isinstance(value, str) or isinstance(value, markupsafe.Markup) or len(value) < LONG_TOKEN:
        return value  # markup the package made itself (charts, marked safe) is left as it is

    def split(match: re.Match) -> str:
        run = match.group(0)
        if _HEX.fullmatch(run):
            return run
        return "\u200b".join(run[i:i + 12] for i in range(0, len(run), 12))

    return _LONG_RUN.sub(split, value)


def environment() -> jinja2.Environment:
    """The memos' jinja2 environment: package templates, autoescaping, strict undefined names.

    Every printed value goes through :func:`breakable` (long tokens wrap) and is escaped.
    """
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,  # every value is escaped, whatever the template file's extension
        undefined=jinja2.StrictUndefined,
        finalize=breakable,
        trim_blocks=True, lstrip_blocks=True,
    )


def refusing_url_fetcher():
    """A WeasyPrint URL fetcher that loads nothing (memos need no external resource).

    Every URL it was asked for is kept in its ``refused`` list, so tests can check that a
    hostile assumption file did not even try.
    """
    from weasyprint.urls import URLFetcher

    class RefusingFetcher(URLFetcher):
        def __init__(self):
            super().__init__(allowed_protocols=())
            self.refused: list[str] = []

        def fetch(self, url, headers=None):  # noqa: D102
            self.refused.append(url)
            raise ValueError(f"memos load no external resources (refused {url[:80]!r})")

    return RefusingFetcher()


def render_html(template: str, context: dict) -> str:
    """Render one memo template to a self-contained HTML string (stylesheet inlined)."""
    css = (_TEMPLATES / "memo.css").read_text(encoding="utf-8")
    html = environment().get_template(template).render(**context)
    # The stylesheet is the package's own asset, inserted after rendering so it is never escaped.
    return html.replace("</head>", f"<style>\n{css}</style>\n</head>", 1)


def html_to_pdf(html: str, path: Path, title: str) -> list[str]:
    """Write ``html`` as a PDF; returns the URLs WeasyPrint asked for (all refused)."""
    import weasyprint

    # WeasyPrint logs every refused URL as a warning; the refusal is the point, keep the console quiet.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    fetcher = refusing_url_fetcher()
    document = weasyprint.HTML(string=html, base_url=str(_TEMPLATES), url_fetcher=fetcher).render()
    document.metadata.title = title
    document.metadata.authors = ["fundmodel"]
    document.write_pdf(path)
    return fetcher.refused


_WORKER: dict = {}


def _worker_init(a: Assumptions, results_dir: Path, stage: Path, lang: str, baseline_dir: Path | None) -> None:
    from .data import load_results

    results = load_results(results_dir, require_portfolio=False)
    baseline = load_results(baseline_dir) if baseline_dir is not None else None
    _WORKER.update(a=a, results=results, stage=stage, lang=lang, baseline=baseline)


def _render_one(name: str) -> str:
    """Render one memo (``name`` = project id or ``"portfolio"``) into the staging folder."""
    w = _WORKER
    if name == "portfolio":
        context, template = portfolio_context(w["a"], w["results"], w["lang"], w["baseline"]), "portfolio.html"
    else:
        context, template = project_context(w["a"], w["results"], name, w["lang"]), "project.html"
    html = render_html(template, context)
    (w["stage"] / f"{name}.html").write_text(html, encoding="utf-8")
    html_to_pdf(html, w["stage"] / f"{name}.pdf", context["title"])
    return name


def render_memos(a: Assumptions, results: RunResults, out_dir: str | Path, *, lang: str = "en",
                 projects: Iterable[str] | None = None, baseline: RunResults | None = None,
                 workers: int = 1, portfolio: bool = True, progress=None,
                 previous: str | Path | None = None) -> list[Path]:
    """Render the project memos and the portfolio memo into ``OUT/memos/`` atomically.

    Parameters
    ----------
    a : Assumptions
        The assumptions of the run (descriptions, terms and sources).
    results : RunResults
        The run's results (:func:`fundmodel.memo.data.load_results`).
    out_dir : str or Path
        Output root; memos go to ``OUT/memos/<project>.pdf`` (and ``.html``) and
        ``OUT/memos/portfolio.pdf``, and ``OUT/memos/manifest.json`` records which results
        each memo was rendered from. With ``projects`` given, only those project memos
        (and the portfolio memo) are re-rendered; the other memos stay in place.
    lang : {"en", "de"}
    projects : iterable of str, optional
        Only these project memos (the portfolio memo is always rendered).
    baseline : RunResults, optional
        Earlier results for the "changes since the previous run" section.
    portfolio : bool
        Also render the portfolio memo (when the run optimised a portfolio).
    workers : int
        Processes rendering memos in parallel (WeasyPrint is single-threaded Python);
        the memos do not depend on it.
    progress : callable, optional
        Called with the name of each memo when it is done.
    previous : str or Path, optional
        The memos folder these memos will replace (default ``OUT/memos``): with
        ``projects`` given, its record of the memos not re-rendered is carried over.

    Returns
    -------
    list of Path
        The PDFs written, project memos first.

    Raises
    ------
    UsageError
        Unknown language or project id.
    """
    from ..io import staged_directory

    if lang not in LANGUAGES:
        raise UsageError(f"--lang must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    chosen = list(dict.fromkeys(results.projects if projects is None else projects))
    unknown = [p for p in chosen if p not in results.summary.index or p not in a.projects]
    if unknown:
        raise UsageError(f"unknown project id(s): {', '.join(unknown)}; known: {', '.join(results.projects)}")
    names = chosen + (["portfolio"] if portfolio and results.portfolio is not None else [])
    target = Path(out_dir) / "memos"
    baseline_dir = None if baseline is None else baseline.directory
    partial = projects is not None
    with staged_directory(target, keep_owned=partial) as stage:
        init_args = (a, results.directory, stage, lang, baseline_dir)
        if workers <= 1 or len(names) <= 1:
            _worker_init(*init_args)
            for name in names:
                _render_one(name)
                if progress is not None:
                    progress(name)
        else:
            from ..engine import map_in_order, pool_scope, worker_pool

            # "spawn" would re-import matplotlib per worker anyway; "forkserver" avoids forking a threaded parent
            with pool_scope(worker_pool(min(workers, len(names)), method="forkserver", initializer=_worker_init,
                                        initargs=init_args)) as pool:
                for name in map_in_order(pool, _render_one, names):
                    if progress is not None:
                        progress(name)
        stale = write_memo_record(stage, names, results, lang, target if previous is None else Path(previous),
                                  keep_previous=partial)
    if stale:  # kept beside the new results, as asked, but never silently
        import sys

        shown = ", ".join(stale[:6]) + (", ..." if len(stale) > 6 else "")
        print(f"note: {len(stale)} other memo(s) in memos/ were rendered from other results ({shown}; "
              "their footers and memos/manifest.json say which); render them again to bring them up to date",
              file=sys.stderr)
    return [target / f"{name}.pdf" for name in names]


def _digest(value) -> str:
    """SHA-256 of a JSON value (e.g. the assumption hashes of a run), in one line."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def write_memo_record(folder: Path, names: list[str], results: RunResults, lang: str, previous: Path, *,
                      keep_previous: bool) -> list[str]:
    """``memos/manifest.json``: for each memo, its files and the results it was rendered from.

    With ``keep_previous``, the entries of ``previous/manifest.json`` for memos not rendered
    now are kept (their files stay in place), so the record says which memo comes from
    which run.

    Returns
    -------
    list of str
        The kept memos rendered from other results than ``results`` (stale beside them).
    """
    import datetime as dt
    import json

    from ..io import write_json_atomic

    m = results.manifest
    source = {"created_utc": m.get("created_utc"), "code_sha256": m.get("code_sha256"),
              "git_commit": m.get("git_commit"), "seed": m.get("settings", {}).get("seed"),
              "scenarios": m.get("settings", {}).get("scenarios"),
              "assumptions_sha256": _digest(m.get("assumption_files_sha256"))}
    memos: dict = {}
    if keep_previous:
        try:
            memos = dict(json.loads((previous / "manifest.json").read_text(encoding="utf-8")).get("memos") or {})
        except (OSError, ValueError, AttributeError):
            memos = {}
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for name in names:
        memos[name] = {"files": [f"{name}.pdf", f"{name}.html"], "lang": lang, "rendered_utc": now,
                       "results": source}
    write_json_atomic(folder / "manifest.json", {"package": "fundmodel", "memos": dict(sorted(memos.items()))})
    return sorted(name for name, record in memos.items()
                  if name not in names and isinstance(record, dict) and record.get("results") != source)
