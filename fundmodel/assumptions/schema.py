"""Typed, validated schemas of the analyst-edited assumption files.

Every file in ``assumptions/`` is parsed into one of the pydantic models below.
All models forbid unknown keys (typos are errors, with a "did you mean"), are
immutable once loaded, and carry units in their field names:

- ``*_musd``: millions of US dollars (real, valuation-date money);
- ``*_usd_per_t``: US dollars per tonne of payable product;
- ``*_years``: years; rates and shares are fractions per year (0.05 = 5 %).

Cross-file rules (a project's country must exist, the correlation matrix must
name every material, ...) live in :mod:`fundmodel.assumptions.loader`.

Bounds. Every number has a lower and an upper bound that no real mine, market or fund can
pass (``tests/test_input_limits.py`` walks the models and fails on a number without both);
each field's ``description`` gives its unit and why the bound is where it is. They are
hard limits, set well beyond anything on record, that keep the engine away from overflow
and the optimiser away from badly scaled problems: 1e300, 1e20 or 1e-300 typed by mistake
is refused with file, key, value and rule instead of becoming ``inf``, an internal error or
a wrong diagnosis. (Softer plausibility checks are a separate matter.) The main ones:

==========================  =====================  =============================================
quantity                    bounds                 reason
==========================  =====================  =============================================
price, floor (USD/t)        1 .. 1e9               USD 1,000/g: above rhodium's record (USD
                                                   29,800/oz = 0.96e9/t, 2021); gallium 1.4e6,
                                                   platinum ~5e7; nothing mined sells < USD 1/t
EUR/USD (USD per EUR)       0.2 .. 5               record range 0.82-1.60 since 1999
capex, acquisition (USD m)  0 .. 1e5               USD 100 bn; largest mine ever ~USD 25 bn
recurring costs (USD m/yr)  0 .. 1e4               USD 10 bn/yr; Escondida's costs ~USD 5 bn/yr
ore (Mt/yr)                 0 .. 1,000             largest mines move ~200-400 Mt/yr
opex (USD/t ore)            0 .. 1e5               underground mines cost USD 100-500/t ore
fund amounts (EUR m)        -1e6 .. 1e6            EUR 1 tn; the fund has EUR 1 bn
price volatility (/yr)      0 .. 2                 lithium 2021-23 ~0.8; FX 0 .. 0.5
durations (years)           0 .. 100               longer than the longest horizon (80)
==========================  =====================  =============================================

Free text is bounded too: names <= 200 characters (two lines of a memo title), sources,
notes and descriptions <= 2,000, identifiers (material, country, scenario keys) <= 64.
"""

from __future__ import annotations

import datetime as _dt
from enum import Enum
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# ----------------------------------------------------------------------------- bounds (see the table above)
#: USD per tonne of the priced product
PRICE_MIN_USD_PER_T = 1.0
PRICE_MAX_USD_PER_T = 1e9
#: USD per EUR
FX_MIN, FX_MAX = 0.2, 5.0
#: USD m, one-off amounts of one project (capex, acquisition, closure, debt)
MAX_MUSD = 1e5
#: USD m per year, recurring amounts of one project
MAX_MUSD_PER_YEAR = 1e4
#: EUR m, amounts of the fund (budget, limits, tickets)
MAX_MEUR = 1e6
#: Mt of ore per year
MAX_ORE_MTPA = 1000.0
#: USD per tonne of ore
MAX_OPEX_USD_PER_T_ORE = 1e5
#: years of any duration (development phases, restrictions)
MAX_DURATION_YEARS = 100.0
#: tonnes per year of one material (world iron-ore output ~2.5e9 t/yr, copper ~2.3e7)
MAX_TONNES_PER_YEAR = 1e10
#: revenue and operating cost of one project at full capacity, USD m per year (checked by the
#: loader across files: ore x grade x recovery x payability x factor x price)
MAX_PROJECT_MUSD_PER_YEAR = 1e5
#: characters of free text
MAX_NAME_CHARS = 200
MAX_TEXT_CHARS = 2000
MAX_ID_CHARS = 64

Share = Annotated[float, Field(ge=0.0, le=1.0, description="fraction 0..1")]
Source = Annotated[str, Field(min_length=3, max_length=MAX_TEXT_CHARS,
                              description="where the number comes from (3 to 2,000 characters)")]
#: a display name (memo titles, tables)
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS,
                            description="display name, 1 to 200 characters (two lines of a memo title)")]
#: free text that is printed: descriptions, notes, product definitions
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, description="free text, <= 2,000 characters")]
#: an identifier used as a key or a reference (material, country, scenario, series)
Key = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS, description="identifier, 1 to 64 characters")]
#: USD per tonne of the priced product
PriceUsdPerT = Annotated[float, Field(
    ge=PRICE_MIN_USD_PER_T, le=PRICE_MAX_USD_PER_T,
    description="real USD per tonne of the priced product, 1 to 1e9: USD 1,000 per gram is above the record "
                "of the dearest mined metal (rhodium, USD 29,800/oz = 0.96e9/t in 2021); gallium is ~1.4e6")]
Musd = Annotated[float, Field(ge=0.0, le=MAX_MUSD, description="USD m, 0 to 1e5 (USD 100 bn; the largest mine "
                                                               "ever built cost ~USD 25 bn)")]
MusdPerYear = Annotated[float, Field(ge=0.0, le=MAX_MUSD_PER_YEAR,
                                     description="USD m per year, 0 to 1e4 (USD 10 bn/yr; the largest mine's "
                                                 "total costs are ~USD 5 bn/yr)")]
Meur = Annotated[float, Field(ge=0.0, le=MAX_MEUR, description="EUR m, 0 to 1e6 (EUR 1 tn; the fund has EUR 1 bn)")]
Years = Annotated[float, Field(ge=0.0, le=MAX_DURATION_YEARS,
                               description="years, 0 to 100 (beyond the longest horizon, 80 years)")]
YearIndex = Annotated[int, Field(ge=1, le=80, description="year of the horizon, 1 to 80")]
Multiplier = Annotated[float, Field(gt=0.0, le=100.0, description="factor > 0, at most 100")]


