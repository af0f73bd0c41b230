"""Analyst-edited inputs: schemas (:mod:`.schema`), the validated object (:mod:`.model`) and loading (:mod:`.loader`).

Model modules import :class:`Assumptions` from :mod:`fundmodel.assumptions.model`; this package
also exposes :func:`load_assumptions`, which resolves the files with model rules (schedule laws,
debt sizing) and so sits above the model in the layering (``pyproject.toml``, import-linter).
"""

from .loader import load_assumptions
from .model import Assumptions, content_fingerprint
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
