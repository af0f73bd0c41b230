"""Every class of bad input gives exit code 2 and a report naming file, key, value and rule.

Each test copies the shipped ``assumptions/`` directory (fixture ``assumptions_copy``),
breaks one thing (or several, on purpose), runs ``fundmodel validate`` in-process through
:func:`fundmodel.cli.main` (a few through a real subprocess, to prove that no traceback
reaches the user) and checks the exit code and the lines of the report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from fundmodel.cli import main

PROJECT = "projects/mn_ree.yaml"  # feasibility stage, country MN, product ndpr
HEADER = re.compile(r"^(\d+) problems? in the assumptions:$")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: faster
_YAML_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


# ----------------------------------------------------------------------------- helpers
def _load(directory: Path, rel: str) -> Any:
    return yaml.load((directory / rel).read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506


def _dump(directory: Path, rel: str, data: Any) -> None:
    (directory / rel).write_text(yaml.dump(data, Dumper=_YAML_DUMPER, sort_keys=False, allow_unicode=True),
                                 encoding="utf-8")


def _parent(data: Any, dotted: str) -> tuple[Any, str]:
    *head, last = dotted.split(".")
    for part in head:
        data = data[part]
    return data, last


def set_key(dotted: str, value: Any) -> Callable[[Any], None]:
    """Mutation: set (or add) ``dotted`` to ``value``."""
    def mutate(data: Any) -> None:
        parent, last = _parent(data, dotted)
        parent[last] = value
    return mutate


def del_key(dotted: str) -> Callable[[Any], None]:
    """Mutation: remove ``dotted``."""
    def mutate(data: Any) -> None:
        parent, last = _parent(data, dotted)
        del parent[last]
    return mutate


def rename_key(dotted: str, new_name: str) -> Callable[[Any], None]:
    """Mutation: rename the last key of ``dotted`` (keeps its value), e.g. to simulate a typo."""
    def mutate(data: Any) -> None:
        parent, last = _parent(data, dotted)
        parent[new_name] = parent.pop(last)
    return mutate


def edit_yaml(directory: Path, rel: str, *mutations: Callable[[Any], None]) -> None:
    data = _load(directory, rel)
    for mutate in mutations:
        mutate(data)
    _dump(directory, rel, data)


def edit_text(directory: Path, rel: str, old: str, new: str) -> str:
    """Replace exactly one occurrence of ``old`` in a file; returns the new text."""
    path = directory / rel
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {rel}"
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return text


def line_of(text: str, needle: str) -> int:
    """1-based number of the first line containing ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not found")


def validate(directory: Path | str, capsys) -> tuple[int, str, str]:
    """Run ``fundmodel validate --assumptions DIR`` in-process: (exit code, stdout, stderr)."""
    code = main(["validate", "--assumptions", str(directory)])
    out, err = capsys.readouterr()
    return code, out, err


def problems(err: str) -> list[str]:
    """The problem lines of a report, checking that the header count matches them."""
    lines = err.rstrip("\n").splitlines()
    assert lines, "empty report"
    match = HEADER.match(lines[0])
    assert match, f"report does not start with the problem count:\n{err}"
    items = [line[len("  - "):] for line in lines[1:]]
    assert all(line.startswith("  - ") for line in lines[1:]), err
    assert int(match.group(1)) == len(items), err
    return items


def assert_reported(err: str, *fragments: str) -> str:
    """Assert that ONE problem line contains every fragment; return that line."""
    for item in problems(err):
        if all(f in item for f in fragments):
            return item
    raise AssertionError(f"no problem line contains all of {fragments!r}; report:\n{err}")


