"""Load the assumption directory safely and validate it in one pass.

Every problem in every file is collected into one :class:`~fundmodel.errors.AssumptionError`
whose lines read ``projects/mn_ree.yaml: capex.initial_musd: must be > 0, got -5``.

Files are read defensively: a file that resolves (symbolic links followed) outside the
assumptions directory, that is not a regular file, or that is larger than
:data:`MAX_FILE_BYTES` is refused before a byte of it is read. Project files are
``projects/<id>.yaml`` or ``.yml`` in any letter case.

YAML is read with a safe loader that also rejects duplicate keys (PyYAML would
silently keep the last one), supports merge keys (``<<: *anchor``; keys written in the
mapping override merged ones, as YAML specifies) and, as YAML 1.2 does, reads only
``true``/``false`` as booleans: ``country: NO`` (Norway) is the text ``"NO"``, while
``yes``/``no``/``on``/``off`` still work in true/false fields.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import hashlib
import os
import re
import stat
import typing
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel, ValidationError

from ..errors import AssumptionError, Issue, excerpt, value_excerpt
from ..errors import did_you_mean as _hint
from .model import Assumptions
from .schema import (FX_MAX, FX_MIN, MAX_ID_CHARS, MAX_PROJECT_MUSD_PER_YEAR, PRICE_MAX_USD_PER_T, PRICE_MIN_USD_PER_T,
                     CalibrationFile, CountriesFile, FundFile, InstrumentsFile, MarketsFile, Project, Stage,
                     StressFile)

FX_FACTOR = "EURUSD"
#: largest assumption file read (bytes); the shipped files are < 40 kB
MAX_FILE_BYTES = 5 * 2**20
#: project files: ``<id>`` + one of these suffixes, compared without letter case
PROJECT_SUFFIXES = (".yaml", ".yml")


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML loader that refuses duplicate mapping keys (libyaml parser when available)."""


_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"

# YAML 1.2 booleans: only true/false. YAML 1.1 (PyYAML's default) also reads yes/no/on/off, so
# that `country: NO` (Norway) became False. Those are now text; pydantic still accepts them in
# true/false fields.
_UniqueKeyLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.resolver.Resolver.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                       list("tTfF"))


def _check_unique_keys(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool, visiting: tuple) -> None:
    """Refuse duplicate keys in ``node`` and in the mappings it merges (``<<``).

    A key written in a mapping may override a key it merges (that is what merging is for);
    two equal keys written in the same mapping, or two ``<<`` in one mapping, are errors.
    """
    seen: dict[Any, int] = {}
    merge_line = None
    for key_node, value_node in node.value:
        if key_node.tag == _MERGE_TAG:
            if merge_line is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate merge key '<<' (first at line {merge_line + 1}); "
                    "merge several mappings with one key: <<: [*a, *b]", key_node.start_mark)
            merge_line = key_node.start_mark.line
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    continue  # flatten_mapping reports it: "expected a mapping or list of mappings"
                if any(source is v for v in visiting):
                    raise yaml.constructor.ConstructorError(
                        None, None, "a mapping cannot merge itself (<<)", key_node.start_mark)
                _check_unique_keys(loader, source, deep, visiting + (node,))
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a plain value, not a {type(key).__name__}",
                key_node.start_mark,
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {value_excerpt(key)} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    _check_unique_keys(loader, node, deep, (node,))
    return loader.construct_mapping(node, deep=deep)  # SafeConstructor: merges (<<) first


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def _construct_timestamp(loader: _UniqueKeyLoader, node: yaml.ScalarNode):
    # PyYAML raises a bare ValueError (no line) for an impossible date such as 2026-13-01.
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"invalid date {value_excerpt(node.value)} ({exc})", node.start_mark) from None


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _read_bytes(root: Path, path: Path, rel: str, issues: list[Issue]) -> bytes | None:
    """The bytes of ``path``, or None with an issue: missing, not a regular file, a link that
    resolves outside ``root`` (resolved), or larger than :data:`MAX_FILE_BYTES`.

    Everything is checked before the file is opened (a link to ``/etc/passwd`` or to a 20 GB
    file is never read) and again on the open file (it may have been swapped meanwhile).
    """
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        rule = ("is a symbolic link to a file that does not exist" if path.is_symlink()
                else "file is missing")
        issues.append(Issue(rel, "", rule, show_value=False))
        return None
    except (OSError, RuntimeError) as exc:  # a loop of symbolic links, permissions
        issues.append(Issue(rel, "", f"cannot be read ({excerpt(exc, 120)})", show_value=False))
        return None
    if real != root and root not in real.parents:
        issues.append(Issue(rel, "", f"resolves to {excerpt(real, 120)}, outside the assumptions directory: "
                                     "assumption files must be inside it (copy the file in instead of "
                                     "linking to it)", show_value=False))
        return None

    def refused(info: os.stat_result) -> str | None:
        if not stat.S_ISREG(info.st_mode):
            return "is not a regular file"
        if info.st_size > MAX_FILE_BYTES:
            return (f"is {info.st_size / 2**20:,.1f} MB; an assumption file must be at most "
                    f"{MAX_FILE_BYTES / 2**20:g} MB")
        return None

    try:
        rule = refused(os.stat(real))
        if rule is None:
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(real, flags), "rb") as f:
                rule = refused(os.fstat(f.fileno()))
                data = f.read(MAX_FILE_BYTES + 1) if rule is None else b""
            if rule is None and len(data) > MAX_FILE_BYTES:
                rule = f"is larger than {MAX_FILE_BYTES / 2**20:g} MB, the limit of an assumption file"
    except OSError as exc:
        issues.append(Issue(rel, "", f"cannot be read ({excerpt(exc.strerror or exc, 120)})", show_value=False))
        return None
    if rule is not None:
        issues.append(Issue(rel, "", rule, show_value=False))
        return None
    return data


