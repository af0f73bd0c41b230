"""Limits on what the assumption files may contain (issue 12, items 6, 7 and the input part of 9).

- Every number of every schema has a lower and an upper bound and says why (a test walks the
  pydantic models: a new field without both fails here); absurd values (1e300, 1e20, 1e12,
  1e-300) are refused with exit code 2 naming file, key, value and rule, and values at the
  corners of the bounds still simulate and optimise to finite numbers.
- Files: a link that resolves outside the assumptions folder, a file larger than 5 MB, a FIFO
  or a broken link are refused before anything is read; no message echoes more than a short
  excerpt of a value, a key or a file.
- Project files in any letter case of ``.yaml``/``.yml``; YAML merge keys; bounded free text;
  YAML 1.1 booleans (``country: NO``).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import types
import typing
from pathlib import Path
from typing import Annotated, Any

import annotated_types as at
import pytest
import yaml
from pydantic import BaseModel, Field

import fundmodel.assumptions.schema as schema
from fundmodel.assumptions import load_assumptions
from fundmodel.cli import main
from fundmodel.errors import AssumptionError

ROOT = Path(__file__).resolve().parent.parent
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
PROJECT = "projects/kz_gallium.yaml"
#: longest acceptable line of a report, whatever the input
MAX_LINE = 300


# ----------------------------------------------------------------------------- helpers
def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def validate(directory: Path) -> tuple[int, str, str]:
    return run_cli(["validate", "--assumptions", str(directory)])


def edit(directory: Path, rel: str, change) -> None:
    path = directory / rel
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)  # noqa: S506 - safe loader
    change(data)
    path.write_text(yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True), encoding="utf-8")


def replace_line(directory: Path, rel: str, start: str, new: str) -> None:
    """Replace the one line of ``rel`` that starts with ``start`` (keeps the file's YAML spelling)."""
    path = directory / rel
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(hits) == 1, (start, hits)
    lines[hits[0]] = new + "\n"
    path.write_text("".join(lines), encoding="utf-8")


def refused(code: int, out: str, err: str, *fragments: str) -> str:
    """Exit 2, one report, each line short; one line holds every fragment. Returns that line."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err and "internal error" not in err, err
    lines = err.rstrip("\n").splitlines()
    assert lines and lines[0].endswith("in the assumptions:"), err
    for line in lines:
        assert len(line) < MAX_LINE, f"{len(line)} characters: {line[:400]}"
    for line in lines[1:]:
        if all(f in line for f in fragments):
            return line
    raise AssertionError(f"no line holds all of {fragments}:\n{err}")


@pytest.fixture
def work(tmp_path) -> Path:
    """A copy of the shipped assumptions (``tmp_path/assumptions``)."""
    import shutil

    target = tmp_path / "assumptions"
    shutil.copytree(ROOT / "assumptions", target)
    return target


# ----------------------------------------------------------------------------- report lines
def test_assumption_error_lines_stay_short_for_every_issue():
    """The report formatter itself caps values, keys, files and rules."""
    from fundmodel.errors import Issue

    issue = Issue("f" * 1000 + ".yaml", "k" * 1000, "r" * 1000, "v" * 1000)
    text = str(AssumptionError([issue]).report())
    assert all(len(line) < 1000 for line in text.splitlines())
    assert str(issue).count("…") == 4


# ----------------------------------------------------------------------------- every number is bounded
def _leaves(annotation: Any, metadata: list, description: str | None, path: str):
    """(path, type, constraints, description) of every int/float/str inside a field's annotation:
    through Optional, Annotated, dict keys and values, list and tuple items."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        metadata = list(metadata)
        for item in extra:
            metadata += list(getattr(item, "metadata", [item]))
            description = description or getattr(item, "description", None)
        yield from _leaves(base, metadata, description, path)
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                yield from _leaves(arg, metadata, description, path)
    elif origin is dict:
        key, value = typing.get_args(annotation)
        yield from _leaves(key, [], None, f"{path}.<key>")
        yield from _leaves(value, [], None, f"{path}.<value>")
    elif origin in (list, tuple):
        for i, arg in enumerate(typing.get_args(annotation)):
            if arg is not Ellipsis:
                yield from _leaves(arg, [], None, f"{path}[{i}]")
    elif annotation in (int, float, str):
        yield path, annotation, metadata, description


def _models(module) -> list[type[BaseModel]]:
    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj.__module__ == module.__name__]