def assert_clean_failure(code: int, out: str, err: str) -> None:
    """Exit code 2, a report on stderr, no traceback, no success line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in err + out
    assert "internal error" not in err
    assert "valid (" not in out


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m fundmodel.cli ARGS`` in a real subprocess."""
    return subprocess.run([sys.executable, "-m", "fundmodel.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


# ----------------------------------------------------------------------------- success path
def test_shipped_assumptions_are_valid(shipped_assumptions_dir, capsys):
    code, out, err = validate(shipped_assumptions_dir, capsys)
    n_projects = len(list((shipped_assumptions_dir / "projects").glob("*.yaml")))
    assert code == 0, err
    assert err == ""
    assert f"valid ({n_projects} projects" in out


def test_yaml_round_trip_of_the_copy_stays_valid(assumptions_copy, capsys):
    """The harness itself (safe_load + safe_dump of every file) introduces no error."""
    for path in [*assumptions_copy.glob("*.yaml"), *assumptions_copy.glob("projects/*.yaml")]:
        rel = str(path.relative_to(assumptions_copy))
        _dump(assumptions_copy, rel, _load(assumptions_copy, rel))
    code, out, err = validate(assumptions_copy, capsys)
    assert code == 0, err


# ----------------------------------------------------------------------------- one bad value
# (file, mutations, fragments that ONE line of the report must contain: file, key, value, rule)
SCHEMA_CASES = [
    # --- negative / zero where positive is required
    pytest.param(PROJECT, [set_key("capex.initial_musd", -5)],
                 [PROJECT, "capex.initial_musd", "must be >= 0", "got -5"], id="negative-capex"),
    pytest.param(PROJECT, [set_key("stage", "feasibility"), set_key("capex.initial_musd", 0),
                           set_key("debt.amount_musd", 0)],
                 [PROJECT, "capex.initial_musd", "must be > 0 for stage 'feasibility'", "got 0"],
                 id="zero-capex-before-production"),
    pytest.param(PROJECT, [set_key("operations.ore_mtpa", 0)],
                 [PROJECT, "operations.ore_mtpa", "must be > 0", "got 0"], id="zero-throughput"),
    pytest.param("markets.yaml", [set_key("materials.copper.spot_usd_per_t", -10812)],
                 ["markets.yaml", "materials.copper.spot_usd_per_t", "must be >= 1", "got -10812"],
                 id="negative-price"),
    pytest.param("fund.yaml", [set_key("horizon_years", 2)],
                 ["fund.yaml", "horizon_years", "must be >= 5", "got 2"], id="horizon-too-short"),
    pytest.param("fund.yaml", [set_key("simulation.scenarios", 0)],
                 ["fund.yaml", "simulation.scenarios", "must be >= 1", "got 0"], id="zero-scenarios"),
    pytest.param("fund.yaml", [set_key("simulation.seed", -1)],
                 ["fund.yaml", "simulation.seed", "must be >= 0", "got -1"], id="negative-seed"),
    # --- shares and probabilities out of range
    pytest.param(PROJECT, [set_key("offtake.eu_share", 1.5)],
                 [PROJECT, "offtake.eu_share", "must be <= 1", "got 1.5"], id="share-above-1"),
    pytest.param("countries.yaml", [set_key("countries.MN.events.expropriation.compensation_share", -0.1)],
                 ["countries.yaml", "countries.MN.events.expropriation.compensation_share",
                  "must be >= 0", "got -0.1"], id="share-below-0"),
    pytest.param("countries.yaml", [set_key("countries.MN.events.unrest.annual_probability", 1.0)],
                 ["countries.yaml", "countries.MN.events.unrest.annual_probability",
                  "must be < 1", "got 1.0"], id="probability-1"),
    pytest.param("markets.yaml", [set_key("fx.volatility", 5)],
                 ["markets.yaml", "fx.volatility", "must be <= 0.5", "got 5"], id="volatility-too-high"),
    # --- wrong type
    pytest.param(PROJECT, [set_key("operations.ore_mtpa", "abc")],
                 [PROJECT, "operations.ore_mtpa", "must be a number", "got 'abc'"], id="text-for-number"),
    pytest.param(PROJECT, [set_key("debt.tenor_years", 12.5)],
                 [PROJECT, "debt.tenor_years", "must be a whole number", "got 12.5"], id="float-for-int"),
    pytest.param(PROJECT, [set_key("operations.ore_mtpa", [1, 2])],
                 [PROJECT, "operations.ore_mtpa", "must be a number"], id="list-for-number"),
    pytest.param(PROJECT, [set_key("capex", 550)],
                 [PROJECT, "capex", "must be a mapping", "got 550"], id="number-for-mapping"),
    pytest.param("fund.yaml", [set_key("valuation_date", "soon")],
                 ["fund.yaml", "valuation_date", "must be a date YYYY-MM-DD", "got 'soon'"],
                 id="text-for-date"),
    pytest.param("fund.yaml", [set_key("simulation.risk_attribution", "maybe")],
                 ["fund.yaml", "simulation.risk_attribution", "must be true or false", "got 'maybe'"],
                 id="text-for-bool"),
    pytest.param(PROJECT, [set_key("name", 42)],
                 [PROJECT, "name", "must be text", "got 42"], id="number-for-text"),
    pytest.param(PROJECT, [set_key("operations.ore_mtpa", float("inf"))],
                 [PROJECT, "operations.ore_mtpa", "must be a finite number", "got inf"], id="infinite"),
    pytest.param(PROJECT, [set_key("capex.closure_musd", float("nan"))],
                 [PROJECT, "capex.closure_musd", "must be a finite number", "got nan"], id="nan"),
    # --- missing required keys
    pytest.param(PROJECT, [del_key("capex.sustaining_musd_per_year")],
                 [PROJECT, "capex.sustaining_musd_per_year", "is required but missing"],
                 id="missing-nested-key"),
    pytest.param("fund.yaml", [del_key("horizon_years")],
                 ["fund.yaml", "horizon_years", "is required but missing"], id="missing-top-key"),
    pytest.param(PROJECT, [del_key("schedule.rampup_years.max")],
                 [PROJECT, "schedule.rampup_years.max", "is required but missing"],
                 id="missing-triangular-bound"),
    pytest.param("markets.yaml", [del_key("export_restriction")],
                 ["markets.yaml", "export_restriction", "is required but missing"],
                 id="missing-section"),
    # --- unknown keys (typos) with a "did you mean"
    pytest.param(PROJECT, [rename_key("capex.initial_musd", "inital_musd")],
                 [PROJECT, "capex.inital_musd", "unknown key", "did you mean 'initial_musd'?"],
                 id="typo-nested-key"),
    pytest.param(PROJECT, [set_key("contry", "MN")],
                 [PROJECT, "contry", "unknown key", "did you mean 'country'?"], id="unknown-top-key-project"),
    pytest.param("fund.yaml", [set_key("horizon_yrs", 40)],
                 ["fund.yaml", "horizon_yrs", "unknown key", "did you mean 'horizon_years'?"],
                 id="unknown-top-key-fund"),
    pytest.param("countries.yaml", [rename_key("countries.MN.events.unrest.annual_probability",
                                               "anual_probability")],
                 ["countries.yaml", "countries.MN.events.unrest.anual_probability", "unknown key",
                  "did you mean 'annual_probability'?"], id="typo-inside-keyed-mapping"),
    pytest.param(PROJECT, [set_key("zzqqxx", 1)],
                 [PROJECT, "zzqqxx", "unknown key (allowed: id, name, country, stage"],
                 id="unknown-key-no-close-match"),
    # --- ordered triangular distributions
    pytest.param(PROJECT, [set_key("schedule.rampup_years", {"min": 3, "mode": 2, "max": 4})],
                 [PROJECT, "schedule.rampup_years", "must satisfy min <= mode <= max",
                  "min=3", "mode=2"], id="triangular-min-above-mode"),
    pytest.param("countries.yaml", [set_key("countries.MN.permitting_years", {"min": 2, "mode": 3, "max": 1})],
                 ["countries.yaml", "countries.MN.permitting_years", "must satisfy min <= mode <= max",
                  "max=1"], id="triangular-mode-above-max"),
    # --- invalid enums and literals
    pytest.param(PROJECT, [set_key("stage", "mining")],
                 [PROJECT, "stage", "must be one of", "'exploration'", "'production'", "got 'mining'"],
                 id="enum-stage"),
    pytest.param("fund.yaml", [set_key("simulation.sampling", "random")],
                 ["fund.yaml", "simulation.sampling", "must be one of", "'sobol'", "got 'random'"],
                 id="enum-sampling"),
    pytest.param("fund.yaml", [set_key("simulation.copula", "clayton")],
                 ["fund.yaml", "simulation.copula", "must be one of", "'student_t'", "got 'clayton'"],
                 id="enum-copula"),
    pytest.param("markets.yaml", [set_key("materials.nickel.model", "ou")],
                 ["markets.yaml", "materials.nickel.model", "must be one of", "'log_ou'", "got 'ou'"],
                 id="enum-price-model"),
    pytest.param("fund.yaml", [set_key("reporting_currency", "USD")],
                 ["fund.yaml", "reporting_currency", "must be one of", "'EUR'", "got 'USD'"],
                 id="literal-currency"),
    pytest.param("countries.yaml", [set_key("countries.MN.iso3", "mng")],
                 ["countries.yaml", "countries.MN.iso3", "must match the pattern", "got 'mng'"],
                 id="pattern-iso3"),
    # --- rules across fields of one file
    pytest.param(PROJECT, [set_key("debt.grace_years", 12), set_key("debt.tenor_years", 12)],
                 [PROJECT, "debt.grace_years", "must be < tenor_years (12)", "got 12"],
                 id="grace-not-below-tenor"),
    pytest.param(PROJECT, [set_key("stage", "feasibility"), set_key("capex.initial_musd", 550),
                           set_key("debt.amount_musd", 600)],
                 [PROJECT, "debt.amount_musd", "must not exceed capex.initial_musd (550.0)", "got 600"],
                 id="debt-above-capex"),
    pytest.param(PROJECT, [set_key("stage", "production")],
                 [PROJECT, "capex.acquisition_musd", "must be > 0 for stage 'production'", "got 0.0"],
                 id="production-needs-entry-price"),
    pytest.param(PROJECT, [set_key("stage", "exploration"), set_key("schedule.exploration_years", None)],
                 [PROJECT, "schedule.exploration_years", "is required for stage 'exploration'"],
                 id="exploration-needs-exploration-years"),
    pytest.param(PROJECT, [set_key("stage", "feasibility"), del_key("schedule.construction_years")],
                 [PROJECT, "schedule.construction_years", "is required for stage 'feasibility'"],
                 id="feasibility-needs-construction-years"),
    pytest.param(PROJECT, [set_key("stage", "feasibility"), set_key("schedule.development_probability", 0.6)],
                 [PROJECT, "schedule.development_probability", "must be 1 unless stage is 'exploration'",
                  "got 0.6"], id="development-probability-after-exploration"),
    pytest.param("fund.yaml", [set_key("discount_rate_nominal", 0.02), set_key("inflation", 0.02)],
                 ["fund.yaml", "discount_rate_nominal", "must exceed inflation (0.02)", "got 0.02"],
                 id="discount-not-above-inflation"),
    pytest.param("fund.yaml", [set_key("discount_rate_nominal", 0.01)],
                 ["fund.yaml", "discount_rate_nominal", "must exceed inflation", "got 0.01"],
                 id="discount-below-inflation"),
    pytest.param(PROJECT, [set_key("capex.overrun_mean", 0.4), set_key("capex.overrun_shift", -0.5),
                           set_key("capex.overrun_prob_ge_100pct", 0.45)],
                 [PROJECT, "capex.overrun_mean", "attainable range is 1.1254 to 1.3746 among projects over budget",
                  "got 0.4"],
                 id="overrun-tail-unattainable"),
    pytest.param(PROJECT, [set_key("capex.overrun_mean", 0.0), set_key("capex.overrun_shift", 0.0)],
                 [PROJECT, "capex.overrun_shift", "-0.01", "got 0"],
                 id="overrun-no-underrun"),
    pytest.param("markets.yaml", [set_key("materials.copper.mean_reversion_per_year", 0)],
                 ["markets.yaml", "materials.copper", "mean_reversion_per_year must be > 0 for model 'log_ou'",
                  "got 0"], id="log-ou-without-mean-reversion"),
    # --- cross-file references
    pytest.param(PROJECT, [set_key("country", "MNG")],
                 [PROJECT, "country", "must be a country in countries.yaml", "did you mean 'MN'?",
                  "got 'MNG'"], id="unknown-country"),
    pytest.param(PROJECT, [set_key("country", "mn")],
                 [PROJECT, "country", "must be a country in countries.yaml", "did you mean 'MN'?",
                  "got 'mn'"], id="country-wrong-case"),
    pytest.param(PROJECT, [set_key("country", "Atlantis")],
                 [PROJECT, "country", "must be a country in countries.yaml, got 'Atlantis'"],
                 id="unknown-country-no-close-match"),
    pytest.param(PROJECT, [rename_key("products.ndpr", "ndprr")],
                 [PROJECT, "products.ndprr", "must be a material in markets.yaml", "did you mean 'ndpr'?"],
                 id="unknown-material"),
    pytest.param(PROJECT, [set_key("products", {})],
                 [PROJECT, "products", "must name at least one material"], id="no-products"),
    pytest.param(PROJECT, [set_key("id", "mn_rare")],
                 [PROJECT, "id", "must equal the file name 'mn_ree'", "got 'mn_rare'"], id="id-not-file-name"),
    pytest.param(PROJECT, [set_key("id", "MN-REE")],
                 [PROJECT, "id", "must match the pattern", "got 'MN-REE'"], id="id-bad-pattern"),
    pytest.param("markets.yaml", [set_key("export_restriction.price_uplift.galium", 1.0)],
                 ["markets.yaml", "export_restriction.price_uplift.galium", "unknown material",
                  "did you mean 'gallium'?"], id="uplift-unknown-material"),
]


@pytest.mark.parametrize(("rel", "mutations", "fragments"), SCHEMA_CASES)
def test_bad_value_is_reported_with_file_key_value_and_rule(assumptions_copy, capsys, rel, mutations,
                                                            fragments):
    edit_yaml(assumptions_copy, rel, *mutations)
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    line = assert_reported(err, *fragments)
    assert line.startswith(f"{rel}: "), line
    # a single broken value gives a single, specific problem (no cascade into other files)
    assert all(item.startswith(rel) for item in problems(err)), err


def test_typo_reports_unknown_key_and_the_missing_intended_key(assumptions_copy, capsys):
    edit_yaml(assumptions_copy, PROJECT, rename_key("capex.initial_musd", "inital_musd"))
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, PROJECT, "capex.inital_musd", "did you mean 'initial_musd'?")
    assert_reported(err, PROJECT, "capex.initial_musd", "is required but missing")
    assert len(problems(err)) == 2


# ----------------------------------------------------------------------------- correlation matrix
def _swap_correlation(mutate: Callable[[dict], None]) -> Callable[[Any], None]:
    def mutation(data: Any) -> None:
        mutate(data["correlation"])
    return mutation


def _asymmetric(c: dict) -> None:
    c["matrix"][0][1], c["matrix"][1][0] = 0.9, 0.3


def _not_psd(c: dict) -> None:
    # copper (5), nickel (6), cobalt (2): x~y, y~z but x anti-correlated with z is impossible
    m = c["matrix"]
    for i, j, v in [(5, 6, 0.99), (2, 5, 0.99), (2, 6, -0.99)]:
        m[i][j] = m[j][i] = v


def _wrong_size(c: dict) -> None:
    c["matrix"] = [row[:-1] for row in c["matrix"]]  # 9 rows of 8


def _diagonal(c: dict) -> None:
    c["matrix"][3][3] = 0.9


def _factor_missing(c: dict) -> None:
    k = c["factors"].index("EURUSD")  # drop its row and column too
    del c["factors"][k], c["matrix"][k]
    for row in c["matrix"]:
        del row[k]


def _factor_typo(c: dict) -> None:
    c["factors"][c["factors"].index("ndpr")] = "ndp"


def _factor_repeated(c: dict) -> None:
    c["factors"][1] = c["factors"][0]


@pytest.mark.parametrize(("mutate", "fragments"), [
    pytest.param(_asymmetric, ["correlation.matrix[0][1]", "must equal matrix[1][0] (0.3)", " vs ", "got 0.9"],
                 id="not-symmetric"),
    pytest.param(_not_psd, ["correlation.matrix", "must be positive semi-definite", "smallest eigenvalue -"],
                 id="not-psd"),
    pytest.param(_wrong_size, ["correlation.matrix", "(one row and column per factor)"], id="wrong-size"),
    pytest.param(_diagonal, ["correlation.matrix[3][3]", "diagonal must be 1", "got 0.9"], id="diagonal-not-1"),
    pytest.param(_factor_missing, ["correlation.factors", "must list every material and EURUSD",
                                   "missing ['EURUSD']"], id="factor-missing"),
    pytest.param(_factor_typo, ["correlation.factors", "names unknown factor 'ndp'", "did you mean 'ndpr'?"],
                 id="factor-unknown"),
    pytest.param(_factor_repeated, ["correlation.factors", "must not repeat a factor"], id="factor-repeated"),
])
def test_bad_correlation_matrix(assumptions_copy, capsys, mutate, fragments):
    edit_yaml(assumptions_copy, "markets.yaml", _swap_correlation(mutate))
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    line = assert_reported(err, "markets.yaml", *fragments)
    assert line.startswith("markets.yaml: correlation."), line
    assert "np.float64" not in err  # values print as plain numbers


# ----------------------------------------------------------------------------- bad YAML files
def test_duplicate_key_is_refused_with_both_lines(assumptions_copy, capsys):
    text = edit_text(assumptions_copy, PROJECT, "stage: feasibility\n", "stage: feasibility\nstage: production\n")
    first = line_of(text, "stage: feasibility")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, PROJECT, "invalid YAML", f"line {first + 1}", "duplicate key 'stage'",
                    f"first at line {first}")


