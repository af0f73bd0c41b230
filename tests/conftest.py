"""Shared fixtures of the fundmodel test suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ASSUMPTIONS = REPO_ROOT / "assumptions"


def slow_fixture(*args, **kwargs):
    """``@pytest.fixture`` for a fixture that simulates or optimises (seconds, not milliseconds).

    Every test that uses it, directly or through another fixture, is marked ``slow``
    (:func:`pytest_collection_modifyitems`), so the edit-loop lane ``pytest -m "not slow"``
    never pays for its set-up.
    """
    def mark(func):
        func._fundmodel_slow = True
        return pytest.fixture(*args, **kwargs)(func)

    if len(args) == 1 and callable(args[0]) and not kwargs:
        func, args = args[0], ()
        return mark(func)
    return mark


def pytest_collection_modifyitems(config, items):
    """Mark ``slow`` every test that uses a :func:`slow_fixture`."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("slow"):
            continue
        for name in item.fixturenames:
            defs = info.name2fixturedefs.get(name) or ()
            if any(getattr(d.func, "_fundmodel_slow", False) for d in defs):
                item.add_marker(pytest.mark.slow)
                break


@pytest.fixture(scope="session")
def shipped_assumptions_dir() -> Path:
    """The assumptions directory shipped with the repository (read-only: never edit it)."""
    assert (SHIPPED_ASSUMPTIONS / "fund.yaml").is_file(), SHIPPED_ASSUMPTIONS
    return SHIPPED_ASSUMPTIONS


@pytest.fixture
def assumptions_copy(tmp_path: Path, shipped_assumptions_dir: Path) -> Path:
    """A private, editable copy of the shipped assumptions directory (``tmp_path/assumptions``)."""
    target = tmp_path / "assumptions"
    shutil.copytree(shipped_assumptions_dir, target)
    return target


def copy_assumptions(target: Path, projects: list[str] | None = None, edits: dict | None = None) -> Path:
    """Copy the shipped assumptions to ``target``, keep only ``projects``, apply YAML ``edits``.

    ``edits`` maps a file (``"fund.yaml"``) to a function changing its parsed content in place;
    the file is written back with PyYAML (its comments are lost, which tests do not need).
    """
    import yaml

    shutil.copytree(SHIPPED_ASSUMPTIONS, target)
    if projects is not None:
        for path in (target / "projects").glob("*.yaml"):
            if path.stem not in projects:
                path.unlink()
    for rel, change in (edits or {}).items():
        data = yaml.safe_load((target / rel).read_text(encoding="utf-8"))
        change(data)
        (target / rel).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target