def unbounded(models: list[type[BaseModel]]) -> list[str]:
    """Numbers without a lower bound, an upper bound or a description; text without a length limit."""
    problems = []
    for model in models:
        for name, info in model.model_fields.items():
            for path, kind, meta, description in _leaves(info.annotation, info.metadata, info.description,
                                                         f"{model.__name__}.{name}"):
                if kind is str:
                    if not any(getattr(m, "max_length", None) or getattr(m, "pattern", None) for m in meta):
                        problems.append(f"{path}: text without max_length or pattern")
                    continue
                if not any(isinstance(m, (at.Ge, at.Gt)) for m in meta):
                    problems.append(f"{path}: no lower bound (ge/gt)")
                if not any(isinstance(m, (at.Le, at.Lt)) for m in meta):
                    problems.append(f"{path}: no upper bound (le/lt)")
                if not description:
                    problems.append(f"{path}: no description (unit and reason of the bounds)")
    return problems


def test_every_number_of_every_schema_has_both_bounds_and_a_description():
    models = _models(schema)
    assert len(models) >= 40  # every model of the module is walked
    fields = sum(len(list(_leaves(i.annotation, i.metadata, i.description, n)))
                 for m in models for n, i in m.model_fields.items())
    assert fields >= 150
    assert unbounded(models) == []


def test_the_walk_finds_an_unbounded_field():
    """The check above is not vacuous: it catches a new field without a bound, nested or not."""

    class Bad(BaseModel):
        ok: Annotated[float, Field(ge=0, le=1, description="fraction")]
        no_upper: Annotated[float, Field(ge=0, description="x")]
        nested: dict[str, list[Annotated[int, Field(lt=5, description="y")]]] = {}
        optional: float | None = None
        text: str = ""

    assert unbounded([Bad]) == [
        "Bad.no_upper: no upper bound (le/lt)",
        "Bad.nested.<key>: text without max_length or pattern",
        "Bad.nested.<value>[0]: no lower bound (ge/gt)",
        "Bad.optional: no lower bound (ge/gt)",
        "Bad.optional: no upper bound (le/lt)",
        "Bad.optional: no description (unit and reason of the bounds)",
        "Bad.text: text without max_length or pattern",
    ]


# ----------------------------------------------------------------------------- absurd values: exit 2
ABSURD = [
    # (file, line start, new line, fragments of the report line)
    pytest.param("markets.yaml", "    spot_usd_per_t: 10500", "    spot_usd_per_t: 1e300",
                 ["markets.yaml", "materials.lithium.spot_usd_per_t", "must be <= 1,000,000,000", "1e300"],
                 id="price-1e300"),
    pytest.param("markets.yaml", "    spot_usd_per_t: 10839", "    spot_usd_per_t: 1.0e20",
                 ["markets.yaml", "materials.copper.spot_usd_per_t", "must be <= 1,000,000,000", "got '1.0e20'"],
                 id="price-1e20"),
    pytest.param("markets.yaml", "    long_run_usd_per_t: 10028", "    long_run_usd_per_t: 1.0e12",
                 ["markets.yaml", "materials.copper.long_run_usd_per_t", "must be <= 1,000,000,000",
                  "got '1.0e12'"], id="price-1e12"),
    pytest.param(PROJECT, "  ore_mtpa:", "  ore_mtpa: 1.0e300",
                 [PROJECT, "operations.ore_mtpa", "must be <= 1,000, got '1.0e300'"], id="ore-1e300"),
    pytest.param("markets.yaml", "  spot: 1.16", "  spot: 1.0e-300",
                 ["markets.yaml", "fx.spot", "must be >= 0.2", "got 1e-300"], id="fx-1e-300"),
    pytest.param(PROJECT, "  initial_musd:", "  initial_musd: 150000",
                 [PROJECT, "capex.initial_musd", "must be <= 100,000", "150000"], id="capex-150bn"),
    pytest.param("countries.yaml", "    calibration: {wgi_year: 2023, political_stability: 0.59",
                 "    calibration: {wgi_year: 2023, political_stability: 590, rule_of_law: -0.18, "
                 "control_of_corruption: -0.49, cpi_year: 2024, cpi_score: 33.0, oecd_category_used: 6, "
                 "fitted_on: 2026-11-25, source: 'x x x'}",
                 ["countries.yaml", "countries.MN.calibration.political_stability", "must be <= 5", "590"],
                 id="wgi-score"),
    pytest.param("fund.yaml", "  budget_meur:", "  budget_meur: 1.0e15",
                 ["fund.yaml", "portfolio.budget_meur", "must be <= 1,000,000"], id="budget"),
    pytest.param("instruments.yaml", "    gallium: 250000", "    gallium: 5.0e10",
                 ["instruments.yaml", "price_floor.floors_usd_per_t.gallium", "must be <= 1,000,000,000"],
                 id="floor"),
    pytest.param("calibration.yaml", "  oecd_scale:", "  oecd_scale: 1.0e9",
                 ["calibration.yaml", "countries.oecd_scale", "must be <= 7"], id="calibration"),
]


