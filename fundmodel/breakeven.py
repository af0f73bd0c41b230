"""Break-even long-run price of each project's primary material (issue 14).

``breakeven_long_run_price`` (``summary.csv``) is the level of ``markets.yaml``'s
``long_run_usd_per_t`` of the project's **primary material** (its first product) at which the
**mean project NPV at the project's market asset rate** is zero: the ``npv_market_mean_meur``
of the summary, the project NPV the memo headlines at the market rate
(:mod:`fundmodel.rates`). Its unit is the material's price unit, **real USD per tonne of the
priced product** (valuation-date money; e.g. USD/t of NdPr oxide, of LCE, of WO3 contained
for tungsten), and it is the long-run **median** of the benchmark price, the convention of
``long_run_usd_per_t`` (``markets.yaml`` header): it compares directly with the shipped level.

Method
------
- The first ``fund.yaml: simulation.breakeven_scenarios`` scenarios of the run (2,048 by
  default; all of them when the run is smaller), with the run's seed: **common random numbers**,
  every evaluation sees the same shocks, schedules, geopolitical factor and event uniforms.
- Changing the long-run level ``L`` by a factor ``e^d`` moves ``alpha`` (also each scenario's
  drawn ``alpha_s`` under parameter uncertainty, which is centred on ``ln L``) by ``d``; the
  exact log-OU transition then moves the log price of year ``t`` by ``d (1 - e^{-kappa t})``
  (``kappa`` the scenario's), so the market is simulated once and each evaluation rescales
  the primary material's path (export-restriction uplift included) and its price ratio over the
  long-run median (by ``e^{-d e^{-kappa t}}``). Political events are re-drawn on the same
  uniforms (price-sensitive hazards follow the prices); the hazards' normalisation does not
  depend on ``L``. The lenders' credit policy is the run's (fitted at the shipped level), held
  fixed: the break-even answers "what if the long-run price were ``L``" for the project as
  financed.
- Root of ``f(ln L) = mean NPV`` by :func:`scipy.optimize.brentq` on a bracket found from the
  shipped level outwards (a first step of 0.1 in ``ln L``, then secant extrapolation) within a
  factor :data:`BRACKET_FACTOR` of it, to 1 % in ``L`` (about its Monte Carlo standard error at
  2,048 scenarios). The evaluation at the shipped level is the run's own (its first scenarios).
  No root there (the mean NPV keeps one sign over the whole range, e.g. a project whose value
  hardly depends on the primary price) gives NaN and a reason (``metrics.json``:
  ``breakeven_reason``).
- ``breakeven_long_run_price_se``: Monte Carlo standard error, the standard error of the mean
  NPV at the root over the slope ``d mean NPV / d L`` there (delta method; the slope is the
  secant of the two evaluations that bracket the root most tightly).

The mean NPV rises with ``L`` for a project that sells the primary material (prices rise in
every scenario-year; the political hazards, which rise with the price ratio over the long-run
median, see a lower ratio at a higher ``L``), so the root is unique.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import brentq

from .assumptions.model import Assumptions
from .assumptions.schema import Copula, PriceModel, SamplingMethod
from .market import MarketPaths, price_ratio_law, simulate_market
from .political import draw_political_events, geopolitical_factor, no_political_events
from .rates import market_rates, market_values
from .sampling import ScenarioStreams
from .schedule import SCHEDULE_DRAWS, draw_schedule
from .valuation import CreditPolicy, project_cash_flows

#: The root is searched within [L / BRACKET_FACTOR, L x BRACKET_FACTOR] of the shipped level L.
BRACKET_FACTOR = 20.0
#: Tolerance of the root in ln L, i.e. 1 % in L (of the order of its Monte Carlo error: see the SE).
XTOL_LOG = 0.01
#: First step from the shipped level, in ln L.
FIRST_STEP = 0.1


@dataclass(frozen=True)
class Breakeven:
    """Break-even long-run price of one project (real USD per tonne of the primary material's product)."""

    project: str
    material: str
    price_usd_per_t: float  #: NaN when there is no root in the bracket
    se_usd_per_t: float
    shipped_usd_per_t: float
    scenarios: int
    evaluations: int
    reason: str = ""


def _year_major(arr_ym: np.ndarray) -> np.ndarray:
    """A (material, scenario, year) view of a contiguous copy of a (material, year, scenario) array."""
    return np.array(arr_ym, order="C", copy=True).transpose(0, 2, 1)


class _Evaluator:
    """Mean project NPV at the asset rate as a function of ``ln L`` (one project, fixed draws)."""

    def __init__(self, a: Assumptions, pid: str, streams: ScenarioStreams, n: int, market: MarketPaths,
                 geo: np.ndarray, credit: CreditPolicy | None, base_npv: np.ndarray | None = None):
        self.a, self.pid, self.streams, self.n = a, pid, streams, n
        self.project = a.projects[pid]
        self.country = a.countries.countries[self.project.country]
        self.material = self.project.materials[0]
        # only the project's materials: each evaluation copies the primary's rows of these arrays
        keep = [market.index(mat) for mat in self.project.materials]
        market = replace(market, materials=list(self.project.materials),
                         price_usd_per_t=_year_major(market.price_usd_per_t.transpose(0, 2, 1)[keep]),
                         real_price_ratio=_year_major(market.real_price_ratio.transpose(0, 2, 1)[keep]))
        self.market, self.geo, self.credit = market, geo, credit
        m = a.markets.materials[self.material]
        self.x0 = math.log(m.long_run_usd_per_t)
        k = self.market.index(self.material)
        drawn = (market.parameters or {}).get(self.material)
        kappa = drawn[1][:, None] if drawn is not None else float(m.mean_reversion_per_year)
        t = np.arange(a.fund.horizon_years)[None, :]
        self.decay = np.exp(-kappa * t) * np.ones((n, 1))  # e^{-kappa t}, (scenario, year)
        self.k = k
        uniforms = streams.uniforms(f"schedule/{pid}", 0, n, len(SCHEDULE_DRAWS), sobol=False)
        self.schedule = draw_schedule(self.project, self.country.permitting_years, uniforms)
        geo_params = a.countries.geopolitical_factor
        self.law = price_ratio_law(a.markets, self.material, geo_params.persistence)
        self.rates = market_rates(a, pid)
        self.cache: dict[float, tuple[float, float]] = {}
        if base_npv is not None:  # the run's own values at the shipped level (the same computation)
            self.cache[self.x0] = self._moments(np.asarray(base_npv[:n], dtype=float))

    @staticmethod
    def _moments(npv: np.ndarray) -> tuple[float, float]:
        return float(npv.mean()), (float(npv.std(ddof=1) / math.sqrt(npv.size)) if npv.size > 1 else 0.0)

    def __call__(self, x: float) -> float:
        return self.mean_and_se(x)[0]

    def mean_and_se(self, x: float) -> tuple[float, float]:
        """Mean NPV (EUR m) and its standard error at ``ln L = x``."""
        if x in self.cache:
            return self.cache[x]
        d = x - self.x0
        mk = self.market
        # copies in the year-major memory layout of simulate_market (contiguous years downstream)
        prices = _year_major(mk.price_usd_per_t.transpose(0, 2, 1))
        ratios = _year_major(mk.real_price_ratio.transpose(0, 2, 1))
        prices[self.k] *= np.exp(d * (1.0 - self.decay))
        ratios[self.k] *= np.exp(-d * self.decay)
        market = replace(mk, price_usd_per_t=prices, real_price_ratio=ratios)
        geo_params = self.a.countries.geopolitical_factor
        politics = draw_political_events(self.streams, self.pid, self.country, self.geo, geo_params.hazard_loading,
                                         ratios[self.k], 0, self.n, price_law=self.law)
        flows = project_cash_flows(self.project, self.a.fund.inflation, market, self.schedule, politics, self.credit)
        npv = market_values(flows, market.fx_usd_per_eur, self.rates)["project_npv_market_meur"]
        out = self.cache[x] = self._moments(npv)
        return out


def _bracket(f: _Evaluator) -> tuple[float, float] | str:
    """``(lo, hi)`` in ``ln L`` with a sign change, or the reason there is none.

    From the shipped level a first step of :data:`FIRST_STEP` towards the root (down when the
    mean NPV is positive: it rises with ``L``), then secant steps aimed 20 % past the
    extrapolated root (at least doubling the distance), up to a factor :data:`BRACKET_FACTOR`.
    """
    x0 = f.x0
    limit = math.log(BRACKET_FACTOR)
    f0 = f(x0)
    if f0 == 0.0:
        return x0, x0
    direction = -1.0 if f0 > 0 else 1.0
    x_prev, f_prev, dist = x0, f0, FIRST_STEP
    while True:
        x = x0 + direction * min(dist, limit)
        fx = f(x)
        if np.sign(fx) != np.sign(f0):
            return (min(x_prev, x), max(x_prev, x))
        if abs(x - x0) >= limit - 1e-12:
            side = "below" if direction < 0 else "above"
            sign = "positive" if f0 > 0 else "negative"
            return (f"mean NPV at the market rate stays {sign} for every long-run level from the shipped one to "
                    f"{BRACKET_FACTOR:g}x {side} it (USD {math.exp(x):,.0f}/t): no break-even in the bracket")
        slope = (fx - f_prev) / (x - x_prev)
        to_root = abs(fx / slope) if slope * direction * np.sign(f0) < 0 else math.inf
        dist = abs(x - x0) + max(abs(x - x0), 1.2 * to_root) if math.isfinite(to_root) else 2 * abs(x - x0)
        x_prev, f_prev = x, fx


def project_breakeven(a: Assumptions, pid: str, streams: ScenarioStreams, n: int, market: MarketPaths,
                      geo: np.ndarray, credit: CreditPolicy | None, base_npv: np.ndarray | None = None) -> Breakeven:
    """Break-even long-run price of ``pid``'s primary material on ``market`` (first ``n`` scenarios)."""
    p = a.projects[pid]
    material = p.materials[0]
    m = a.markets.materials[material]
    shipped = float(m.long_run_usd_per_t)
    if m.model is not PriceModel.LOG_OU:
        return Breakeven(pid, material, math.nan, math.nan, shipped, n, 0,
                         f"{material} follows model {m.model.value}: no long-run level to solve for")
    f = _Evaluator(a, pid, streams, n, market, geo, credit, base_npv)
    bracket = _bracket(f)
    if isinstance(bracket, str):
        return Breakeven(pid, material, math.nan, math.nan, shipped, n, len(f.cache), bracket)
    lo, hi = bracket
    root = lo if lo == hi else brentq(f, lo, hi, xtol=XTOL_LOG, rtol=1e-10)
    _, se_npv = f.mean_and_se(root)
    # slope d mean / d ln L from the two evaluations that bracket the root most tightly
    xs = sorted(f.cache)
    below = [x for x in xs if x < root and np.sign(f(x)) != np.sign(f(hi))] or [lo]
    above = [x for x in xs if x > root and np.sign(f(x)) != np.sign(f(lo))] or [hi]
    x1, x2 = below[-1], above[0]
    slope = (f(x2) - f(x1)) / (x2 - x1) if x2 > x1 else math.nan
    price = math.exp(root)
    se = price * se_npv / abs(slope) if slope and math.isfinite(slope) else math.nan
    return Breakeven(pid, material, price, se, shipped, n, len(f.cache))


def _breakeven_task(shared: tuple, pids: list[str]) -> list[Breakeven]:
    """Some projects' break-evens as an engine task (:mod:`fundmodel.engine`)."""
    a, seed, sampling, copula, copula_dof, n, credit, base = shared
    streams = ScenarioStreams(seed, sampling)
    n_years = a.fund.horizon_years
    geo = geopolitical_factor(streams, a.countries.geopolitical_factor, 0, n, n_years)
    market = simulate_market(a.markets, streams, 0, n, n_years, a.fund.inflation, geo,
                             copula=copula, copula_dof=copula_dof,
                             parameter_uncertainty=a.fund.simulation.parameter_uncertainty)
    return [project_breakeven(a, pid, streams, n, market, geo, credit.get(pid), base.get(pid)) for pid in pids]


def breakevens(a: Assumptions, settings, credit: dict[str, CreditPolicy], *, engine=None,
               scenarios: int | None = None, base_npv: dict[str, np.ndarray] | None = None) -> dict[str, Breakeven]:
    """Break-even long-run price of every project (see the module docstring).

    Parameters
    ----------
    a : Assumptions
    settings : RunSettings
        Seed, sampling, copula of the run.
    credit : dict
        The run's credit policies (:func:`fundmodel.credit.credit_policies`).
    engine : optional
        Open engine: the projects are shared out over its workers (same numbers either way).
    scenarios : int, optional
        Default ``fund.yaml: simulation.breakeven_scenarios``, at most the run's scenarios.
    base_npv : dict, optional
        The run's per-scenario ``project_npv_market_meur`` by project: its first scenarios are the
        evaluation at the shipped level (saves one evaluation per project).

    Returns
    -------
    dict
        ``{project: Breakeven}`` in project order.
    """
    n = min(int(scenarios or a.fund.simulation.breakeven_scenarios), int(settings.scenarios))
    shared = (a, int(settings.seed), SamplingMethod(settings.sampling), Copula(settings.copula),
              float(settings.copula_dof), n, credit,
              {pid: np.asarray(v[:n]) for pid, v in (base_npv or {}).items()})
    pids = list(a.projects)
    workers = max(int(getattr(engine, "workers", 1) or 1), 1) if engine is not None else 1
    groups = [g for g in (pids[k::workers] for k in range(workers)) if g]
    found: dict[str, Breakeven] = {}
    if engine is None or len(groups) == 1:
        for g in groups:
            found.update({b.project: b for b in _breakeven_task(shared, g)})
    else:
        for part in engine.map(_breakeven_task, shared, groups):
            found.update({b.project: b for b in part})
    return {pid: found[pid] for pid in pids}
