"""Schedule and cost risk: lead times, construction delay, capex overrun and ramp-up shortfall.

Every random outcome is an inverse CDF of one uniform column (:data:`SCHEDULE_DRAWS`), so
Latin hypercube and Sobol' uniforms keep their stratification. The laws reproduce published
outcomes (``fund.yaml: schedule_evidence``; derivations and sources in ``docs/schedule.md``):

- **Capex overrun** ``R = as-built / budget - 1`` (:func:`overrun_law`): on or under budget with
  probability ``1 - q`` (triangular underrun in ``[-u, 0]``, mode 0); over budget with
  probability ``q``, of which ``t = P(R >= 1)`` are blow-outs, Pareto with index ``a`` from
  +100 % on, and the rest a truncated exponential on (0, 1) whose rate is solved from the mean.
  Figures by size class: megaprojects (EY 2015) and smaller projects (Bertisen & Davis 2008).
- **Construction delay** ``D = actual / planned - 1`` (:func:`delay_law`): on time or early
  (triangular gain in ``[-e, 0]``) with probability ``1 - p``, else lognormal; planned time =
  the mode of ``schedule.construction_years``. Overrun and delay share a Gaussian copula.
- **Gap before the investment decision** (exploration and feasibility stages): the country's
  permitting time (triangular) plus a lognormal wait for finance.
- **Ramp-up**: a triangular time to the plateau, which is below nameplate in a share of
  scenarios set by the plant's McNulty series (``ScheduleDraws.nameplate_share``).

Which phases remain depends on the stage:

============  ==================================================================
stage         phases from the valuation date (t = 0)
============  ==================================================================
exploration   studies -> permitting -> financing -> construction -> ramp-up
feasibility   permitting -> financing -> construction -> ramp-up
construction  (remaining) construction -> ramp-up
production    operating at nameplate from t = 0
============  ==================================================================
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special

from .assumptions.schema import PlateauShare, Project, ScheduleEvidence, Stage, Triangular
from .sampling import triangular_ppf

#: Columns of the uniform draws one project's schedule consumes, in order.
SCHEDULE_DRAWS = (
    "exploration",
    "permitting",
    "construction",
    "rampup",
    "overrun",
    "opex",
    "recovery",
    "development",
    "financing",
    "nameplate",
)

#: the evidence used when a project is drawn without one (equal to the shipped fund.yaml block)
DEFAULT_EVIDENCE = ScheduleEvidence()

_MAX_RATE = 700.0  # |rate| of the truncated exponential body: exp(700) is still finite


class ScheduleParameterError(ValueError):
    """A project's schedule or overrun figures admit no distribution; ``key`` names the field."""

    def __init__(self, key: str, message: str, value=None):
        super().__init__(message)
        self.key = key
        self.value = value


# ----------------------------------------------------------------------------- capex overrun
def _body_mean(rate: float) -> float:
    """Mean of the exponential with ``rate`` truncated to (0, 1) (negative rate: increasing density)."""
    if abs(rate) < 1e-6:
        return 0.5 - rate / 12.0
    if rate > 50.0:
        e = math.exp(-rate)
        return 1.0 / rate - e / (1.0 - e)
    return 1.0 / rate - 1.0 / math.expm1(rate)


@functools.lru_cache(maxsize=256)
def _body_rate(mean: float) -> float:
    """Rate of the truncated exponential on (0, 1) with the given mean (1-D monotone root)."""
    lo, hi = _body_mean(_MAX_RATE), _body_mean(-_MAX_RATE)
    if not lo < mean < hi:
        raise ValueError(f"the overruns below +100 % would need a mean of {mean:.5f}, outside ({lo:.5f}, {hi:.5f})")
    if abs(mean - 0.5) < 1e-12:
        return 0.0
    return float(optimize.brentq(lambda r: _body_mean(r) - mean, -_MAX_RATE, _MAX_RATE, xtol=1e-13, rtol=1e-14))


