"""Monte Carlo precision: standard errors of the summary figures and the ``--precision`` stop rule.

Every figure of ``summary.csv``, ``metrics.json`` and the memos is an estimate from a finite
number of scenarios. Its standard error (SE) comes from *independent groups* of scenarios:
the figure is computed on each group separately and

    SE = sd(figure over the R groups, ddof=1) / sqrt(R),

the standard error of the all-scenario figure (which stays computed on all scenarios).

The groups (:class:`Replicates`):

- **Sobol' sampling: randomised QMC.** The market shocks are :data:`~fundmodel.sampling.SOBOL_REPLICATES`
  (R = 16) independently scrambled Sobol' sequences, interleaved: scenario ``i`` is point
  ``i // 16`` of replicate ``i % 16`` (:mod:`fundmodel.sampling`); the other streams are
  pseudo-random or Latin hypercubes stratified per block *and* replicate. The 16 replicates
  are therefore independent, identically distributed RQMC estimates, and their spread is
  the textbook RQMC error estimate (Owen, *Monte Carlo theory, methods and examples*,
  ch. 17). Draws stay a pure function of (seed, stream, scenario index): chunk invariance
  and "same seed, same numbers" hold, and a run of N scenarios is the first N scenarios of
  any longer run.
- **Pseudo-random sampling: batch means** over 16 interleaved batches (scenario ``i`` in batch
  ``i % 16``); the scenarios are independent, so the batches are too.
- **Latin hypercube sampling: batch means** over the random blocks of 1,024 scenarios (each
  an independent Latin hypercube) when there are at least 10 blocks; with fewer, the 16
  interleaved batches, which share each block's strata and so overstate the error
  (conservative).

How each kind of figure is treated:

- **means** (NPVs, market values): the group means;
- **probabilities** (shares of scenarios): the group shares; under pseudo-random sampling this
  agrees with the binomial ``sqrt(p (1 - p) / n)`` up to the sampling noise of 16 groups;
- **percentiles**: the percentile of each group (16 groups of n / 16 scenarios: a little
  conservative, since a percentile's error falls like 1 / sqrt(n));
- **CVaR** (mean of the worst 5 %): the CVaR of each group; likewise for the portfolio's VaR
  and CVaR, and its expected PV, with the optimised allocation held fixed.

The ``--precision`` stop rule (:func:`precision_status`): scenarios run in batches of
:data:`PRECISION_BATCH` (8 blocks of 1,024: every Sobol' replicate grows by 512 points a
batch); after each batch every project's ``npv_mean_se_meur`` is compared with the target
(absolute, EUR m, and/or relative, SE / |mean|), and the run stops at the first batch where
all projects meet it, or at ``--scenarios`` (the maximum). The stop depends only on the
scenarios so far, which are a pure function of the seed, so the same seed and target give
the same scenario count and the same results as a plain run of that many scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .assumptions.schema import SamplingMethod
from .sampling import BLOCK, SOBOL_REPLICATES

#: Scenarios per batch of the ``--precision`` stop rule (whole random blocks, a multiple of the replicates).
PRECISION_BATCH = 8 * BLOCK
#: Fewest Latin hypercube blocks for block batch means (fewer: interleaved batches).
MIN_LHS_BLOCKS = 10


class Replicates:
    """Independent groups of the scenarios ``0 .. n-1`` of a run, for standard errors.

    Parameters
    ----------
    n : int
        Number of scenarios.
    method : SamplingMethod or str
        Sampling of the run.

    Attributes
    ----------
    method : str
        ``"rqmc"`` (Sobol' replicates) or ``"batch_means"``.
    groups : int
        Number of groups R.

    Examples
    --------
    >>> r = Replicates(32, "sobol")
    >>> r.method, r.groups, [g.tolist() for g in r.split(np.arange(32))][:2]
    ('rqmc', 16, [[0, 16], [1, 17]])
    """

    def __init__(self, n: int, method: SamplingMethod | str):
        self.n = int(n)
        sampling = SamplingMethod(method)
        self.method = "rqmc" if sampling is SamplingMethod.SOBOL else "batch_means"
        blocks = -(-self.n // BLOCK)
        self.contiguous = sampling is SamplingMethod.LHS and blocks >= MIN_LHS_BLOCKS
        self.groups = blocks if self.contiguous else SOBOL_REPLICATES

    def split(self, x: np.ndarray) -> list[np.ndarray]:
        """The values of ``x`` (shape (n, ...)) in each group."""
        if self.contiguous:
            return [x[lo: lo + BLOCK] for lo in range(0, self.n, BLOCK)]
        return [x[r:: self.groups] for r in range(self.groups)]

    def se(self, x: np.ndarray, statistic: Callable[[np.ndarray], float | None] = np.mean) -> float | None:
        """Standard error of ``statistic(x)`` from its spread over the groups (None: undefined).

        Groups where the statistic is undefined (None or NaN, e.g. a percentile of no finite
        value) are left out; with fewer than two left the standard error is None.
        """
        values = []
        for part in self.split(np.asarray(x)):
            if part.size == 0:
                continue
            v = statistic(part)
            if v is not None and np.isfinite(v):
                values.append(float(v))
        if len(values) < 2:
            return None
        return float(np.std(values, ddof=1) / np.sqrt(len(values)))

    def describe(self) -> dict:
        """How the standard errors were computed (for ``metrics.json``)."""
        if self.method == "rqmc":
            how = (f"randomised QMC: spread of {self.groups} independently scrambled Sobol' replicates "
                   "(scenario i in replicate i mod 16)")
        elif self.contiguous:
            how = f"batch means over {self.groups} independent Latin hypercube blocks of {BLOCK} scenarios"
        else:
            how = f"batch means over {self.groups} interleaved batches (scenario i in batch i mod {self.groups})"
        return {"method": self.method, "groups": self.groups, "description": how}


@dataclass(frozen=True)
class PrecisionTarget:
    """Target of ``--precision`` (``abs_meur``, EUR m) and/or ``--precision-rel`` (``rel``: SE / |mean|)."""

    abs_meur: float | None = None
    rel: float | None = None

    def met(self, mean: float, se: float | None) -> bool:
        """True if this mean's standard error meets every target given."""
        if se is None or not np.isfinite(se):
            return False
        if self.abs_meur is not None and se > self.abs_meur:
            return False
        if self.rel is not None and se > self.rel * abs(mean):
            return False
        return True

    def describe(self) -> str:
        parts = []
        if self.abs_meur is not None:
            parts.append(f"EUR {self.abs_meur:g} m")
        if self.rel is not None:
            parts.append(f"{self.rel:.3g} x |mean|")
        return " and ".join(parts)


def precision_target(settings) -> PrecisionTarget | None:
    """The run's stop target (None: a fixed number of scenarios)."""
    abs_meur = getattr(settings, "precision_meur", None)
    rel = getattr(settings, "precision_rel", None)
    return None if abs_meur is None and rel is None else PrecisionTarget(abs_meur, rel)


def precision_status(npv: dict[str, np.ndarray], method: SamplingMethod | str, target: PrecisionTarget,
                     max_scenarios: int) -> dict:
    """Whether every project's mean project NPV meets ``target`` on the scenarios given.

    Parameters
    ----------
    npv : dict
        Per project, the project NPVs (EUR m) of the scenarios run so far (``0 .. n-1``).
    method : SamplingMethod
    target : PrecisionTarget
    max_scenarios : int
        ``--scenarios``: the most the run may use.

    Returns
    -------
    dict
        ``precision_reached``, ``precision_target_meur``, ``precision_target_rel``,
        ``scenarios`` (used), ``scenarios_max``, ``batch_scenarios``, ``worst_project`` (the
        project furthest from the target) and its ``worst_npv_mean_se_meur``.
    """
    n = len(next(iter(npv.values()))) if npv else 0
    groups = Replicates(n, method)
    reached, worst, worst_ratio, worst_se = True, None, -np.inf, None
    for pid, x in npv.items():
        mean, se = float(np.mean(x)), groups.se(x)
        reached &= target.met(mean, se)
        bounds = [b for b in (target.abs_meur, None if target.rel is None else target.rel * abs(mean)) if b is not None]
        ratio = np.inf if se is None or min(bounds) <= 0 else se / min(bounds)
        if ratio > worst_ratio:
            worst, worst_ratio, worst_se = pid, ratio, se
    return {"precision_reached": bool(reached), "precision_target_meur": target.abs_meur,
            "precision_target_rel": target.rel, "scenarios": n, "scenarios_max": int(max_scenarios),
            "batch_scenarios": PRECISION_BATCH, "worst_project": worst, "worst_npv_mean_se_meur": worst_se}


def precision_message(status: dict) -> str:
    """One line on the ``--precision`` outcome for the terminal."""
    target = PrecisionTarget(status["precision_target_meur"], status["precision_target_rel"]).describe()
    worst = status["worst_npv_mean_se_meur"]
    worst_text = "n/a" if worst is None else f"{worst:,.2f}"
    if status["precision_reached"]:
        return (f"precision: every project's npv_mean_se_meur within {target} after {status['scenarios']:,} "
                f"scenarios (largest SE EUR {worst_text} m, {status['worst_project']})")
    return (f"precision: target {target} NOT reached: stopped at the maximum of {status['scenarios_max']:,} "
            f"scenarios (--scenarios); largest npv_mean_se_meur EUR {worst_text} m ({status['worst_project']})")
