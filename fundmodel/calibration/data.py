"""Readers of the public data shipped in ``fundmodel/data/`` (see its ``DATA_LICENSES.md``).

Every reader checks what it reads and raises :class:`CalibrationDataError` (exit code 2)
naming the file and the series or country at fault (for the Pink Sheet, the line and column
too, with a short excerpt of the bad value), so that bad data never turns into a NaN
parameter or a silently dropped row.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import FundmodelError
from ..errors import did_you_mean as _hint

#: directory of the shipped data files
DATA_DIR = Path(str(resources.files("fundmodel") / "data"))
PINKSHEET_FILE = DATA_DIR / "wb_pinksheet_monthly_metals.csv"
PINKSHEET_SOURCE = "World Bank Commodity Price Data (The Pink Sheet), CC BY 4.0"
USGS_LITHIUM_FILE = DATA_DIR / "usgs_ds140_lithium_annual.csv"
USGS_LITHIUM_SOURCE = "U.S. Geological Survey DS140 lithium statistics (public domain)"
WGI_FILE = DATA_DIR / "wgi_pv_rl_cc_2019_2023.csv"
WGI_SOURCE = "World Bank, Worldwide Governance Indicators, 2024 update (CC BY 4.0)"
CPI_FILE = DATA_DIR / "ti_cpi2024_global_results_trends_semicolon.csv"
CPI_SOURCE = "Transparency International, Corruption Perceptions Index 2024 (CC BY-ND 4.0)"

#: WGI's non-ISO economy codes -> ISO 3166-1 alpha-3
WGI_TO_ISO3 = {"ZAR": "COD", "ROM": "ROU", "TMP": "TLS", "KSV": "XKX", "ADO": "AND", "WBG": "PSE"}


class CalibrationDataError(FundmodelError):
    """Public data missing, malformed or unusable for a fit (exit code 2)."""

    exit_code = 2


@dataclass(frozen=True)
class PriceSeries:
    """One observed price series.

    Attributes
    ----------
    name : str
        Series code as the data spells it (``COPPER``, ``Zinc``, ...).
    file : str
        File it was read from (for messages and the report).
    source : str
        Attribution of the data.
    periods : ndarray of str
        ``YYYY-MM`` (monthly) or ``YYYY`` (annual) labels.
    time : ndarray of float
        Decimal years at the middle of each period.
    values : ndarray of float
        Nominal prices (NaN = missing).
    dt : float
        Years per observation (1/12 or 1).
    lines : ndarray of int, optional
        Line of each period in the file, for messages.
    """

    name: str
    file: str
    source: str
    periods: np.ndarray
    time: np.ndarray
    values: np.ndarray
    dt: float
    lines: np.ndarray | None = None  #: line of each period in the file (None when not known)

    @property
    def frequency(self) -> str:
        """``monthly`` or ``annual``."""
        return "monthly" if self.dt < 1 else "annual"


#: cells the Pink Sheet uses for "no value": empty, and the World Bank's ".." / "..." / "…"
MISSING_MARKERS = frozenset({"", "..", "...", "\u2026"})
_PLAIN = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def excerpt(value: str, limit: int = 60) -> str:
    """``repr`` of ``value`` cut to about ``limit`` characters (control characters escaped).

    Examples
    --------
    >>> excerpt("10,839.04")
    "'10,839.04'"
    >>> excerpt("x" * 500)
    "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (500 chars)"
    >>> len(excerpt("\\x00" * 500)) <= 60
    True
    """
    text = repr(str(value))
    if len(text) <= limit:
        return text
    return text[:limit - 20] + f"{text[0]}... ({len(str(value))} chars)"


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - 1


def read_pinksheet(path: str | Path = PINKSHEET_FILE, latest: _dt.date | None = None) -> pd.DataFrame:
    """Read a Pink Sheet CSV (column ``month`` = YYYY-MM, one column per series code), strictly.

    Every cell must be a clean number or a missing-value marker (:data:`MISSING_MARKERS`);
    anything else (``n/a``, ``1.843,98``, ``inf``, text) is refused, naming the file, line
    and column. Thousands separators (``10,839.04``, quoted in the CSV) are accepted only
    when they are unambiguous and consistent: the column uses ``.`` as its decimal point
    and writes every value of 1,000 or more with separators; a column that mixes
    ``10,839.04`` and ``9983.79`` is refused rather than guessed.

    Months must be ``YYYY-MM``, strictly increasing, consecutive (a skipped month would
    silently stretch one step of the monthly AR(1) to two months: add the month with empty
    values instead) and not later than ``latest`` (default: today).

    Parameters
    ----------
    path : str or Path
        The shipped metals extract, or the full ``wb_pinksheet_monthly_all.csv``.
    latest : date, optional
        Last admissible date (default today); a month starting after it is refused.

    Returns
    -------
    DataFrame
        Index ``month`` (str, increasing), float columns (NaN = missing, every other value
        finite); ``frame.attrs["lines"]`` maps each month to its line in the file.

    Raises
    ------
    CalibrationDataError
        Missing or unreadable file, bad header, rows of the wrong length, bad months or
        values (file, line, column and an excerpt of the value named).
    """
    path = Path(path)
    if not path.exists():
        raise CalibrationDataError(f"{path}: price data file does not exist")
    if not path.is_file():
        raise CalibrationDataError(f"{path}: price data file is not a regular file")
    latest = latest or _dt.date.today()
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, strict=True)
            records = []
            start = 1
            for row in reader:
                if row:  # skip blank lines
                    records.append((start, row))
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise CalibrationDataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                   "save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise CalibrationDataError(f"{path}: line {reader.line_num}: cannot be read as CSV ({exc})") from None
    except OSError as exc:
        raise CalibrationDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not records:
        raise CalibrationDataError(f"{path}: the file is empty (expected a header 'month,SERIES,...')")
    header_line, header = records[0]
    names = [h.strip() for h in header]
    for i, name in enumerate(names):
        if not name:
            raise CalibrationDataError(f"{path}: line {header_line}: column {i + 1} of the header has no name")
        if _CONTROL.search(name):
            raise CalibrationDataError(f"{path}: line {header_line}: column {i + 1} name contains control "
                                       f"characters, got {excerpt(name)}")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name.casefold() in seen:
            raise CalibrationDataError(f"{path}: line {header_line}: columns {seen[name.casefold()] + 1} and {i + 1} "
                                       f"have the same name {excerpt(name)} (series names are case-insensitive)")
        seen[name.casefold()] = i
    if "month" not in names:
        raise CalibrationDataError(f"{path}: needs a 'month' column (YYYY-MM), got columns "
                                   f"{[excerpt(n, 30) for n in names[:8]]}")
    if len(records) < 2:
        raise CalibrationDataError(f"{path}: no data rows after the header")
    m_col = names.index("month")
    series_cols = [i for i in range(len(names)) if i != m_col]
    months: list[str] = []
    lines: list[int] = []
    cells: list[list[str]] = []
    limit = _month_index(f"{latest.year:04d}-{latest.month:02d}")
    for line, row in records[1:]:
        if len(row) != len(names):
            hint = (" (an unquoted thousands separator, as in 10,839.04, splits a value in two: quote the value "
                    "or write it without the separator)" if len(row) > len(names) else "")
            raise CalibrationDataError(f"{path}: line {line}: {len(row)} fields, the header has {len(names)}{hint}")
        month = row[m_col].strip()
        where = f"{path}: line {line}, column 'month'"
        if not _MONTH.fullmatch(month):
            raise CalibrationDataError(f"{where}: month must be YYYY-MM, got {excerpt(row[m_col])}")
        if _month_index(month) > limit:
            raise CalibrationDataError(f"{where}: month {month} is in the future (after {latest.isoformat()}); "
                                       "prices cannot have been observed yet")
        if months:
            step = _month_index(month) - _month_index(months[-1])
            if step == 0:
                raise CalibrationDataError(f"{where}: month {month} appears twice (lines {lines[-1]} and {line})")
            if step < 0:
                earlier = months.index(month) if month in months else None
                raise CalibrationDataError(
                    f"{where}: month {month} is out of order (after {months[-1]} on line {lines[-1]})"
                    + (f"; it also appears on line {lines[earlier]}" if earlier is not None else "")
                    + "; rows must be in increasing month order")
            if step > 1:
                raise CalibrationDataError(
                    f"{where}: month {month} follows {months[-1]} (line {lines[-1]}): {step - 1} month(s) missing; "
                    "the monthly AR(1) needs consecutive months (add the missing months with empty values)")
        months.append(month)
        lines.append(line)
        cells.append([row[i].strip() for i in series_cols])
    values = np.full((len(months), len(series_cols)), np.nan)
    for j, col in enumerate(series_cols):
        values[:, j] = _parse_column(path, names[col], [r[j] for r in cells], lines)
    frame = pd.DataFrame(values, index=pd.Index(months, name="month"), columns=[names[i] for i in series_cols])
    frame.attrs["lines"] = dict(zip(months, lines))
    return frame


def _parse_column(path: Path, name: str, texts: list[str], lines: list[int]) -> np.ndarray:
    """Numbers of one Pink Sheet column; see :func:`read_pinksheet` for the rules."""
    out = np.full(len(texts), np.nan)
    grouped = plain_big = decimal_point = None
    for k, text in enumerate(texts):
        if text in MISSING_MARKERS:
            continue
        if _PLAIN.fullmatch(text):
            value = float(text)
            if "." in text and decimal_point is None:
                decimal_point = k
            if abs(value) >= 1000 and plain_big is None:
                plain_big = k
        elif _GROUPED.fullmatch(text):
            value = float(text.replace(",", ""))
            grouped = grouped if grouped is not None else k
            if "." in text and decimal_point is None:
                decimal_point = k
        else:
            raise CalibrationDataError(
                f"{path}: line {lines[k]}, column {excerpt(name)}: not a number, got {excerpt(text)} "
                "(write plain numbers such as 10839.04; missing values are empty or '..')")
        if not np.isfinite(value):
            raise CalibrationDataError(
                f"{path}: line {lines[k]}, column {excerpt(name)}: number out of range, got {excerpt(text)}")
        out[k] = value
    if grouped is not None:
        if plain_big is not None:
            raise CalibrationDataError(
                f"{path}: line {lines[grouped]}, column {excerpt(name)}: thousands separator in "
                f"{excerpt(texts[grouped])}, but the column writes {excerpt(texts[plain_big])} (line "
                f"{lines[plain_big]}) without one; refused rather than guessed: write every value of the column "
                "the same way (best: plain numbers such as 10839.04)")
        if decimal_point is None:
            raise CalibrationDataError(
                f"{path}: line {lines[grouped]}, column {excerpt(name)}: ambiguous number {excerpt(texts[grouped])} "
                "(thousands separator or decimal comma?); no value of the column has a decimal point to tell; "
                "write plain numbers such as 10839.04")
    return out


def pinksheet_series(frame: pd.DataFrame, name: str, path: str | Path) -> PriceSeries:
    """One series of a Pink Sheet frame; the name matches case-insensitively (``ZINC`` -> ``Zinc``).

    Raises
    ------
    CalibrationDataError
        Unknown series (with a "did you mean").
    """
    cols = {c.casefold(): c for c in frame.columns}
    col = cols.get(name.casefold())
    if col is None:
        shown = ", ".join(c if len(c) <= 40 else excerpt(c, 40) for c in frame.columns)
        raise CalibrationDataError(f"{path}: unknown series {excerpt(name)}{_hint(name, list(frame.columns))}; "
                                   f"available: {shown}")
    months = frame.index.to_numpy(dtype=str)
    year = np.array([int(m[:4]) for m in months], dtype=float)
    month = np.array([int(m[5:7]) for m in months], dtype=float)
    line_of = frame.attrs.get("lines")
    lines = np.array([line_of[m] for m in months], dtype=int) if line_of else None
    return PriceSeries(name=col, file=str(path), source=PINKSHEET_SOURCE, periods=months,
                       time=year + (month - 0.5) / 12, values=frame[col].to_numpy(dtype=float), dt=1 / 12,
                       lines=lines)


def read_usgs_lithium(path: str | Path = USGS_LITHIUM_FILE) -> pd.DataFrame:
    """Read the USGS DS140 lithium table (index ``year``)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationDataError(f"{path}: USGS lithium file does not exist")
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CalibrationDataError(f"{path}: cannot be read as CSV ({exc})") from None
    need = {"year", "unit_value_usd_per_t", "unit_value_1998usd_per_t"}
    if not need <= set(frame.columns):
        raise CalibrationDataError(f"{path}: needs columns {sorted(need)}")
    return frame.set_index("year").sort_index()


