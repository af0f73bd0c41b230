"""`fundmodel calibrate` against hostile or malformed input files (issue 12, item 8).

Every bad input is exit code 2 naming the file, the line and the column (never exit 1, never
a silently dropped or mis-read row); names from input files never become markup in the HTML
reports nor paths outside ``OUT/calibration/``; numbers in the CSV/JSON reports are finite.
"""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fundmodel.calibration import data as d
from fundmodel.calibration.data import CalibrationDataError
from fundmodel.calibration.prices import fit_gbm
from fundmodel.cli import main

ROOT = Path(__file__).resolve().parents[1]
ASSUMPTIONS = ROOT / "assumptions"
FULL_PINKSHEET = ROOT.parent / "shared" / "data" / "wb_pinksheet_monthly_all.csv"
FIRST = "2009-01"  # 203 months to 2025-11: enough for min_observations_monthly (120), quick to fit


def _shipped() -> tuple[list[str], list[list[str]]]:
    """Header and rows (from FIRST) of the shipped extract, COPPER, NICKEL and Zinc only."""
    with open(d.PINKSHEET_FILE, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [rows[0].index(c) for c in ("month", "COPPER", "NICKEL", "Zinc")]
    return [rows[0][i] for i in keep], [[r[i] for i in keep] for r in rows[1:] if r[0] >= FIRST]


def _write(path: Path, header: list[str], body: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header] + body)
    return path


def _line(body: list[list[str]], month: str) -> int:
    """Line of ``month`` in a file written by :func:`_write` (header = line 1)."""
    return next(i for i, r in enumerate(body) if r[0] == month) + 2


_FAST: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _fast_assumptions(tmp_path_factory):
    """The shipped assumptions without the Markov regime check (slow, and not what is tested here)."""
    import shutil

    target = tmp_path_factory.mktemp("assumptions") / "assumptions"
    shutil.copytree(ASSUMPTIONS, target)
    cal = target / "calibration.yaml"
    text = cal.read_text(encoding="utf-8")
    assert "regime_check: true" in text
    cal.write_text(text.replace("regime_check: true", "regime_check: false", 1), encoding="utf-8")
    _FAST[:] = [target]
    yield target


def _run(tmp_path: Path, data: Path, series: str, *extra: str) -> int:
    return main(["calibrate", "prices", "--data", str(data), "--series", series, "--out", str(tmp_path / "out"),
                 "--assumptions", str(_FAST[0]), *extra])


def _refused(tmp_path, capsys, data: Path, series: str = "COPPER") -> str:
    """Run, expect exit 2 with the file named and nothing written; return stderr."""
    rc = _run(tmp_path, data, series)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(data) in err
    assert "internal error" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    return err