@pytest.mark.parametrize(("rel", "start", "new", "fragments"), ABSURD)
def test_absurd_value_is_refused_with_file_key_value_and_rule(work, rel, start, new, fragments):
    replace_line(work, rel, start, new)
    line = refused(*validate(work), *fragments)
    assert line.startswith(f"  - {rel}: "), line


@pytest.mark.parametrize("command", ["simulate", "optimize"])
@pytest.mark.parametrize(("rel", "start", "new", "key"), [
    pytest.param("markets.yaml", "    spot_usd_per_t: 10500", "    spot_usd_per_t: 1e300",
                 "materials.lithium.spot_usd_per_t", id="price-1e300"),
    pytest.param(PROJECT, "  ore_mtpa:", "  ore_mtpa: 1.0e300", "operations.ore_mtpa", id="ore-1e300"),
    pytest.param("markets.yaml", "  spot: 1.16", "  spot: 1.0e-300", "fx.spot", id="fx-1e-300"),
    pytest.param("markets.yaml", "    spot_usd_per_t: 10839", "    spot_usd_per_t: 1.0e20",
                 "materials.copper.spot_usd_per_t", id="price-1e20"),
])
def test_the_reproductions_of_issue_12_exit_2_before_any_output(work, tmp_path, command, rel, start, new, key):
    """Were: ``inf`` in price_fan.csv with exit 0 (1e300), "internal error" from optimize (ore 1e300,
    FX 1e-300), a wrong optimiser diagnosis (1e20), an IRR of 8,701 % (1e12)."""
    replace_line(work, rel, start, new)
    out = tmp_path / "out"
    extra = ["--quiet", "--no-attribution"] if command == "simulate" else []
    code, stdout, err = run_cli([command, "--assumptions", str(work), "--scenarios", "64", "--workers", "1",
                                 "--out", str(out), *extra])
    refused(code, stdout, err, rel, key)
    assert not (out / "simulation").exists() and not (out / "portfolio").exists()


def test_bounds_accept_the_shipped_values_and_the_edges(work):
    """The bounds themselves are allowed: USD 1e9/t, EUR/USD 0.2 and 5, capex USD 100 bn."""
    def markets(d):
        d["materials"]["gallium"].update(spot_usd_per_t=1e9, long_run_usd_per_t=1.0)
        d["fx"].update(spot=0.2, long_run=5.0)

    edit(work, "markets.yaml", markets)
    edit(work, "stress.yaml", lambda d: d["scenarios"].pop("global_recession"))  # 0.2 x 0.95 would be < 0.2
    edit(work, "projects/kz_gallium.yaml", lambda d: d["products"]["gallium"].update(grade_pct=1e-6))
    edit(work, "projects/mn_ree.yaml", lambda d: d["capex"].update(initial_musd=1e5))
    code, out, err = validate(work)
    assert code == 0, err