class _Model(BaseModel):
    """Base: unknown keys are errors, loaded objects are immutable, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False)


class SamplingMethod(str, Enum):
    """How the continuous risk drivers are sampled."""

    PSEUDO = "pseudo"  #: plain pseudo-random draws (PCG64)
    LHS = "lhs"  #: Latin hypercube, stratified within each block of scenarios
    SOBOL = "sobol"  #: scrambled Sobol' low-discrepancy sequence


class Copula(str, Enum):
    """Dependence structure between the annual market shocks."""

    GAUSSIAN = "gaussian"
    STUDENT_T = "student_t"  #: adds symmetric tail dependence


class PriceModel(str, Enum):
    """Stochastic model of a log price."""

    LOG_OU = "log_ou"  #: Schwartz (1997) one-factor: dX = kappa (alpha - X) dt + sigma dW
    GBM = "gbm"  #: geometric Brownian motion: dX = (mu - sigma^2/2) dt + sigma dW


class Stage(str, Enum):
    """Development stage of a mine project; sets which schedule phases remain."""

    EXPLORATION = "exploration"
    FEASIBILITY = "feasibility"
    CONSTRUCTION = "construction"
    PRODUCTION = "production"


class Triangular(_Model):
    """A duration in years drawn from a triangular distribution."""

    min: Years
    mode: Years
    max: Years

    @model_validator(mode="after")
    def _ordered(self) -> "Triangular":
        if not (self.min <= self.mode <= self.max):
            raise ValueError(
                f"must satisfy min <= mode <= max, got min={self.min}, mode={self.mode}, max={self.max}"
            )
        return self


# --------------------------------------------------------------------------- fund.yaml
class SimulationSettings(_Model):
    """Default Monte Carlo settings (overridable on the command line)."""

    scenarios: Annotated[int, Field(
        ge=1, le=10_000_000, description="Monte Carlo scenarios, 1 to 1e7 (memory grows with "
                                         "scenarios x projects x years)")] = 20_000
    seed: Annotated[int, Field(ge=0, le=2**63 - 1, description="random seed, 0 to 2^63-1 (a signed 64-bit "
                                                               "integer, as the manifest stores it)")] = 20260101
    sampling: SamplingMethod = SamplingMethod.SOBOL
    chunk_size: Annotated[int, Field(
        ge=1, le=1_000_000, description="scenarios per chunk, 1 to 1e6 (a memory knob)")] = 4096
    copula: Copula = Copula.GAUSSIAN
    copula_dof: Annotated[float, Field(
        gt=2.0, le=1000.0, description="degrees of freedom of the Student-t copula, > 2 (finite variance) to 1,000 "
                                       "(Gaussian in practice)")] = 5.0
    #: draw each scenario's long-run level and mean reversion of every material with an estimated
    #: (or sourced) covariance: fundmodel.market.draw_price_parameters
    parameter_uncertainty: bool = True
    #: value each project's investment decision and operating options (care and maintenance,
    #: reopening, abandonment) by least-squares Monte Carlo on top of the committed plan:
    #: fundmodel.operating_options (summary.csv option_value_meur, prob_development, ...)
    operating_options: bool = True
    risk_attribution: bool = True
    attribution_scenarios: Annotated[int, Field(
        ge=1, le=10_000_000, description="scenarios of the risk attribution, 1 to 1e7")] = 4096
    #: tornado data (sensitivity.csv) on the first attribution_scenarios scenarios, when the
    #: risk attribution runs
    sensitivity: bool = True
    #: break-even long-run price of each project's primary material (summary.csv), when the risk
    #: attribution runs: fundmodel.breakeven
    breakeven: bool = True
    breakeven_scenarios: Annotated[int, Field(
        ge=16, le=1_000_000, description="scenarios of the break-even search, 16 to 1e6")] = 2048
    workers: Annotated[int, Field(ge=1, le=256, description="worker processes, 1 to 256")] = 2


class PortfolioSettings(_Model):
    """Fund limits and objective of the portfolio optimiser (``fund.yaml: portfolio``).

    Objectives: ``max_pv`` (expected PV of the fund, EUR m), ``max_supply`` (expected tonnes
    per year secured for European buyers weighted by ``supply_weights``, under
    ``return_floor_meur``) or ``blend``: expected PV + ``blend_supply_value_meur_per_t`` x
    weighted tonnes, i.e. the EUR m of expected PV the fund is willing to give up for one
    more weighted tonne per year of secured supply (NdPr-equivalent with the default weights).

    Go/no-go (``go_no_go: true``, solved as a MILP): a project is either out (all its
    instruments zero) or in with an exposure (capital + contingent, EUR m) of at least its
    minimum ticket (``min_ticket_by_project_meur`` or else ``min_ticket_meur``), and at most
    ``max_projects`` projects are in.

    Probability of loss (optional): ``P(fund PV < -prob_loss_threshold_meur) <= max_prob_loss``,
    imposed through the sufficient CVaR bound ``CVaR_{1-max_prob_loss}(loss) <= threshold``.

    Large runs: the CVaR limit and the frontiers use the first ``optimization_scenarios``
    scenarios (a sample-average approximation of the tail; expectations and the other
    limits use all scenarios) and the chosen portfolio's VaR and CVaR are then recomputed
    on every scenario of the run.
    """

    objective: Literal["max_pv", "max_supply", "blend"] = "max_pv"
    cvar_beta: Annotated[float, Field(ge=0.5, lt=1.0, description="CVaR confidence level, 0.5 <= beta < 1")] = 0.95
    budget_meur: Annotated[float, Field(gt=0.0, le=MAX_MEUR, description="EUR m, > 0 and at most 1e6 (EUR 1 tn)")]
    contingent_limit_meur: Meur
    cvar_limit_meur: Annotated[float, Field(
        gt=0.0, le=MAX_MEUR, description="EUR m, > 0 and at most 1e6")] | None = None
    return_floor_meur: Annotated[float, Field(ge=-MAX_MEUR, le=MAX_MEUR,
                                              description="EUR m, -1e6 to 1e6")] | None = None
    max_country_share: Annotated[float, Field(
        gt=0.0, le=1.0, description="share of the fund's exposure per host country, > 0 to 1")] = 1.0
    max_material_share: Annotated[float, Field(
        gt=0.0, le=1.0, description="share of the fund's exposure per primary material, > 0 to 1")] = 1.0
    min_supply_t_per_year: dict[Key, Annotated[float, Field(
        ge=0.0, le=MAX_TONNES_PER_YEAR, description="tonnes per year, 0 to 1e10 (world iron-ore output is "
                                                    "~2.5e9 t/yr)")]] = {}
    supply_weights: dict[Key, Annotated[float, Field(
        ge=0.0, le=1e6, description="relative weight of a tonne (NdPr = 1), 0 to 1e6: keeps the objective "
                                    "within twelve orders of magnitude")]] = {}
    blend_supply_value_meur_per_t: Annotated[float, Field(
        ge=0.0, le=1e3, description="EUR m of expected PV per weighted tonne per year, 0 to 1,000 (a tonne "
                                    "of NdPr sells for ~EUR 0.07 m)")] | None = None
    go_no_go: bool = False
    min_ticket_meur: Meur = 0.0
    min_ticket_by_project_meur: dict[Key, Meur] = {}
    max_projects: Annotated[int, Field(ge=1, le=10_000, description="projects, 1 to 10,000")] | None = None
    max_prob_loss: Annotated[float, Field(
        gt=0.0, lt=1.0, description="probability, 0 < p < 0.5 (a tail probability)")] | None = None
    prob_loss_threshold_meur: Meur = 0.0
    #: the concession (value at the policy rate minus market value) the fund may grant in total
    concession_budget_meur: Annotated[float, Field(
        ge=0.0, le=MAX_MEUR, description="EUR m of concession (value at the fund's policy rate minus market "
                                         "value) the portfolio may grant, 0 to 1e6; none: unlimited")] | None = None
    #: the CVaR of the solve uses the first N scenarios; the allocation is evaluated on all of them
    optimization_scenarios: Annotated[int, Field(
        ge=1024, le=1_000_000, description="scenarios of the CVaR solve, 1,024 (a tail needs them) to 1e6")] = 20000
    source: Source

    @model_validator(mode="after")
    def _consistent(self) -> "PortfolioSettings":
        if self.objective == "blend" and self.blend_supply_value_meur_per_t is None:
            raise ValueError("blend_supply_value_meur_per_t: required when objective is 'blend' "
                             "(EUR m of expected PV per weighted tonne per year secured)")
        if self.objective in ("max_supply", "blend") and not self.supply_weights:
            raise ValueError(f"supply_weights: must weight at least one material when objective is "
                             f"'{self.objective}'")
        if not self.go_no_go:
            used = [k for k, v in (("min_ticket_meur", self.min_ticket_meur > 0),
                                   ("min_ticket_by_project_meur", bool(self.min_ticket_by_project_meur)),
                                   ("max_projects", self.max_projects is not None)) if v]
            if used:
                raise ValueError(f"{', '.join(used)}: need go_no_go: true (binary project decisions, "
                                 "solved as a mixed-integer programme)")
        if self.max_prob_loss is not None and self.max_prob_loss >= 0.5:
            raise ValueError(f"max_prob_loss: must be below 0.5 (a tail probability), got {self.max_prob_loss}")
        return self


AnnualRate = Annotated[float, Field(ge=0.0, le=0.3, description="rate or premium per year, 0 to 0.3")]


class MarketRatesSettings(_Model):
    """Market rates of the claims the fund takes (``fund.yaml: market_rates``, nominal EUR).

    Each claim is valued at the rate a counterparty would use (:mod:`fundmodel.rates`):
    the project (all capital) at the asset rate ``risk_free_eur + mining_asset_beta x
    equity_risk_premium + country_risk_premium``; the sponsors' equity at the cost of equity
    (the asset beta levered by the project's gearing, Hamada); a senior loan at
    ``risk_free_eur + sovereign default spread + project_finance_spread``. The fund's policy
    rate (``discount_rate_nominal``) gives the concession (value at the policy rate minus
    market value).
    """

    risk_free_eur: Annotated[float, Field(ge=-0.02, le=0.2, description="nominal EUR risk-free rate per year, "
                                                                       "-0.02 to 0.2")]
    equity_risk_premium: AnnualRate
    mining_asset_beta: Annotated[float, Field(ge=0.0, le=3.0, description="unlevered (asset) beta, 0 to 3")]
    max_equity_beta: Annotated[float, Field(ge=0.5, le=10.0, description="cap of the levered beta, 0.5 to 10")] = 3.0
    equity_to_bond_volatility: Annotated[float, Field(
        ge=1.0, le=3.0, description="ratio of equity to government-bond volatility that scales a sovereign default "
                                    "spread into a country risk premium (Damodaran), 1 to 3")]
    project_finance_spread: AnnualRate
    source: Source


# --------------------------------------------------------------------------- fund.yaml: schedule_evidence
#: size classes of the capex-overrun evidence (``schedule_evidence.overrun``)
SizeClass = Literal["megaproject", "standard"]
Probability = Annotated[float, Field(gt=0.0, lt=1.0, description="probability, 0 < p < 1")]


class OverrunEvidence(_Model):
    """Capex-overrun figures of one size class (``schedule_evidence.overrun.<class>``).

    The overrun ratio ``R = as-built / budget - 1`` follows the mixture of
    :func:`fundmodel.schedule.overrun_law`: on or under budget with probability ``1 - prob_over``
    (a triangular underrun down to ``-underrun_max``, mode 0), else an overrun whose part below
    +100 % is a truncated exponential and whose part from +100 % on (probability
    ``prob_ge_100pct``) is Pareto with index ``tail_index``. Give the mean either unconditionally
    (``mean``) or among the projects that overrun (``mean_if_over``), not both.
    """

    prob_over: Probability
    mean: Annotated[float, Field(ge=-0.5, le=3.0, description="E[R], mean overrun over all projects, "
                                                             "fraction -0.5 to 3 (+300 %)")] | None = None
    mean_if_over: Annotated[float, Field(gt=0.0, le=5.0, description="E[R | R > 0], mean overrun of the "
                                                                    "projects over budget, fraction 0 to 5")] | None = None
    prob_ge_100pct: Probability
    underrun_max: Annotated[float, Field(ge=0.01, lt=1.0, description="largest underrun, fraction 0.01 to < 1 "
                                                                     "(under-budget projects land in "
                                                                     "[-underrun_max, 0])")] = 0.3
    tail_index: Annotated[float, Field(gt=1.0, le=20.0, description="Pareto index of overruns of +100 % or more, "
                                                                   "> 1 (finite mean) to 20 (near-exponential)")] = 3.0
    source: Source

    @model_validator(mode="after")
    def _attainable(self) -> "OverrunEvidence":
        if (self.mean is None) == (self.mean_if_over is None):
            raise ValueError("give exactly one of mean (over all projects) and mean_if_over (among projects "
                             "over budget)")
        q, t, u, a = self.prob_over, self.prob_ge_100pct, self.underrun_max, self.tail_index
        if t >= q:
            raise ValueError(f"prob_ge_100pct ({t}) must be below prob_over ({q})")
        # the body mean b = (q m_c - t a/(a-1)) / (q - t) must lie in (0, 1) (closed form, see schedule.py)
        lo = t * a / (a - 1) / q
        hi = (q - t + t * a / (a - 1)) / q
        m_c = self.mean_if_over if self.mean_if_over is not None else (self.mean + (1 - q) * u / 3) / q
        if not lo < m_c < hi:
            raise ValueError(f"no overrun law has P(over) = {q}, P(>= +100 %) = {t}, tail index {a} and mean "
                             f"{m_c:.4f} among projects over budget: attainable ({lo:.4f}, {hi:.4f}), i.e. "
                             f"over all projects ({q * lo - (1 - q) * u / 3:.4f}, {q * hi - (1 - q) * u / 3:.4f})")
        return self


class DelayEvidence(_Model):
    """Construction delay ``D = actual / planned construction time - 1`` (``schedule_evidence.delay``).

    On time or early (a triangular gain down to ``-early_max``, mode 0) with probability
    ``1 - prob_late``, else late by a lognormal amount with log-sd ``sigma_if_late`` whose mean
    makes ``E[D] = mean``.
    """

    prob_late: Probability
    mean: Annotated[float, Field(gt=0.0, le=3.0, description="E[D], mean delay over all projects, fraction of the "
                                                            "planned construction time, > 0 to 3")]
    sigma_if_late: Annotated[float, Field(gt=0.0, le=3.0, description="log-sd of the delay of late projects, "
                                                                     "> 0 to 3")] = 0.8
    early_max: Annotated[float, Field(ge=0.01, lt=1.0, description="largest early finish, fraction of the plan, "
                                                                  "0.01 to < 1")] = 0.1
    source: Source

    @model_validator(mode="after")
    def _late_mean_positive(self) -> "DelayEvidence":
        if self.mean + (1 - self.prob_late) * self.early_max / 3 <= 0:
            raise ValueError("mean is too low: late projects would need a negative delay")
        return self


class FinancingWaitEvidence(_Model):
    """Wait for project finance after the permits, before the investment decision (lognormal)."""

    median_years: Annotated[float, Field(gt=0.0, le=30.0, description="median wait, years, > 0 to 30")]
    sigma: Annotated[float, Field(ge=0.0, le=3.0, description="log-sd of the wait, 0 to 3 (1 gives P99/P50 ~ 10)")]
    source: Source


class PlateauShare(_Model):
    """Share of nameplate throughput a plant settles at, triangular (min, mode, max)."""

    min: Annotated[float, Field(gt=0.0, le=1.0, description="share of nameplate, > 0 to 1")]
    mode: Annotated[float, Field(gt=0.0, le=1.0, description="share of nameplate, > 0 to 1")]
    max: Annotated[float, Field(gt=0.0, le=1.0, description="share of nameplate, > 0 to 1")]

    @model_validator(mode="after")
    def _ordered(self) -> "PlateauShare":
        if not (self.min <= self.mode <= self.max):
            raise ValueError(f"must satisfy min <= mode <= max, got min={self.min}, mode={self.mode}, max={self.max}")
        return self


class NameplateEvidence(_Model):
    """Ramp-up outcome of one McNulty series: the chance of settling below nameplate, and where."""

    prob_shortfall: Share
    plateau: PlateauShare


class LeadTimeEvidence(_Model):
    """Discovery-to-production lead times to compare the simulated schedules with (tests, docs)."""

    mean_years: Annotated[float, Field(gt=0.0, le=100.0, description="years, > 0 to 100")]
    recent_mean_years: Annotated[float, Field(gt=0.0, le=100.0, description="years, > 0 to 100")]
    min_years: Annotated[float, Field(gt=0.0, le=100.0, description="years, > 0 to 100")]
    max_years: Annotated[float, Field(gt=0.0, le=100.0, description="years, > 0 to 100")]
    mines: Annotated[int, Field(ge=1, le=100_000, description="mines in the study, 1 to 100,000")]
    #: time from discovery to the scoping-study stage of our exploration projects
    discovery_to_scoping_years: Triangular
    source: Source


class ScheduleEvidence(_Model):
    """Published schedule and cost outcomes the schedule model reproduces (``fund.yaml:
    schedule_evidence``); a project's ``schedule``/``capex`` fields override them. See
    ``docs/schedule.md`` for the derivations."""

    megaproject_threshold_musd: Annotated[float, Field(
        gt=0.0, le=MAX_MUSD, description="USD m of initial capex above which a project is a megaproject, > 0 to "
                                         "1e5")] = 1000.0
    overrun: dict[SizeClass, OverrunEvidence] = {
        "megaproject": OverrunEvidence(
            prob_over=0.70, mean_if_over=0.62, prob_ge_100pct=0.0769,
            source="EY (2015): 69 % of 108 mining megaprojects over budget, +62 % on average among them; tail: "
                   "Bertisen & Davis (2008), 1 in 13 overrun >= 100 %"),
        "standard": OverrunEvidence(
            prob_over=0.60, mean=0.14, prob_ge_100pct=0.0769,
            source="Bertisen & Davis (2008), 63 projects: as-built capex +14 % on average, 1 in 13 >= +100 %; "
                   "share over budget: assumption"),
    }
    overrun_delay_correlation: Annotated[float, Field(ge=-1.0, le=1.0, description="Gaussian-copula correlation "
                                                                                   "of overrun and delay, -1 to 1")] = 0.5
    delay: DelayEvidence = DelayEvidence(prob_late=0.52, mean=0.25,
                                         source="McKinsey (2024): 52 % of projects > USD 1 bn late; mean delay "
                                                "20-30 % of plan (issue 14): 25 %")
    financing_wait: FinancingWaitEvidence = FinancingWaitEvidence(
        median_years=0.75, sigma=1.0, source="S&P Global: construction starts ~1.8 years after the feasibility "
                                             "study on average, 3-5 years for some (financing, permits)")
    nameplate: dict[Literal[1, 2, 3, 4], NameplateEvidence] = {
        1: NameplateEvidence(prob_shortfall=0.05, plateau=PlateauShare(min=0.85, mode=0.95, max=1.0)),
        2: NameplateEvidence(prob_shortfall=0.15, plateau=PlateauShare(min=0.75, mode=0.90, max=1.0)),
        3: NameplateEvidence(prob_shortfall=0.40, plateau=PlateauShare(min=0.55, mode=0.80, max=1.0)),
        4: NameplateEvidence(prob_shortfall=0.65, plateau=PlateauShare(min=0.30, mode=0.60, max=0.95)),
    }
    default_rampup_series: Annotated[int, Field(ge=1, le=4, description="McNulty series 1 to 4")] = 2
    lead_time: LeadTimeEvidence = LeadTimeEvidence(
        mean_years=15.7, recent_mean_years=17.9, min_years=6.0, max_years=32.0, mines=127,
        discovery_to_scoping_years=Triangular(min=1.0, mode=3.0, max=8.0),
        source="S&P Global Market Intelligence (2023): 127 mines started 2002-23, discovery to production 15.7 "
               "years on average, 6-32; 17.9 years for 2020-23 starts (S&P Global 2024)")
    source: Source = "docs/schedule.md"

    @model_validator(mode="after")
    def _complete(self) -> "ScheduleEvidence":
        missing = [c for c in get_args(SizeClass) if c not in self.overrun]
        if missing:
            raise ValueError(f"overrun: needs every size class, missing {missing}")
        missing = [s for s in (1, 2, 3, 4) if s not in self.nameplate]
        if missing:
            raise ValueError(f"nameplate: needs every McNulty series 1-4, missing {missing}")
        return self


class FundFile(_Model):
    """``fund.yaml``: valuation conventions and simulation defaults."""

    name: Name
    valuation_date: _dt.date
    reporting_currency: Literal["EUR"] = "EUR"
    discount_rate_nominal: Annotated[float, Field(
        ge=-0.05, le=0.5, description="nominal rate per year, -0.05 to 0.5 (policy rates bottomed at -0.5 %; "
                                      "mining hurdle rates are 8-15 %)")]
    inflation: Annotated[float, Field(gt=-0.1, lt=0.5, description="long-run inflation per year, -0.1 < x < 0.5")]
    horizon_years: Annotated[int, Field(ge=5, le=80, description="years, 5 to 80 (two mine lives)")]
    market_rates: MarketRatesSettings
    simulation: SimulationSettings = SimulationSettings()
    portfolio: PortfolioSettings | None = None
    source: Source
    schedule_evidence: ScheduleEvidence = ScheduleEvidence()

    @property
    def real_discount_rate(self) -> float:
        """Real discount rate implied by the Fisher relation."""
        return (1 + self.discount_rate_nominal) / (1 + self.inflation) - 1


# --------------------------------------------------------------------------- markets.yaml
class PriceProcess(_Model):
    """Parameters common to a log-price process (a material or the exchange rate)."""

    model: PriceModel = PriceModel.LOG_OU
    mean_reversion_per_year: Annotated[float, Field(
        ge=0.0, le=10.0, description="kappa per year, 0 to 10 (a half-life of 25 days; fitted values are "
                                     "0.1-0.5)")] = 0.0
    volatility: Annotated[float, Field(
        ge=0.0, le=2.0, description="annual sigma of the log price, 0 to 2 (lithium carbonate 2021-23, the "
                                    "most volatile metal market on record, ~0.8)")]
    drift_per_year: Annotated[float, Field(
        ge=-0.3, le=0.3, description="real drift of the log price per year (model gbm), -0.3 to 0.3: +30 %/yr "
                                     "for 80 years is a factor 1e10")] = 0.0

    @model_validator(mode="after")
    def _ou_needs_kappa(self) -> "PriceProcess":
        if self.model is PriceModel.LOG_OU and self.mean_reversion_per_year <= 0:
            raise ValueError(
                "mean_reversion_per_year must be > 0 for model 'log_ou' "
                f"(got {self.mean_reversion_per_year}); use model 'gbm' for no mean reversion"
            )
        return self


class PriceCalibrationRecord(_Model):
    """Where the fitted numbers of a material come from (written by ``fundmodel calibrate prices``).

    ``*_se`` are standard errors (delta method), ``*_ci`` 95 % confidence intervals; prices are
    real USD per tonne of valuation-date money. Optional: hand-set materials have none.
    """

    source: Source
    series: Key
    sample: Annotated[str, Field(pattern=r"^\d{4}(-\d{2})?\.\.\d{4}(-\d{2})?$")]
    observations: Annotated[int, Field(ge=2, le=100_000, description="observations, 2 to 100,000 (monthly "
                                                                       "data since 1900 are ~1,500)")]
    frequency: Literal["monthly", "annual"]
    fitted_on: _dt.date
    model: PriceModel
    # statistics of a fit, recorded for the reader (not simulated): wide bounds, a weakly
    # identified mean reversion gives wide intervals
    mean_reversion_se: Annotated[float, Field(ge=0.0, le=1e3, description="per year, 0 to 1,000")] | None = None
    half_life_years: Annotated[float, Field(gt=0.0, le=1e6, description="years, > 0 to 1e6 (ln 2 / kappa)")] \
        | None = None
    long_run_ci_usd_per_t: tuple[
        Annotated[float, Field(gt=0.0, le=1e15, description="USD/t, a statistical interval: may be wide")],
        Annotated[float, Field(gt=0.0, le=1e15, description="USD/t, a statistical interval: may be wide")],
    ] | None = None
    volatility_se: Annotated[float, Field(ge=0.0, le=100.0, description="per year, 0 to 100")] | None = None
    drift_se: Annotated[float, Field(ge=0.0, le=100.0, description="per year, 0 to 100")] | None = None
    aic_ou_minus_gbm: Annotated[float, Field(ge=-1e7, le=1e7, description="AIC difference, |x| <= 1e7 "
                                                                          "(<= 100,000 observations)")] | None = None
    # estimated covariance of (ln long_run, mean_reversion_per_year) with mean_reversion_se: what the
    # simulation draws the parameters from (fund.yaml simulation.parameter_uncertainty)
    log_long_run_se: Annotated[float, Field(
        ge=0.0, le=5.0, description="standard error of ln(long-run level), 0 to 5 (a factor e^5 = 150)")] | None = None
    log_long_run_mean_reversion_correlation: Annotated[float, Field(
        ge=-1.0, le=1.0, description="correlation of the ln(long-run) and mean-reversion estimates, -1 to 1")] \
        | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _covariance_complete(self) -> "PriceCalibrationRecord":
        parts = {"mean_reversion_se": self.mean_reversion_se, "log_long_run_se": self.log_long_run_se,
                 "log_long_run_mean_reversion_correlation": self.log_long_run_mean_reversion_correlation}
        given = [k for k, v in parts.items() if v is not None]
        if self.log_long_run_se is not None or self.log_long_run_mean_reversion_correlation is not None:
            missing = [k for k in parts if k not in given]
            if missing:
                raise ValueError(f"the parameter covariance needs {', '.join(parts)} together; missing "
                                 f"{', '.join(missing)}")
            if self.model is not PriceModel.LOG_OU:
                raise ValueError(f"log_long_run_se is a log_ou statistic; the record's model is {self.model.value}")
        return self

    @property
    def has_covariance(self) -> bool:
        """True when the record carries the covariance of ``(ln long_run, mean_reversion)``."""
        return self.log_long_run_se is not None


class ParameterUncertainty(_Model):
    """An analyst's uncertainty of a hand-set material's long-run level and mean reversion.

    The standard deviations of ``ln(long_run_usd_per_t)`` and ``mean_reversion_per_year`` and
    their correlation: the same law as a fitted material's estimated covariance
    (:func:`fundmodel.market.parameter_law`). Must be sourced.
    """

    log_long_run_sd: Annotated[float, Field(
        ge=0.0, le=5.0, description="sd of ln(long-run level), 0 to 5 (a factor e^5 = 150)")]
    mean_reversion_sd: Annotated[float, Field(ge=0.0, le=10.0, description="per year, 0 to 10")]
    correlation: Annotated[float, Field(ge=-1.0, le=1.0, description="a correlation, -1 to 1")] = 0.0
    source: Source


class Material(PriceProcess):
    """One traded product, priced in real USD per tonne of payable product."""

    name: Name
    unit: Literal["t"] = "t"
    product: Text
    spot_usd_per_t: PriceUsdPerT
    long_run_usd_per_t: PriceUsdPerT
    strategic: bool = True
    source: Source
    calibration: PriceCalibrationRecord | None = None
    #: hand-set materials only (no fitted covariance): an analyst's sourced parameter uncertainty
    parameter_uncertainty: ParameterUncertainty | None = None

    @model_validator(mode="after")
    def _one_parameter_law(self) -> "Material":
        if self.parameter_uncertainty is not None:
            if self.calibration is not None and self.calibration.has_covariance:
                raise ValueError("parameter_uncertainty is for hand-set materials: this material has a fitted "
                                 "covariance (calibration.log_long_run_se); remove one of them")
            if self.model is not PriceModel.LOG_OU:
                raise ValueError(f"parameter_uncertainty needs model log_ou (a long-run level and a mean "
                                 f"reversion), got {self.model.value}")
        return self


class ExchangeRate(PriceProcess):
    """EUR/USD, quoted as USD per EUR, simulated as a correlated factor."""

    pair: Literal["EURUSD"] = "EURUSD"
    spot: Annotated[float, Field(ge=FX_MIN, le=FX_MAX, description="USD per EUR, 0.2 to 5 (0.82-1.60 since 1999)")]
    long_run: Annotated[float, Field(ge=FX_MIN, le=FX_MAX, description="USD per EUR, 0.2 to 5")]
    volatility: Annotated[float, Field(
        ge=0.0, le=0.5, description="annual sigma of log EUR/USD, 0 to 0.5 (history ~0.08-0.10)")]
    source: Source


class CorrelationCalibrationRecord(_Model):
    """Entries of the correlation matrix estimated from data (``fundmodel calibrate prices``)."""

    factors: list[Key]
    sample: Key
    fitted_on: _dt.date
    method: Source
    source: Source


class CorrelationMatrix(_Model):
    """Correlation of the annual shocks; ``factors`` gives the row order."""

    factors: list[Key]
    matrix: list[list[Annotated[float, Field(ge=-1.0, le=1.0, description="a correlation, -1 to 1")]]]
    source: Source
    calibration: CorrelationCalibrationRecord | None = None


class ExportRestriction(_Model):
    """Chinese export-restriction regime hitting ex-China prices of several materials at once.

    ``forced_years`` (year indices, empty by default) puts a restriction in force in those
    years in every scenario: the lever of stress scenarios such as a 2025-style export ban.
    """

    annual_onset_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    duration_years: Triangular
    geopolitical_loading: Annotated[float, Field(
        ge=0.0, le=3.0, description="loading on the N(0, 1) geopolitical factor, 0 to 3 (x20 at +1 sigma)")] = 0.0
    price_uplift: dict[Key, Annotated[float, Field(
        ge=0.0, le=10.0, description="ex-China price uplift while restricted, fraction 0 to 10 (+1,000 %; gallium "
                                     "2023-25 +139 %)")]]
    forced_years: list[YearIndex] = []
    source: Source


class MarketsFile(_Model):
    """``markets.yaml``: price models, correlation, FX and the export-restriction regime."""

    materials: dict[Key, Material]
    fx: ExchangeRate
    correlation: CorrelationMatrix
    export_restriction: ExportRestriction


# --------------------------------------------------------------------------- countries.yaml
class Expropriation(_Model):
    """Outright taking of the asset; compensation paid as a share of net book value."""

    annual_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    compensation_share: Share
    price_elasticity: Annotated[float, Field(
        ge=0.0, le=10.0, description="elasticity of the hazard to the price ratio, 0 to 10")] = 0.0


class ForcedParticipation(_Model):
    """The state takes an equity share (e.g. Mongolia's 34 %/50 % rule), partly compensated."""

    annual_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    state_share: Share
    compensation_share: Share
    price_elasticity: Annotated[float, Field(
        ge=0.0, le=10.0, description="elasticity of the hazard to the price ratio, 0 to 10")] = 0.0


class FiscalGrab(_Model):
    """Royalty or income-tax increase, cumulative over repeated events, capped."""

    annual_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    royalty_increase: Share
    tax_increase: Share
    max_events: Annotated[int, Field(ge=1, le=10, description="events, 1 to 10")] = 2
    price_elasticity: Annotated[float, Field(
        ge=0.0, le=10.0, description="elasticity of the hazard to the price ratio, 0 to 10")] = 0.0


class TransferRestriction(_Model):
    """Cash trapped in the country (and part of sales blocked) for some years."""

    annual_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    duration_years: Annotated[int, Field(ge=1, le=20, description="years, 1 to 20")]
    trapped_cash_haircut: Share
    sales_blocked_share: Share


class Unrest(_Model):
    """Unrest halting part of production in the year it happens."""

    annual_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    production_loss_share: Share


class LicenceSuspension(_Model):
    """Licence suspended: operations (or development) stop for some years, fixed costs go on."""

    annual_probability: Annotated[float, Field(ge=0.0, lt=1.0, description="probability per year, 0 <= p < 1")]
    duration_years: Annotated[int, Field(ge=1, le=20, description="years, 1 to 20")]


class PoliticalEvents(_Model):
    """Annual hazards and severities of the modelled political events."""

    expropriation: Expropriation
    forced_participation: ForcedParticipation
    fiscal_grab: FiscalGrab
    transfer_restriction: TransferRestriction
    unrest: Unrest
    licence_suspension: LicenceSuspension


_WGI = "WGI estimate, ~N(0, 1) by construction (published range -2.5..2.5): -5 to 5"


class CountryCalibrationRecord(_Model):
    """Indicators and scores behind a country's hazards (``fundmodel calibrate countries``)."""

    wgi_year: Annotated[int, Field(ge=1996, le=2100, description="year, 1996 (first WGI) to 2100")]
    political_stability: Annotated[float, Field(ge=-5.0, le=5.0, description=_WGI)]
    rule_of_law: Annotated[float, Field(ge=-5.0, le=5.0, description=_WGI)]
    control_of_corruption: Annotated[float, Field(ge=-5.0, le=5.0, description=_WGI)]
    cpi_year: Annotated[int, Field(ge=2012, le=2100, description="year, 2012 (first comparable CPI) to 2100")]
    cpi_score: Annotated[float, Field(ge=0.0, le=100.0, description="CPI score, 0 to 100")]
    oecd_category_used: Annotated[int, Field(
        ge=0, le=7, description="OECD country-risk category, 0 (high income) to 7")]
    fitted_on: _dt.date
    source: Source


class Country(_Model):
    """Political risk profile of one host country."""

    name: Name
    iso3: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    oecd_category: Annotated[int, Field(
        ge=0, le=7, description="OECD country-risk category, 0 to 7; null for unclassified high-income "
                                "countries")] | None
    sovereign_rating: Annotated[str, Field(pattern=r"^(Aaa|Aa[123]|A[123]|Baa[123]|Ba[123]|B[123]|Caa[123]|Ca|C)$",
                                           description="Moody's long-term sovereign rating (documentation)")]
    country_risk_premium: Annotated[float, Field(
        ge=0.0, le=0.3, description="additional equity return required in the country per year (Damodaran), "
                                    "0 to 0.3")]
    permitting_years: Triangular
    events: PoliticalEvents
    source: Source
    calibration: CountryCalibrationRecord | None = None


class GeopoliticalFactor(_Model):
    """Common AR(1) factor g ~ N(0, 1) that scales every hazard by exp(loading*g - loading^2/2)."""

    persistence: Annotated[float, Field(
        ge=0.0, lt=1.0, description="AR(1) coefficient per year, 0 <= phi < 1 (stationary)")]
    hazard_loading: Annotated[float, Field(ge=0.0, le=3.0, description="loading on the N(0, 1) factor, 0 to 3")]
    source: Source


class CountriesFile(_Model):
    """``countries.yaml``: host-country political risk."""

    geopolitical_factor: GeopoliticalFactor
    countries: dict[Key, Country]


# --------------------------------------------------------------------------- instruments.yaml
class EquityTerms(_Model):
    """Equity stakes (JOGMEC: <= 50 % and never the sole largest shareholder; DFC: <= 30 %)."""

    max_share: Annotated[float, Field(gt=0.0, le=1.0, description="share of project equity, > 0 to 1")]
    sole_largest_shareholder_allowed: bool = False
    source: Source


Rate = Annotated[float, Field(ge=0.0, lt=0.5, description="premium per year, fraction 0 <= x < 0.5")]


class _PremiumSchedule(_Model):
    """A premium rate per year, optionally graded by the host country's OECD risk category."""

    premium_rate_per_year: Rate
    #: rate by OECD country-risk category 1..7; countries without a category (high income,
    #: market pricing) and categories not listed pay ``premium_rate_per_year``
    premium_rate_by_oecd_category: dict[Annotated[int, Field(
        ge=1, le=7, description="OECD category 1 to 7")], Rate] = {}

    def rate_for(self, oecd_category: int | None) -> float:
        """Premium rate per year for a host country of this OECD category (None: none)."""
        if oecd_category is None:
            return self.premium_rate_per_year
        return self.premium_rate_by_oecd_category.get(oecd_category, self.premium_rate_per_year)


class LoanGuaranteeTerms(_PremiumSchedule):
    """Guarantee of a share of the senior loan (JOGMEC: <= 80 %); UFK-style supply commitment."""

    max_cover: Annotated[float, Field(gt=0.0, le=1.0, description="share covered, > 0 to 1")]
    supply_commitment_share: Share
    source: Source


class PoliticalRiskCoverTerms(_PremiumSchedule):
    """Cover of the sponsors' equity against expropriation and transfer restriction (DIA, MIGA).

    A policy as MIGA writes it: the insured amount is the net investment (purchase price and
    contributions less distributions); the premium is charged on it only while the cover is in
    force (until a claim, a debt default, abandonment or the end of ``tenor_years``); a claim
    pays the insured amount less the compensation received.
    """

    max_cover: Annotated[float, Field(gt=0.0, le=1.0, description="share covered, > 0 to 1")]
    tenor_years: Annotated[int, Field(ge=1, le=40, description="years the cover runs, 1 to 40 (MIGA: up to "
                                                               "15-20)")] = 15
    source: Source


class PriceFloorTerms(_Model):
    """Price floor with offtake (DoD-MP Materials): floor per material, tenor, upside share."""

    floors_usd_per_t: dict[Key, PriceUsdPerT]
    tenor_years: Annotated[int, Field(ge=1, le=40, description="years, 1 to 40")]
    contract_start: Literal["first_delivery", "valuation_date"] = "first_delivery"
    upside_share: Share
    max_volume_share: Annotated[float, Field(
        gt=0.0, le=1.0, description="share of EU-available output, > 0 to 1")] = 1.0
    source: Source


class InstrumentsFile(_Model):
    """``instruments.yaml``: terms, caps and premiums of the fund's instruments."""

    supply_window_years: Annotated[int, Field(ge=1, le=40, description="years, 1 to 40")] = 15
    equity: EquityTerms
    loan_guarantee: LoanGuaranteeTerms
    political_risk_cover: PoliticalRiskCoverTerms
    price_floor: PriceFloorTerms


# --------------------------------------------------------------------------- stress.yaml
PriceMultiplier = Annotated[float, Field(
    ge=0.01, le=100.0, description="factor on a price, 0.01 (a 99 % crash) to 100 (beyond any recorded spike: "
                                   "rare earths 2011 ~x5-10); the stressed price must stay within 1..1e9 USD/t")]


class StressScenario(_Model):
    """A named stress: changes applied to the assumptions before re-simulating.

    ``spot_price_multipliers`` scale today's price of materials (prices then revert to
    their long-run levels: a crash); ``long_run_price_multipliers`` scale the long-run
    levels (a lasting shift); ``hazard_multipliers`` scale every political-event intensity
    of a country (``p -> 1 - (1 - p)^m``); ``export_restriction_years`` force a Chinese
    export restriction in those years; ``fx_spot_multiplier`` scales EUR/USD today.
    """

    description: Text
    spot_price_multipliers: dict[Key, PriceMultiplier] = {}
    long_run_price_multipliers: dict[Key, PriceMultiplier] = {}
    hazard_multipliers: dict[Key, Annotated[float, Field(
        gt=0.0, le=100.0, description="factor on every hazard intensity of a country, > 0 to 100")]] = {}
    export_restriction_years: list[YearIndex] = []
    fx_spot_multiplier: Annotated[float, Field(
        ge=0.2, le=5.0, description="factor on EUR/USD today, 0.2 to 5 (the stressed rate must stay in "
                                    "0.2..5 USD per EUR)")] = 1.0


class StressFile(_Model):
    """``stress.yaml``: named stress scenarios applied to the optimal portfolio."""

    scenarios: dict[Key, StressScenario]
    stress_scenarios: Annotated[int, Field(ge=64, le=1_000_000, description="scenarios, 64 to 1e6")] = 4096
    source: Source


# --------------------------------------------------------------------------- projects/<id>.yaml
class Product(_Model):
    """One payable product of a mine: ore grade, recovery and payability.

    Tonnes are physical: ``grade_pct x product_factor x recovery`` tonnes of the priced product
    (e.g. contained NdPr oxide) per tonne of ore; ``credit_factor`` adds by-product value sold
    with it at the same price (Dy/Tb in a rare-earth concentrate), revenue only, never tonnes.
    """

    grade_pct: Annotated[float, Field(gt=0.0, le=100.0, description="per cent of ore, > 0 to 100")]
    product_factor: Annotated[float, Field(
        gt=0.0, le=100.0, description="tonnes of priced product per tonne of contained element, > 0 to 100 "
                                      "(lithium -> LCE is 5.3, the largest in use)")] = 1.0
    credit_factor: Annotated[float, Field(
        ge=0.0, le=10.0, description="by-product credits sold with the product, in tonnes of priced product "
                                     "per tonne of contained element, 0 to 10: value, not tonnes (e.g. Dy/Tb "
                                     "credits of a rare-earth concentrate at NdPr prices); 0 by default")] = 0.0
    recovery: Annotated[float, Field(gt=0.0, le=1.0, description="fraction, > 0 to 1")]
    payability: Annotated[float, Field(gt=0.0, le=1.0, description="fraction, > 0 to 1")]


class Operations(_Model):
    """Throughput, life and operating costs."""

    ore_mtpa: Annotated[float, Field(
        gt=0.0, le=MAX_ORE_MTPA, description="Mt of ore per year, > 0 to 1,000 (the largest mines move "
                                             "~200-400 Mt/yr)")]
    mine_life_years: Annotated[float, Field(gt=0.0, le=100.0, description="years, > 0 to 100")]
    opex_usd_per_t_ore: Annotated[float, Field(
        ge=0.0, le=MAX_OPEX_USD_PER_T_ORE, description="USD per t of ore, 0 to 1e5 (underground mines cost "
                                                       "USD 100-500/t)")]
    fixed_opex_musd_per_year: MusdPerYear = 0.0
    opex_uncertainty_sigma: Annotated[float, Field(
        ge=0.0, le=1.0, description="sigma of a lognormal cost factor, 0 to 1")] = 0.1
    recovery_uncertainty_sd: Annotated[float, Field(
        ge=0.0, le=0.3, description="standard deviation of recovery, 0 to 0.3")] = 0.02


class Schedule(_Model):
    """Remaining development phases; which apply depends on the project's stage.

    ``construction_years``: the mode is the planned (remaining) construction time, against which
    the delay of ``fund.yaml: schedule_evidence.delay`` is drawn; min and max are the analyst's
    range, shown in memos (the simulated tail follows the evidence, ``docs/schedule.md``).
    The optional fields override the evidence of ``fund.yaml: schedule_evidence``; the loader fills
    the ones left out, so a loaded project has them all.
    """

    exploration_years: Triangular | None = None
    permitting_years: Triangular | None = None
    construction_years: Triangular | None = None
    rampup_years: Triangular
    development_probability: Annotated[float, Field(gt=0.0, le=1.0, description="probability, > 0 to 1")] = 1.0
    construction_prob_late: Annotated[float, Field(
        gt=0.0, lt=1.0, description="probability that construction takes longer than planned, 0 < p < 1")] | None = None
    construction_delay_mean: Annotated[float, Field(
        gt=0.0, le=3.0, description="mean delay, fraction of the planned construction time, > 0 to 3")] | None = None
    construction_delay_sigma: Annotated[float, Field(
        gt=0.0, le=3.0, description="log-sd of the delay of late projects, > 0 to 3")] | None = None
    construction_early_max: Annotated[float, Field(
        ge=0.01, lt=1.0, description="largest early finish, fraction of the plan, 0.01 to < 1")] | None = None
    financing_wait_median_years: Annotated[float, Field(
        gt=0.0, le=30.0, description="median wait for finance after the permits, years, > 0 to 30")] | None = None
    financing_wait_sigma: Annotated[float, Field(
        ge=0.0, le=3.0, description="log-sd of the financing wait, 0 to 3")] | None = None
    rampup_series: Annotated[int, Field(
        ge=1, le=4, description="McNulty (1998) ramp-up series, 1 (proven technology) to 4 (novel, "
                                "under-piloted)")] | None = None
    nameplate_shortfall_prob: Annotated[float, Field(
        ge=0.0, le=1.0, description="probability that the plant settles below nameplate, 0 to 1")] | None = None
    nameplate_plateau: PlateauShare | None = None


class Capex(_Model):
    """Capital costs (real USD m) and the overrun distribution.

    ``acquisition_musd`` is the price of 100 % of the equity at the valuation date, paid by
    an investor entering today: required for a producing mine (its sponsors' return is
    measured against it), 0 for projects the sponsors build from scratch.

    The overrun ratio ``R = as-built / budget - 1`` follows :func:`fundmodel.schedule.overrun_law`
    (on/under budget with probability ``1 - overrun_prob_over``, else an overrun with a Pareto
    tail from +100 %). The ``overrun_*`` fields override the figures of the project's size class
    (``fund.yaml: schedule_evidence.overrun``; megaproject above its capex threshold unless
    ``size_class`` says otherwise); the loader fills the ones left out. ``overrun_mean`` is over
    all projects, ``overrun_mean_if_over`` among those over budget: give one (the loader derives
    the other). ``overrun_shift`` is the largest underrun as a negative fraction.
    """

    initial_musd: Musd
    acquisition_musd: Musd = 0.0
    studies_musd: Musd = 0.0
    sustaining_musd_per_year: MusdPerYear
    closure_musd: Musd
    depreciation_years: Annotated[int, Field(ge=1, le=40, description="years, 1 to 40")]
    size_class: SizeClass | None = None
    overrun_prob_over: Annotated[float, Field(
        gt=0.0, lt=1.0, description="probability of any overrun, 0 < p < 1")] | None = None
    overrun_mean: Annotated[float, Field(
        ge=-0.5, le=3.0, description="mean capex overrun over all projects, fraction -0.5 to 3 (+300 %)")] | None = None
    overrun_mean_if_over: Annotated[float, Field(
        gt=0.0, le=5.0, description="mean capex overrun among projects over budget, fraction > 0 to 5")] | None = None
    overrun_prob_ge_100pct: Annotated[float, Field(
        gt=0.0, lt=1.0, description="probability that capex at least doubles, 0 < p < 1")] | None = None
    overrun_shift: Annotated[float, Field(
        gt=-1.0, le=-0.01, description="largest underrun, fraction -1 < x <= -0.01")] | None = None
    overrun_tail_index: Annotated[float, Field(
        gt=1.0, le=20.0, description="Pareto index of overruns of +100 % or more, > 1 to 20")] | None = None
    overrun_delay_correlation: Annotated[float, Field(
        ge=-1.0, le=1.0, description="a correlation, -1 to 1")] | None = None


class Fiscal(_Model):
    """Royalty (share of revenue) and corporate income tax."""

    royalty_rate: Annotated[float, Field(ge=0.0, lt=1.0, description="share of revenue, 0 <= x < 1")]
    tax_rate: Annotated[float, Field(ge=0.0, lt=1.0, description="share of taxable profit, 0 <= x < 1")]


class DebtSizing(_Model):
    """The rule that sizes a development project's senior loan (when ``amount_musd`` is not given).

    The loan is the largest amount whose *base case* keeps the debt-service cover ratio
    (CFADS / scheduled debt service) at or above ``min_dscr`` in every repayment year after
    completion, capped at ``max_gearing`` of the budgeted initial capex. The base case is
    the lenders' case at financial close: every price on ``price_deck`` times its expected
    path ``E[S_t]`` (the banking case's conservative price deck), EUR/USD on its expected
    path, durations at their mode, budgeted capex, opex and recovery, no political event
    (:func:`fundmodel.credit.size_debt`, :func:`fundmodel.credit.lenders_case`).
    """

    min_dscr: Annotated[float, Field(
        ge=1.0, le=5.0, description="minimum base-case DSCR, 1 to 5 (project finance uses 1.2-2.0x; "
                                    "mining 1.4-1.5x)")] = 1.40
    max_gearing: Annotated[float, Field(
        gt=0.0, le=0.9, description="debt / budgeted initial capex, > 0 to 0.9 (mining project finance "
                                    "rarely exceeds 60-65 %)")] = 0.60
    price_deck: Annotated[float, Field(
        gt=0.0, le=1.0, description="lenders' prices as a share of the expected path, > 0 to 1 (1: the "
                                    "expected path; banking cases often sit 10-25 % below consensus)")] = 1.0
    source: Source = ("Price deck: the expected path by default (the issue's rule: a target DSCR on the "
                      "base case); a banking case with conservative prices (Yescombe 2014, ch. 12-13) is "
                      "price_deck < 1, e.g. 0.75-0.9. "
                      "Base-case DSCR 1.40x: the lower end of the 1.40-1.50x minimum cover that lenders apply to "
                      "mining projects exposed to commodity prices (Corality, 'Reserve tails in resource projects': "
                      "target cover 1.50x; Yescombe, Principles of Project Finance, 2nd ed. 2014, ch. 12: cover "
                      "ratios rise with market risk). Gearing cap 60 %: mining project finance is typically geared "
                      "up to 60:40 debt:equity; DFC lends at most 50 % of project cost per lender (domain brief §3).")


class SizedDebt(_Model):
    """Outcome of :class:`DebtSizing` for one project (computed by the loader, not an input)."""

    amount_musd: Musd
    binding: Literal["dscr", "gearing"]
    dscr_limit_musd: Musd
    gearing_limit_musd: Musd
    base_case_min_dscr: Annotated[float, Field(
        ge=0.0, le=1e6, description="lowest base-case DSCR over the repayment years at the sized amount")] | None


#: Debt fields that earlier versions had and that no longer exist, with what replaced them.
_RETIRED_DEBT_FIELDS = {
    "recovery_rate": "recovery is now the going-concern value of the project net of distress costs "
                     "(debt.distress_cost_share), capped at the claim; remove it",
}


class Debt(_Model):
    """Senior project debt: sized by a rule, drawn with budgeted capex, equal principal after grace.

    ``amount_musd`` given: that loan (a producing mine's existing facility, a term sheet under
    negotiation). Omitted: the loader sizes it with ``sizing`` (:class:`DebtSizing`) and
    records the outcome in ``sized``.

    Credit terms (:mod:`fundmodel.valuation`): until completion the sponsors fund cost
    overruns and debt service under a completion guarantee capped at
    ``completion_guarantee_musd`` (none: unlimited); beyond it a standby facility of
    ``standby_share`` of the loan, on the loan's terms; beyond that the sponsors inject cash
    only if their equity is worth more than the injection, else the debt defaults. After
    completion shortfalls come from the debt-service reserve (``reserve_months``), then from
    sponsor cures while the equity's continuation value exceeds the cure (strategic default,
    optionally capped by ``sponsor_support_musd``). At default the lenders recover the going-concern
    value of the project less ``distress_cost_share`` of it, at most their claim.

    ``drawdown``: ``equity_first`` (default) spends the sponsors' share of the capex budget
    before the first loan draw, as lenders to a single-asset mine usually require so that an
    overrun found early in construction is met while little debt is out (Yescombe, *Principles
    of Project Finance*, 2nd ed. 2014, §14.5 "equity first or pro rata"; Gatti, *Project
    Finance in Theory and Practice*, 3rd ed. 2018, ch. 6); ``pro_rata`` draws the loan with
    every budgeted dollar of capex (equity bridged by a letter of credit).
    """

    amount_musd: Musd | None = None
    interest_rate: Annotated[float, Field(
        ge=0.0, le=0.5, description="interest per year, 0 to 0.5 (senior mining debt pays 5-15 %)")]
    tenor_years: Annotated[int, Field(ge=1, le=40, description="years, 1 to 40")]
    grace_years: Annotated[int, Field(ge=0, le=20, description="years, 0 to 20")]
    reserve_months: Annotated[float, Field(ge=0.0, le=24.0, description="months of debt service, 0 to 24")] = 6.0
    sizing: DebtSizing = DebtSizing()
    completion_guarantee_musd: Musd | None = None
    standby_share: Annotated[float, Field(
        ge=0.0, le=1.0, description="standby facility as a share of the loan, 0 to 1")] = 0.15
    distress_cost_share: Annotated[float, Field(
        ge=0.0, le=0.5, description="share of the going-concern value lost at default, 0 to 0.5 (estimates: "
                                    "10-20 %)")] = 0.15
    sponsor_support_musd: Musd | None = None
    drawdown: Literal["equity_first", "pro_rata"] = "equity_first"
    sized: SizedDebt | None = None

    @model_validator(mode="before")
    @classmethod
    def _retired_fields(cls, data):
        if isinstance(data, dict):
            for key, why in _RETIRED_DEBT_FIELDS.items():
                if key in data:
                    raise ValueError(f"{key}: no longer used: {why}")
        return data

    @field_validator("sized")
    @classmethod
    def _computed(cls, sized):
        if sized is not None:
            raise ValueError("is computed from debt.sizing when the assumptions are loaded; remove it")
        return sized

    @field_validator("grace_years")
    @classmethod
    def _grace_within_tenor(cls, grace_years: int, info: ValidationInfo) -> int:
        # a field validator (not a model one) so that the error names debt.grace_years
        tenor_years = info.data.get("tenor_years")
        if tenor_years is not None and grace_years >= tenor_years:
            raise ValueError(
                f"must be < tenor_years ({tenor_years}), got {grace_years}"
            )
        return grace_years


class EquityEntry(_Model):
    """How the fund would buy into the project's equity (``projects/<id>.yaml: entry``).

    The price is the stake's share of the sponsors' pre-money equity value at the cost of
    equity (:mod:`fundmodel.rates`), less the negotiated ``discount`` (or ``price_musd`` for
    100 % where a price is known); a producing mine's price is its ``capex.acquisition_musd``.
    ``secondary``: the fund buys existing shares (cash to the sellers). ``primary``: the
    project issues new shares for ``raise_musd`` at that price (cash into the project, funding
    its capex and diluting the sponsors); the fund takes part of the round.
    """

    kind: Literal["secondary", "primary"] = "secondary"
    discount: Annotated[float, Field(
        ge=0.0, le=0.5, description="negotiated discount to the pre-money value, 0 to 0.5 (placements and "
                                    "strategic stakes: 10-20 %)")]
    raise_musd: Annotated[float, Field(gt=0.0, le=MAX_MUSD, description="USD m of new equity a primary round "
                                                                          "raises, > 0 to 1e5")] | None = None
    price_musd: Annotated[float, Field(gt=0.0, le=MAX_MUSD, description="known price of 100 % of the equity, "
                                                                         "USD m, > 0 to 1e5")] | None = None
    source: Source

    @model_validator(mode="after")
    def _raise_for_primary(self):
        if self.kind == "primary" and self.raise_musd is None:
            raise ValueError("a primary entry needs raise_musd (the size of the round)")
        if self.kind == "secondary" and self.raise_musd is not None:
            raise ValueError("raise_musd is only for kind: primary")
        return self


class Offtake(_Model):
    """Share of production available to European buyers."""

    eu_share: Share


class ProjectOptions(_Model):
    """Terms of a project's real options (:mod:`fundmodel.operating_options`), real USD m of the valuation date.

    Left out, a figure takes its default from the project's own costs (labelled assumptions of
    the model team, ``docs/operating_options.md``): care and maintenance 30 % of the fixed opex
    per year, closing 50 % and reopening 100 % of one year's fixed opex, licence holding cost
    0.5 % of the initial capex per year, and the investment decision (FID) deferrable for 5
    years after the earliest date (studies, permits and finance done). Closure on abandonment
    is ``capex.closure_musd``; the investment is the development capex of the project's plan.
    """

    care_maintenance_musd_per_year: MusdPerYear | None = None
    closing_cost_musd: Musd | None = None
    reopening_cost_musd: Musd | None = None
    holding_cost_musd_per_year: MusdPerYear | None = None
    licence_years: Annotated[int, Field(
        ge=0, le=30, description="years after the earliest investment date during which the investment "
                                 "decision can still be taken, 0 (now or never) to 30")] = 5
    source: Source = "Assumption of the model team (defaults from the project's costs, docs/operating_options.md)."

    def resolved(self, operations: "Operations", capex: "Capex") -> dict[str, float]:
        """Every figure, defaults filled from the project's costs (real USD m)."""
        fixed = operations.fixed_opex_musd_per_year
        pick = lambda v, d: float(d if v is None else v)  # noqa: E731
        return {
            "care_maintenance_musd_per_year": pick(self.care_maintenance_musd_per_year, 0.3 * fixed),
            "closing_cost_musd": pick(self.closing_cost_musd, 0.5 * fixed),
            "reopening_cost_musd": pick(self.reopening_cost_musd, 1.0 * fixed),
            "holding_cost_musd_per_year": pick(self.holding_cost_musd_per_year, 0.005 * capex.initial_musd),
            "licence_years": int(self.licence_years),
        }


class Project(_Model):
    """One candidate mine project (``projects/<id>.yaml``)."""

    id: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=MAX_ID_CHARS)]
    name: Name
    country: Key
    stage: Stage
    products: dict[Key, Product]
    operations: Operations
    schedule: Schedule
    capex: Capex
    fiscal: Fiscal
    debt: Debt
    offtake: Offtake
    entry: EquityEntry | None = None
    options: ProjectOptions = ProjectOptions()
    sources: dict[Key, Source]

    @model_validator(mode="after")
    def _entry_terms(self):
        # a producing mine is bought at its acquisition price; every other project needs terms
        if self.stage is not Stage.PRODUCTION and self.entry is None:
            raise ValueError("entry terms are required for a project that is not producing (entry: kind, "
                             "discount, source); a producing mine is bought at capex.acquisition_musd")
        return self

    @property
    def materials(self) -> list[str]:
        """Materials produced, in file order (the first is the primary material)."""
        return list(self.products)


