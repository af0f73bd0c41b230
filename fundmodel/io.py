"""Files the tool writes: whole or not at all, only its own, safe to open and never inherited.

- A step writes into a hidden staging directory beside its target and swaps it in only
  when everything succeeded (:func:`staged_directory`, :func:`swap_in`), so a failed or
  interrupted run leaves the previous results untouched; files in the target that the tool
  did not write (not in its ``manifest.json`` ``files``, :func:`owned_files`) are carried
  over, never removed.
- Text, JSON and CSV are written atomically; CSV text cells are neutralised against
  spreadsheet formula injection and numbers checked finite (:func:`write_csv`).
- Advisory locks (:func:`take_lock`) are never inherited by child processes.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import FundmodelError


#: Name of the record, in every folder the tool writes, of the files it wrote there.
MANIFEST = "manifest.json"

#: Files that versions before the ownership record wrote, per folder name. A folder made by
#: such a version has no ``files`` list in its manifest; these patterns say which of its
#: files are the tool's (anything else there is the user's and is kept).
LEGACY_OWNED = {
    "simulation": ("summary.csv", "tonnes.csv", "sensitivity.csv", "price_fan.csv", "first_production.csv",
                   "metrics.json", "scenarios/*/*.npy"),
    "portfolio": ("allocation.csv", "stress.csv", "frontier.csv", "metrics.json"),
    "memos": ("*.pdf", "*.html"),
    "prices": ("*.csv", "*.json", "*.html", "*.svg"),
    "countries": ("*.csv", "*.json", "*.html", "*.svg"),
}


@contextmanager
def staged_directory(target: str | Path, *, keep_owned: bool = False, record_files: bool = True) -> Iterator[Path]:
    """Yield a staging directory that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : str or Path
        Final directory (e.g. ``reports/simulation``).
    keep_owned : bool, default False
        Keep the files the tool wrote into ``target`` earlier that the stage does not
        replace (a partial re-render keeps the other memos). By default they are
        dropped: they belong to the results being replaced.
    record_files : bool, default True
        List the folder's files (path, size, SHA-256 of the small ones) in its
        ``manifest.json`` (:data:`MANIFEST`), the record of what the tool owns there.

    Yields
    ------
    Path
        Empty staging directory on the same file system as ``target``.

    Notes
    -----
    On error the staging directory is removed and ``target`` is left as it was. On success,
    files in ``target`` that the tool did not write (not in its manifest's ``files``) are
    linked into the stage, so a user's file beside the results is never removed; then the
    swap is two renames (old aside, new in place), so readers never see a half-written
    directory (:func:`swap_in`).
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
            aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            try:
                swap_in(stage, target, aside, keep_owned=keep_owned, record_files=record_files)
            finally:
                shutil.rmtree(aside, ignore_errors=True)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
    finally:
        release_staging_lock(lock)


def swap_in(new: Path, target: Path, aside: Path, *, keep_owned: bool = False, record_files: bool = True) -> None:
    """Replace folder ``target`` by folder ``new``, keeping every file the tool did not write.

    Parameters
    ----------
    new : Path
        The complete new folder (a stage on the same file system).
    target : Path
        The folder it replaces (may not exist).
    aside : Path
        An existing empty folder on the same file system: ``target`` is moved to
        ``aside / target.name`` before ``new`` takes its place (a run killed between
        the two renames leaves it there to be put back, see
        :func:`fundmodel.outdir.remove_stale_run_folders`). The caller removes ``aside``.
    keep_owned, record_files : bool
        As in :func:`staged_directory`.

    Raises
    ------
    UsageError
        A file the tool did not write has the name of a new result file (nothing changed).
    """
    from .errors import UsageError

    carried: dict[str, dict] = {}  # the tool's earlier files kept (keep_owned), with their records
    foreign: set[str] = set()  # the user's files, carried over and never listed as the tool's
    if target.is_dir():
        owned = owned_files(target)
        clashes = []
        for rel, path in _walk(target):
            if rel == MANIFEST:
                continue
            if rel in owned:
                if not keep_owned or (new / rel).exists() or (new / rel).is_symlink():
                    continue
                carried[rel] = owned[rel]
            elif (new / rel).exists() or (new / rel).is_symlink():
                clashes.append(str(target / rel))
                continue
            else:
                foreign.add(rel)
            _link_or_copy(path, new / rel)
        if clashes:
            raise UsageError(f"{', '.join(clashes[:3])}: not written by fundmodel but named like a result it "
                             "writes now; move or rename it (nothing was changed)")
    if record_files:
        _record_files(new, carried, foreign)
    if target.exists() or target.is_symlink():
        os.replace(target, aside / target.name)
    os.replace(new, target)


def owned_files(folder: Path) -> dict[str, dict]:
    """The files the tool wrote into ``folder``: ``{relative path: {"bytes", "sha256"?}}``.

    Read from the ``files`` list of the folder's ``manifest.json``; for folders written
    before that list existed, the files matching :data:`LEGACY_OWNED` for the folder's
    name (with no size recorded). Files not listed are the user's.
    """
    import fnmatch

    try:
        record = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    if isinstance(record, dict) and isinstance(record.get("files"), dict):
        return {str(k): v if isinstance(v, dict) else {} for k, v in record["files"].items()}
    if record is None and not (folder / MANIFEST).exists() and folder.name not in LEGACY_OWNED:
        return {}
    patterns = LEGACY_OWNED.get(folder.name, ())
    return {rel: {} for rel, _ in _walk(folder) if any(fnmatch.fnmatchcase(rel, p) for p in patterns)}


#: Files up to this size get a SHA-256 in the ownership record (larger ones, the scenario
#: arrays, are checked by size and header: hashing gigabytes would slow every run).
HASH_LIMIT_BYTES = 16 * 2**20


def _record_files(folder: Path, carried: dict[str, dict], foreign: set[str]) -> None:
    """Write ``files`` (every file now in ``folder`` that the tool owns) into its manifest."""
    path = folder / MANIFEST
    try:
        record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"package": "fundmodel"}
    except ValueError:
        record = {"package": "fundmodel"}
    files: dict[str, dict] = {}
    for rel, file in _walk(folder):
        if rel == MANIFEST or rel in foreign:
            continue
        files[rel] = carried[rel] if rel in carried else file_record(file)
    record["files"] = dict(sorted(files.items()))
    write_json_atomic(path, record)


