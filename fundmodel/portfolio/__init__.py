"""Portfolio optimisation over Monte Carlo scenarios.

Implements (in :mod:`fundmodel.portfolio.cvar`, generic: no knowledge of mines):

- :func:`var_from_losses`, :func:`cvar_from_losses` - VaR and CVaR (expected shortfall)
  of a discrete loss sample, exact for any sample size, optional scenario probabilities;
- :func:`optimize_cvar`, :func:`minimize_cvar` - Rockafellar-Uryasev LP/MILP: minimise
  CVaR, maximise expected value under a CVaR cap, or maximise mean - lambda * CVaR,
  under linear constraints, bounds and integrality; result :class:`CVaRResult` with
  shadow prices and binding constraints;
- :func:`euler_contributions` - Euler allocation of CVaR to each decision variable;
- :func:`efficient_frontier` - mean-CVaR frontier, result :class:`EfficientFrontier`;
- :class:`InfeasibleProblem` (minimal relaxation of each conflicting constraint),
  :class:`UnboundedProblem`, :class:`SolverFailure` - errors the command line reports.
"""

from .cvar import (
    CVAR_CAP,
    MEAN_FLOOR,
    CVaRResult,
    EfficientFrontier,
    InfeasibleProblem,
    Objective,
    OptimizationError,
    SolverFailure,
    UnboundedProblem,
    cvar_from_losses,
    efficient_frontier,
    euler_contributions,
    minimize_cvar,
    optimize_cvar,
    var_from_losses,
)

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
    "euler_contributions",
    "minimize_cvar",
    "optimize_cvar",
    "var_from_losses",
]
