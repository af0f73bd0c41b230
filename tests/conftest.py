"""Shared fixtures of the fundmodel test suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_ASSUMPTIONS = REPO_ROOT / "assumptions"


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