def file_record(path: Path) -> dict:
    """Size of ``path`` and, up to :data:`HASH_LIMIT_BYTES`, its SHA-256."""
    size = path.stat().st_size
    record: dict[str, Any] = {"bytes": size}
    if size <= HASH_LIMIT_BYTES:
        import hashlib

        with open(path, "rb") as fh:
            record["sha256"] = hashlib.file_digest(fh, "sha256").hexdigest() if hasattr(
                hashlib, "file_digest") else hashlib.sha256(fh.read()).hexdigest()
    return record


def _walk(folder: Path) -> Iterator[tuple[str, Path]]:
    """``(relative posix path, path)`` of every file and symlink under ``folder``, sorted."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(root, d))):
            path = Path(root) / name
            yield path.relative_to(folder).as_posix(), path


def _link_or_copy(source: Path, dest: Path) -> None:
    """Make ``dest`` the same file as ``source`` (hard link; a copy where links fail; symlinks as symlinks)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if source.is_symlink():
        os.symlink(os.readlink(source), dest)
    else:
        try:
            os.link(source, dest)
        except OSError:
            shutil.copy2(source, dest)


# Advisory locks (``flock``) belong to the process that took them. A forked child inherits
# the descriptor and with it the lock: a worker that outlived a killed run would keep the
# output folder locked for good. Every lock descriptor is registered here and closed in
# every forked child (closing, never unlocking: the parent's lock stays intact).
_LOCK_FDS: set[int] = set()


def _close_locks_in_child() -> None:
    for fd in list(_LOCK_FDS):
        try:
            os.close(fd)
        except OSError:
            pass
    _LOCK_FDS.clear()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_close_locks_in_child)


def take_lock(path: str | Path, *, exclusive: bool = True, directory: bool = False) -> int | None:
    """Take a non-blocking advisory lock on ``path``; return its descriptor.

    Parameters
    ----------
    path : str or Path
        A lock file (created if missing) or, with ``directory``, an existing folder.
    exclusive : bool
        Exclusive (one writer) or shared (many readers) lock.
    directory : bool
        Lock a folder (opened read-only) instead of a file.

    Returns
    -------
    int or None
        The descriptor to pass to :func:`release_lock`; None where the platform has no
        advisory locks (nothing is ever judged stale then).

    Raises
    ------
    BlockingIOError
        Another live process holds a conflicting lock.

    Notes
    -----
    The descriptor is close-on-exec and closed in forked children (see above), so only
    this process holds the lock and the kernel drops it the moment this process dies, by
    whatever signal: a lock is judged stale by its holder's liveness, never by the lock
    file's existence.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks
        return None
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if directory else os.O_RDWR | os.O_CREAT
    fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    _LOCK_FDS.add(fd)
    return fd


def release_lock(fd: int | None) -> None:
    """Release a lock taken by :func:`take_lock` (closing its descriptor)."""
    if fd is not None:
        _LOCK_FDS.discard(fd)
        os.close(fd)


def hold_staging_lock(folder: Path) -> int | None:
    """Hold an exclusive lock on a staging folder while this process writes it.

    An unlocked staging folder belongs to nobody (its writer died) and
    :func:`remove_stale_staging` may remove it. Returns the descriptor to pass to
    :func:`release_staging_lock`.
    """
    return take_lock(folder, directory=True)


release_staging_lock = release_lock


def _is_stale(folder: Path) -> bool:
    """True if no live process holds the staging lock of ``folder`` (False if unsure)."""
    try:
        fd = take_lock(folder, directory=True)
    except OSError:
        return False  # a live writer holds it (or the folder vanished)
    if fd is None:  # pragma: no cover - no advisory locks
        return False
    release_lock(fd)
    return True


def remove_stale_staging(parent: str | Path, name: str) -> list[Path]:
    """Remove what killed writers left beside ``parent/name``; returns the folders removed.

    Only hidden folders of this module's own patterns are touched: ``.NAME.tmp-*`` (a
    staging folder; removed when no live process holds its lock, see
    :func:`hold_staging_lock`) and ``.NAME.old-*`` (the previous ``NAME`` set aside
    during the final two renames of :func:`swap_in`; when no staging folder of ``NAME``
    is in use, the previous folder is put back if ``NAME`` is missing, i.e. the writer
    died between the two renames, and the aside folder is removed).
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
    if in_use:
        return removed
    for old in sorted(parent.glob(f".{glob_escape(name)}.old-*")):
        if not old.is_dir() or old.is_symlink():
            continue
        previous = old / name if (old / name).is_dir() else old  # older versions set NAME itself aside
        if not (parent / name).exists() and any(previous.iterdir()):
            os.replace(previous, parent / name)
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