def test_duplicate_nested_key_is_refused(assumptions_copy, capsys):
    text = edit_text(assumptions_copy, "fund.yaml", "  seed: 20260101", "  seed: 20260101\n  seed: 7")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, "fund.yaml", "invalid YAML", f"line {line_of(text, 'seed: 7')}", "duplicate key 'seed'")


@pytest.mark.parametrize(("old", "new", "bad_line_marker"), [
    pytest.param("country: MN\n", "country: [MN\n", "country: [MN", id="unclosed-bracket"),
    pytest.param("stage: feasibility\n", "stage: feasibility\n\tcolour: red\n", "\tcolour", id="tab-indent"),
    pytest.param("  ore_mtpa: 3.0", "  ore_mtpa: 3.0\n ore: {", " ore: {", id="bad-indent"),
])
def test_invalid_yaml_syntax_gives_the_line(assumptions_copy, capsys, old, new, bad_line_marker):
    text = edit_text(assumptions_copy, PROJECT, old, new)
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    # the error position, or the start of the construct left open (for an unclosed bracket
    # the parser only notices on the next line)
    assert_reported(err, PROJECT, "invalid YAML", f"line {line_of(text, bad_line_marker)}")


def test_impossible_date_is_a_yaml_error_not_an_internal_error(assumptions_copy, capsys):
    text = edit_text(assumptions_copy, "fund.yaml", "valuation_date: 2026-01-01", "valuation_date: 2026-13-01")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, "fund.yaml", f"line {line_of(text, 'valuation_date')}", "invalid date '2026-13-01'")