@dataclass(frozen=True)
class OverrunLaw:
    """Distribution of the capex overrun ratio ``R`` (see :func:`overrun_law`).

    Attributes
    ----------
    prob_over : float
        ``q = P(R > 0)``.
    prob_ge_100pct : float
        ``t = P(R >= 1)``.
    underrun_max : float
        ``u``: under-budget projects land in ``[-u, 0]`` (triangular, mode 0; mean ``-u/3``).
    body_rate : float
        Rate of the truncated exponential of overruns in (0, 1).
    tail_index : float
        Pareto index ``a`` of overruns from +100 % (``P(R > x | R >= 1) = x^-a``).
    """

    prob_over: float
    prob_ge_100pct: float
    underrun_max: float
    body_rate: float
    tail_index: float

    @property
    def body_mean(self) -> float:
        """``E[R | 0 < R < 1]``."""
        return _body_mean(self.body_rate)

    @property
    def tail_mean(self) -> float:
        """``E[R | R >= 1] = a / (a - 1)``."""
        return self.tail_index / (self.tail_index - 1.0)

    @property
    def mean_if_over(self) -> float:
        """``E[R | R > 0]``."""
        q, t = self.prob_over, self.prob_ge_100pct
        return ((q - t) * self.body_mean + t * self.tail_mean) / q

    @property
    def mean(self) -> float:
        """``E[R]`` over all projects."""
        return self.prob_over * self.mean_if_over - (1.0 - self.prob_over) * self.underrun_max / 3.0

    def ppf_normal(self, z: np.ndarray) -> np.ndarray:
        """Inverse CDF at ``Phi(z)``: the overrun of a standard-normal score ``z`` (monotone in z)."""
        q, t, u, rate, a = self.prob_over, self.prob_ge_100pct, self.underrun_max, self.body_rate, self.tail_index
        sx = special.ndtr(-z)  # 1 - Phi(z) without cancellation (the tail needs it)
        x = 1.0 - sx  # used below 1 - q only, where the cancellation is harmless
        under = -u * (1.0 - np.sqrt(np.clip(x / (1.0 - q), 0.0, 1.0)))
        v = np.clip((q - sx) / (q - t), 0.0, 1.0 - 1e-16)
        body = v if rate == 0.0 else -np.log1p(v * math.expm1(-rate)) / rate
        tail = np.power(np.clip(sx / t, 1e-300, 1.0), -1.0 / a)
        return np.where(sx > q, under, np.where(sx > t, body, tail))

    def cdf(self, r: np.ndarray) -> np.ndarray:
        """``P(R <= r)`` (for tests and reports)."""
        q, t, u, rate, a = self.prob_over, self.prob_ge_100pct, self.underrun_max, self.body_rate, self.tail_index
        r = np.asarray(r, dtype=float)
        under = (1 - q) * np.clip((r + u) / u, 0.0, 1.0) ** 2
        y = np.clip(r, 0.0, 1.0)
        body_cdf = y if rate == 0.0 else np.expm1(-rate * y) / math.expm1(-rate)
        body = (1 - q) + (q - t) * body_cdf
        tail = 1.0 - t * np.power(np.maximum(r, 1.0), -a)
        return np.where(r <= 0, under, np.where(r < 1, body, tail))