# ----------------------------------------------------------------------------- bounds across fields and files
@pytest.mark.parametrize(("rel", "change", "fragments"), [
    pytest.param(PROJECT, lambda d: (d["operations"].update(ore_mtpa=1000.0),
                                     d["products"]["gallium"].update(grade_pct=100.0)),
                 [PROJECT, "products.gallium", "revenue at full capacity is USD", "check the units"],
                 id="revenue"),
    pytest.param(PROJECT, lambda d: d["operations"].update(ore_mtpa=1000.0, opex_usd_per_t_ore=50_000.0),
                 [PROJECT, "operations.opex_usd_per_t_ore", "operating cost at full capacity", "got 50000.0"],
                 id="operating-cost"),
    pytest.param("stress.yaml", lambda d: d["scenarios"]["base_metal_crash_40"]["spot_price_multipliers"]
                 .update(copper=0.01),  # copper at USD 10/t (set below) x 0.01 = USD 0.1/t
                 ["stress.yaml", "scenarios.base_metal_crash_40.spot_price_multipliers.copper",
                  "must stay within 1 to 1,000,000,000 USD/t"], id="stressed-price"),
    pytest.param("stress.yaml", lambda d: d["scenarios"]["global_recession"].update(fx_spot_multiplier=4.5),
                 ["stress.yaml", "scenarios.global_recession.fx_spot_multiplier", "gives EUR/USD 5.22",
                  "must stay within 0.2 to 5"], id="stressed-fx"),
])
def test_products_of_bounded_numbers_are_bounded_too(work, rel, change, fragments):
    edit(work, "markets.yaml", lambda d: d["materials"]["copper"].update(spot_usd_per_t=10.0))  # valid alone
    edit(work, rel, change)
    refused(*validate(work), *fragments)


def _corner(work: Path, variant: str) -> None:
    """Every price, volatility, uplift, elasticity, cost and amount at its bound (two projects, 80 years)."""
    keep = {"kz_gallium", "cd_cobalt"}  # feasibility with debt; production (acquisition price)
    for path in (work / "projects").glob("*.yaml"):
        if path.stem not in keep:
            path.unlink()

    def markets(d):
        for mat in d["materials"].values():
            mat.pop("calibration", None)
            if variant == "ou":  # spot 1e9 reverting fast to USD 1/t: price ratios of 1e9
                mat.update(spot_usd_per_t=1e9, long_run_usd_per_t=1.0, volatility=2.0, mean_reversion_per_year=10.0)
            else:  # GBM at the largest drift, with the volatility that fattens the upper tail most
                mat.update(model="gbm", spot_usd_per_t=1e9, long_run_usd_per_t=1e9, drift_per_year=0.3,
                           volatility=0.56)
        d["fx"].update(spot=0.2, long_run=5.0, volatility=0.5)
        d["export_restriction"].update(geopolitical_loading=3.0, price_uplift={k: 10.0 for k in d["materials"]})

    def countries(d):
        d["geopolitical_factor"]["hazard_loading"] = 3.0
        for country in d["countries"].values():
            for event in country["events"].values():
                if "price_elasticity" in event:
                    event["price_elasticity"] = 10.0

    def fund(d):
        d.update(horizon_years=80, discount_rate_nominal=-0.05, inflation=-0.09)
        d["portfolio"].update(budget_meur=1e6, contingent_limit_meur=1e6, cvar_limit_meur=1e6, max_country_share=1.0,
                              max_material_share=1.0)

    def project(d):
        n = len(d["products"])
        for prod in d["products"].values():  # revenue just under USD 100 bn/yr at USD 1e9/t
            prod.update(recovery=1.0, payability=1.0, product_factor=1.0, grade_pct=0.9e5 / n / 1e12 * 100)
        d["operations"].update(ore_mtpa=1000.0, opex_usd_per_t_ore=70.0, fixed_opex_musd_per_year=1e4,
                               mine_life_years=100)
        d["capex"].update(initial_musd=1e5, sustaining_musd_per_year=1e4, closure_musd=1e5, studies_musd=1e5)
        if d["stage"] == "production":
            d["capex"]["acquisition_musd"] = 1e5
        d["debt"].update(amount_musd=1e5, interest_rate=0.5, sponsor_support_musd=1e5)

    edit(work, "markets.yaml", markets)
    edit(work, "countries.yaml", countries)
    edit(work, "fund.yaml", fund)
    edit(work, "instruments.yaml", lambda d: d["price_floor"].update(
        floors_usd_per_t={k: 1e9 for k in d["price_floor"]["floors_usd_per_t"]}))
    edit(work, "stress.yaml", lambda d: (d.update(stress_scenarios=64),
                                         d["scenarios"].pop("base_metal_crash_40"),
                                         d["scenarios"].pop("global_recession")))
    for pid in keep:
        edit(work, f"projects/{pid}.yaml", project)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["ou", "gbm"])
