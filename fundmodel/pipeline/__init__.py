"""Orchestration of fundmodel's commands: every command is this pipeline with different stages.

- :mod:`~fundmodel.pipeline.current` - the one rule for reusing results
  (:func:`results_are_current`) and the run manifest it compares;
- :mod:`~fundmodel.pipeline.stages` - the stages, each writing its folder atomically:
  :func:`simulate_to_directory` (simulation, break-evens, tornado), :func:`optimize_to_directory`
  (allocation, frontiers, stresses);
- :mod:`~fundmodel.pipeline.run` - the commands: :func:`simulate_into` (``simulate``),
  :func:`run_all` (``run``; ``optimize`` is ``run`` without memos), :func:`memos_into` (``memo``),
  under the output folder's lock, staged and swapped in only when every step succeeded.

This is the top layer of the package below the command line: nothing else imports it
(import-linter contracts in ``pyproject.toml``).
"""

from ..outdir import STEPS
from .current import previous_settings, results_are_current, run_manifest, verify_owned_files
from .run import RunReport, memos_into, run_all, simulate_into
from .stages import optimize_to_directory, simulate_to_directory

__all__ = ["STEPS", "RunReport", "previous_settings", "results_are_current", "run_manifest", "verify_owned_files",
           "simulate_into", "run_all", "memos_into", "simulate_to_directory", "optimize_to_directory"]