@functools.lru_cache(maxsize=256)
def overrun_law(prob_over: float, prob_ge_100pct: float, underrun_max: float = 0.3, tail_index: float = 3.0,
                *, mean: float | None = None, mean_if_over: float | None = None) -> OverrunLaw:
    """The overrun distribution with a given share over budget, mean and doubling probability.

    Parameters
    ----------
    prob_over : float
        ``q = P(R > 0)``, the share of projects over budget.
    prob_ge_100pct : float
        ``t = P(R >= 1)``, the share whose capex at least doubles (``t < q``).
    underrun_max : float, default 0.3
        ``u``, the largest underrun; under-budget outcomes are triangular on ``[-u, 0]``, mode 0.
    tail_index : float, default 3
        Pareto index ``a > 1`` of the blow-outs: ``P(R > x | R >= 1) = x^-a``, mean ``a/(a-1)``.
    mean, mean_if_over : float
        ``E[R]`` over all projects, or ``E[R | R > 0]``: exactly one.

    Returns
    -------
    OverrunLaw

    Raises
    ------
    ValueError
        When no such law exists; the message gives the attainable range of the mean.

    Notes
    -----
    Closed form but for one monotone root. With ``m_c = E[R | R > 0]`` (from ``mean`` by
    ``m_c = (mean + (1 - q) u / 3) / q``) the overruns below +100 % have mass ``q - t`` and
    mean ``b = (q m_c - t a/(a-1)) / (q - t)``, which must lie in (0, 1); their density
    ``lam exp(-lam r) / (1 - exp(-lam))`` on (0, 1) has mean ``1/lam - 1/(exp(lam) - 1)``,
    strictly decreasing in ``lam`` from 1 to 0, so ``lam`` is found by bisection (Brent).
    ``lam = 0`` is the uniform body; ``lam < 0`` an increasing density.

    Examples
    --------
    >>> law = overrun_law(0.70, 1 / 13, mean_if_over=0.62)
    >>> round(law.mean, 4), round(law.body_mean, 4)
    (0.404, 0.5114)
    """
    q, t, u, a = prob_over, prob_ge_100pct, underrun_max, tail_index
    if not (0.0 < t < q < 1.0):
        raise ValueError(f"need 0 < P(overrun >= 100 %) < P(over budget) < 1, got {t:.4f} and {q:.4f}")
    if not 0.0 < u < 1.0:
        raise ValueError(f"the largest underrun must be in (0, 1), got {u}")
    if not a > 1.0:
        raise ValueError(f"the tail index must exceed 1 (finite mean), got {a}")
    if (mean is None) == (mean_if_over is None):
        raise ValueError("give exactly one of mean and mean_if_over")
    m_c = mean_if_over if mean_if_over is not None else (mean + (1 - q) * u / 3) / q
    tail_mean = a / (a - 1)
    body = (q * m_c - t * tail_mean) / (q - t)
    lo_b, hi_b = _body_mean(_MAX_RATE), _body_mean(-_MAX_RATE)
    if not lo_b < body < hi_b:
        lo = (t * tail_mean + (q - t) * lo_b) / q
        hi = (t * tail_mean + (q - t) * hi_b) / q
        shift = (1 - q) * u / 3
        raise ValueError(
            f"no overrun law has P(over budget) = {q:.4f}, P(overrun >= 100 %) = {t:.4f} and tail index {a:g} with "
            f"a mean of {m_c:.4f} among projects over budget ({q * m_c - shift:.4f} over all); the attainable "
            f"range is {lo:.4f} to {hi:.4f} among projects over budget ({q * lo - shift:.4f} to {q * hi - shift:.4f} "
            "over all): change the mean, P(overrun >= 100 %) or the tail index")
    return OverrunLaw(prob_over=q, prob_ge_100pct=t, underrun_max=u, body_rate=_body_rate(float(body)),
                      tail_index=a)


# ----------------------------------------------------------------------------- construction delay
@dataclass(frozen=True)
class DelayLaw:
    """Distribution of the construction delay ``D = actual / planned - 1`` (see :func:`delay_law`)."""

    prob_late: float
    early_max: float
    mu: float
    sigma: float

    @property
    def mean_if_late(self) -> float:
        """``E[D | D > 0]``."""
        return math.exp(self.mu + self.sigma**2 / 2)

    @property
    def mean(self) -> float:
        """``E[D]``."""
        return self.prob_late * self.mean_if_late - (1 - self.prob_late) * self.early_max / 3

    def ppf_normal(self, z: np.ndarray) -> np.ndarray:
        """Inverse CDF at ``Phi(z)`` (monotone in z)."""
        p, e = self.prob_late, self.early_max
        sx = special.ndtr(-z)
        x = 1.0 - sx
        early = -e * (1.0 - np.sqrt(np.clip(x / (1.0 - p), 0.0, 1.0)))
        late = np.exp(self.mu - self.sigma * special.ndtri(np.clip(sx / p, 1e-300, 1.0 - 1e-16)))
        return np.where(sx > p, early, late)


@functools.lru_cache(maxsize=256)
def delay_law(prob_late: float, mean: float, sigma: float = 0.8, early_max: float = 0.1) -> DelayLaw:
    """The delay distribution with a share late and a mean delay (closed form).

    On time or early with probability ``1 - p`` (triangular on ``[-e, 0]``, mode 0, mean
    ``-e/3``), else ``LogNormal(mu, sigma)`` with ``exp(mu + sigma^2/2) = (mean + (1 - p) e / 3) / p``.

    Examples
    --------
    >>> round(delay_law(0.52, 0.25).mean_if_late, 4)
    0.5115
    """
    if not 0.0 < prob_late < 1.0:
        raise ValueError(f"the probability of a late finish must be in (0, 1), got {prob_late}")
    m_late = (mean + (1 - prob_late) * early_max / 3) / prob_late
    if m_late <= 0:
        raise ValueError(f"a mean delay of {mean} with {prob_late:.2f} late and early finishes down to "
                         f"-{early_max} needs a negative delay of the late projects")
    return DelayLaw(prob_late=prob_late, early_max=early_max, mu=math.log(m_late) - sigma**2 / 2, sigma=sigma)