def test_unhashable_key_is_a_yaml_error_not_an_internal_error(assumptions_copy, capsys):
    path = assumptions_copy / PROJECT
    path.write_text(path.read_text(encoding="utf-8") + "? [a, b]\n: 1\n", encoding="utf-8")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, PROJECT, "invalid YAML", "line ", "a key must be a plain value, not a list")


@pytest.mark.parametrize(("content", "fragments"), [
    pytest.param("", ["is empty; must be a mapping of keys to values"], id="empty"),
    pytest.param("# only a comment\n", ["is empty"], id="only-comment"),
    pytest.param("- a\n- b\n", ["must be a mapping of keys to values, got a list"], id="list"),
    pytest.param("just text\n", ["must be a mapping of keys to values, got 'just text'"], id="scalar"),
])
def test_file_that_is_not_a_mapping(assumptions_copy, capsys, content, fragments):
    (assumptions_copy / PROJECT).write_text(content, encoding="utf-8")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    line = assert_reported(err, PROJECT, *fragments)
    assert line.startswith(f"{PROJECT}: "), line
    assert len(problems(err)) == 1


def test_file_that_is_not_utf8(assumptions_copy, capsys):
    (assumptions_copy / "countries.yaml").write_bytes(b"countries: \xff\xfe\n")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, "countries.yaml", "cannot be read", "utf-8")