def test_values_at_the_bounds_simulate_and_optimise_to_finite_numbers(work, tmp_path, variant):
    """The bounds are tight enough for the engine: no inf/NaN, no internal error, no wrong diagnosis."""
    from test_robustness_inputs import check_portfolio_outputs
    from test_robustness_mutations import check_finite_outputs

    _corner(work, variant)
    code, out, err = validate(work)
    assert code == 0, err
    out_dir = tmp_path / "out"
    code, out, err = run_cli(["simulate", "--assumptions", str(work), "--scenarios", "256", "--workers", "1",
                              "--no-attribution", "--quiet", "--out", str(out_dir)])
    assert code == 0, err
    check_finite_outputs(out_dir / "simulation", variant)
    code, out, err = run_cli(["optimize", "--assumptions", str(work), "--scenarios", "256", "--workers", "1",
                              "--out", str(out_dir)])
    assert code == 0, err
    check_portfolio_outputs(out_dir / "portfolio", variant)


# ----------------------------------------------------------------------------- free text
@pytest.mark.parametrize(("rel", "key", "limit"), [
    pytest.param(PROJECT, "name", 200, id="project-name"),
    pytest.param(PROJECT, "sources.deposit", 2000, id="project-source"),
    pytest.param("markets.yaml", "materials.gallium.name", 200, id="material-name"),
    pytest.param("markets.yaml", "materials.gallium.product", 2000, id="material-product"),
    pytest.param("countries.yaml", "countries.KZ.name", 200, id="country-name"),
    pytest.param("stress.yaml", "scenarios.global_recession.description", 2000, id="stress-description"),
    pytest.param("fund.yaml", "name", 200, id="fund-name"),
])
def test_free_text_length_is_bounded(work, rel, key, limit):
    def setter(text):
        def change(d):
            *head, last = key.split(".")
            for part in head:
                d = d[part]
            d[last] = text
        return change

    edit(work, rel, setter("é" * limit))  # at the limit: valid (characters, not bytes)
    code, out, err = validate(work)
    assert code == 0, err
    edit(work, rel, setter("x" * (1_000_000)))  # the 1 MB project name of issue 12
    line = refused(*validate(work), rel, key, f"must have at most {limit:,} characters", "(1,000,000 characters)")
    assert line.startswith(f"  - {rel}: {key}: ")


def test_project_id_is_bounded(work):
    stem = "a" * 65
    text = (work / PROJECT).read_text(encoding="utf-8").replace("id: kz_gallium", f"id: {stem}")
    (work / PROJECT).unlink()
    (work / "projects" / f"{stem}.yaml").write_text(text, encoding="utf-8")
    refused(*validate(work), f"projects/{stem[:10]}", "id", "must have at most 64 characters")


# ----------------------------------------------------------------------------- files outside, too large, not files
SECRET = "TOP-SECRET-LINE " + "s3cr3t " * 40  # a recognisable long line


def test_link_to_a_file_outside_the_folder_is_refused_unread(work, tmp_path):
    outside = tmp_path / "outside" / "passwd"
    outside.parent.mkdir()
    outside.write_text("id: leak\n" + SECRET + "\n" * 3 + SECRET + "\n", encoding="utf-8")
    (work / "projects" / "leak.yaml").symlink_to(outside)
    code, out, err = validate(work)
    line = refused(code, out, err, "projects/leak.yaml", "outside the assumptions directory")
    assert "TOP-SECRET" not in out + err and "s3cr3t" not in out + err
    assert "copy the file in" in line


@pytest.mark.parametrize("rel", ["fund.yaml", "stress.yaml", "calibration.yaml"])
def test_top_level_file_linked_outside_is_refused(work, tmp_path, rel):
    outside = tmp_path / rel
    outside.write_text((work / rel).read_text(encoding="utf-8") + f"# {SECRET}\n", encoding="utf-8")
    (work / rel).unlink()
    (work / rel).symlink_to(outside)
    code, out, err = validate(work)
    refused(code, out, err, rel, "outside the assumptions directory")
    assert "TOP-SECRET" not in out + err