# ----------------------------------------------------------------------------- a project's parameters
@dataclass(frozen=True)
class ScheduleParameters:
    """A project's schedule and overrun laws, its fields filled from the evidence where left out."""

    size_class: str
    overrun: OverrunLaw
    overrun_delay_correlation: float
    delay: DelayLaw
    financing_wait_median_years: float
    financing_wait_sigma: float
    rampup_series: int
    nameplate_shortfall_prob: float
    nameplate_plateau: PlateauShare


def size_class(project: Project, evidence: ScheduleEvidence = DEFAULT_EVIDENCE) -> str:
    """``capex.size_class``, else megaproject when the initial capex is above the threshold."""
    if project.capex.size_class is not None:
        return project.capex.size_class
    return "megaproject" if project.capex.initial_musd > evidence.megaproject_threshold_musd else "standard"


def schedule_parameters(project: Project, evidence: ScheduleEvidence | None = None) -> ScheduleParameters:
    """The project's laws: its own fields, else those of its size class and series in ``evidence``.

    Raises
    ------
    ScheduleParameterError
        When the figures admit no law; ``key`` names the field to change.
    """
    ev = evidence or DEFAULT_EVIDENCE
    capex, sched = project.capex, project.schedule
    cls = size_class(project, ev)
    oc = ev.overrun[cls]

    def pick(value, default):
        return default if value is None else value

    q = pick(capex.overrun_prob_over, oc.prob_over)
    t = pick(capex.overrun_prob_ge_100pct, oc.prob_ge_100pct)
    u = oc.underrun_max if capex.overrun_shift is None else -capex.overrun_shift
    a = pick(capex.overrun_tail_index, oc.tail_index)
    given = {k: getattr(capex, k) for k in ("overrun_mean", "overrun_mean_if_over", "overrun_prob_ge_100pct",
                                            "overrun_prob_over", "overrun_shift", "overrun_tail_index")
             if getattr(capex, k) is not None}
    key = "capex." + (next(iter(given)) if given else "size_class")
    if capex.overrun_mean_if_over is not None:
        means = {"mean_if_over": capex.overrun_mean_if_over}
    elif capex.overrun_mean is not None:
        means = {"mean": capex.overrun_mean}
    elif oc.mean_if_over is not None:
        means = {"mean_if_over": oc.mean_if_over}
    else:
        means = {"mean": oc.mean}
    try:
        law = overrun_law(float(q), float(t), float(u), float(a), **{k: float(v) for k, v in means.items()})
    except ValueError as exc:
        raise ScheduleParameterError(key, f"{exc} (size class {cls})", given.get(key[6:])) from None
    if capex.overrun_mean is not None and capex.overrun_mean_if_over is not None \
            and abs(law.mean - capex.overrun_mean) > 1e-6:
        raise ScheduleParameterError(
            "capex.overrun_mean", f"overrun_mean_if_over {capex.overrun_mean_if_over} implies a mean of "
            f"{law.mean:.6f} over all projects, not {capex.overrun_mean}: give one of the two", capex.overrun_mean)

    d = ev.delay
    p_late = pick(sched.construction_prob_late, d.prob_late)
    try:
        delay = delay_law(float(p_late), float(pick(sched.construction_delay_mean, d.mean)),
                          float(pick(sched.construction_delay_sigma, d.sigma_if_late)),
                          float(pick(sched.construction_early_max, d.early_max)))
    except ValueError as exc:
        raise ScheduleParameterError("schedule.construction_delay_mean", str(exc),
                                     sched.construction_delay_mean) from None
    series = pick(sched.rampup_series, ev.default_rampup_series)
    ne = ev.nameplate[series]
    return ScheduleParameters(
        size_class=cls, overrun=law,
        overrun_delay_correlation=float(pick(capex.overrun_delay_correlation, ev.overrun_delay_correlation)),
        delay=delay,
        financing_wait_median_years=float(pick(sched.financing_wait_median_years, ev.financing_wait.median_years)),
        financing_wait_sigma=float(pick(sched.financing_wait_sigma, ev.financing_wait.sigma)),
        rampup_series=int(series),
        nameplate_shortfall_prob=float(pick(sched.nameplate_shortfall_prob, ne.prob_shortfall)),
        nameplate_plateau=pick(sched.nameplate_plateau, ne.plateau),
    )