PYTHON_TAGS = [
    pytest.param('name: !!python/object/apply:os.system ["touch {marker}"]\n', id="os-system"),
    pytest.param("!!python/object/apply:os.system\n- touch {marker}\n", id="whole-file-os-system"),
    pytest.param('name: !!python/object/apply:builtins.exec ["open(r\'{marker}\', \'w\').close()"]\n',
                 id="builtins-exec"),
    pytest.param("name: !!python/name:os.system\n", id="python-name"),
]


@pytest.mark.parametrize("payload", PYTHON_TAGS)
def test_python_object_tag_is_refused_without_running_code(assumptions_copy, tmp_path, capsys, payload):
    marker = tmp_path / "code-was-run"
    path = assumptions_copy / PROJECT
    content = payload.format(marker=marker)
    if payload.startswith("name:"):  # replaces the project's name, the rest of the file is kept
        text = path.read_text(encoding="utf-8")
        content += "".join(line + "\n" for line in text.splitlines() if not line.startswith("name:"))
    path.write_text(content, encoding="utf-8")
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, PROJECT, "invalid YAML", "line 1", "could not determine a constructor", "python/")
    assert not marker.exists(), "the YAML tag ran code"


# ----------------------------------------------------------------------------- missing files and folders
@pytest.mark.parametrize("rel", ["fund.yaml", "markets.yaml", "countries.yaml"])
def test_missing_file(assumptions_copy, capsys, rel):
    (assumptions_copy / rel).unlink()
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, f"{rel}: file is missing")