def test_links_inside_the_folder_and_a_linked_folder_are_fine(work, tmp_path):
    shared = work / "shared"
    shared.mkdir()
    (work / "fund.yaml").rename(shared / "fund.yaml")
    (work / "fund.yaml").symlink_to(Path("shared") / "fund.yaml")  # relative link, inside
    alias = tmp_path / "alias"
    alias.symlink_to(work, target_is_directory=True)  # the folder itself is a link
    code, out, err = validate(alias)
    assert code == 0, err


def test_broken_and_looping_links_are_reported(work):
    (work / "projects" / "gone.yaml").symlink_to(work / "projects" / "nowhere.yaml")
    (work / "projects" / "loop.yaml").symlink_to(work / "projects" / "loop.yaml")
    code, out, err = validate(work)
    refused(code, out, err, "projects/gone.yaml", "symbolic link to a file that does not exist")
    refused(code, out, err, "projects/loop.yaml", "cannot be read")


@pytest.mark.parametrize("size", [6 * 2**20, 20 * 2**30], ids=["6MB", "20GB"])
def test_file_over_5_mb_is_refused_without_reading_it(work, monkeypatch, size):
    big = work / "projects" / "huge.yaml"
    with big.open("wb") as f:
        f.truncate(size)  # sparse: no disk space, but stat() says `size`
    opened = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    start = time.monotonic()
    code, out, err = validate(work)
    elapsed = time.monotonic() - start
    refused(code, out, err, "projects/huge.yaml", "MB; an assumption file must be at most 5 MB")
    assert not any(p.endswith("huge.yaml") for p in opened), "the large file was opened"
    assert any(p.endswith("kz_gallium.yaml") for p in opened)  # the spy sees the loader's reads
    assert elapsed < 30


def test_fifo_is_refused_without_blocking(work):
    os.mkfifo(work / "projects" / "pipe.yaml")  # opening it for reading would wait for a writer for ever
    code, out, err = validate(work)
    refused(code, out, err, "projects/pipe.yaml", "is not a regular file")


def test_directory_named_like_a_project_file(work):
    (work / "projects" / "folder.yaml").mkdir()
    refused(*validate(work), "projects/folder.yaml", "is not a regular file")


# ----------------------------------------------------------------------------- no long echoes
LONG = "Q" * 10_000


@pytest.mark.parametrize(("rel", "start", "new", "fragments"), [
    pytest.param(PROJECT, "  ore_mtpa:", f"  ore_mtpa: {LONG}", ["operations.ore_mtpa", "must be a number",
                                                                 "… (10,000 characters)"], id="value"),
    pytest.param(PROJECT, "name:", f"name: {LONG}", ["name", "must have at most 200 characters"], id="name"),
    pytest.param(PROJECT, "country:", f"country: {LONG}", ["country", "must have at most 64 characters"],
                 id="reference"),
    pytest.param(PROJECT, "stage:", f"stage: {LONG}", ["stage", "must be one of"], id="enum"),
    pytest.param(PROJECT, "offtake:", f"? {LONG}\n: 1\nofftake:", ["QQQQ", "unknown key"], id="unknown-key"),
    pytest.param(PROJECT, "stage:", f"stage: !{LONG} x", ["invalid YAML", "could not determine a constructor"],
                 id="tag"),
    pytest.param(PROJECT, "stage:", f"? {LONG}\n: 1\n? {LONG}\n: 2\nstage: feasibility",
                 ["invalid YAML", "duplicate key"], id="duplicate-key"),
    pytest.param(PROJECT, "stage:", f"stage: '{LONG}", ["invalid YAML", "line"], id="unclosed-quote"),
    pytest.param("markets.yaml", "  gallium:", f"  ? {LONG}\n  :", ["markets.yaml", "materials", "key 'QQQ",
                                                             "must have at most 64 characters"], id="mapping-key"),
    pytest.param("markets.yaml", "  factors:", f"  factors: [ndpr, lithium, cobalt, graphite, tungsten, copper, "
                 f"nickel, {LONG}, EURUSD]", ["correlation.factors", "must have at most 64"], id="factor"),
])
def test_long_bad_values_are_quoted_as_short_excerpts(work, rel, start, new, fragments):
    replace_line(work, rel, start, new)
    code, out, err = validate(work)
    refused(code, out, err, *fragments)
    assert "Q" * 81 not in err  # at most an excerpt of ~80 characters