def resolve_project(project: Project, evidence: ScheduleEvidence | None = None) -> Project:
    """A copy of ``project`` with every optional schedule and overrun field filled (the loader's step).

    Filled values are those :func:`draw_schedule` uses; both ``overrun_mean`` and
    ``overrun_mean_if_over`` are set (one derived from the other), so memos and reports show them.
    """
    par = schedule_parameters(project, evidence)
    law, c = par.overrun, project.capex
    capex = c.model_copy(update={  # given means are kept as written (they agree with the law to 1e-6)
        "size_class": par.size_class, "overrun_prob_over": law.prob_over,
        "overrun_mean": law.mean if c.overrun_mean is None else c.overrun_mean,
        "overrun_mean_if_over": law.mean_if_over if c.overrun_mean_if_over is None else c.overrun_mean_if_over,
        "overrun_prob_ge_100pct": law.prob_ge_100pct,
        "overrun_shift": -law.underrun_max, "overrun_tail_index": law.tail_index,
        "overrun_delay_correlation": par.overrun_delay_correlation,
    })
    d = par.delay
    schedule = project.schedule.model_copy(update={
        "construction_prob_late": d.prob_late, "construction_delay_mean": d.mean,
        "construction_delay_sigma": d.sigma, "construction_early_max": d.early_max,
        "financing_wait_median_years": par.financing_wait_median_years,
        "financing_wait_sigma": par.financing_wait_sigma, "rampup_series": par.rampup_series,
        "nameplate_shortfall_prob": par.nameplate_shortfall_prob, "nameplate_plateau": par.nameplate_plateau,
    })
    return project.model_copy(update={"capex": capex, "schedule": schedule})


# ----------------------------------------------------------------------------- draws
@dataclass(frozen=True)
class ScheduleDraws:
    """Per-scenario schedule and cost outcomes of one project (times in years from t = 0).

    Attributes
    ----------
    developed : ndarray of bool, shape (n,)
        False where exploration fails and the project is abandoned after its studies.
    studies_end : ndarray (n,)
        The investment decision (FID): end of studies, permitting and the wait for finance.
    construction_start, construction_end : ndarray (n,)
        Construction window; ``construction_end`` is the scheduled first production.
    rampup_years : ndarray (n,)
        Operating years to reach the plateau.
    capex_multiplier : ndarray (n,)
        ``1 + R`` applied to the initial capex budget (R = overrun ratio).
    opex_multiplier : ndarray (n,)
        Lognormal unit-cost multiplier with median 1.
    recovery_shift : ndarray (n,)
        Additive shift of metallurgical recovery (fraction).
    nameplate_share : ndarray (n,), optional
        Share of nameplate throughput at the plateau (1 = nameplate reached); default ones.
    financing_wait : ndarray (n,), optional
        Years between the permits and the investment decision spent waiting for finance; default 0.
    construction_delay : ndarray (n,), optional
        ``actual / planned - 1`` of the construction time; default 0.
    """

    developed: np.ndarray
    studies_end: np.ndarray
    construction_start: np.ndarray
    construction_end: np.ndarray
    rampup_years: np.ndarray
    capex_multiplier: np.ndarray
    opex_multiplier: np.ndarray
    recovery_shift: np.ndarray
    nameplate_share: np.ndarray | None = field(default=None)
    financing_wait: np.ndarray | None = field(default=None)
    construction_delay: np.ndarray | None = field(default=None)

    def __post_init__(self):
        n = np.shape(self.developed)[0]
        for name, value in (("nameplate_share", 1.0), ("financing_wait", 0.0), ("construction_delay", 0.0)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.full(n, value))


