"""Limits on what the assumption files may contain (issue 12, items 6, 7 and the input part of 9).

- Every number of every schema has a lower and an upper bound and says why (a test walks the
  pydantic models: a new field without both fails here); absurd values (1e300, 1e20, 1e12,
  1e-300) are refused with exit code 2 naming file, key, value and rule, and values at the
  corners of the bounds still simulate and optimise to finite numbers.
- Files: a link that resolves outside the assumptions folder, a file larger than 5 MB, a FIFO
  or a broken link are refused before anything is read; no message echoes more than a short
  excerpt of a value, a key or a file.
- Project files in any letter case of ``.yaml``/``.yml``; YAML merge keys; bounded free text;
  YAML 1.1 booleans (``country: NO``).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import annotated_types as at
import pytest
import yaml
from pydantic import BaseModel, Field

import fundmodel.assumptions.schema as schema
from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.errors import AssumptionError

ROOT = Path(__file__).resolve().parent.parent
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PROJECT = "projects/kz_gallium.yaml"
#: longest acceptable line of a report, whatever the input
MAX_LINE = 300


# ----------------------------------------------------------------------------- helpers
def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def validate(directory: Path) -> tuple[int, str, str]:
    return run_cli(["validate", "--assumptions", str(directory)])


def edit(directory: Path, rel: str, change) -> None:
    path = directory / rel
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe loader
    change(data)
    path.write_text(yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True), encoding="utf-8")


def replace_line(directory: Path, rel: str, start: str, new: str) -> None:
    """Replace the one line of ``rel`` that starts with ``start`` (keeps the file's YAML spelling)."""
    path = directory / rel
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(hits) == 1, (start, hits)
    lines[hits[0]] = new + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def refused(code: int, out: str, err: str, *fragments: str) -> str:
    """Exit 2, one report, each line short; one line holds every fragment. Returns that line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err and "internal error" not in err, err
    lines = err.rstrip("\n").splitlines()
    assert lines and lines[0].endswith("in the assumptions:"), err
    for line in lines:
        assert len(line) < MAX_LINE, f"{len(line)} characters: {line[:400]}"
    for line in lines[1:]:
        if all(f in line for f in fragments):
            return line
    raise AssertionError(f"no line holds all of {fragments}:\n{err}")


@pytest.fixture
def work(tmp_path) -> Path:
    """A copy of the shipped assumptions (``tmp_path/assumptions``)."""
    import shutil

    target = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", target)
    return target


# ----------------------------------------------------------------------------- report lines
def test_assumption_error_lines_stay_short_for_every_issue():
    """The report formatter itself caps values, keys, files and rules."""
    from fundmodel.errors import Issue

    issue = Issue("f" * 1000 + ".yaml", "k" * 1000, "r" * 1000, "v" * 1000)
    text = str(AssumptionError([issue]).report())
    assert all(len(line) < 1000 for line in text.splitlines())
    assert str(issue).count("…") == 4