def _read_yaml(root: Path, path: Path, rel: str, issues: list[Issue],
               hashes: dict[str, str] | None = None) -> Any:
    """Parse one assumption file (checked by :func:`_read_bytes`); None with issues if it cannot be.

    ``root`` is the resolved assumptions directory; ``hashes`` receives the file's SHA-256.
    """
    raw = _read_bytes(root, path, rel, issues)
    if raw is None:
        return None
    if hashes is not None:
        hashes[rel] = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")  # as read_text()
    except UnicodeDecodeError as exc:
        issues.append(Issue(rel, "", f"cannot be read ({exc})", show_value=False))
        return None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - safe subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = excerpt(getattr(exc, "problem", None) or str(exc), 120)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
            problem += f" ({excerpt(context, 80)} at line {context_mark.line + 1})"
        if isinstance(exc, yaml.reader.ReaderError):  # a forbidden character: no mark, a two-line str()
            line_start = text.rfind("\n", 0, exc.position) + 1
            where = f"line {text.count(chr(10), 0, exc.position) + 1}, column {exc.position - line_start + 1}: "
            problem = f"character #x{exc.character:04x} is not allowed ({exc.reason})"
        issues.append(Issue(rel, "", f"invalid YAML: {where}{problem}", show_value=False))
        return None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # last resort, no line known
        issues.append(Issue(rel, "", f"invalid YAML: {excerpt(exc, 120)}", show_value=False))
        return None
    if data is None:
        issues.append(Issue(rel, "", "is empty; must be a mapping of keys to values", show_value=False))
        return None
    if isinstance(data, list):
        issues.append(Issue(rel, "", "must be a mapping of keys to values, got a list", show_value=False))
        return None
    if not isinstance(data, dict):
        issues.append(Issue(rel, "", "must be a mapping of keys to values", data))
        return None
    return data


