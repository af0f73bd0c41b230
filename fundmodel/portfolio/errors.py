"""Errors of the CVaR optimiser: plain exceptions (the command line maps each to its exit code, ``fundmodel.cli.exit_code_for``)."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["OptimizationError", "InfeasibleProblem", "UnboundedProblem", "SolverFailure"]


class OptimizationError(Exception):
    """The optimisation problem as posed has no answer (the command line exits with 2)."""


class InfeasibleProblem(OptimizationError):
    """No allocation satisfies every constraint.

    Attributes
    ----------
    relaxations : dict of str to float
        For each conflicting constraint that can restore feasibility *on its own*, the
        smallest relaxation that does so, in the constraint's units: how much to raise
        the right-hand side of a ``<=`` row or the CVaR cap, how much to lower the mean
        floor, or the signed change of an equality's right-hand side.
    joint_relaxation : dict of str to float
        One relaxation of several constraints together that restores feasibility (the
        least total relaxation); the answer when no constraint suffices alone.
    """

    def __init__(self, message: str, relaxations: Mapping[str, float],
                 joint_relaxation: Mapping[str, float]):
        super().__init__(message)
        self.relaxations = dict(relaxations)
        self.joint_relaxation = dict(joint_relaxation)

    def __reduce__(self):  # picklable: raised in a worker process, re-raised in the parent
        return type(self), (str(self), self.relaxations, self.joint_relaxation)


class UnboundedProblem(OptimizationError):
    """The objective improves without limit: a bound or budget is missing."""


class SolverFailure(Exception):
    """HiGHS stopped without a usable solution (numerical trouble, limits reached; the command line exits with 1)."""