def test_a_file_that_is_one_long_text_is_quoted_as_an_excerpt(work):
    (work / PROJECT).write_text(LONG + "\n", encoding="utf-8")
    line = refused(*validate(work), PROJECT, "must be a mapping of keys to values")
    assert "…" in line


# ----------------------------------------------------------------------------- project file names
@pytest.mark.parametrize("suffix", [".YAML", ".Yml", ".yml", ".YmL"])
def test_project_file_in_any_letter_case_is_read(work, suffix):
    (work / PROJECT).rename(work / "projects" / f"kz_gallium{suffix}")
    code, out, err = validate(work)
    assert code == 0, err
    assert "valid (12 projects" in out
    assert "kz_gallium" in load_assumptions(work).projects


@pytest.mark.parametrize("twin", ["kz_gallium.YAML", "kz_gallium.yml", "kz_gallium.Yml"])
def test_two_files_of_one_project_are_an_error(work, twin):
    (work / "projects" / twin).write_text((work / PROJECT).read_text(encoding="utf-8"), encoding="utf-8")
    refused(*validate(work), f"projects/{twin}", "id", "is used by another project file")


@pytest.mark.parametrize(("name", "fragment"), [
    pytest.param("stress.yml", "must be named 'stress.yaml'", id="yml"),
    pytest.param("Instruments.yaml", "must be named 'instruments.yaml'", id="case"),
    pytest.param("fund.YAML", "must be named 'fund.yaml'", id="suffix-case"),
])
def test_top_level_file_spelt_differently_is_not_skipped(work, name, fragment):
    (work / name).write_text("source: x\n", encoding="utf-8")
    refused(*validate(work), name, fragment)


# ----------------------------------------------------------------------------- YAML merge keys
MERGED_COUNTRIES = """\
geopolitical_factor: {persistence: 0.7, hazard_loading: 0.5, source: "assumption"}
countries:
  AU:
    name: Australia
    iso3: AUS
    oecd_category: null
    sovereign_rating: Aaa
    country_risk_premium: 0.0
    permitting_years: &permits {min: 1, mode: 2, max: 3}
    events: &calm
      expropriation: &expro {annual_probability: 0.001, compensation_share: 0.9}
      forced_participation: {annual_probability: 0.0, state_share: 0.1, compensation_share: 1.0}
      fiscal_grab: {annual_probability: 0.02, royalty_increase: 0.01, tax_increase: 0.0}
      transfer_restriction: {annual_probability: 0.005, duration_years: 1, trapped_cash_haircut: 0.02,
                             sales_blocked_share: 0.05}
      unrest: {annual_probability: 0.01, production_loss_share: 0.05}
      licence_suspension: {annual_probability: 0.005, duration_years: 1}
    source: "assumption"
  CA:
    name: Canada
    iso3: CAN
    oecd_category: null
    sovereign_rating: Aaa
    country_risk_premium: 0.0
    permitting_years:
      <<: *permits
      max: 5
    events:
      <<: *calm
      expropriation:
        <<: *expro
        annual_probability: 0.002
    source: "assumption"
"""


def _merged_countries(work: Path, text: str) -> None:
    (work / "countries.yaml").write_text(text, encoding="utf-8")
    for path in (work / "projects").glob("*.yaml"):
        if path.stem not in ("au_nickel", "ca_graphite"):
            path.unlink()
    edit(work, "stress.yaml", lambda d: d.update(scenarios={}))


def test_merge_keys_are_supported_and_written_keys_override_merged_ones(work):
    _merged_countries(work, MERGED_COUNTRIES)
    code, out, err = validate(work)
    assert code == 0, err
    countries = load_assumptions(work).countries.countries
    au, ca = countries["AU"], countries["CA"]
    assert (ca.permitting_years.min, ca.permitting_years.mode, ca.permitting_years.max) == (1, 2, 5)
    assert ca.events.unrest == au.events.unrest
    assert ca.events.expropriation.annual_probability == 0.002
    assert ca.events.expropriation.compensation_share == au.events.expropriation.compensation_share == 0.9
    assert au.events.expropriation.annual_probability == 0.001  # the anchor itself is unchanged