def draw_schedule(
    project: Project,
    permitting_default: Triangular,
    uniforms: np.ndarray,
    *,
    risk_on: bool = True,
    evidence: ScheduleEvidence | None = None,
) -> ScheduleDraws:
    """Turn uniform draws into one project's schedule, overrun and cost outcomes.

    Parameters
    ----------
    project : Project
        The project's assumptions (loaded projects carry every field; others are filled from
        ``evidence``).
    permitting_default : Triangular
        The host country's typical permitting time, used unless the project overrides it.
    uniforms : ndarray of shape (n_scenarios, len(SCHEDULE_DRAWS))
        Uniform draws in (0, 1), columns as in :data:`SCHEDULE_DRAWS`.
    risk_on : bool, default True
        False switches schedule and cost risk off: durations at their mode, construction as
        planned, no wait for finance, no overrun, nameplate reached, unit costs and recovery as
        budgeted, development certain.
    evidence : ScheduleEvidence, optional
        Figures for the fields the project leaves out (default: :data:`DEFAULT_EVIDENCE`).

    Returns
    -------
    ScheduleDraws
    """
    n = uniforms.shape[0]
    col = {name: uniforms[:, i] for i, name in enumerate(SCHEDULE_DRAWS)}
    sched, ops = project.schedule, project.operations
    par = schedule_parameters(project, evidence)
    zero = np.zeros(n)

    def duration(tri: Triangular | None, u: np.ndarray) -> np.ndarray:
        if tri is None:
            return zero
        return triangular_ppf(u, tri) if risk_on else np.full(n, tri.mode)

    stage = project.stage
    before_fid = stage in (Stage.EXPLORATION, Stage.FEASIBILITY)
    exploration = duration(sched.exploration_years, col["exploration"]) if stage is Stage.EXPLORATION else zero
    permitting = duration(sched.permitting_years or permitting_default, col["permitting"]) if before_fid else zero
    if risk_on and before_fid and par.financing_wait_median_years > 0:
        wait = par.financing_wait_median_years * np.exp(par.financing_wait_sigma * special.ndtri(col["financing"]))
    else:
        wait = zero
    planned = sched.construction_years.mode if (stage is not Stage.PRODUCTION and sched.construction_years) else 0.0
    z_delay = special.ndtri(col["construction"])
    delay = par.delay.ppf_normal(z_delay) if (risk_on and planned > 0) else zero
    construction = planned * (1.0 + delay)
    rampup = duration(sched.rampup_years, col["rampup"]) if stage is not Stage.PRODUCTION else zero

    studies_end = exploration + permitting + wait
    construction_end = studies_end + construction

    if risk_on:
        rho = par.overrun_delay_correlation
        z_overrun = rho * z_delay + math.sqrt(1 - rho * rho) * special.ndtri(col["overrun"])
        overrun = par.overrun.ppf_normal(z_overrun)
        s = ops.opex_uncertainty_sigma
        opex_multiplier = np.exp(s * special.ndtri(col["opex"]))
        recovery_shift = ops.recovery_uncertainty_sd * special.ndtri(col["recovery"])
        developed = col["development"] < sched.development_probability
        p_short = par.nameplate_shortfall_prob
        if stage is not Stage.PRODUCTION and p_short > 0:
            u = col["nameplate"]
            plateau = triangular_ppf(np.clip(u / p_short, 0.0, 1.0), par.nameplate_plateau)
            nameplate = np.where(u < p_short, plateau, 1.0)
        else:
            nameplate = np.ones(n)
    else:
        overrun = zero
        opex_multiplier = np.ones(n)
        recovery_shift = zero
        developed = np.ones(n, dtype=bool)
        nameplate = np.ones(n)
    if stage is Stage.PRODUCTION:
        overrun = zero  # nothing left to build

    return ScheduleDraws(
        developed=developed,
        studies_end=studies_end,
        construction_start=studies_end,
        construction_end=construction_end,
        rampup_years=rampup,
        capex_multiplier=1.0 + overrun,
        opex_multiplier=opex_multiplier,
        recovery_shift=recovery_shift,
        nameplate_share=nameplate,
        financing_wait=wait,
        construction_delay=delay,
    )


# ----------------------------------------------------------------------------- lead times (validation)
def lead_time_years(project: Project, permitting_default: Triangular, uniforms: np.ndarray,
                    discovery_uniform: np.ndarray, evidence: ScheduleEvidence | None = None) -> np.ndarray:
    """Discovery-to-first-production years of the scenarios in which an exploration project is built.

    The project's remaining time to first production (``construction_end``) plus the time its
    deposit has already taken from discovery to the scoping stage
    (``evidence.lead_time.discovery_to_scoping_years``, triangular, drawn from
    ``discovery_uniform``), over the developed scenarios only: S&P Global's lead times are those
    of mines that were built. Political licence suspensions, which the cash-flow engine adds
    before the start, are not included.
    """
    ev = evidence or DEFAULT_EVIDENCE
    d = draw_schedule(project, permitting_default, uniforms, evidence=ev)
    before = triangular_ppf(discovery_uniform, ev.lead_time.discovery_to_scoping_years)
    return (before + d.construction_end)[d.developed]


__all__ = ["SCHEDULE_DRAWS", "DEFAULT_EVIDENCE", "ScheduleDraws", "ScheduleParameters", "ScheduleParameterError",
           "OverrunLaw", "DelayLaw", "overrun_law", "delay_law", "size_class", "schedule_parameters",
           "resolve_project", "draw_schedule", "lead_time_years", "triangular_ppf"]