def test_missing_projects_directory(assumptions_copy, capsys):
    for path in (assumptions_copy / "projects").iterdir():
        path.unlink()
    (assumptions_copy / "projects").rmdir()
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, "projects/", "directory is missing")


def test_no_project_files(assumptions_copy, capsys):
    for path in (assumptions_copy / "projects").glob("*.yaml"):
        path.rename(path.with_suffix(".yaml.bak"))  # not a project file any more
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, "projects/", "must contain at least one project file (*.yaml)")


def test_assumptions_directory_that_does_not_exist(tmp_path, capsys):
    target = tmp_path / "does-not-exist"
    code, out, err = validate(target, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, f"{target}: assumptions directory does not exist")


def test_assumptions_path_that_is_a_file(tmp_path, capsys):
    target = tmp_path / "fund.yaml"
    target.write_text("name: x\n", encoding="utf-8")
    code, out, err = validate(target, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, f"{target}: is not a directory (give the assumptions directory)")


def test_stray_yml_project_file_is_validated_too(assumptions_copy, capsys):
    src = assumptions_copy / PROJECT
    (assumptions_copy / "projects" / "mn_ree_copy.yml").write_text(src.read_text(encoding="utf-8"))
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    assert_reported(err, "projects/mn_ree_copy.yml", "id", "must equal the file name 'mn_ree_copy'",
                    "got 'mn_ree'")