class _Tags(HTMLParser):
    """Start tags with their attributes, and the text, of an HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Tags:
    p = _Tags()
    p.feed(path.read_text(encoding="utf-8"))
    p.close()
    return p


# ----------------------------------------------------------------------------- 1. thousands separators
def test_thousands_separator_mixed_in_a_column_is_refused_with_line_and_column(tmp_path, capsys):
    header, body = _shipped()
    body[-1][1] = "10,839.04"  # one value with a separator among plain numbers: refused, not dropped
    path = _write(tmp_path / "pink.csv", header, body)
    err = _refused(tmp_path, capsys, path)
    assert f"line {_line(body, '2025-11')}" in err and "column 'COPPER'" in err and "'10,839.04'" in err
    # the other series of the file are refused too: the file is malformed, not one series
    _refused(tmp_path, capsys, path, "NICKEL")


def test_thousands_separator_used_consistently_is_read_exactly(tmp_path, capsys):
    header, body = _shipped()
    for r in body:
        r[1] = f"{float(r[1]):,.2f}"  # every copper price >= 1,000 written with a separator
    body[-1][1] = "10,839.04"
    path = _write(tmp_path / "pink.csv", header, body)
    frame = d.read_pinksheet(path)
    assert frame.loc["2025-11", "COPPER"] == 10839.04
    assert frame.loc[FIRST, "COPPER"] == float(_shipped()[1][0][1])
    assert frame["COPPER"].notna().all()
    rc = _run(tmp_path, path, "COPPER")
    assert rc == 0, capsys.readouterr().err
    table = pd.read_csv(tmp_path / "out" / "calibration" / "prices" / "prices.csv")
    assert table.loc[0, "sample"] == f"{FIRST}..2025-11"  # no row lost


def test_unquoted_thousands_separator_is_refused_with_line(tmp_path, capsys):
    header, body = _shipped()
    path = _write(tmp_path / "pink.csv", header, body)
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1].replace(body[-1][1], "10,839.04")  # splits the value into two fields
    path.write_text("\n".join(lines) + "\n")
    err = _refused(tmp_path, capsys, path)
    assert f"line {len(lines)}" in err and "fields" in err


@pytest.mark.parametrize("text", ["n/a", "1.843,98", "inf", "-Infinity", "nan", "1e400", "0x10", "1_843.98",
                                  "12 345", "<script>", "9" * 20 + "abc" + "x" * 200])
def test_value_that_is_not_a_clean_number_is_refused(tmp_path, capsys, text):
    header, body = _shipped()
    body[40][2] = text  # NICKEL
    path = _write(tmp_path / "pink.csv", header, body)
    err = _refused(tmp_path, capsys, path, "NICKEL")
    assert f"line {42}" in err and "column 'NICKEL'" in err
    shown = re.search(r"got ('.*?'(?:\.\.\. \(\d+ chars\))?)", err)
    assert shown and len(shown.group(1)) <= 64, err
    assert "nan" not in err.replace(text, "").lower()


def test_missing_value_markers_are_missing_not_errors(tmp_path, capsys):
    header, body = _shipped()
    for i, marker in enumerate(["", "..", "...", "\u2026"]):
        body[i][3] = marker  # leading gaps of Zinc: the sample starts after them
    path = _write(tmp_path / "pink.csv", header, body)
    frame = d.read_pinksheet(path)
    assert frame["Zinc"].iloc[:4].isna().all() and frame["Zinc"].iloc[4:].notna().all()
    assert _run(tmp_path, path, "Zinc") == 0, capsys.readouterr().err


@pytest.mark.skipif(not FULL_PINKSHEET.is_file(), reason="shared data not available")
def test_full_pinksheet_file_reads_under_the_strict_rules():
    frame = d.read_pinksheet(FULL_PINKSHEET)
    assert frame.shape == (791, 71) and frame.index[-1] == "2025-11"
    assert np.isfinite(frame.to_numpy()[frame.notna().to_numpy()]).all()
    assert frame["BARLEY"].loc["2020-09":].isna().all()  # "..." = missing
    shipped = d.read_pinksheet()
    assert frame[shipped.columns].equals(shipped)


# ----------------------------------------------------------------------------- 2. dates
def test_month_in_the_future_is_refused(tmp_path, capsys):
    header, body = _shipped()
    body.append(["2999-12"] + body[-1][1:])
    path = _write(tmp_path / "pink.csv", header, body)
    err = _refused(tmp_path, capsys, path)
    assert f"line {len(body) + 1}" in err and "column 'month'" in err and "2999-12" in err and "future" in err


def test_fitted_on_limits_the_months_too(tmp_path):
    from fundmodel.assumptions import load_assumptions
    from fundmodel.calibration.prices import calibrate_prices

    header, body = _shipped()
    path = _write(tmp_path / "pink.csv", header, body)
    with pytest.raises(CalibrationDataError, match=r"line \d+, column 'month': month 2024-02 is in the future"):
        calibrate_prices(load_assumptions(ASSUMPTIONS), data=str(path), series=["COPPER"], regimes=False,
                         fitted_on="2024-01-15")


@pytest.mark.parametrize("case, message", [
    ("duplicate", "appears twice"),
    ("out_of_order", "out of order"),
    ("gap", "1 month(s) missing"),
    ("month_13", "month must be YYYY-MM"),
    ("slash", "month must be YYYY-MM"),
    ("text", "month must be YYYY-MM"),
])
def test_bad_month_sequence_is_refused(tmp_path, capsys, case, message):
    header, body = _shipped()
    i = 60  # the bad row is body[i + 1], on line i + 3
    if case == "duplicate":
        body.insert(i + 1, list(body[i]))
    elif case == "out_of_order":
        body.insert(i + 1, list(body[i - 5]))  # a month from half a year earlier
    elif case == "gap":
        del body[i + 1]
    else:
        body[i + 1][0] = {"month_13": "2013-13", "slash": "2014/03", "text": "March 2014"}[case]
    path = _write(tmp_path / "pink.csv", header, body)
    err = _refused(tmp_path, capsys, path)
    assert message in err and f"line {i + 3}, column 'month'" in err


def test_gap_inside_a_series_names_the_line(tmp_path, capsys):
    header, body = _shipped()
    body[100][1] = ""
    path = _write(tmp_path / "pink.csv", header, body)
    err = _refused(tmp_path, capsys, path)
    assert "missing value" in err and f"line {102}" in err and "'COPPER'" in err


def test_sample_after_the_valuation_date_is_flagged(tmp_path):
    import shutil

    from fundmodel.assumptions import load_assumptions
    from fundmodel.calibration.prices import calibrate_prices

    assumptions = tmp_path / "assumptions"
    shutil.copytree(_FAST[0], assumptions)
    fund = assumptions / "fund.yaml"
    text = fund.read_text(encoding="utf-8")
    assert "valuation_date: 2026-01-01" in text
    fund.write_text(text.replace("valuation_date: 2026-01-01", "valuation_date: 2025-06-30"), encoding="utf-8")
    header, body = _shipped()
    path = _write(tmp_path / "pink.csv", header, body)
    result = calibrate_prices(load_assumptions(assumptions), data=str(path), series=["COPPER"], regimes=False)
    assert any("COPPER: the sample ends 2025-11, after the valuation date 2025-06-30" in w for w in result.warnings)


# ----------------------------------------------------------------------------- 3. HTML escaping
HOSTILE = """CU" x='1' onerror='alert(1)' <b>"""


