"""Atomic output: results appear whole or not at all.

A run writes into a hidden staging directory beside the target and swaps it in
only when everything succeeded, so a failed or interrupted run leaves the
previous results untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def staged_directory(target: str | Path) -> Iterator[Path]:
    """Yield a staging directory that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : str or Path
        Final directory (e.g. ``reports/simulation``).

    Yields
    ------
    Path
        Empty staging directory on the same file system as ``target``.

    Notes
    -----
    On error the staging directory is removed and ``target`` is left as it was.
    The swap is two renames (old aside, new in place), so readers never see a
    half-written directory.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target.parent, target.name)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes it private; results are shared reports
    lock = hold_staging_lock(stage)  # "in use" for remove_stale_staging until this process ends
    try:
        try:
            yield stage
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rmdir(old)
            os.replace(target, old)
        os.replace(stage, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        release_staging_lock(lock)


def hold_staging_lock(folder: Path) -> int | None:
    """Hold an advisory lock on a staging folder while this process writes it (POSIX).

    The kernel releases the lock when the process ends, however it ends (``SIGKILL`` too):
    an unlocked staging folder belongs to nobody and :func:`remove_stale_staging` may
    remove it. Returns the descriptor to pass to :func:`release_staging_lock`.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks: nothing is ever considered stale
        return None
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd


def release_staging_lock(fd: int | None) -> None:
    """Release a lock taken by :func:`hold_staging_lock`."""
    if fd is not None:
        os.close(fd)


def _is_stale(folder: Path) -> bool:
    """True if no live process holds the staging lock of ``folder`` (False if unsure)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        return False
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(fd)
    return True


def remove_stale_staging(parent: str | Path, name: str) -> list[Path]:
    """Remove what killed runs left beside ``parent/name``; returns the folders removed.

    Only hidden folders of this module's own patterns are touched: ``.NAME.tmp-*``
    (a staging folder; removed when no live process holds its lock, see
    :func:`hold_staging_lock`) and ``.NAME.old-*`` (previous results set aside during the
    final two renames; removed only when ``NAME`` itself exists again and no staging
    folder of ``NAME`` is in use, otherwise left alone: it may be the only copy).
    """
    parent = Path(parent)
    removed: list[Path] = []
    in_use = False
    for stage in sorted(parent.glob(f".{glob_escape(name)}.tmp-*")):
        if not stage.is_dir() or stage.is_symlink():
            continue
        if _is_stale(stage):
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
        else:
            in_use = True
    if not in_use and (parent / name).is_dir():
        for old in sorted(parent.glob(f".{glob_escape(name)}.old-*")):
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
                removed.append(old)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped (folder names are ours, but be exact)."""
    import glob

    return glob.escape(text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file via a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON (numpy scalars and arrays allowed; NaN/inf rejected) atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, default=_json_default, allow_nan=False) + "\n")
