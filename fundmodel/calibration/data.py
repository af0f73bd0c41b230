"""Readers of the public data shipped in ``fundmodel/data/`` (see its ``DATA_LICENSES.md``).

Every reader checks what it reads and raises :class:`CalibrationDataError` (exit code 2)
naming the file and the series or country at fault, so that bad data never turns into a
NaN parameter.
"""

from __future__ import annotations

import io
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
    """

    name: str
    file: str
    source: str
    periods: np.ndarray
    time: np.ndarray
    values: np.ndarray
    dt: float

    @property
    def frequency(self) -> str:
        """``monthly`` or ``annual``."""
        return "monthly" if self.dt < 1 else "annual"


def read_pinksheet(path: str | Path = PINKSHEET_FILE) -> pd.DataFrame:
    """Read a Pink Sheet CSV (column ``month`` = YYYY-MM, one column per series code).

    Parameters
    ----------
    path : str or Path
        The shipped metals extract, or the full ``wb_pinksheet_monthly_all.csv``.

    Returns
    -------
    DataFrame
        Index ``month`` (str, sorted), float columns (NaN = missing).

    Raises
    ------
    CalibrationDataError
        The file is missing, unreadable, or has no ``month`` column / bad months.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationDataError(f"{path}: price data file does not exist")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CalibrationDataError(f"{path}: cannot be read as CSV ({exc})") from None
    if "month" not in frame.columns:
        raise CalibrationDataError(f"{path}: needs a 'month' column (YYYY-MM), got columns {list(frame.columns)[:8]}")
    months = frame["month"].str.strip()
    bad = ~months.str.fullmatch(r"\d{4}-(0[1-9]|1[0-2])")
    if bad.any():
        raise CalibrationDataError(f"{path}: month must be YYYY-MM, got {months[bad].iloc[0]!r} "
                                   f"(row {int(np.flatnonzero(bad)[0]) + 2})")
    if months.duplicated().any():
        raise CalibrationDataError(f"{path}: month {months[months.duplicated()].iloc[0]} appears twice")
    values = frame.drop(columns="month").apply(lambda c: pd.to_numeric(c.str.strip().replace({"..": ""}),
                                                                        errors="coerce"))
    values.index = months
    return values.sort_index()


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
        raise CalibrationDataError(f"{path}: unknown series '{name}'{_hint(name, list(frame.columns))}; "
                                   f"available: {', '.join(frame.columns)}")
    months = frame.index.to_numpy(dtype=str)
    year = np.array([int(m[:4]) for m in months], dtype=float)
    month = np.array([int(m[5:7]) for m in months], dtype=float)
    return PriceSeries(name=col, file=str(path), source=PINKSHEET_SOURCE, periods=months,
                       time=year + (month - 0.5) / 12, values=frame[col].to_numpy(dtype=float), dt=1 / 12)


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