def test_series_name_is_escaped_in_report_html(tmp_path, capsys):
    header, body = _shipped()
    header[1] = HOSTILE
    path = _write(tmp_path / "pink.csv", header, body)
    rc = _run(tmp_path, path, HOSTILE + ",NICKEL")
    assert rc == 0, capsys.readouterr().err
    report = tmp_path / "out" / "calibration" / "prices"
    page = _parse(report / "report.html")
    for tag, attrs in page.tags:
        assert not any(k.lower().startswith("on") for k in attrs), (tag, attrs)
    assert [t for t, _ in page.tags].count("b") == 1  # the page's own <b>model</b>, not the name's
    assert HOSTILE in "".join(page.text)  # shown as text ...
    raw = (report / "report.html").read_text(encoding="utf-8")
    assert "onerror='" not in raw and "&lt;b&gt;" in raw  # ... because it is escaped
    imgs = [a for t, a in page.tags if t == "img"]
    assert HOSTILE in [a["alt"] for a in imgs]
    for a in imgs:
        assert re.fullmatch(r"chart_[A-Za-z0-9_.-]+\.png", a["src"]) and (report / a["src"]).is_file()


def test_country_names_are_escaped_in_report_html(tmp_path, capsys, assumptions_copy):
    path = assumptions_copy / "countries.yaml"
    text = path.read_text(encoding="utf-8")
    assert 'name: "Mongolia"' in text
    path.write_text(text.replace('name: "Mongolia"', 'name: "Mongolia<img src=x onerror=alert(1)>"', 1),
                    encoding="utf-8")
    rc = main(["calibrate", "countries", "--assumptions", str(assumptions_copy), "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr().err
    page = _parse(tmp_path / "out" / "calibration" / "countries" / "report.html")
    assert "img" not in [t for t, _ in page.tags]
    assert "Mongolia<img src=x onerror=alert(1)>" in "".join(page.text)


# ----------------------------------------------------------------------------- 4. names in file names
def _outside(tmp_path: Path) -> list[Path]:
    """Files written anywhere under tmp_path except the input, OUT/calibration/prices and OUT's lock and marker."""
    report = tmp_path / "out" / "calibration" / "prices"
    own = {tmp_path / "out" / ".lock", tmp_path / "out" / ".fundmodel-output"}
    return [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "pink.csv" and report not in p.parents
            and p not in own]


@pytest.mark.parametrize("name", ["CU/../../evil", "/tmp/evil", "..", "CU\\X", "a:b*c?"])
def test_path_characters_in_series_name_stay_inside_the_report_folder(tmp_path, capsys, name):
    header, body = _shipped()
    header[1] = name
    path = _write(tmp_path / "pink.csv", header, body)
    rc = _run(tmp_path, path, name)
    assert rc == 0, capsys.readouterr().err
    report = tmp_path / "out" / "calibration" / "prices"
    charts = sorted(p.name for p in report.glob("chart_*.png"))
    assert len(charts) == 1 and re.fullmatch(r"chart_[A-Za-z0-9_.-]+\.png", charts[0])
    assert _outside(tmp_path) == []


def test_unknown_series_is_exit_2_with_did_you_mean(tmp_path, capsys):
    header, body = _shipped()
    header[1] = "CU/X"
    path = _write(tmp_path / "pink.csv", header, body)
    for asked in ("CU/Y", "CU_X"):
        err = _refused(tmp_path, capsys, path, asked)
        assert f"unknown series '{asked}' (did you mean 'CU/X'?)" in err


def test_names_that_sanitise_alike_get_distinct_chart_files(tmp_path, capsys):
    header, body = _shipped()
    header[1], header[2] = "CU/X", "CU_X"
    path = _write(tmp_path / "pink.csv", header, body)
    rc = _run(tmp_path, path, "CU/X,CU_X")
    assert rc == 0, capsys.readouterr().err
    report = tmp_path / "out" / "calibration" / "prices"
    srcs = {a["alt"]: a["src"] for t, a in _parse(report / "report.html").tags if t == "img"}
    assert set(srcs) == {"CU/X", "CU_X"} and len(set(srcs.values())) == 2
    assert srcs["CU_X"] == "chart_CU_X.png" and all((report / s).is_file() for s in srcs.values())
    assert _outside(tmp_path) == []


def test_long_series_name_gets_a_short_file_name(tmp_path, capsys):
    header, body = _shipped()
    header[1] = "X" * 300
    path = _write(tmp_path / "pink.csv", header, body)
    assert _run(tmp_path, path, "X" * 300) == 0, capsys.readouterr().err
    (chart,) = (tmp_path / "out" / "calibration" / "prices").glob("chart_*.png")
    assert len(chart.name) < 100


def test_mathtext_in_series_name_is_drawn_as_text(tmp_path, capsys):
    header, body = _shipped()
    header[1] = r"$\frac{$"  # matplotlib's mathtext would fail on it
    path = _write(tmp_path / "pink.csv", header, body)
    rc = _run(tmp_path, path, header[1])
    assert rc == 0, capsys.readouterr().err


@pytest.mark.parametrize("case, message", [
    ("same_name", "have the same name 'COPPER'"),
    ("same_name_other_case", "have the same name 'copper'"),
    ("empty_name", "has no name"),
    ("control_character", "control characters"),
    ("short_row", "3 fields, the header has 4"),
    ("nul_byte", "line"),
    ("empty_file", "empty"),
    ("header_only", "no data rows"),
])
def test_malformed_header_and_rows_are_refused(tmp_path, capsys, case, message):
    header, body = _shipped()
    if case == "same_name":
        header[2] = "COPPER"
    elif case == "same_name_other_case":
        header[2] = "copper"
    elif case == "empty_name":
        header[2] = " "
    elif case == "control_character":
        header[2] = "NICKEL\x1b[2J"
    elif case == "short_row":
        body[10] = body[10][:3]
    elif case == "header_only":
        body = []
    path = _write(tmp_path / "pink.csv", header, body)
    if case == "nul_byte":
        lines = path.read_bytes().split(b"\n")
        lines[11] = lines[11].replace(b",", b",12\x00", 1)  # line 12: COPPER = "12\0<price>"
        path.write_bytes(b"\n".join(lines))
    elif case == "empty_file":
        path.write_text("")
    err = _refused(tmp_path, capsys, path)
    assert message in err
    if case in ("short_row", "nul_byte"):
        assert "line 12" in err


# ----------------------------------------------------------------------------- 5. finite numbers
def _numbers_are_finite(report: Path) -> None:
    for csv_file in report.glob("*.csv"):
        text = csv_file.read_text(encoding="utf-8")
        assert not re.search(r"(?i)(?<![A-Za-z])(nan|inf|infinity)(?![A-Za-z])", text), csv_file.name
        frame = pd.read_csv(csv_file)
        numbers = frame.select_dtypes("number").to_numpy(dtype=float)
        assert not np.isinf(numbers).any(), csv_file.name  # NaN = an empty cell (does not apply)
    payload = json.loads((report / "prices.json").read_text(encoding="utf-8"))

    def walk(v):
        if isinstance(v, float):
            assert math.isfinite(v)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(payload)


@pytest.mark.parametrize("model", ["ou", "gbm"])
def test_report_numbers_are_finite(tmp_path, capsys, model):
    header, body = _shipped()
    path = _write(tmp_path / "pink.csv", header, body)
    rc = _run(tmp_path, path, "COPPER,NICKEL", "--model", model)
    assert rc == 0, capsys.readouterr().err
    _numbers_are_finite(tmp_path / "out" / "calibration" / "prices")


def test_non_finite_fit_value_is_refused_before_writing(tmp_path):
    from fundmodel.assumptions import load_assumptions
    from fundmodel.calibration.prices import calibrate_prices
    from fundmodel.calibration.report import write_price_report

    header, body = _shipped()
    path = _write(tmp_path / "pink.csv", header, body)
    result = calibrate_prices(load_assumptions(ASSUMPTIONS), data=str(path), series=["COPPER"], regimes=False,
                              fitted_on="2026-01-01")
    fit = result.fits[0]
    broken = replace(result, fits=[replace(fit, ou=replace(fit.ou, kappa_se=float("nan")))])
    with pytest.raises(CalibrationDataError, match=r"series 'COPPER': the fit gives a non-finite kappa_se"):
        write_price_report(broken, tmp_path / "out")
    assert not (tmp_path / "out" / "calibration" / "prices").exists()


def test_gbm_fit_refuses_returns_without_variation():
    x = np.log(100.0) + 0.01 * np.arange(200)  # a price growing at exactly 1 % a month
    with pytest.raises(CalibrationDataError, match="no volatility"):
        fit_gbm(x, 1 / 12, name="steady")


def test_chart_file_names_are_safe_and_unique():
    from fundmodel.calibration.report import chart_file_names

    names = ["COPPER", "CU/X", "CU_X", "cu_x", "..", "/etc/passwd", "X" * 500, "", "é"]
    files = chart_file_names(names)
    assert files["COPPER"] == "chart_COPPER.png"
    assert len({f.casefold() for f in files.values()}) == len(names)
    for f in files.values():
        assert re.fullmatch(r"chart_[A-Za-z0-9_.-]{1,60}\.png", f), f


def test_two_requests_for_the_same_column_are_exit_2(tmp_path, capsys):
    import shutil

    assumptions = tmp_path / "assumptions"
    shutil.copytree(_FAST[0], assumptions)
    cal = assumptions / "calibration.yaml"
    text = cal.read_text(encoding="utf-8")
    anchor = "    Tin: {dataset: pinksheet, column: Tin}\n"
    assert anchor in text
    cal.write_text(text.replace(anchor, anchor + "    CU_LONG: {dataset: pinksheet, column: COPPER}\n"),
                   encoding="utf-8")
    header, body = _shipped()
    path = _write(tmp_path / "pink.csv", header, body)
    rc = main(["calibrate", "prices", "--data", str(path), "--series", "COPPER,CU_LONG", "--assumptions",
               str(assumptions), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "series 'COPPER' is requested twice (as 'COPPER' and 'CU_LONG')" in err, err


def test_long_run_interval_overflow_is_refused(tmp_path, capsys):
    from scipy.signal import lfilter

    # prices near 1e303 and almost no mean reversion: exp(alpha + 1.96 se) overflows (main wrote 'inf')
    rng = np.random.default_rng(24)
    x = 699 + lfilter([1.0], [1.0, -0.998], 0.08 * rng.standard_normal(240))
    months = [f"{2000 + i // 12}-{i % 12 + 1:02d}" for i in range(240)]
    path = _write(tmp_path / "pink.csv", ["month", "COPPER"], [[m, repr(float(np.exp(v)))] for m, v in zip(months, x)])
    err = _refused(tmp_path, capsys, path)
    assert "series 'COPPER': degenerate fit" in err