# ----------------------------------------------------------------------------- every problem at once
def test_several_errors_in_different_files_are_all_reported(assumptions_copy, capsys):
    edit_yaml(assumptions_copy, "fund.yaml", set_key("horizon_years", 2))
    edit_yaml(assumptions_copy, "markets.yaml", set_key("materials.copper.volatility", 5))
    edit_yaml(assumptions_copy, "countries.yaml", set_key("countries.MN.iso3", "mng"))
    edit_yaml(assumptions_copy, PROJECT, set_key("capex.initial_musd", -5), set_key("country", "XX"))
    edit_yaml(assumptions_copy, "projects/cl_lithium.yaml", set_key("offtake.eu_shares", 0.5))
    (assumptions_copy / "projects" / "uz_copper.yaml").write_text("- not a mapping\n")

    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    expected = [
        ("fund.yaml", "horizon_years", "got 2"),
        ("markets.yaml", "materials.copper.volatility", "got 5"),
        ("countries.yaml", "countries.MN.iso3", "got 'mng'"),
        # schema error AND cross-file error of the same project file (the country is checked
        # against the raw countries.yaml even though that file has an error of its own)
        (PROJECT, "capex.initial_musd", "got -5"),
        (PROJECT, "country", "got 'XX'"),
        ("projects/cl_lithium.yaml", "offtake.eu_shares", "did you mean 'eu_share'?"),
        ("projects/uz_copper.yaml", "must be a mapping"),
    ]
    for fragments in expected:
        assert_reported(err, *fragments)
    assert err.splitlines()[0] == f"{len(expected)} problems in the assumptions:"
    assert len(problems(err)) == len(expected)


def test_several_errors_in_one_file_are_all_reported(assumptions_copy, capsys):
    edit_yaml(assumptions_copy, PROJECT, set_key("capex.initial_musd", -5), set_key("offtake.eu_share", 1.5),
              set_key("stage", "mining"), del_key("fiscal.tax_rate"), rename_key("products.ndpr", "ndprr"),
              set_key("id", "other"))
    code, out, err = validate(assumptions_copy, capsys)
    assert_clean_failure(code, out, err)
    expected = [
        ("capex.initial_musd", "got -5"), ("offtake.eu_share", "got 1.5"), ("stage", "got 'mining'"),
        ("fiscal.tax_rate", "is required but missing"), ("products.ndprr", "did you mean 'ndpr'?"),
        ("id", "must equal the file name 'mn_ree'", "got 'other'"),
    ]
    for fragments in expected:
        assert_reported(err, PROJECT, *fragments)
    assert len(problems(err)) == len(expected)


