"""Analyst-edited inputs: schemas (:mod:`.schema`) and validated loading (:mod:`.loader`)."""

from .loader import Assumptions, load_assumptions
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
    "load_assumptions",
]