# --------------------------------------------------------------------------- calibration.yaml
Month = Annotated[str, Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")]
PoliticalEventName = Literal["expropriation", "forced_participation", "fiscal_grab",
                             "transfer_restriction", "unrest", "licence_suspension"]
GovernanceIndicator = Literal["pv", "rl", "cc", "cpi", "oecd"]


class PriceSeriesSpec(_Model):
    """One public price series and the material of ``markets.yaml`` it calibrates.

    ``dataset`` ``pinksheet`` is monthly (World Bank Pink Sheet, nominal USD); ``usgs_lithium``
    is annual (USGS DS140 unit values). ``material`` empty: fitted for the report only.
    ``write: false`` keeps the hand-set values of the material even when it is fitted.
    """

    dataset: Literal["pinksheet", "usgs_lithium"] = "pinksheet"
    column: Key
    material: Key | None = None
    write: bool = True
    start: Month | None = None
    note: Text | None = None


CpiIndex = Annotated[float, Field(ge=1.0, le=1e5, description="US CPI-U, 1982-84 = 100: 1 to 1e5 (163 in 1998, "
                                                             "314 in 2024)")]


class DeflatorSettings(_Model):
    """US CPI-U used to turn nominal prices into real valuation-date money.

    1936-2021: implied by the USGS DS140 lithium file (nominal / 1998-dollar unit value x
    ``cpi_u_1998``); later years: ``cpi_u_annual`` (BLS annual averages); after the last
    year: the inflation of ``fund.yaml``.
    """

    cpi_u_1998: CpiIndex = 163.0
    cpi_u_annual: dict[Annotated[int, Field(ge=2022, le=2100, description="year, 2022 to 2100")], CpiIndex] = {}
    source: Source


class PriceCalibrationSettings(_Model):
    """Defaults of ``fundmodel calibrate prices``."""

    start: Month = "2000-01"
    model: PriceModel = PriceModel.LOG_OU
    min_observations_monthly: Annotated[int, Field(ge=24, le=12_000, description="months, 24 to 12,000")] = 120
    min_observations_annual: Annotated[int, Field(ge=10, le=1_000, description="years, 10 to 1,000")] = 20
    regime_check: bool = True
    write_correlation: bool = True
    series: dict[Key, PriceSeriesSpec]
    deflator: DeflatorSettings
    source: Source


class HazardAnchor(_Model):
    """Annual probability of an event at a given governance score."""

    score: Annotated[float, Field(ge=-10.0, le=10.0, description="governance score (a weighted mean of "
                                                                 "z-scores), -10 to 10")]
    annual_probability: Annotated[float, Field(gt=0.0, lt=1.0, description="probability per year, 0 < p < 1")]


class HazardMapping(_Model):
    """Monotone map governance score -> annual hazard of one event.

    ``score = sum_k w_k z_k / sum_k w_k`` over the standardised indicators ``z`` (WGI pv, rl,
    cc; CPI z-score; OECD z-score), higher = better governance. ``ln p`` is linear in the
    score between the ``worst`` and ``best`` anchors and flat outside them, so the hazard
    never rises when an indicator improves (weights are >= 0, ``best`` has the higher score
    and the lower probability).
    """

    weights: dict[GovernanceIndicator, Annotated[float, Field(ge=0.0, le=100.0,
                                                             description="relative weight, 0 to 100")]]
    best: HazardAnchor
    worst: HazardAnchor

    @model_validator(mode="after")
    def _monotone(self) -> "HazardMapping":
        if not any(w > 0 for w in self.weights.values()):
            raise ValueError("weights: at least one indicator weight must be > 0")
        if self.best.score <= self.worst.score:
            raise ValueError(f"best.score must be > worst.score (higher score = better governance), "
                             f"got {self.best.score} <= {self.worst.score}")
        if self.best.annual_probability > self.worst.annual_probability:
            raise ValueError(f"best.annual_probability must be <= worst.annual_probability (a monotone "
                             f"mapping: better governance never raises a hazard), got "
                             f"{self.best.annual_probability} > {self.worst.annual_probability}")
        return self


class HazardOverlay(_Model):
    """Documented country-specific multiplier of one mapped hazard."""

    multiplier: Annotated[float, Field(ge=0.0, le=10.0, description="factor, 0 to 10")]
    reason: Source


class CountryCalibrationSettings(_Model):
    """Parameters of ``fundmodel calibrate countries``.

    Indicators: WGI estimates (``pv``, ``rl``, ``cc``) averaged over ``wgi_years`` ending at
    ``wgi_year``; ``cpi`` = (CPI score - mean) / sd over all countries scored in ``cpi_year``;
    ``oecd`` = (``oecd_center`` - category) / ``oecd_scale`` with unclassified high-income
    countries at category 0.
    """

    wgi_year: Annotated[int, Field(ge=1996, le=2100, description="year, 1996 to 2100")] = 2023
    wgi_years: Annotated[int, Field(ge=1, le=5, description="years averaged, 1 to 5")] = 1
    cpi_year: Annotated[int, Field(ge=2012, le=2100, description="year, 2012 to 2100")] = 2024
    oecd_center: Annotated[float, Field(ge=0.0, le=7.0, description="an OECD risk category, 0 to 7")] = 3.5
    oecd_scale: Annotated[float, Field(gt=0.0, le=7.0, description="categories per standard deviation, "
                                                                   "> 0 to 7")] = 2.0
    max_annual_probability: Annotated[float, Field(
        gt=0.0, lt=1.0, description="probability per year, 0 < p < 1")] = 0.5
    decimals: Annotated[int, Field(ge=2, le=6, description="decimals, 2 to 6")] = 4
    events: dict[PoliticalEventName, HazardMapping]
    overlays: dict[Key, dict[PoliticalEventName, HazardOverlay]] = {}
    source: Source

    @model_validator(mode="after")
    def _every_event(self) -> "CountryCalibrationSettings":
        missing = [e for e in get_args(PoliticalEventName) if e not in self.events]
        if missing:
            raise ValueError(f"events: must map every political event; missing {missing}")
        return self


class CalibrationFile(_Model):
    """``calibration.yaml``: what ``fundmodel calibrate`` fits and how (optional file)."""

    prices: PriceCalibrationSettings
    countries: CountryCalibrationSettings
