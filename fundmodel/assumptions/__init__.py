"""Analyst-edited inputs: schemas (:mod:`.schema`) and validated loading (:mod:`.loader`)."""

from .loader import Assumptions, content_fingerprint, load_assumptions
from .schema import (
    Copula,
    CountriesFile,
    Country,
    FundFile,
    MarketsFile,
    Material,
    PriceModel,
    Project,
    SamplingMethod,
    Stage,
)

__all__ = [
    "Assumptions",
    "Copula",
    "CountriesFile",
    "Country",
    "FundFile",
    "MarketsFile",
    "Material",
    "PriceModel",
    "Project",
    "SamplingMethod",
    "Stage",
    "content_fingerprint",
    "load_assumptions",
]
