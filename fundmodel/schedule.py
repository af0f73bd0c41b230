"""Schedule and cost risk: permitting, construction, ramp-up durations and capex overrun.

Durations are triangular (min/mode/max in years), drawn per scenario by inverse
CDF so that Latin hypercube and Sobol' uniforms keep their stratification.
The capex overrun ratio ``R = actual/budget - 1`` is a *shifted lognormal*
``R = shift + LogNormal(mu, sigma)``, the form recommended for Monte Carlo by
the 63-project as-built study cited in the domain brief; ``mu`` and ``sigma``
are solved from two figures an analyst can defend, the mean overrun and the
probability of overrunning by 100 % or more. Overrun and construction delay
are positively correlated through a Gaussian copula.

Which phases remain depends on the stage:

============  ====================================================
stage         phases from the valuation date (t = 0)
============  ====================================================
exploration   studies -> permitting -> construction -> ramp-up
feasibility   permitting -> construction -> ramp-up
construction  (remaining) construction -> ramp-up
production    operating at nameplate from t = 0
============  ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .assumptions.schema import Project, Stage, Triangular
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
)


def overrun_parameters(mean: float, prob_ge_100pct: float, shift: float) -> tuple[float, float]:
    """Solve the shifted-lognormal overrun parameters from mean and tail probability.

    Parameters
    ----------
    mean : float
        Expected overrun ratio ``E[R]`` (0.14 = +14 % over budget on average).
    prob_ge_100pct : float
        ``P(R >= 1)``, the chance that capex at least doubles.
    shift : float
        Lower bound of ``R`` (<= 0; -0.4 = at best 40 % under budget).

    Returns
    -------
    mu, sigma : float
        Parameters of ``log(R - shift) ~ N(mu, sigma^2)``.

    Raises
    ------
    ValueError
        When no shifted lognormal has that mean, shift and tail probability;
        the message gives the largest attainable tail probability.

    Notes
    -----
    With ``A = mean - shift`` and ``c = ln((1 - shift)/A)``, the conditions
    ``exp(mu + sigma^2/2) = A`` and ``P(R >= 1) = p`` give
    ``sigma^2/2 - z sigma + c = 0`` with ``z = Phi^-1(1 - p)``. For ``c > 0`` both
    roots are positive and the smaller is taken (the larger puts almost all mass near
    the shift); for ``c <= 0`` (a mean overrun of 100 % or more) only the larger root
    is positive. ``p`` must be below 0.5.

    Examples
    --------
    >>> mu, sigma = overrun_parameters(0.14, 1 / 13, -0.4)
    >>> round(sigma, 3)
    1.068
    """
    if not 0.0 < prob_ge_100pct < 0.5:
        raise ValueError(f"P(overrun >= 100 %) must be in (0, 0.5), got {prob_ge_100pct}")
    a = mean - shift
    if a <= 0:
        raise ValueError(f"overrun_mean ({mean}) must exceed overrun_shift ({shift})")
    c = np.log((1 - shift) / a)
    z = special.ndtri(1 - prob_ge_100pct)  # = stats.norm.ppf, without its ~1 ms of argument checks
    disc = z * z - 2 * c
    if disc < 0:
        p_max = float(special.ndtr(-np.sqrt(2 * c)))  # = stats.norm.sf
        raise ValueError(
            f"no shifted lognormal with mean {mean} and shift {shift} reaches "
            f"P(overrun >= 100 %) = {prob_ge_100pct:.4f}; the largest attainable is "
            f"{p_max:.4f} (lower this value or make overrun_shift more negative)"
        )
    sigma = z - np.sqrt(disc) if c > 0 else z + np.sqrt(disc)
    mu = np.log(a) - sigma * sigma / 2
    return float(mu), float(sigma)


@dataclass(frozen=True)
class ScheduleDraws:
    """Per-scenario schedule and cost outcomes of one project (times in years from t = 0).

    Attributes
    ----------
    developed : ndarray of bool, shape (n,)
        False where exploration fails and the project is abandoned after its studies.
    studies_end : ndarray (n,)
        End of studies and permitting, when the investment decision falls.
    construction_start, construction_end : ndarray (n,)
        Construction window; ``construction_end`` is the scheduled first production.
    rampup_years : ndarray (n,)
        Operating years to reach nameplate.
    capex_multiplier : ndarray (n,)
        ``1 + R`` applied to the initial capex budget (R = overrun ratio).
    opex_multiplier : ndarray (n,)
        Lognormal unit-cost multiplier with median 1.
    recovery_shift : ndarray (n,)
        Additive shift of metallurgical recovery (fraction).
    """

    developed: np.ndarray
    studies_end: np.ndarray
    construction_start: np.ndarray
    construction_end: np.ndarray
    rampup_years: np.ndarray
    capex_multiplier: np.ndarray
    opex_multiplier: np.ndarray
    recovery_shift: np.ndarray


def draw_schedule(
    project: Project,
    permitting_default: Triangular,
    uniforms: np.ndarray,
    *,
    risk_on: bool = True,
) -> ScheduleDraws:
    """Turn uniform draws into one project's schedule, overrun and cost outcomes.

    Parameters
    ----------
    project : Project
        The project's assumptions.
    permitting_default : Triangular
        The host country's typical permitting time, used unless the project overrides it.
    uniforms : ndarray of shape (n_scenarios, len(SCHEDULE_DRAWS))
        Uniform draws in (0, 1), columns as in :data:`SCHEDULE_DRAWS`.
    risk_on : bool, default True
        False switches schedule and cost risk off: durations at their mode,
        no overrun, unit costs and recovery as budgeted, development certain.

    Returns
    -------
    ScheduleDraws
    """
    n = uniforms.shape[0]
    col = {name: uniforms[:, i] for i, name in enumerate(SCHEDULE_DRAWS)}
    sched, capex, ops = project.schedule, project.capex, project.operations
    zero = np.zeros(n)

    def duration(tri: Triangular | None, u: np.ndarray) -> np.ndarray:
        if tri is None:
            return zero
        return triangular_ppf(u, tri) if risk_on else np.full(n, tri.mode)

    stage = project.stage
    exploration = duration(sched.exploration_years, col["exploration"]) if stage is Stage.EXPLORATION else zero
    permitting_tri = sched.permitting_years or permitting_default
    permitting = (
        duration(permitting_tri, col["permitting"])
        if stage in (Stage.EXPLORATION, Stage.FEASIBILITY)
        else zero
    )
    construction = duration(sched.construction_years, col["construction"]) if stage is not Stage.PRODUCTION else zero
    rampup = duration(sched.rampup_years, col["rampup"]) if stage is not Stage.PRODUCTION else zero

    studies_end = exploration + permitting
    construction_end = studies_end + construction

    if risk_on:
        mu, sigma = overrun_parameters(capex.overrun_mean, capex.overrun_prob_ge_100pct, capex.overrun_shift)
        rho = capex.overrun_delay_correlation
        z_delay = stats.norm.ppf(col["construction"])
        z_noise = stats.norm.ppf(col["overrun"])
        z_overrun = rho * z_delay + np.sqrt(1 - rho * rho) * z_noise
        overrun = capex.overrun_shift + np.exp(mu + sigma * z_overrun)
        s = ops.opex_uncertainty_sigma
        opex_multiplier = np.exp(s * stats.norm.ppf(col["opex"]))
        recovery_shift = ops.recovery_uncertainty_sd * stats.norm.ppf(col["recovery"])
        developed = col["development"] < sched.development_probability
    else:
        overrun = zero
        opex_multiplier = np.ones(n)
        recovery_shift = zero
        developed = np.ones(n, dtype=bool)
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
    )