# ----------------------------------------------------------------------------- messages
_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required but missing",
    "string_too_short": "must have at least {min_length} characters",
    "string_too_long": "must have at most {max_length} characters",
    "too_short": "must have at least {min_length} entries",
    "too_long": "must have at most {max_length} entries",
    "string_pattern_mismatch": "must match the pattern {pattern}",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "date_from_datetime_parsing": "must be a date YYYY-MM-DD",
    "date_parsing": "must be a date YYYY-MM-DD",
    "date_type": "must be a date YYYY-MM-DD",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
    "string_type": "must be text",
    "model_type": "must be a mapping",
    "finite_number": "must be a finite number",
}


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """Follow a pydantic error location down to the model that owns its last key."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            info = current.model_fields.get(part)
            if info is None:
                return None
            current = info.annotation
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
        # unwrap Optional / Annotated
        while typing.get_origin(current) in (typing.Union, getattr(__import__("types"), "UnionType", None)):
            args = [a for a in typing.get_args(current) if a is not type(None)]
            current = args[0]
        if typing.get_origin(current) is typing.Annotated:
            current = typing.get_args(current)[0]
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _issues_from_validation(rel: str, model: type[BaseModel], exc: ValidationError) -> list[Issue]:
    out = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        key = _key_path(loc)
        kind = err["type"]
        ctx = err.get("ctx") or {}
        value = err.get("input")
        show = True
        if kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            rule = "unknown key"
            if owner is not None:
                close = difflib.get_close_matches(str(loc[-1]), list(owner.model_fields), n=1, cutoff=0.5)
                rule += f" (did you mean '{close[0]}'?)" if close else (
                    f" (allowed: {', '.join(owner.model_fields)})")
            show = False
        elif kind == "missing":
            rule, show = _RULES["missing"], False
        elif kind in ("enum", "literal_error"):
            rule = f"must be one of {ctx.get('expected')}"
        elif kind == "value_error":
            rule, show = str(ctx.get("error", err["msg"])), False
        elif kind == "string_type" and (value is None or isinstance(value, (bool, int, float, _dt.date))):
            rule = _RULES[kind] + _quote_hint(loc, value)
        elif kind in _RULES:
            try:
                rule = _RULES[kind].format(**{k: _number(v) for k, v in ctx.items()})
            except (KeyError, IndexError):
                rule = err["msg"]
        else:
            rule = err["msg"][0].lower() + err["msg"][1:]
        if loc and loc[-1] == "[key]":  # a mapping key itself is wrong: name the mapping and the key
            key = _key_path(loc[:-2])
            rule = f"key {value_excerpt(value)}: {rule}"
            show = False
        out.append(Issue(rel, key, rule, value, show_value=show))
    return out


def _key_path(loc: tuple) -> str:
    """``capex.initial_musd`` from a pydantic location; a part longer than an identifier may be
    (64 characters) is cut: a 10,000-character key is not echoed."""
    return ".".join(excerpt(p, MAX_ID_CHARS) for p in loc)


def _number(value: Any) -> Any:
    """A bound as an analyst types it: ``1,000,000,000`` rather than ``1000000000.0``; other values unchanged.

    Examples
    --------
    >>> _number(1e9), _number(0.5), _number(0), _number("x")
    ('1,000,000,000', '0.5', '0', 'x')
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if float(value).is_integer() and abs(value) < 1e18:
        return f"{int(value):,}"
    return repr(float(value))


def _quote_hint(loc: tuple, value: Any) -> str:
    """Text expected, but YAML read a boolean, a number, a date or null: say how to write text."""
    if value is None:
        return " (the value is empty)"
    what = ("true/false" if isinstance(value, bool) else "a date" if isinstance(value, _dt.date)
            else "a number")
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    if loc and loc[-1] == "[key]":
        example = f'"{excerpt(shown, 40)}": ...'
    else:
        example = f'{excerpt(loc[-1] if loc else "key", 40)}: "{excerpt(shown, 40)}"'
    return f" (YAML read the unquoted value as {what}; put text in quotes, e.g. {example})"


def _validate(rel: str, model: type[BaseModel], data: Any, issues: list[Issue]):
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.extend(_issues_from_validation(rel, model, exc))
        return None


# ----------------------------------------------------------------------------- cross-file rules
def _check_fund(fund: FundFile, issues: list[Issue]) -> None:
    real = (1 + fund.discount_rate_nominal) / (1 + fund.inflation) - 1
    if real <= 0:
        issues.append(Issue(
            "fund.yaml", "discount_rate_nominal",
            f"must exceed inflation ({fund.inflation}) so that the real rate "
            f"(1+n)/(1+i)-1 is positive (it is {real:.2%})", fund.discount_rate_nominal))