# ----------------------------------------------------------------------------- simulate: bad arguments
@pytest.mark.parametrize(("args", "fragments"), [
    pytest.param(["--scenarios", "0"], ["--scenarios", "must be >= 1", "got 0"], id="scenarios-0"),
    pytest.param(["--scenarios", "-3"], ["--scenarios", "must be >= 1", "got -3"], id="scenarios-negative"),
    pytest.param(["--scenarios", "abc"], ["--scenarios", "must be a whole number", "got 'abc'"],
                 id="scenarios-abc"),
    pytest.param(["--scenarios", "1e4"], ["--scenarios", "must be a whole number", "got '1e4'"],
                 id="scenarios-float"),
    pytest.param(["--scenarios"], ["--scenarios", "expected one argument"], id="scenarios-no-value"),
    pytest.param(["--seed", "-1"], ["--seed", "must be >= 0", "got -1"], id="seed-negative"),
    pytest.param(["--seed", "x"], ["--seed", "must be a whole number", "got 'x'"], id="seed-text"),
    pytest.param(["--sampling", "random"], ["--sampling", "invalid choice", "'random'"], id="sampling-unknown"),
    pytest.param(["--copula", "clayton"], ["--copula", "invalid choice", "'clayton'"], id="copula-unknown"),
    pytest.param(["--chunk-size", "0"], ["--chunk-size", "must be >= 1", "got 0"], id="chunk-size-0"),
    pytest.param(["--scenaros", "10"], ["unrecognized arguments", "--scenaros"], id="unknown-option"),
])
def test_simulate_bad_argument(tmp_path, capsys, args, fragments):
    out_dir = tmp_path / "out"
    code = main(["simulate", *args, "--out", str(out_dir), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in err
    line = err.strip()
    assert "\n" not in line, err  # one line
    assert line.startswith("error: fundmodel"), line
    for fragment in fragments:
        assert fragment in line, line
    assert not out_dir.exists()


@pytest.mark.parametrize("argv", [
    pytest.param([], id="no-command"),
    pytest.param(["simulat"], id="unknown-command"),
    pytest.param(["validate", "--assumption", "x"], id="validate-unknown-option"),
])
def test_bad_command_line(capsys, argv):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err


def test_simulate_with_bad_assumptions_exits_2_and_writes_nothing(assumptions_copy, tmp_path, capsys):
    edit_yaml(assumptions_copy, PROJECT, set_key("capex.initial_musd", -5))
    out_dir = tmp_path / "out"
    code = main(["simulate", "--assumptions", str(assumptions_copy), "--scenarios", "64", "--quiet",
                 "--no-attribution", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert_clean_failure(code, out, err)
    assert_reported(err, PROJECT, "capex.initial_musd", "got -5")
    assert not (out_dir / "simulation").exists()


def test_internal_error_is_exit_1_with_one_line(monkeypatch, capsys):
    import fundmodel.cli as cli

    def boom(args):
        raise RuntimeError("something broke")

    monkeypatch.delenv("FUNDMODEL_DEBUG", raising=False)
    monkeypatch.setitem(cli.COMMANDS, "validate", boom)
    code = main(["validate"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.count("\n") == 1, err
    assert err.startswith("internal error: RuntimeError: something broke")
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- real subprocesses
class _Run:
    """A ``python -m fundmodel.cli`` subprocess started in the background; ``.result()`` waits."""

    def __init__(self, args: list[str], cwd: Path, **context: Any):
        self.context = context
        self._out, self._err = cwd / "stdout.txt", cwd / "stderr.txt"
        with self._out.open("w") as out, self._err.open("w") as err:
            self._proc = subprocess.Popen([sys.executable, "-m", "fundmodel.cli", *args], cwd=cwd,
                                          stdout=out, stderr=err, stdin=subprocess.DEVNULL)

    def result(self) -> subprocess.CompletedProcess:
        code = self._proc.wait(timeout=120)
        return subprocess.CompletedProcess(self._proc.args, code, self._out.read_text(), self._err.read_text())

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


@pytest.fixture(scope="module")
def background_cli_runs(tmp_path_factory, shipped_assumptions_dir):
    """The slow subprocess runs (each imports numpy/scipy), started together so they overlap."""
    def fresh(name: str) -> Path:
        work = tmp_path_factory.mktemp(name)
        shutil.copytree(shipped_assumptions_dir, work / "assumptions")
        return work

    runs = {}
    # 1. valid copy, default --assumptions (./assumptions): exit 0
    work = fresh("valid")
    runs["valid"] = _Run(["validate"], cwd=work)
    # 2. errors in three files, a missing file and a Python tag: exit 2, every problem, no code run
    work = fresh("broken")
    a, marker = work / "assumptions", work / "code-was-run"
    edit_yaml(a, PROJECT, set_key("capex.initial_musd", -5))
    edit_yaml(a, "fund.yaml", set_key("simulation.sampling", "random"))
    (a / "markets.yaml").unlink()
    edit_text(a, "projects/kz_gallium.yaml", "\nname: ",
              f'\nname: !!python/object/apply:os.system ["touch {marker}"]\ntitle: ')
    runs["broken"] = _Run(["validate", "--assumptions", str(a)], cwd=work, marker=marker)
    # 3. tiny simulation: exit 0 and a summary
    work = fresh("smoke")
    runs["smoke"] = _Run(["simulate", "--assumptions", str(work / "assumptions"), "--scenarios", "64",
                          "--no-attribution", "--quiet", "--out", str(work / "out")],
                         cwd=work, out_dir=work / "out")
    yield runs
    for run in runs.values():
        run.stop()


@pytest.mark.slow
def test_subprocess_validate_valid_copy_exits_0(background_cli_runs):
    proc = background_cli_runs["valid"].result()
    assert proc.returncode == 0, proc.stderr
    assert "assumptions: valid (" in proc.stdout
    assert proc.stderr == ""


@pytest.mark.slow
def test_subprocess_validate_many_errors_exits_2_without_traceback(background_cli_runs):
    run = background_cli_runs["broken"]
    proc = run.result()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout == ""
    assert_reported(proc.stderr, "fund.yaml", "simulation.sampling", "got 'random'")
    assert_reported(proc.stderr, "markets.yaml: file is missing")
    assert_reported(proc.stderr, "projects/kz_gallium.yaml", "invalid YAML", "python/object/apply:os.system")
    assert_reported(proc.stderr, PROJECT, "capex.initial_musd", "must be >= 0", "got -5")
    assert len(problems(proc.stderr)) == 4
    assert not run.context["marker"].exists(), "the YAML tag ran code"


@pytest.mark.slow
def test_subprocess_simulate_smoke_exits_0(background_cli_runs):
    run = background_cli_runs["smoke"]
    proc = run.result()
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert (run.context["out_dir"] / "simulation" / "summary.csv").is_file()


@pytest.mark.parametrize("args", [
    pytest.param(["--scenarios", "abc"], id="scenarios-abc"),
    pytest.param(["--sampling", "random"], id="sampling-unknown"),
])
def test_subprocess_simulate_bad_argument_exits_2_without_traceback(tmp_path, args):
    proc = run_cli("simulate", *args, "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: fundmodel simulate: argument " + args[0]), proc.stderr
    assert proc.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