# ----------------------------------------------------------------------------- CSV tables
#: First characters that make a spreadsheet read a text cell as a formula (OWASP, "CSV
#: Injection"): ``=`` ``+`` ``-`` ``@``, tab and carriage return; and the quote that marks a
#: neutralised cell, so that the round trip through :func:`read_csv` is exact.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?( ?%)?$")  # -5, +1.5e3, -20 %


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula, prefixed with ``'`` (OWASP).

    Numbers, and text that is a plain number such as ``-5`` or ``-20 %``, stay as they are.

    Examples
    --------
    >>> spreadsheet_safe("=HYPERLINK(\\"http://x\\")"), spreadsheet_safe("@SUM(A1)"), spreadsheet_safe("-5")
    ('\\'=HYPERLINK("http://x")', "'@SUM(A1)", '-5')
    >>> spreadsheet_safe(-5.0), spreadsheet_safe("-20 %"), spreadsheet_safe("-2+3+cmd|' /C calc'!A0")
    (-5.0, '-20 %', "'-2+3+cmd|' /C calc'!A0")
    """
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


def write_csv(frame, path: str | Path, *, what: str | None = None) -> None:
    """Write a table as CSV, atomically, safe to open in a spreadsheet and checked finite.

    Text cells are neutralised (:func:`spreadsheet_safe`); numeric columns must hold no
    ``inf`` (empty cells, NaN, are the documented "n/a").

    Raises
    ------
    NonFiniteResult
        A numeric cell is infinite; names the table, the row and the column.
    """
    import pandas as pd

    table = frame.copy()
    for column in table.columns:
        values = table[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            bad = np.isinf(values.to_numpy(dtype=float))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                label = ", ".join(f"{k}={table.iloc[row][k]}" for k in table.columns[:2])
                raise NonFiniteResult(f"{what or Path(path).name}: {column} is {values.iloc[row]} ({label}); "
                                      "an input is out of range (see the project's and the markets' figures)")
        elif values.dtype == object or pd.api.types.is_string_dtype(values):
            table[column] = values.map(spreadsheet_safe)
    write_text_atomic(path, table.to_csv(index=False))


def read_csv(path: str | Path, **kwargs):
    """Read a CSV written by :func:`write_csv` (text exactly as it was before neutralising).

    ``keep_default_na=False``: a country code ``NA`` (Namibia) stays text; only empty
    cells are missing.
    """
    import pandas as pd

    kwargs.setdefault("keep_default_na", False)
    kwargs.setdefault("na_values", [""])
    frame = pd.read_csv(path, **kwargs)
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(_unquote)
    return frame


class NonFiniteResult(FundmodelError):
    """A computed figure overflowed (exit 2: an input is beyond what the model can represent)."""

    exit_code = 2


def reserve_file(path: str | Path) -> None:
    """Allocate the blocks of an existing (sparse) file now, so writing it cannot hit a full disk.

    Writes into a memory-mapped sparse file allocate blocks page by page; on a full disk the
    kernel answers with ``SIGBUS``, which kills the process without a message. Reserving the
    whole file first turns that into an ``ENOSPC`` error here. File systems that cannot
    reserve (``EOPNOTSUPP``) keep the free-space check of :func:`check_resources`.

    Raises
    ------
    OSError
        ``ENOSPC`` / ``EDQUOT`` / ``EFBIG``: the file does not fit.
    """
    fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    try:
        size = os.fstat(fd).st_size
        if size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise OSError(exc.errno, exc.strerror, str(path)) from None
    finally:
        os.close(fd)