def _check_markets(m: MarketsFile, issues: list[Issue]) -> None:
    rel = "markets.yaml"
    expected = list(m.materials) + [FX_FACTOR]
    factors = m.correlation.factors
    unknown = [f for f in factors if f not in expected]
    for f in unknown:
        hint = _hint(f, expected)
        issues.append(Issue(rel, "correlation.factors", f"names unknown factor '{excerpt(f, 64)}'{hint}", f, False))
    missing = [f for f in expected if f not in factors]
    if missing:
        issues.append(Issue(rel, "correlation.factors",
                            f"must list every material and {FX_FACTOR}; missing {missing}", None, False))
    if len(set(factors)) != len(factors):
        issues.append(Issue(rel, "correlation.factors", "must not repeat a factor", factors, False))
    n = len(factors)
    rows = m.correlation.matrix
    if len(rows) != n or any(len(r) != n for r in rows):
        issues.append(Issue(rel, "correlation.matrix",
                            f"must be {n}x{n} (one row and column per factor)", None, False))
        return
    c = np.asarray(rows, dtype=float)
    for i in range(n):
        if c[i, i] != 1.0:
            issues.append(Issue(rel, f"correlation.matrix[{i}][{i}]", "diagonal must be 1",
                                float(c[i, i])))
    for i in range(n):
        for j in range(i + 1, n):
            if c[i, j] != c[j, i]:
                issues.append(Issue(
                    rel, f"correlation.matrix[{i}][{j}]",
                    f"must equal matrix[{j}][{i}] ({c[j, i]}) ({factors[i]} vs {factors[j]})", float(c[i, j])))
    if not any(i.key.startswith("correlation.matrix") for i in issues):
        eig = float(np.linalg.eigvalsh(c).min())
        if eig < -1e-10:
            issues.append(Issue(rel, "correlation.matrix",
                                f"must be positive semi-definite (smallest eigenvalue {eig:.4f})",
                                None, False))
    for mat in m.export_restriction.price_uplift:
        if mat not in m.materials:
            hint = _hint(mat, list(m.materials))
            issues.append(Issue(rel, f"export_restriction.price_uplift.{mat}",
                                f"unknown material{hint}", mat, False))


def _check_project_refs(rel: str, pid: Any, country: Any, products: Any, stem: str,
                        material_ids: list[str] | None, country_ids: list[str] | None,
                        issues: list[Issue]) -> None:
    """Id = file name, country and materials exist; on raw values too, so that these are
    reported even when a file has schema errors (values of the wrong type are skipped)."""
    if isinstance(pid, str) and pid != stem:
        issues.append(Issue(rel, "id", f"must equal the file name '{excerpt(stem, 64)}'", pid))
    if country_ids is not None and isinstance(country, str) and country not in country_ids:
        hint = _hint(country, country_ids)
        issues.append(Issue(rel, "country", f"must be a country in countries.yaml{hint}", country))
    if material_ids is not None and isinstance(products, dict):
        for mat in products:
            if isinstance(mat, str) and mat not in material_ids:
                hint = _hint(mat, material_ids)
                issues.append(Issue(rel, f"products.{mat}",
                                    f"must be a material in markets.yaml{hint}", mat, False))


def _check_project(rel: str, p: Project, stem: str, material_ids: list[str] | None,
                   country_ids: list[str] | None, issues: list[Issue],
                   prices: dict[str, float] | None = None) -> None:
    _check_project_refs(rel, p.id, p.country, p.products, stem, material_ids, country_ids, issues)
    _check_project_scale(rel, p, prices, issues)
    if not p.products:
        issues.append(Issue(rel, "products", "must name at least one material", None, False))
    needs = {
        Stage.EXPLORATION: ("exploration_years", "construction_years"),
        Stage.FEASIBILITY: ("construction_years",),
        Stage.CONSTRUCTION: ("construction_years",),
        Stage.PRODUCTION: (),
    }[p.stage]
    for name in needs:
        if getattr(p.schedule, name) is None:
            issues.append(Issue(rel, f"schedule.{name}",
                                f"is required for stage '{p.stage.value}'", None, False))
    if p.stage is not Stage.PRODUCTION and p.capex.initial_musd <= 0:
        issues.append(Issue(rel, "capex.initial_musd",
                            f"must be > 0 for stage '{p.stage.value}'", p.capex.initial_musd))
    if p.stage is Stage.PRODUCTION and p.capex.acquisition_musd <= 0:
        issues.append(Issue(rel, "capex.acquisition_musd",
                            "must be > 0 for stage 'production' (the price of the equity today, "
                            "against which its return is measured)", p.capex.acquisition_musd))
    if p.stage is not Stage.PRODUCTION and (p.debt.amount_musd or 0.0) > p.capex.initial_musd:
        issues.append(Issue(rel, "debt.amount_musd",
                            f"must not exceed capex.initial_musd ({p.capex.initial_musd})",
                            p.debt.amount_musd))
    if p.stage is not Stage.EXPLORATION and p.schedule.development_probability < 1:
        issues.append(Issue(rel, "schedule.development_probability",
                            "must be 1 unless stage is 'exploration'", p.schedule.development_probability))


