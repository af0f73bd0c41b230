"""Errors a user can cause, carrying file, key path, value and rule.

The command line turns :class:`AssumptionError` into exit code 2 and prints
its report; anything else is an internal error (exit code 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: at most this many characters of a value, a key or a file name from the user's files appear in a
#: message (a 10,000-character value, or a file pasted into a value, is never echoed whole)
EXCERPT_CHARS = 80
#: a rule is our text, but it can quote parts of the input (a YAML token, an unknown name): capped too
RULE_CHARS = 400


def excerpt(text: Any, limit: int = EXCERPT_CHARS) -> str:
    """``text`` (``str()`` of it) cut to ``limit`` characters, ending in "…" when cut.

    Examples
    --------
    >>> excerpt("abc")
    'abc'
    >>> excerpt("x" * 100, 10)
    'xxxxxxxxx…'
    """
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def value_excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters; a cut text also gives its length.

    Examples
    --------
    >>> value_excerpt(5.0)
    '5.0'
    >>> value_excerpt("y" * 1000, 12)
    "'yyyyyyyyyy… (1,000 characters)"
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return text[:limit - 1] + "…" + size


@dataclass(frozen=True)
class Issue:
    """One problem found in the assumptions.

    Attributes
    ----------
    file : str
        Path of the file relative to the assumptions directory, e.g. ``projects/mn_ree.yaml``.
    key : str
        Dotted key path inside the file, e.g. ``capex.initial_musd`` (empty for the whole file).
    rule : str
        What the value must satisfy, phrased for an analyst.
    value : Any
        The offending value (omitted from the message when it is a whole mapping).

    The message shows at most :data:`EXCERPT_CHARS` characters of the value, the key and the
    file name, and :data:`RULE_CHARS` of the rule: a line stays short whatever the input.
    """

    file: str
    key: str
    rule: str
    value: Any = None
    show_value: bool = True

    def __str__(self) -> str:
        file = excerpt(self.file, 2 * EXCERPT_CHARS)
        where = f"{file}: {excerpt(self.key, 2 * EXCERPT_CHARS)}" if self.key else file
        text = f"{where}: {excerpt(self.rule, RULE_CHARS)}"
        if self.show_value and not isinstance(self.value, (dict, list)):
            text += f", got {value_excerpt(self.value)}"
        return text


class FundmodelError(Exception):
    """Base class of the errors the command line reports without a traceback."""

    exit_code = 1


class AssumptionError(FundmodelError):
    """The assumption files are invalid; holds every issue found, not just the first."""

    exit_code = 2

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        super().__init__(self.report())

    def report(self) -> str:
        """All issues, one per line, under a count."""
        n = len(self.issues)
        head = f"{n} problem{'s' if n != 1 else ''} in the assumptions:"
        return "\n".join([head] + [f"  - {issue}" for issue in self.issues])


class UsageError(FundmodelError):
    """A command-line argument is invalid."""

    exit_code = 2


def did_you_mean(name: str, options) -> str:
    """`` (did you mean 'x'?)`` for the option closest to ``name``, ignoring case; empty if none is close.

    Examples
    --------
    >>> did_you_mean("copr", ["copper", "nickel"])
    " (did you mean 'copper'?)"
    >>> did_you_mean("zzz", ["copper"])
    ''
    """
    import difflib

    by_case = {str(o).casefold(): str(o) for o in options}
    close = difflib.get_close_matches(str(name).casefold(), list(by_case), n=1)
    return f" (did you mean '{by_case[close[0]]}'?)" if close else ""
