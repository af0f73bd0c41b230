"""Portfolio optimisation over Monte Carlo scenarios.

Generic (no knowledge of mines):

- :mod:`~fundmodel.portfolio.measures` - :func:`var_from_losses`, :func:`cvar_from_losses`
  (VaR and CVaR of a discrete loss sample, exact for any sample size, optional scenario
  probabilities; the one CVaR definition of fundmodel), :func:`lower_tail_mean` (the same
  on a value sample) and :func:`euler_contributions` (Euler allocation of the CVaR);
- :mod:`~fundmodel.portfolio.optimize` - :func:`optimize_cvar`, :func:`minimize_cvar`:
  Rockafellar-Uryasev LP/MILP (minimise CVaR, maximise expected value under a CVaR cap, or
  maximise mean - lambda * CVaR) under linear constraints, bounds and integrality; result
  :class:`CVaRResult` with shadow prices and binding constraints;
- :mod:`~fundmodel.portfolio.frontier` - :func:`efficient_frontier`,
  :func:`efficient_frontiers`: mean-CVaR (or merit-CVaR) frontiers, warm-started;
- :mod:`~fundmodel.portfolio.errors` - :class:`InfeasibleProblem` (minimal relaxation of
  each conflicting constraint, found by :mod:`~fundmodel.portfolio.diagnose`),
  :class:`UnboundedProblem`, :class:`SolverFailure`;
- :mod:`~fundmodel.portfolio._highs` - the solver arrays (explicit dual, MILP, warm start):
  the only module touching SciPy's private HiGHS bindings.

The fund's problem (positions, limits, stresses) is in :mod:`~fundmodel.portfolio.fund` and
:mod:`~fundmodel.portfolio.stress`.

Examples
--------
>>> import numpy as np
>>> from fundmodel.portfolio import optimize_cvar
>>> res = optimize_cvar(np.array([[2.0, -1.0], [-1.0, 2.0]]), beta=0.5, A_eq=[[1.0, 1.0]], b_eq=[1.0])
>>> res.x.round(6).tolist()
[0.5, 0.5]
"""

from .errors import InfeasibleProblem, OptimizationError, SolverFailure, UnboundedProblem
from .frontier import EfficientFrontier, efficient_frontier, efficient_frontiers
from .measures import cvar_from_losses, euler_contributions, lower_tail_mean, var_from_losses
from .optimize import CVAR_CAP, MEAN_FLOOR, CVaRResult, Objective, minimize_cvar, optimize_cvar

__all__ = [
    "CVAR_CAP",
    "MEAN_FLOOR",
    "CVaRResult",
    "EfficientFrontier",
    "InfeasibleProblem",
    "Objective",
    "OptimizationError",
    "SolverFailure",
    "UnboundedProblem",
    "cvar_from_losses",
    "efficient_frontier",
    "efficient_frontiers",
    "euler_contributions",
    "lower_tail_mean",
    "minimize_cvar",
    "optimize_cvar",
    "var_from_losses",
]