def _check_project_scale(rel: str, p: Project, prices: dict[str, tuple[float, str]] | None,
                         issues: list[Issue]) -> None:
    """Revenue and operating cost at full capacity within USD 100 bn a year.

    Each number may be within its own bounds while their product is not (1,000 Mt/yr of ore
    at 100 % grade and USD 1e9/t): no mine has had a tenth of that (Escondida, the largest
    copper mine, sells ~USD 10-15 bn a year). Revenue uses the highest of spot, long-run price
    and price floor of each product (``prices``; skipped when markets.yaml is invalid).
    """
    limit = MAX_PROJECT_MUSD_PER_YEAR
    ops = p.operations
    cost = ops.ore_mtpa * ops.opex_usd_per_t_ore + ops.fixed_opex_musd_per_year + p.capex.sustaining_musd_per_year
    if cost > limit:
        issues.append(Issue(rel, "operations.opex_usd_per_t_ore",
                            f"operating cost at full capacity is USD {cost:,.0f} m a year (ore_mtpa {ops.ore_mtpa:g} x "
                            f"opex + fixed + sustaining); no mine costs more than USD {limit:,.0f} m a year: check "
                            "the units (USD per t of ore, Mt of ore per year)", ops.opex_usd_per_t_ore))
    if prices is None:
        return
    for mat, prod in p.products.items():
        if mat not in prices:
            continue  # unknown material: reported by _check_project_refs
        price, price_field = prices[mat]
        revenue = ops.ore_mtpa * prod.grade_pct / 100 * prod.product_factor * prod.recovery * prod.payability * price
        if revenue > limit:
            issues.append(Issue(
                rel, f"products.{mat}",
                f"revenue at full capacity is USD {revenue:,.0f} m/yr (ore_mtpa {ops.ore_mtpa:g} x grade_pct "
                f"{prod.grade_pct:g} x recovery etc. x USD {price:,.0f}/t, {price_field}) > USD {limit:,.0f} m/yr: "
                "check the units (grade %, price per t)",
                None, False))


def _check_stress(stress: StressFile, markets: MarketsFile | None, issues: list[Issue]) -> None:
    """Stressed prices and exchange rates stay within the bounds of markets.yaml."""
    if markets is None:
        return
    for name, sc in stress.scenarios.items():
        for key, field, multipliers in (("spot_price_multipliers", "spot_usd_per_t", sc.spot_price_multipliers),
                                        ("long_run_price_multipliers", "long_run_usd_per_t",
                                         sc.long_run_price_multipliers)):
            for mat, m in multipliers.items():
                material = markets.materials.get(mat)
                if material is None:
                    continue  # reported as undefined
                stressed = getattr(material, field) * m
                if not PRICE_MIN_USD_PER_T <= stressed <= PRICE_MAX_USD_PER_T:
                    issues.append(Issue(
                        "stress.yaml", f"scenarios.{name}.{key}.{mat}",
                        f"gives a price of USD {stressed:,.6g}/t (markets.yaml materials.{mat}.{field} "
                        f"{getattr(material, field):,.6g} x {m:g}); "
                        f"must stay within {_number(PRICE_MIN_USD_PER_T)} to {_number(PRICE_MAX_USD_PER_T)} USD/t", m))
        fx = markets.fx.spot * sc.fx_spot_multiplier
        if not FX_MIN <= fx <= FX_MAX:
            issues.append(Issue("stress.yaml", f"scenarios.{name}.fx_spot_multiplier",
                                f"gives EUR/USD {fx:.4g} (markets.yaml fx.spot {markets.fx.spot:g} x "
                                f"{sc.fx_spot_multiplier:g}); "
                                f"must stay within {FX_MIN:g} to {FX_MAX:g} USD per EUR", sc.fx_spot_multiplier))


