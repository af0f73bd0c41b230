"""Write calibrated numbers into the assumption files, keeping the analysts' comments.

ruamel.yaml's round-trip mode keeps comments, key order, flow style and quoting; only the
values named here change. A candidate file is validated with
:func:`fundmodel.assumptions.load_assumptions` on a temporary copy of the assumptions
directory before it replaces the original (atomically), so ``--write`` never leaves an
invalid file behind.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.tokens import CommentToken

from ..io import write_text_atomic


def round_trip_yaml() -> YAML:
    """A ruamel.yaml round-trip instance matching the layout of ``assumptions/*.yaml``."""
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096  # never re-wrap the long lines
    y.indent(mapping=2, sequence=4, offset=2)
    y.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    return y


def load_round_trip(path: str | Path) -> Any:
    """Load a YAML file for editing (comments kept)."""
    return round_trip_yaml().load(Path(path).read_text(encoding="utf-8"))


def dump_round_trip(data: Any) -> str:
    """Serialise a round-trip document to text."""
    out = io.StringIO()
    round_trip_yaml().dump(data, out)
    return out.getvalue()


def set_eol_comment(mapping: CommentedMap, key: str, text: str) -> None:
    """Replace the end-of-line comment of ``key``, keeping the full-line comments below it.

    ruamel attaches the comment lines that follow a key to that key's end-of-line token;
    only its first line (the one on the key's own line) is replaced.
    """
    items = mapping.ca.items.get(key)
    token = items[2] if items and len(items) > 2 else None
    if isinstance(token, CommentToken):
        value = token.value
        if value.startswith("#"):  # an end-of-line comment: keep what follows its first line
            rest = value.split("\n", 1)[1] if "\n" in value else ""
            token.value = f"# {text}\n{rest}"
        else:  # only full-line comments follow: put ours in front
            token.value = f"# {text}{value if value.startswith(chr(10)) else chr(10) + value}"
        return
    mapping.yaml_add_eol_comment(f"# {text}", key)


def replace_validated(directory: str | Path, rel: str, text: str) -> None:
    """Validate ``text`` as ``directory/rel`` on a temporary copy, then write it atomically.

    Raises
    ------
    AssumptionError
        When the new file would not validate (the original is left untouched).
    """
    from ..assumptions import load_assumptions

    directory = Path(directory)
    with tempfile.TemporaryDirectory(prefix="fundmodel-calib-") as tmp:
        copy = Path(tmp) / "assumptions"
        shutil.copytree(directory, copy)
        (copy / rel).write_text(text, encoding="utf-8")
        load_assumptions(copy)
    write_text_atomic(directory / rel, text)
