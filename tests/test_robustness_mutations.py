"""Bad input, measured: >= 1,000 distinct mutations of the default assumption files.

A hypothesis property (deterministic profile: ``derandomize=True``, no example database)
mutates one shipped assumption file at a time: wrong types, missing and unknown keys,
negative / zero / NaN / inf / huge numbers, empty lists and mappings, malformed YAML
(truncation, stray characters, bad indentation, unclosed brackets, duplicated lines,
non-UTF-8 bytes), duplicate project ids, non positive semi-definite correlation matrices,
hazards >= 1, schedules longer than the horizon, unknown countries and materials, and YAML
tags that construct Python objects. Every mutation must end in one of two ways:

- ``fundmodel validate`` exits 0, and then (for the first valid mutation of each kind in
  :data:`SIMULATE_KINDS`, at most :data:`MAX_SIMULATIONS`) a tiny
  ``fundmodel simulate`` (64 scenarios, 1 worker, no attribution) exits 0 with finite
  numbers in every output (an empty cell / ``null`` only where ``fundmodel.results``
  documents "n/a");
- or exit code 2 with one report whose lines each name a file (and a key or line), the
  mutated file among them; never a traceback, never exit code 1, never code run by a tag.

Distinct mutations are counted by the SHA-256 of the mutated files; the count is printed
(``pytest -s``), written to ``robustness_mutations_count.txt`` in the test's temporary
folder and asserted to be >= 1,000.

Speed: ``fundmodel validate`` re-reads every file each time; files identical to the
shipped ones are parsed once (a cache in front of ``yaml.load`` keyed on the exact text,
see :class:`_ParseOnce`), the mutated file is always parsed for real.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import fundmodel.assumptions.loader as loader
from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.errors import AssumptionError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "assumptions"
MIN_DISTINCT = 1000
MAX_EXAMPLES = int(__import__("os").environ.get("ROBUSTNESS_EXAMPLES", 1100))
MAX_SIMULATIONS = 8
#: valid mutations of these kinds are simulated (the first of each): changed numbers, long schedules,
#: hazards, horizons, one more project
SIMULATE_KINDS = {"scale", "set", "hazard", "horizon", "construction", "exploration", "rampup", "life", "tenor",
                  "depreciation", "duplicate"}
CLI_EVERY = 10
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

FILES = sorted(str(p.relative_to(SHIPPED)) for p in SHIPPED.rglob("*.yaml"))
TEXT = {rel: (SHIPPED / rel).read_text(encoding="utf-8") for rel in FILES}
DATA = {rel: yaml.load(TEXT[rel], Loader=_LOADER) for rel in FILES}  # noqa: S506 - safe loader
PROJECTS = [rel for rel in FILES if rel.startswith("projects/")]
#: projects always present in the working copy (exploration without debt, feasibility, production);
#: a mutated project file is added beside them (or replaces one), so every project file is mutated
#: but each validation reads 3-4 projects instead of 12
ANCHORS = ["projects/au_nickel.yaml", "projects/mn_ree.yaml", "projects/cd_cobalt.yaml"]
BASE_FILES = [rel for rel in FILES if not rel.startswith("projects/")] + ANCHORS


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a parsed file (mappings and lists, down to the leaves)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, prefix + (i,))
    return out


PATHS = {rel: _paths(DATA[rel]) for rel in FILES}
HAZARD_PATHS = {rel: [p for p in PATHS[rel] if p[-1] == "annual_probability"] for rel in FILES}

#: replacement values: wrong types, signs, zero, non-finite and huge numbers, empty containers
VALUES: list[Any] = [
    "abc", "", " ", "1e3", "NaN", True, False, None, [], {}, [1, 2], {"x": 1}, 0, -0.0, -1, 1, 2, 0.5,
    -1e-9, 1e-300, 1.0000001, 1e9, 1e15, 1e308, -1e308, 10**40, -(10**40), math.nan, math.inf, -math.inf,
    "2026-13-01", "2026-01-01", "XX", "unobtainium", "ZZZ", "production", "student_t", "gbm",
]
#: factors applied to a number already in the file (keeps the type, changes the magnitude)
FACTORS = [-1.0, 0.0, 1e-6, 0.5, 2.0, 10.0, 1e3, 1e6, 1e12]
TEXT_EDITS = ["truncate", "insert_char", "delete_char", "duplicate_line", "tab_indent", "drop_colon",
              "unclosed", "bad_bytes", "empty_file", "list_file"]
INSERT_CHARS = [":", "-", "[", "]", "{", "}", "'", '"', "&", "*", "!", "%", "@", "`", "|", ">", "#",
                "\t", "\n", " ", "\x00", "\ufeff", "?", ","]
#: YAML tags that would construct Python objects (or other non-plain types) if they were honoured
TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/apply:subprocess.check_output [["touch", "{marker}"]]',
    "!!python/object/new:os.system [\"touch {marker}\"]",
    '!!python/object/apply:builtins.exec ["open(r\'{marker}\', \'w\').close()"]',
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/tuple [1, 2]",
    "!!python/complex 1+2j",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!omap [{a: 1}]",
    "!<tag:yaml.org,2002:python/object/apply:os.system> [\"touch {marker}\"]",
    "!custom 1",
]


# ----------------------------------------------------------------------------- mutations
def _dump(data: Any) -> bytes:
    return yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True).encode("utf-8")


def _get(data: Any, path: tuple) -> Any:
    for part in path:
        data = data[part]
    return data


def _label(path: tuple) -> str:
    return ".".join(str(p) for p in path)


@st.composite
def structural(draw):
    """A change to the parsed content of one file, dumped back to YAML."""
    rel = draw(st.sampled_from(FILES))
    data = pickle.loads(pickle.dumps(DATA[rel]))
    path = draw(st.sampled_from(PATHS[rel]))
    parent, last = _get(data, path[:-1]), path[-1]
    old = parent[last]
    kinds = ["set", "delete"]
    if isinstance(old, (int, float)) and not isinstance(old, bool):
        kinds += ["scale", "scale"]
    if isinstance(parent, dict):
        kinds += ["unknown_key", "rename"]
    if isinstance(old, (dict, list)):
        kinds += ["empty"]
    kind = draw(st.sampled_from(kinds))
    if kind == "set":
        value = draw(st.sampled_from(VALUES))
        parent[last] = value
        what = f"{_label(path)} = {value!r}"
    elif kind == "scale":
        factor = draw(st.sampled_from(FACTORS))
        parent[last] = type(old)(old * factor) if isinstance(old, int) and factor == int(factor) else old * factor
        what = f"{_label(path)} x {factor}"
    elif kind == "delete":
        if isinstance(parent, list):
            parent.pop(last)
        else:
            del parent[last]
        what = f"delete {_label(path)}"
    elif kind == "unknown_key":
        name = draw(st.sampled_from(["zz_unknown", "note", "sorce", "Source", "1", "id"]))
        parent[name] = old
        what = f"add {_label(path[:-1] + (name,))}"
    elif kind == "rename":
        new = draw(st.sampled_from([f"{last}x", f"{last}".upper(), f"{last}_musd", f" {last}"]))
        if new in parent:
            new += "_"
        parent[new] = parent.pop(last)
        what = f"rename {_label(path)} -> {new}"
    else:
        parent[last] = type(old)()
        what = f"empty {_label(path)}"
    return rel, {rel: _dump(data)}, f"{kind}: {what}"


@st.composite
def semantic(draw):
    """Targeted mistakes: duplicate ids, non-PSD correlation, hazards >= 1, long schedules, unknown refs."""
    kind = draw(st.sampled_from(["duplicate_project", "non_psd", "hazard", "long_schedule", "unknown_ref"]))
    if kind == "duplicate_project":
        rel = draw(st.sampled_from(PROJECTS))
        stem = Path(rel).stem
        other = draw(st.sampled_from([f"projects/{stem}.yml", f"projects/{stem}_copy.yaml",
                                      f"projects/{stem}2.yaml"]))
        data = pickle.loads(pickle.dumps(DATA[rel]))
        if draw(st.booleans()) and other.endswith(".yaml"):
            data["id"] = Path(other).stem  # a copy with its own id: valid, one more project
        return other, {rel: TEXT[rel].encode(), other: _dump(data)}, f"duplicate {rel} as {other} (id {data['id']})"
    if kind == "non_psd":
        rel = "markets.yaml"
        data = pickle.loads(pickle.dumps(DATA[rel]))
        matrix = data["correlation"]["matrix"]
        n = len(matrix)
        i, j, k = draw(st.lists(st.integers(0, n - 1), min_size=3, max_size=3, unique=True))
        rho = draw(st.sampled_from([0.9, 0.95, 0.99, 1.0]))
        for a, b, v in ((i, j, rho), (j, k, rho), (i, k, -rho)):
            matrix[a][b] = matrix[b][a] = v
        if draw(st.booleans()):
            matrix[i][j] = -matrix[j][i] + 0.1 if matrix[j][i] else 0.3  # asymmetric as well
        return rel, {rel: _dump(data)}, f"non-PSD correlation ({i},{j},{k}) rho {rho}"
    if kind == "hazard":
        rel = "countries.yaml"
        data = pickle.loads(pickle.dumps(DATA[rel]))
        path = draw(st.sampled_from(HAZARD_PATHS[rel]))
        value = draw(st.sampled_from([1.0, 1.0 + 1e-12, 1.5, 2.0, 100.0, 0.999999, 0.99]))
        _get(data, path[:-1])[path[-1]] = value
        return rel, {rel: _dump(data)}, f"hazard {_label(path)} = {value}"
    if kind == "long_schedule":
        choice = draw(st.sampled_from(["construction", "exploration", "rampup", "life", "horizon", "tenor",
                                       "depreciation"]))
        years = draw(st.sampled_from([20, 39, 40, 41, 60, 80, 100, 1000]))
        if choice == "horizon":
            rel = "fund.yaml"
            data = pickle.loads(pickle.dumps(DATA[rel]))
            data["horizon_years"] = draw(st.sampled_from([5, 6, 10, 11, 0, 4, 81]))
            return rel, {rel: _dump(data)}, f"horizon {data['horizon_years']}"
        rel = draw(st.sampled_from(PROJECTS))
        data = pickle.loads(pickle.dumps(DATA[rel]))
        if choice in ("construction", "exploration", "rampup"):
            data["schedule"][f"{choice}_years"] = {"min": years / 2, "mode": years * 0.75, "max": years}
        elif choice == "life":
            data["operations"]["mine_life_years"] = years
        elif choice == "tenor":
            data["debt"]["tenor_years"] = min(years, 40)
            if "amount_musd" in data["debt"]:  # else sized by rule (debt.sizing)
                data["debt"]["amount_musd"] = max(data["debt"]["amount_musd"], 1)
        else:
            data["capex"]["depreciation_years"] = years
        return rel, {rel: _dump(data)}, f"{choice} {years} years in {rel}"
    # unknown references
    target = draw(st.sampled_from(["country", "material", "stress_country", "stress_material", "floor",
                                   "correlation_factor"]))
    name = draw(st.sampled_from(["XX", "mn", "Mongolia", "ndpr2", "NdPr", "lithum", ""]))
    if target in ("country", "material"):
        rel = draw(st.sampled_from(PROJECTS))
        data = pickle.loads(pickle.dumps(DATA[rel]))
        if target == "country":
            data["country"] = name
        else:
            data["products"][name] = next(iter(data["products"].values()))
    elif target.startswith("stress"):
        rel = "stress.yaml"
        data = pickle.loads(pickle.dumps(DATA[rel]))
        scenario = next(iter(data["scenarios"].values()))
        key = "hazard_multipliers" if target == "stress_country" else "spot_price_multipliers"
        scenario.setdefault(key, {})[name] = 2.0
    elif target == "floor":
        rel = "instruments.yaml"
        data = pickle.loads(pickle.dumps(DATA[rel]))
        data["price_floor"]["floors_usd_per_t"][name] = 1000.0
    else:
        rel = "markets.yaml"
        data = pickle.loads(pickle.dumps(DATA[rel]))
        data["correlation"]["factors"][draw(st.integers(0, len(data["correlation"]["factors"]) - 1))] = name
    return rel, {rel: _dump(data)}, f"unknown {target} {name!r} in {rel}"


@st.composite
def textual(draw):
    """Changes to the raw text: malformed YAML and object-constructing tags."""
    rel = draw(st.sampled_from(FILES))
    text = TEXT[rel]
    kind = draw(st.sampled_from(TEXT_EDITS + ["tag", "tag"]))
    lines = text.splitlines(keepends=True)
    if kind == "truncate":
        pos = draw(st.integers(0, len(text) - 1))
        new, what = text[:pos].encode(), f"truncate at {pos}"
    elif kind == "insert_char":
        pos, ch = draw(st.integers(0, len(text))), draw(st.sampled_from(INSERT_CHARS))
        new, what = (text[:pos] + ch + text[pos:]).encode(), f"insert {ch!r} at {pos}"
    elif kind == "delete_char":
        pos = draw(st.integers(0, len(text) - 1))
        new, what = (text[:pos] + text[pos + 1:]).encode(), f"delete char {pos}"
    elif kind == "duplicate_line":
        i = draw(st.integers(0, len(lines) - 1))
        new, what = "".join(lines[:i + 1] + lines[i:]).encode(), f"duplicate line {i + 1}"
    elif kind == "tab_indent":
        i = draw(st.integers(0, len(lines) - 1))
        new, what = "".join(lines[:i] + ["\t" + lines[i]] + lines[i + 1:]).encode(), f"tab before line {i + 1}"
    elif kind == "drop_colon":
        i = draw(st.integers(0, len(lines) - 1))
        new, what = "".join(lines[:i] + [lines[i].replace(": ", " ", 1)] + lines[i + 1:]).encode(), \
            f"drop colon line {i + 1}"
    elif kind == "unclosed":
        i = draw(st.integers(0, len(lines) - 1))
        opener = draw(st.sampled_from(["[", "{", '"', "'"]))
        new, what = "".join(lines[:i] + [lines[i].replace(": ", ": " + opener, 1)] + lines[i + 1:]).encode(), \
            f"unclosed {opener} line {i + 1}"
    elif kind == "bad_bytes":
        pos = draw(st.integers(0, len(text)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\x80\x80", b"\xed\xa0\x80"]))
        raw = text.encode()
        new, what = raw[:pos] + junk + raw[pos:], f"bytes {junk!r} at {pos}"
    elif kind == "empty_file":
        new, what = draw(st.sampled_from([b"", b"\n", b"# only a comment\n", b"---\n", b"~\n", b"null\n"])), \
            "empty"
        what += f" {new!r}"
    elif kind == "list_file":
        new = draw(st.sampled_from([b"- 1\n- 2\n", b"42\n", b"just text\n", b"[]\n", b"{}\n", b"---\na: 1\n---\nb: 2\n"]))
        what = f"content {new!r}"
    else:  # tag on the value of one "key: value" line (or a whole-file tag)
        candidates = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w]+: \S", line)]
        i = draw(st.sampled_from(candidates))
        tag = draw(st.sampled_from(TAGS))
        key = lines[i].split(":", 1)[0]
        new = "".join(lines[:i] + [f"{key}: {tag}\n"] + lines[i + 1:]).encode()
        what = f"tag {tag!r} at line {i + 1}"
    return rel, {rel: new}, f"{kind}: {what}"


MUTATIONS = st.one_of(structural(), structural(), semantic(), textual())


# ----------------------------------------------------------------------------- checks
class _ParseOnce:
    """``yaml`` module stand-in for the loader: text identical to a shipped file is parsed once.

    Everything else (the mutated file, every other attribute) goes to the real module.
    """

    def __init__(self):
        # shared, not copied: the loader only reads what it parsed (checked by :meth:`untouched`)
        self._parsed = {TEXT[rel]: pickle.loads(pickle.dumps(DATA[rel])) for rel in FILES}

    def load(self, text, Loader):  # noqa: N803 - yaml's signature
        data = self._parsed.get(text)
        if data is not None:
            return data
        return yaml.load(text, Loader=Loader)  # noqa: S506 - the loader's safe subclass

    def untouched(self) -> bool:
        """True if no parsed file was modified in place by the loader."""
        return all(self._parsed[TEXT[rel]] == DATA[rel] for rel in FILES)

    def __getattr__(self, name):
        return getattr(yaml, name)


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def validate_in_process(directory: Path) -> tuple[int, str, str]:
    """``cli.main(["validate", ...])`` minus argparse: exit code 2 and the report for bad input.

    Any other exception propagates and fails the test (the command line would exit 1).
    """
    try:
        load_assumptions(directory)
    except AssumptionError as exc:
        return exc.exit_code, "", exc.report() + "\n"
    return 0, f"{directory}: valid (...)\n", ""


REPORT_HEAD = re.compile(r"^(\d+) problems? in the assumptions:$")
ISSUE_LINE = re.compile(r"^  - ([\w./-]+\.ya?ml|projects/|[^:]+): .")


def check_refusal(code: int, out: str, err: str, rel: str, what: str) -> None:
    """Exit 2, one report, every line naming a file; the mutated file is named."""
    assert code == 2, f"{what}: exit {code}\n{err}"
    assert "Traceback" not in out + err and "internal error" not in err, f"{what}:\n{err}"
    lines = err.rstrip("\n").splitlines()
    head = REPORT_HEAD.match(lines[0]) if lines else None
    assert head, f"{what}: not one report:\n{err}"
    assert int(head.group(1)) == len(lines) - 1 >= 1, f"{what}:\n{err}"
    for line in lines[1:]:
        assert ISSUE_LINE.match(line) and re.search(r"\.ya?ml|projects/", line), f"{what}: {line!r}"
    # the mutated file (or, for a file that names ids others use, the rule text) is named
    assert rel in err or Path(rel).name in err, f"{what}: {rel} not named:\n{err}"


#: "n/a" figures documented in fundmodel.results: no debt, never produces, no IRR, horizon <= 10 y (or
#: shorter than the 10 / 20 years of prob_within_*), no break-even long-run price in the bracket
NA_KEYS = re.compile(r"^(min_dscr_p50|first_production_year_p\d+|equity_irr_p\d+|.*_y11_20|debt_recovery_rate_mean(_se)?"
                     r"|default_share_value_above_debt(_se)?|default_share_full_recovery|base_case_min_dscr|prob_within_\d+y|debt_market_rate|loan_value_to_principal"
                     r"|breakeven_long_run_price(_se)?"
                     # standard errors need two groups of scenarios (a one-scenario run has none)
                     r"|.*_se(_meur)?)$")


def assert_finite_json(node: Any, na_keys: re.Pattern, label: str, key: str = "") -> None:
    """Every number in a parsed JSON document is finite; ``null`` only under keys matching ``na_keys``."""
    if isinstance(node, dict):
        for k, v in node.items():
            assert_finite_json(v, na_keys, label, str(k))
    elif isinstance(node, list):
        for v in node:
            assert_finite_json(v, na_keys, label, key)
    elif node is None:
        assert na_keys.match(key), f"{label} {key} is null (NaN?)"
    elif isinstance(node, float):
        assert math.isfinite(node), f"{label} {key} = {node}"


def check_finite_outputs(sim: Path, what: str) -> None:
    """No NaN/inf anywhere; empty/null only for the documented n/a figures."""
    for name in ("summary.csv", "tonnes.csv", "first_production.csv", "price_fan.csv"):
        df = pd.read_csv(sim / name)
        for col in df.columns:
            if pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]):
                values = df[col].to_numpy(dtype=float)
                bad = ~pd.notna(values) if NA_KEYS.match(col) else ~(pd.notna(values) & (abs(values) < math.inf))
                if NA_KEYS.match(col):
                    values = values[pd.notna(values)]
                    assert (abs(values) < math.inf).all(), f"{what}: {name}:{col} not finite"
                else:
                    assert not bad.any(), f"{what}: {name}:{col} has NaN/inf: {df.loc[bad].head(3)}"
            elif col in ("project", "material"):
                assert df[col].notna().all(), f"{what}: {name}:{col} empty"

    def refuse(token):
        raise AssertionError(f"{what}: {token} in metrics.json")

    metrics = json.loads((sim / "metrics.json").read_text(), parse_constant=refuse)

    assert_finite_json(metrics, NA_KEYS, f"{what}: metrics.json")


# ----------------------------------------------------------------------------- the property
@pytest.mark.slow
def test_every_mutation_validates_and_runs_or_is_refused_with_file_and_key(tmp_path, monkeypatch, capsys):
    work = tmp_path / "assumptions"
    for rel in BASE_FILES:
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(TEXT[rel], encoding="utf-8")
    marker = tmp_path / "code-was-run"
    parse_once = _ParseOnce()
    monkeypatch.setattr(loader, "yaml", parse_once)
    seen: set[str] = set()
    outcome = {"valid": 0, "refused": 0, "simulated": 0}
    simulated_kinds: set[str] = set()

    @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=True,
              phases=(Phase.explicit, Phase.generate, Phase.shrink),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.filter_too_much])
    @given(MUTATIONS)
    def check(mutation):
        rel, files, what = mutation
        files = {name: content.replace(b"{marker}", str(marker).encode()) for name, content in files.items()}
        digest = hashlib.sha256(b"".join(n.encode() + b"\0" + c for n, c in sorted(files.items()))).hexdigest()
        seen.add(digest)
        try:
            for name, content in files.items():
                (work / name).write_bytes(content)
            if len(seen) % CLI_EVERY == 0:  # the command line itself, now and then
                code, out, err = run_cli(["validate", "--assumptions", str(work)])
            else:  # what `fundmodel validate` does, without building its argument parser each time
                code, out, err = validate_in_process(work)
            assert not marker.exists(), f"{what}: a YAML tag ran code"
            if code == 0:
                outcome["valid"] += 1
                assert err == "" and "valid (" in out, f"{what}: {out}{err}"
                kind = what.split()[0].rstrip(":")
                if (outcome["simulated"] < MAX_SIMULATIONS and kind in SIMULATE_KINDS
                        and kind not in simulated_kinds):
                    simulated_kinds.add(kind)
                    outcome["simulated"] += 1
                    sim_out = tmp_path / f"sim{outcome['simulated']}"
                    code, out, err = run_cli(["simulate", "--assumptions", str(work), "--scenarios", "64",
                                              "--workers", "1", "--no-attribution", "--quiet",
                                              "--out", str(sim_out)])
                    assert code == 0, f"{what}: valid but simulate exits {code}:\n{err}"
                    check_finite_outputs(sim_out / "simulation", what)
                    shutil.rmtree(sim_out)
            else:
                outcome["refused"] += 1
                check_refusal(code, out, err, rel, what)
        finally:
            for name in files:
                if name in BASE_FILES:
                    (work / name).write_text(TEXT[name], encoding="utf-8")
                else:
                    (work / name).unlink(missing_ok=True)

    check()
    assert parse_once.untouched(), "the loader modified parsed YAML in place: the parse cache is invalid"
    count = len(seen)
    report = (f"robustness mutations: {count} distinct tried ({outcome['valid']} valid, "
              f"{outcome['simulated']} of them simulated: {', '.join(sorted(simulated_kinds))}; "
              f"{outcome['refused']} refused with exit 2)")
    (tmp_path / "robustness_mutations_count.txt").write_text(report + "\n")
    with capsys.disabled():
        print("\n" + report)
    assert count >= MIN_DISTINCT, report
    assert outcome["refused"] > 0 and outcome["simulated"] > 0, report
