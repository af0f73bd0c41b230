"""Analyst-edited inputs: schemas (:mod:`.schema`), the validated object (:mod:`.model`) and loading (:mod:`.loader`).

Model modules import :class:`Assumptions` from :mod:`fundmodel.assumptions.model`; this package
also exposes :func:`load_assumptions`, which resolves the files with model rules (schedule laws,
debt sizing) and so sits above the model in the layering (``pyproject.toml``, import-linter).
"""

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


def __getattr__(name: str):
    """``load_assumptions`` on first use (PEP 562): importing the schemas or the model type must not
    load the loader, which runs model rules (schedule laws, debt sizing) from higher layers."""
    if name == "load_assumptions":
        from .loader import load_assumptions

        return load_assumptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
