"""The output folder: one lock, the tool's own files, and a staged swap that keeps the rest.

Rules every command follows (``docs/robustness.md``):

- **One lock.** A command that writes ``OUT`` holds ``OUT/.lock`` exclusively; one that only
  reads it holds it shared (:func:`output_folder`). A second writer, or a reader while a
  writer works, is refused at once (exit 2) with the holder's pid and command. The lock is
  an advisory ``flock`` that no child process inherits (:func:`fundmodel.io.take_lock`):
  the kernel drops it when the holding process dies, however it dies, so a killed run never
  locks the folder out.
- **Only a fundmodel folder.** ``OUT`` must not exist, be empty (``.gitkeep`` and a killed
  run's lock and staging folders aside; other hidden files such as ``.git`` count), or be a
  fundmodel output (it holds :data:`MARKER` or a fundmodel
  manifest). Anything else (``/``, a home folder, a file, a read-only folder) is refused
  with exit 2 before anything is written.
- **Only the tool's files are replaced.** Results are staged in ``OUT/.run.tmp-*`` and swapped
  in folder by folder (:func:`staged_run`, :func:`fundmodel.io.swap_in`); files in a result
  folder that the tool did not write (not listed in its ``manifest.json``) are carried over.
- **Stale leftovers are the tool's.** Under the exclusive lock no other process writes
  ``OUT``, so staging folders found there were left by a killed run and are removed (a
  result folder set aside mid-swap is put back first).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import UsageError
from .io import release_lock, remove_stale_staging, swap_in, take_lock, write_json_atomic

#: Result folders of a run, in the order they are moved into place.
STEPS = ("simulation", "portfolio", "memos")

#: Hidden file that marks a folder as a fundmodel output (written on the first write).
MARKER = ".fundmodel-output"

#: Lock file of an output folder.
LOCK = ".lock"

# Locks this process holds, by resolved folder: a nested command (``memo`` re-running the
# model) re-uses its own lock instead of colliding with it.
_HELD: dict[Path, list] = {}


@contextmanager
def output_folder(path: str | Path, *, write: bool, command: str | None = None) -> Iterator[Path]:
    """Hold the lock of output folder ``path`` for the ``with`` block.

    Parameters
    ----------
    path : str or Path
        The output root (``--out``).
    write : bool
        Exclusive lock for a command that writes; shared for one that only reads.
    command : str, optional
        Recorded in the lock file, so a refused second command can say who holds it.

    Yields
    ------
    Path
        The folder.

    Raises
    ------
    UsageError
        The folder is a file, not writable, a non-empty folder that is not a fundmodel
        output, or held by another process (exit 2; nothing was written).
    """
    out = Path(path)
    check_output_path(out, write=write)
    if write:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot create the output folder: {exc.strerror or exc}") from None
    elif not out.is_dir():
        raise UsageError(f"{out}: no such output folder")
    key = out.resolve()
    held = _HELD.get(key)
    if held is not None:
        if write and not held[1]:
            raise UsageError(f"{out}: held for reading by this command; cannot write it")
        held[2] += 1
        try:
            yield out
        finally:
            held[2] -= 1
        return
    try:
        fd = take_lock(out / LOCK if write else _lock_path_for_reading(out), exclusive=write)
    except BlockingIOError:
        raise UsageError(f"{out}: {_holder(out)}; wait for it to finish or choose another --out") from None
    except OSError as exc:
        raise UsageError(f"{out}: cannot take the folder's lock {out / LOCK} ({exc.strerror or exc})") from None
    _HELD[key] = [fd, write, 1]
    try:
        if write:
            _record_holder(fd, command)
            remove_stale_run_folders(out)
            if not (out / MARKER).exists():
                write_json_atomic(out / MARKER, {"package": "fundmodel",
                                                 "note": "output folder of fundmodel; see manifest.json"})
        yield out
    finally:
        del _HELD[key]
        release_lock(fd)


def _lock_path_for_reading(out: Path) -> Path:
    lock = out / LOCK
    if not lock.exists() and not os.access(out, os.W_OK):
        raise UsageError(f"{out}: no lock file and the folder is read-only; it was not written by fundmodel")
    return lock


def _record_holder(fd: int | None, command: str | None) -> None:
    """Write who holds the lock into the lock file (read by a refused second command)."""
    if fd is None:
        return
    text = json.dumps({"pid": os.getpid(), "command": command or "fundmodel",
                       "since_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")})
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def _holder(out: Path) -> str:
    """Who holds the lock: the last writer recorded in it if that process still lives, else a
    reader (readers share the lock and do not record themselves; a dead pid is never named)."""
    try:
        info = json.loads((out / LOCK).read_text(encoding="utf-8"))
        pid = int(info["pid"])
        os.kill(pid, 0)  # the last writer still alive: it is the holder (else only readers are)
        return f"another fundmodel process (pid {pid}: {str(info['command'])[:120]}, since " \
               f"{str(info['since_utc'])[:25]}) is writing to this folder"
    except ProcessLookupError:
        return "another fundmodel process is reading this folder"
    except (OSError, ValueError, KeyError, TypeError):
        return "another fundmodel process is writing to this folder"


def check_output_path(out: Path, *, write: bool) -> None:
    """Refuse an output path the tool must not write into (see the module docstring)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: is a file, not a folder")
    if not write:
        return
    if not out.exists():
        parent = out.absolute().parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"--out {out}: cannot create it, {parent} is not writable (read-only file system or "
                             "permissions)")
        return
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: the folder is not writable (read-only file system or permissions)")
    resolved = out.resolve()
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        what = "the root folder" if resolved == Path(resolved.anchor) else "your home folder"
        raise UsageError(f"--out {out}: is {what} and is not a fundmodel output; choose an empty or new folder "
                         "(fundmodel never writes into other folders)")
    if out.name in STEPS and is_fundmodel_output(out.parent):
        raise UsageError(f"--out {out}: is the {out.name}/ folder of the fundmodel output {out.parent}; "
                         f"give the output folder itself (--out {out.parent})")
    if is_fundmodel_output(out):
        return
    # hidden entries count as the tool's own only if they are: a placeholder (.gitkeep) or a
    # killed run's lock and staging folders; anything else (.git, .bashrc) is someone else's
    foreign = sorted(p.name for p in out.iterdir() if not _own_hidden(p.name))
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise UsageError(f"--out {out}: the folder is not empty ({shown}) and is not a fundmodel output; "
                         "choose an empty or new folder (fundmodel never writes into other folders)")


