"""The validated assumptions as one immutable object (what every stage of the model reads).

Kept apart from :mod:`fundmodel.assumptions.loader` (reading, validation and resolution of the
files, which runs model rules: the schedule laws and the debt-sizing rule), so that the model
modules depend only on this data type and the schemas, never on the loader.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from .schema import CalibrationFile, CountriesFile, FundFile, InstrumentsFile, MarketsFile, Project, StressFile

__all__ = ["Assumptions", "content_fingerprint"]


@dataclass(frozen=True)
class Assumptions:
    """Everything the simulation needs, validated.

    Attributes
    ----------
    fund, markets, countries
        Parsed ``fund.yaml``, ``markets.yaml`` and ``countries.yaml``.
    instruments
        Parsed ``instruments.yaml`` (terms of the fund's instruments), ``None`` when the
        directory has none (the simulation does not need it).
    stress
        Parsed ``stress.yaml`` (named stress scenarios), ``None`` when absent.
    calibration
        Parsed ``calibration.yaml`` (settings of ``fundmodel calibrate``), ``None`` when absent.
        Not part of ``file_sha256``: the simulation does not depend on it.
    projects
        Parsed ``projects/<id>.yaml`` files keyed by project id, sorted by id.
    directory
        The assumptions directory they were read from.
    file_sha256
        SHA-256 of every file read, keyed by path relative to ``directory``
        (for the run manifest).
    """

    fund: FundFile
    markets: MarketsFile
    countries: CountriesFile
    projects: dict[str, Project]
    directory: Path
    file_sha256: dict[str, str] = field(default_factory=dict)
    instruments: InstrumentsFile | None = None
    stress: StressFile | None = None
    calibration: CalibrationFile | None = None

    @property
    def material_ids(self) -> list[str]:
        """Materials in ``markets.yaml`` order."""
        return list(self.markets.materials)


def content_fingerprint(a: "Assumptions") -> str:
    """SHA-256 of the parsed fund, markets, countries and project files: the key under which a
    process keeps what it fitted on these assumptions (credit and option policies).

    Examples
    --------
    >>> from fundmodel.assumptions import load_assumptions   # doctest: +SKIP
    >>> a = load_assumptions("assumptions")            # doctest: +SKIP
    >>> content_fingerprint(a) == content_fingerprint(a)  # doctest: +SKIP
    True
    """
    h = hashlib.sha256()
    for part in (a.fund, a.markets, a.countries):
        h.update(part.model_dump_json().encode())
    for pid, p in a.projects.items():
        h.update(pid.encode())
        h.update(p.model_dump_json().encode())
    return h.hexdigest()
