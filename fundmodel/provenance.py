"""Which code made a result: version, a hash of the package's own files, git commit and state.

Results are reused only when they were made by the same code (:func:`code_identity` is part
of the "results are current" key, :func:`fundmodel.pipeline.results_are_current`), and every
manifest and memo footer records it. The hash covers the package's own source, templates
and data files as installed, so it works without git (after a non-editable
``pip install .``); the commit and a dirty flag are added where the package lives in a git
work tree.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import lru_cache
from pathlib import Path

from ._version import __version__

_PACKAGE = Path(__file__).resolve().parent

#: Files of the package that make its results (code, templates, shipped data).
_SUFFIXES = (".py", ".html", ".css", ".csv", ".md", ".json", ".yaml")


@lru_cache(maxsize=1)
def code_sha256() -> str:
    """SHA-256 over the package's own files (relative path and content, in sorted order).

    Examples
    --------
    >>> len(code_sha256())
    64
    """
    digest = hashlib.sha256()
    for path in sorted(_PACKAGE.rglob("*")):
        if path.suffix not in _SUFFIXES or not path.is_file() or "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git work tree holding the package; ``(None, None)`` outside one.

    ``dirty`` is True when the package's files differ from the commit (modified or
    untracked files under the package folder).
    """
    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(["git", "-C", str(_PACKAGE), *args], capture_output=True, text=True, timeout=5,
                                 check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout if res.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if not top or not (_PACKAGE.is_relative_to(Path(top.strip()).resolve())):
        return None, None
    # the package must be the work tree's own tracked copy: a non-editable install in an
    # ignored .venv inside the repository is not (its code need not be the commit's)
    if git("ls-files", "--error-unmatch", "--", str(_PACKAGE / "__init__.py")) is None:
        return None, None
    commit = (git("rev-parse", "HEAD") or "").strip() or None
    status = git("status", "--porcelain", "--", str(_PACKAGE))
    return commit, (None if status is None else bool(status.strip()))


def code_identity() -> dict:
    """Version, code hash, commit and dirty flag of the running package (JSON-ready)."""
    commit, dirty = git_state()
    return {"version": __version__, "code_sha256": code_sha256(), "git_commit": commit, "git_dirty": dirty}


__all__ = ["code_sha256", "git_state", "code_identity"]