# ----------------------------------------------------------------------------- entry point
#: the files of the assumptions directory besides projects/ (the first three are required)
TOP_LEVEL_FILES = ("fund.yaml", "markets.yaml", "countries.yaml", "stress.yaml", "instruments.yaml",
                   "calibration.yaml")


def _project_files(project_dir: Path) -> list[Path]:
    """``projects/*.yaml`` and ``*.yml`` in any letter case (``kz_gallium.YAML`` is a project too).

    ``.yaml`` before ``.yml`` and lower case first: of two files with the same id, the second
    is reported as a duplicate.
    """
    if not project_dir.is_dir():
        return []
    files = [p for p in project_dir.iterdir() if p.suffix.lower() in PROJECT_SUFFIXES]
    return sorted(files, key=lambda p: (p.suffix.lower() != ".yaml", p.suffix not in PROJECT_SUFFIXES, p.name))


def _check_file_names(root: Path, issues: list[Issue]) -> None:
    """A top-level file named like one the model reads but spelt differently (``stress.yml``,
    ``Fund.yaml``) would be skipped without a word: refuse it instead."""
    expected = {Path(name).stem: name for name in TOP_LEVEL_FILES}
    for path in sorted(root.iterdir()):
        stem, suffix = path.name.rsplit(".", 1) if "." in path.name else (path.name, "")
        name = expected.get(stem.lower())
        if name is not None and f".{suffix.lower()}" in PROJECT_SUFFIXES and path.name != name:
            issues.append(Issue(path.name, "", f"must be named '{name}' (the model reads only that spelling)",
                                show_value=False))


def _names(source: Any, key: str, model: BaseModel | None) -> list[str] | None:
    """Ids defined by a file: the validated mapping, else the raw ``key`` mapping, else None."""
    if model is None:
        source = source.get(key) if isinstance(source, dict) else None
    if not isinstance(source, dict):
        return None
    return [k for k in source if isinstance(k, str)]