def usgs_series(frame: pd.DataFrame, column: str, path: str | Path) -> PriceSeries:
    """An annual USGS column as a :class:`PriceSeries` (nominal USD)."""
    if column not in frame.columns:
        raise CalibrationDataError(f"{path}: unknown series '{column}'{_hint(column, list(frame.columns))}")
    years = frame.index.to_numpy(dtype=int)
    return PriceSeries(name=column, file=str(path), source=USGS_LITHIUM_SOURCE,
                       periods=years.astype(str), time=years + 0.5,
                       values=pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float), dt=1.0)


def cpi_u_annual(usgs_path: str | Path, cpi_u_1998: float, extension: dict[int, float]) -> pd.Series:
    """Annual US CPI-U (1982-84 = 100): implied by USGS DS140, then the given BLS averages.

    The USGS unit value in nominal dollars over the one in 1998 dollars is CPI(t) / CPI(1998)
    (USGS deflates with the CPI-U); it is published to three significant figures, so the
    implied index is exact to about 0.2 %.

    Returns
    -------
    Series
        CPI-U by calendar year.
    """
    frame = read_usgs_lithium(usgs_path)
    ratio = (frame["unit_value_usd_per_t"] / frame["unit_value_1998usd_per_t"]).dropna()
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    if ratio.empty:
        raise CalibrationDataError(f"{usgs_path}: no year with both nominal and 1998-dollar unit values")
    cpi = (cpi_u_1998 * ratio).astype(float)
    ext = pd.Series({int(k): float(v) for k, v in extension.items() if int(k) > int(cpi.index.max())})
    return pd.concat([cpi, ext]).sort_index()