def _own_hidden(name: str) -> bool:
    """True for the hidden names an empty output folder may hold (see :func:`check_output_path`)."""
    return name in (".gitkeep", ".keep", LOCK, MARKER) or any(
        name.startswith(f".{prefix}.") for prefix in ("run", *STEPS))


def is_fundmodel_output(out: Path) -> bool:
    """True if ``out`` holds :data:`MARKER`, or a manifest written by fundmodel (older versions)."""
    if (out / MARKER).is_file():
        return True
    for manifest in (out / "manifest.json", out / "simulation" / "manifest.json"):
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("package") == "fundmodel":
                return True
        except (OSError, ValueError, AttributeError):
            continue
    return False


@contextmanager
def staged_run(out_dir: str | Path, *, keep_owned: Iterable[str] = ()) -> Iterator[Path]:
    """A staging output root whose result folders replace those of ``out_dir`` on success.

    Call it inside :func:`output_folder` (``write=True``).

    Parameters
    ----------
    out_dir : str or Path
        The output root.
    keep_owned : iterable of str
        Result folders (e.g. ``("memos",)``) whose earlier files are kept where the stage
        does not replace them (a partial re-render); in the others the tool's earlier
        files are dropped with the results they belong to. Files the tool did not write
        are always kept.

    Yields
    ------
    Path
        Empty folder on the same file system; write ``simulation/``, ``portfolio/``,
        ``memos/`` and ``manifest.json`` into it.

    Notes
    -----
    On error nothing in ``out_dir`` changes. On success each result folder present in the
    stage is swapped in (:func:`fundmodel.io.swap_in`), then ``manifest.json``.
    """
    out = Path(out_dir)
    keep = set(keep_owned)
    stage = Path(tempfile.mkdtemp(prefix=".run.tmp-", dir=out))
    try:
        yield stage
        aside = Path(tempfile.mkdtemp(prefix=".run.old-", dir=out))
        for step in STEPS:
            if (stage / step).exists():
                swap_in(stage / step, out / step, aside, keep_owned=step in keep)
        if (stage / "manifest.json").exists():
            os.replace(stage / "manifest.json", out / "manifest.json")
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def remove_stale_run_folders(out: Path) -> list[Path]:
    """Remove the staging folders of killed runs (call with the exclusive lock held).

    ``.run.tmp-*`` (a run's stage) and ``.run.old-*`` (previous result folders set aside
    during the final renames) in ``out``: under the exclusive lock no other process writes
    ``out``, so these were left by a killed run. A result folder found only in a
    ``.run.old-*`` (the run died between the two renames of that folder) is moved back into
    place first, so the previous results are never lost. Then the stale stages of single
    steps (``.simulation.tmp-*``, ...; :func:`fundmodel.io.remove_stale_staging`).
    Nothing else is touched.
    """
    removed: list[Path] = []
    for old in sorted(out.glob(".run.old-*")):
        if not old.is_dir() or old.is_symlink():
            continue
        for step in STEPS:
            if (old / step).is_dir() and not (out / step).exists():
                os.replace(old / step, out / step)
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    for stage in sorted(out.glob(".run.tmp-*")):
        if stage.is_dir() and not stage.is_symlink():
            shutil.rmtree(stage, ignore_errors=True)
            removed.append(stage)
    for step in STEPS:
        removed += remove_stale_staging(out, step)
    return removed


__all__ = ["STEPS", "MARKER", "output_folder", "check_output_path", "is_fundmodel_output", "staged_run",
           "remove_stale_run_folders"]