@pytest.mark.parametrize(("old", "new", "fragments"), [
    pytest.param("      <<: *permits\n      max: 5\n", "      <<: *permits\n      max: 5\n      max: 6\n",
                 ["duplicate key 'max' (first at line 27)"], id="written-twice-beside-a-merge"),
    pytest.param("    permitting_years: &permits {min: 1, mode: 2, max: 3}",
                 "    permitting_years: &permits {min: 1, mode: 2, max: 3, min: 0}",
                 ["duplicate key 'min'"], id="duplicate-in-the-anchor"),
    pytest.param("      <<: *permits\n      max: 5\n", "      <<: {min: 1, mode: 2, mode: 3}\n      max: 5\n",
                 ["duplicate key 'mode'"], id="duplicate-in-an-inline-merge"),
    pytest.param("      <<: *permits\n      max: 5\n", "      <<: *permits\n      <<: *permits\n",
                 ["duplicate merge key '<<'"], id="two-merge-keys"),
    pytest.param("      <<: *permits\n      max: 5\n", "      <<: 5\n      max: 5\n",
                 ["expected a mapping or list of mappings for merging"], id="merge-of-a-number"),
    pytest.param("    permitting_years:\n      <<: *permits\n      max: 5\n",
                 "    permitting_years: &self\n      <<: *self\n      max: 5\n",
                 ["invalid YAML", "line"], id="merge-of-itself"),
])
def test_bad_merges_and_duplicate_keys_are_still_refused(work, old, new, fragments):
    assert MERGED_COUNTRIES.count(old) == 1
    _merged_countries(work, MERGED_COUNTRIES.replace(old, new))
    refused(*validate(work), "countries.yaml", "invalid YAML", *fragments)


# ----------------------------------------------------------------------------- YAML 1.1 booleans
def test_norway_is_a_country_not_false(work):
    """``NO`` (Norway) is text, as in YAML 1.2, as a key and as a value."""
    text = (work / "countries.yaml").read_text(encoding="utf-8")
    kz = text[text.index("\n  KZ:\n") + 1:text.index("\n  UZ:\n") + 1]
    (work / "countries.yaml").write_text(text + kz.replace("  KZ:\n", "  NO:\n", 1)
                                         .replace('name: "Kazakhstan"', 'name: "Norway"'), encoding="utf-8")
    replace_line(work, PROJECT, "country:", "country: NO")
    code, out, err = validate(work)
    assert code == 0, err
    a = load_assumptions(work)
    assert a.projects["kz_gallium"].country == "NO"
    assert a.countries.countries["NO"].name == "Norway"


@pytest.mark.parametrize(("line", "value"), [("risk_attribution: off", False), ("risk_attribution: Yes", True),
                                             ("risk_attribution: FALSE", False)])
def test_yes_no_on_off_still_work_in_true_false_fields(work, line, value):
    replace_line(work, "fund.yaml", "  risk_attribution:", f"  {line}")
    assert load_assumptions(work).fund.simulation.risk_attribution is value


@pytest.mark.parametrize(("rel", "start", "new", "fragments"), [
    pytest.param(PROJECT, "name:", "name: false",
                 ["name: must be text", "read the unquoted value as true/false", 'name: "false"'], id="bool"),
    pytest.param(PROJECT, "country:", "country: 2026-01-01",
                 ["country: must be text", "as a date", 'country: "2026-01-01"'], id="date"),
    pytest.param(PROJECT, "name:", "name: 1.5",
                 ["name: must be text", "as a number", 'name: "1.5"'], id="number"),
    pytest.param("countries.yaml", "  KZ:", "  true:",
                 ["countries: key True: must be text", "true/false", '"true": ...'], id="key"),
])
def test_text_read_as_another_type_says_to_quote_it(work, rel, start, new, fragments):
    replace_line(work, rel, start, new)
    refused(*validate(work), rel, *fragments)