def load_assumptions(directory: str | Path = "assumptions") -> Assumptions:
    """Read and validate an assumptions directory.

    Parameters
    ----------
    directory : str or Path
        Folder holding ``fund.yaml``, ``markets.yaml``, ``countries.yaml`` and
        ``projects/*.yaml``.

    Returns
    -------
    Assumptions
        The validated, immutable assumptions.

    Raises
    ------
    AssumptionError
        With every problem in every file, each naming file, key path, value and rule.

    Examples
    --------
    >>> a = load_assumptions("assumptions")          # doctest: +SKIP
    >>> sorted(a.projects)[:2]                        # doctest: +SKIP
    ['au_nickel', 'br_lithium']
    """
    root = Path(directory)
    issues: list[Issue] = []
    if not root.is_dir():
        rule = ("is not a directory (give the assumptions directory)" if root.exists()
                else "assumptions directory does not exist")
        raise AssumptionError([Issue(str(root), "", rule, show_value=False)])
    real_root = root.resolve()
    hashes: dict[str, str] = {}

    def read(rel: str):
        return _read_yaml(real_root, root / rel, rel, issues, hashes)

    def present(rel: str) -> bool:  # a broken link counts: it is reported, not skipped
        return os.path.lexists(root / rel)

    _check_file_names(root, issues)
    fund = _validate("fund.yaml", FundFile, read("fund.yaml"), issues)
    markets_data = read("markets.yaml")
    markets = _validate("markets.yaml", MarketsFile, markets_data, issues)
    countries_data = read("countries.yaml")
    countries = _validate("countries.yaml", CountriesFile, countries_data, issues)
    # names the projects may refer to: from the raw files if these have errors of their own
    material_ids = _names(markets.materials if markets is not None else markets_data, "materials", markets)
    country_ids = _names(countries.countries if countries is not None else countries_data, "countries", countries)
    if fund is not None:
        _check_fund(fund, issues)
    if markets is not None:
        _check_markets(markets, issues)
    stress = None
    if present("stress.yaml"):
        stress = _validate("stress.yaml", StressFile, read("stress.yaml"), issues)
        if stress is not None:
            _check_stress(stress, markets, issues)
            for name, sc in stress.scenarios.items():
                for key, ids, known in (("spot_price_multipliers", sc.spot_price_multipliers, material_ids),
                                        ("long_run_price_multipliers", sc.long_run_price_multipliers, material_ids),
                                        ("hazard_multipliers", sc.hazard_multipliers, country_ids)):
                    for ref in ids:
                        if known is not None and ref not in known:
                            hint = _hint(ref, list(known))
                            issues.append(Issue("stress.yaml", f"scenarios.{name}.{key}.{ref}",
                                                f"is not defined in the assumptions{hint}", ref, False))
    instruments = None
    if present("instruments.yaml"):
        instruments = _validate("instruments.yaml", InstrumentsFile, read("instruments.yaml"), issues)
        if instruments is not None:
            for mat in instruments.price_floor.floors_usd_per_t:
                if material_ids is not None and mat not in material_ids:
                    hint = _hint(mat, list(material_ids))
                    issues.append(Issue("instruments.yaml", f"price_floor.floors_usd_per_t.{mat}",
                                        f"must be a material in markets.yaml{hint}", mat, False))

    calibration = None
    if present("calibration.yaml"):  # read but not hashed: the simulation does not use it
        calibration = _validate("calibration.yaml", CalibrationFile,
                                _read_yaml(real_root, root / "calibration.yaml", "calibration.yaml", issues),
                                issues)

    # the highest price a product can fetch: spot, long run or the fund's floor
    prices = None
    if markets is not None:
        floors = instruments.price_floor.floors_usd_per_t if instruments is not None else {}
        prices = {}
        for mid, m in markets.materials.items():
            # the price and where it comes from, so that the report names the file to check
            prices[mid] = max((m.spot_usd_per_t, f"markets.yaml materials.{mid}.spot_usd_per_t"),
                              (m.long_run_usd_per_t, f"markets.yaml materials.{mid}.long_run_usd_per_t"),
                              (floors.get(mid, 0.0), f"instruments.yaml price_floor.floors_usd_per_t.{mid}"))

    projects: dict[str, Project] = {}
    project_dir = root / "projects"
    files = _project_files(project_dir)
    if not project_dir.is_dir():
        issues.append(Issue("projects/", "", "directory is missing (it must hold one <id>.yaml per project)",
                            show_value=False))
    elif not files:
        issues.append(Issue("projects/", "", "must contain at least one project file (*.yaml)",
                            show_value=False))
    for path in files:
        rel = f"projects/{path.name}"
        data = read(rel)
        project = _validate(rel, Project, data, issues)
        if project is None:
            if isinstance(data, dict):
                _check_project_refs(rel, data.get("id"), data.get("country"), data.get("products"),
                                    path.stem, material_ids, country_ids, issues)
            continue
        _check_project(rel, project, path.stem, material_ids, country_ids, issues, prices)
        from ..schedule import ScheduleParameterError, resolve_project  # local: schedule imports schema only

        try:  # fills the schedule and overrun fields left out from fund.yaml: schedule_evidence
            project = resolve_project(project, fund.schedule_evidence if fund is not None else None)
        except ScheduleParameterError as exc:
            issues.append(Issue(rel, exc.key, str(exc), exc.value, exc.value is not None))
        if project.id in projects:
            issues.append(Issue(rel, "id", "is used by another project file", project.id))
        projects[project.id] = project

    if issues:
        raise AssumptionError(issues)
    from ..credit import resolve_debt  # local: the sizing rule runs the cash-flow engine on the base case

    return resolve_debt(Assumptions(
        fund=fund, markets=markets, countries=countries,
        projects=dict(sorted(projects.items())), directory=root, file_sha256=hashes,
        instruments=instruments, stress=stress, calibration=calibration,
    ))