def log_deflator(time: np.ndarray, cpi: pd.Series, inflation: float, valuation_time: float) -> np.ndarray:
    """``ln(CPI(valuation) / CPI(t))`` at decimal years ``time``.

    Annual averages sit at mid-year and are interpolated log-linearly; after the last year
    the index grows at ``inflation`` (``fund.yaml``). Adding it to a nominal log price gives
    the log price in real money of the valuation date.
    """
    years = cpi.index.to_numpy(dtype=float) + 0.5
    logc = np.log(cpi.to_numpy(dtype=float))
    step = np.log1p(inflation)

    def at(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        inside = np.interp(t, years, logc)
        return np.where(t > years[-1], logc[-1] + step * (t - years[-1]), inside)

    first = years[0]
    if np.any(np.asarray(time) < first):
        raise CalibrationDataError(f"the CPI deflator starts in {int(first)}; choose a later --start")
    return at(np.array(valuation_time)) - at(time)


# ----------------------------------------------------------------------------- governance
def read_wgi(path: str | Path = WGI_FILE) -> pd.DataFrame:
    """WGI estimates in long format, ISO3 codes: columns iso3, year, indicator, estimate."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationDataError(f"{path}: WGI file does not exist")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    need = {"code", "year", "indicator", "estimate"}
    if not need <= set(frame.columns):
        raise CalibrationDataError(f"{path}: needs columns {sorted(need)}, got {list(frame.columns)}")
    out = pd.DataFrame({
        "iso3": frame["code"].replace(WGI_TO_ISO3),
        "year": pd.to_numeric(frame["year"], errors="coerce"),
        "indicator": frame["indicator"],
        "estimate": pd.to_numeric(frame["estimate"].replace({"..": ""}), errors="coerce"),
    })
    return out


def read_cpi(path: str | Path = CPI_FILE, year: int = 2024) -> pd.Series:
    """Parse TI's CPI results-and-trends file as published (semicolons, two title lines).

    Returns
    -------
    Series
        CPI score (0-100) of ``year`` by ISO3 code, countries without a score dropped.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationDataError(f"{path}: CPI file does not exist")
    text = path.read_text(encoding="utf-8-sig")
    lines = text.splitlines()
    header = next((i for i, line in enumerate(lines[:10]) if line.startswith("Country")), None)
    if header is None:
        raise CalibrationDataError(f"{path}: no header line starting with 'Country' in the first 10 lines")
    frame = pd.read_csv(io.StringIO("\n".join(lines[header:])), sep=";", dtype=str, keep_default_na=False)
    col = f"CPI score {year}"
    if col not in frame.columns or "ISO3" not in frame.columns:
        raise CalibrationDataError(f"{path}: needs columns 'ISO3' and '{col}'")
    scores = pd.to_numeric(frame[col].str.replace(",", "."), errors="coerce")
    series = pd.Series(scores.to_numpy(), index=frame["ISO3"].str.strip()).dropna()
    return series[series.index != ""]
