"""PDF investment memos: one per project and one for the portfolio.

Data flows one way: the results files of a run (:mod:`fundmodel.memo.data`) and the
assumptions' descriptions -> template contexts with formatted numbers and SVG charts
(:mod:`fundmodel.memo.context`, :mod:`fundmodel.memo.charts`) -> HTML (jinja2, autoescaped)
-> PDF (WeasyPrint, no external resources) in ``OUT/memos/`` (:mod:`fundmodel.memo.render`).
"""

from .data import ResultsError, RunResults, load_results
from .labels import LANGUAGES, Formatter
from .render import render_memos

__all__ = ["Formatter", "LANGUAGES", "ResultsError", "RunResults", "load_results", "render_memos"]
