"""Command line: ``fundmodel validate``, ``simulate``, ``optimize``, ``memo`` and ``run``.

Exit codes: 0 success; 2 bad input (assumption files or arguments), with a
report naming file, key, value and rule; 1 internal error, with a one-line
message (set ``FUNDMODEL_DEBUG=1`` for the traceback). Never a traceback for
bad input, never exit 0 when a step failed.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import shlex
import sys
import time
import traceback
from pathlib import Path

from ._version import __version__
from .errors import FundmodelError, UsageError


def _whole_number(minimum: int):
    """argparse type: a whole number >= ``minimum``, with a message naming the rule."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1)


def _positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value
_seed = _whole_number(0)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every bad argument is exit code 2 with our format."""

    def error(self, message: str):  # noqa: D102
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The ``fundmodel`` argument parser."""
    parser = _Parser(prog="fundmodel", description=(
        "Risk and financing model of a state-backed critical raw-materials fund."))
    parser.add_argument("--version", action="version", version=f"fundmodel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def assumptions_option(p):
        p.add_argument("--assumptions", default="assumptions", metavar="DIR",
                       help="assumptions directory (default: assumptions)")

    def run_options(p):
        assumptions_option(p)
        p.add_argument("--scenarios", type=_positive_int, metavar="N",
                       help="number of scenarios (default: fund.yaml simulation.scenarios)")
        p.add_argument("--seed", type=_seed, metavar="S", help="random seed (default: fund.yaml)")
        p.add_argument("--workers", type=_positive_int, metavar="N",
                       help="worker processes (default: fund.yaml); results do not depend on it")
        p.add_argument("--engine", choices=["serial", "dask"], default="serial",
                       help="where scenario chunks run: serial = this machine (--workers local processes), "
                            "dask = a Dask cluster (default: serial); results do not depend on it")
        p.add_argument("--scheduler", metavar="ADDRESS",
                       help="Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --engine dask; default: "
                            "DASK_SCHEDULER_ADDRESS, else a local cluster of --workers processes)")
        p.add_argument("--out", default="reports", metavar="DIR", help="output root (default: reports)")

    p_val = sub.add_parser("validate", help="check the assumption files; exit 2 with a report if invalid")
    assumptions_option(p_val)

    def precision_options(p):
        p.add_argument("--precision", type=_positive_float, metavar="X",
                       help="run scenarios in batches of 8,192 until every project's npv_mean_se_meur is at "
                            "most X EUR m; --scenarios is then the maximum")
        p.add_argument("--precision-rel", type=_positive_float, metavar="X",
                       help="the same for the relative standard error SE / |mean| (e.g. 0.01)")

    p_sim = sub.add_parser("simulate", help="Monte Carlo valuation of every project")
    run_options(p_sim)
    precision_options(p_sim)
    p_sim.add_argument("--sampling", choices=["pseudo", "lhs", "sobol"],
                       help="sampling method (default: fund.yaml)")
    p_sim.add_argument("--copula", choices=["gaussian", "student_t"],
                       help="dependence of market shocks (default: fund.yaml)")
    p_sim.add_argument("--chunk-size", type=_positive_int, metavar="N",
                       help="scenarios per chunk, a memory knob (default: fund.yaml)")
    p_sim.add_argument("--no-attribution", action="store_true",
                       help="skip the risk-attribution re-runs")
    p_sim.add_argument("--quiet", action="store_true", help="no progress bar and no table")

    p_opt = sub.add_parser("optimize", help="size equity stakes, guarantees and floors under the fund's limits")
    run_options(p_opt)

    def memo_options(p):
        p.add_argument("--lang", choices=["en", "de"], default="en", help="memo language (default: en)")
        p.add_argument("--project", nargs="+", metavar="ID", help="only these project memos")
        p.add_argument("--baseline", metavar="DIR",
                       help="earlier output root: adds 'changes since the previous run' to the portfolio memo")

    p_memo = sub.add_parser("memo", help="render the PDF memos from the results (running the model if "
                                         "results are missing or older than the assumptions)")
    assumptions_option(p_memo)
    p_memo.add_argument("--out", default="reports", metavar="DIR", help="output root (default: reports)")
    p_memo.add_argument("--workers", type=_positive_int, metavar="N",
                        help="worker processes (default: fund.yaml)")
    memo_options(p_memo)

    p_run = sub.add_parser("run", help="validate, simulate, optimise and render the memos (the main job)")
    run_options(p_run)
    precision_options(p_run)
    memo_options(p_run)

    p_gen = sub.add_parser("generate-pipeline", help="write a synthetic assumption set with N generated projects "
                                                     "(scale tests)")
    assumptions_option(p_gen)
    p_gen.add_argument("--projects", type=_positive_int, required=True, metavar="N", help="number of projects")
    p_gen.add_argument("--seed", type=_seed, default=0, metavar="S", help="random seed (default: 0)")
    p_gen.add_argument("--out", required=True, metavar="DIR", help="new assumptions directory (must not exist "
                                                                   "or be empty)")

    p_cal = sub.add_parser("calibrate", help="estimate price and country-risk assumptions from public data")
    cal = p_cal.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser)
    p_cp = cal.add_parser("prices", help="fit log-OU/GBM price models to the World Bank Pink Sheet")
    p_cp.add_argument("--data", metavar="FILE", help="Pink Sheet CSV (default: the shipped extract)")
    p_cp.add_argument("--series", metavar="A,B,...", help="series to fit, e.g. COPPER,NICKEL (default: calibration.yaml)")
    p_cp.add_argument("--start", metavar="YYYY-MM", help="first month of the sample (default: calibration.yaml)")
    p_cp.add_argument("--model", choices=["ou", "gbm"], help="price model (default: calibration.yaml)")
    p_cc = cal.add_parser("countries", help="map WGI, CPI and OECD category to political-event hazards")
    for p in (p_cp, p_cc):
        p.add_argument("--write", action="store_true", help="update the assumption file in place (comments kept)")
        assumptions_option(p)
        p.add_argument("--out", default="reports", metavar="DIR", help="output root (default: reports)")
    return parser


def cmd_validate(args) -> int:
    """Validate the assumptions and print a one-line confirmation."""
    from .assumptions import load_assumptions

    a = load_assumptions(args.assumptions)
    print(f"{args.assumptions}: valid ({len(a.projects)} projects, "
          f"{len(a.markets.materials)} materials, {len(a.countries.countries)} countries)")
    return 0


def cmd_simulate(args) -> int:
    """Run the simulation and write ``OUT/simulation/``."""
    from tqdm import tqdm

    from .assumptions import load_assumptions
    from .pipeline import simulate_into
    from .results import format_console_table
    from .simulation import RunSettings

    a = load_assumptions(args.assumptions)
    settings = RunSettings.from_assumptions(
        a, scenarios=args.scenarios, seed=args.seed, sampling=args.sampling,
        copula=args.copula, chunk_size=args.chunk_size, workers=args.workers,
        risk_attribution=False if args.no_attribution else None, precision_meur=args.precision,
        precision_rel=args.precision_rel, **_engine_options(args),
    )
    started = time.perf_counter()
    with tqdm(total=settings.scenarios, unit="scen", desc="simulate", disable=args.quiet or None,
              file=sys.stderr, leave=False) as bar:
        result, summary = simulate_into(a, settings, args.out, progress=bar.update, command=_command())
    elapsed = time.perf_counter() - started
    if not args.quiet:
        print(format_console_table(summary))
    if result.precision is not None:
        from .precision import precision_message

        print(precision_message(result.precision))
    settings = result.settings
    out = Path(args.out) / "simulation"
    print(f"{settings.scenarios:,} scenarios x {len(a.projects)} projects x {a.fund.horizon_years} years "
          f"(seed {settings.seed}, {settings.sampling.value}) in {elapsed:.1f} s -> {out}/summary.csv")
    return 0


def cmd_optimize(args) -> int:
    """Simulate (or reuse an up-to-date simulation), optimise, write ``OUT/portfolio/``."""
    from .assumptions import load_assumptions
    from .io import read_csv
    from .pipeline import run_all
    from .simulation import RunSettings

    a = load_assumptions(args.assumptions)
    settings = RunSettings.from_assumptions(a, scenarios=args.scenarios, seed=args.seed, workers=args.workers,
                                            risk_attribution=False, **_engine_options(args))
    report = run_all(a, settings, args.out, memos=False, command=_command())
    port = Path(args.out) / "portfolio"
    allocation = read_csv(port / "allocation.csv")
    shown = allocation[["project", "instrument", "material", "size", "capital_meur", "contingent_meur",
                        "expected_pv_meur", "cvar_contribution_meur"]]
    print(f"Fund allocation ({a.fund.portfolio.objective}, CVaR at {a.fund.portfolio.cvar_beta:.0%}), EUR m")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    if (port / "stress.csv").is_file():
        table = read_csv(port / "stress.csv")[["stress", "expected_pv_meur", "change_meur", "cvar_meur"]]
        print("Stress scenarios (EUR m)")
        print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    m = json.loads((port / "metrics.json").read_text())
    binding = [name for name, c in m.get("constraints", {}).items() if c.get("binding")]
    if m.get("cvar_cap_shadow_price"):
        binding.append("cvar cap")
    print(f"expected PV {m['expected_pv_meur']:,.1f}, VaR {m['var_meur']:,.1f}, CVaR {m['cvar_meur']:,.1f}; "
          f"binding: {', '.join(binding) or 'none'} ({report.timings.get('optimize', 0):.1f} s, "
          f"{'reused' if report.reused_simulation else 'new'} simulation) -> {port}")
    return 0


def _engine_options(args) -> dict:
    """``engine`` and ``scheduler`` of the command line, checked before any work starts."""
    if args.scheduler and args.engine != "dask":
        raise UsageError("--scheduler needs --engine dask")
    return {"engine": args.engine, "scheduler": args.scheduler}


def _print_run(report, started: float) -> None:
    out = report.out_dir
    memos = [p for p in report.memos]
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
    print(f"{len(memos)} memos -> {out / 'memos'} ({steps}; total {time.perf_counter() - started:.1f} s)")


def cmd_memo(args) -> int:
    """Render memos from current results, or run the model first when they are missing or stale."""
    from .assumptions import load_assumptions
    from .pipeline import memos_into

    started = time.perf_counter()
    a = load_assumptions(args.assumptions)
    unknown = [p for p in args.project or [] if p not in a.projects]
    if unknown:
        raise UsageError(f"unknown project id(s): {', '.join(unknown)}; known: {', '.join(a.projects)}")
    written, report = memos_into(a, args.out, lang=args.lang, projects=args.project, baseline_dir=args.baseline,
                                 workers=args.workers, command=_command(),
                                 log=lambda line: print(line, file=sys.stderr))
    if report is not None:
        _print_run(report, started)
    else:
        print(f"{len(written)} memos -> {Path(args.out) / 'memos'} (results up to date; "
              f"{time.perf_counter() - started:.1f} s)")
    return 0


def cmd_run(args) -> int:
    """validate -> simulate -> optimise -> memos, atomically into ``OUT``."""
    from .assumptions import load_assumptions
    from .pipeline import run_all
    from .simulation import RunSettings

    started = time.perf_counter()
    a = load_assumptions(args.assumptions)
    print(f"{args.assumptions}: valid ({len(a.projects)} projects)", file=sys.stderr)
    unknown = [p for p in args.project or [] if p not in a.projects]
    if unknown:  # before an expensive run, not after it
        raise UsageError(f"unknown project id(s): {', '.join(unknown)}; known: {', '.join(a.projects)}")
    settings = RunSettings.from_assumptions(a, scenarios=args.scenarios, seed=args.seed, workers=args.workers,
                                            precision_meur=args.precision, precision_rel=args.precision_rel,
                                            **_engine_options(args))
    report = run_all(a, settings, args.out, lang=args.lang, projects=args.project, baseline_dir=args.baseline,
                     command=_command(), log=lambda line: print(line, file=sys.stderr))
    summary = Path(args.out) / "portfolio" / "metrics.json"
    if summary.is_file():
        import json

        m = json.loads(summary.read_text())
        def se(key):
            return f" (SE {m[key]:,.1f})" if m.get(key) is not None else ""

        print(f"portfolio: expected PV EUR {m['expected_pv_meur']:,.1f} m{se('expected_pv_se_meur')}, CVaR "
              f"{m['cvar_beta']:.0%} EUR {m['cvar_meur']:,.1f} m{se('cvar_se_meur')}, "
              f"capital EUR {m['capital_used_meur']:,.1f} m of "
              f"{m['budget_meur']:,.0f} m, contingent EUR {m['contingent_used_meur']:,.1f} m of "
              f"{m['contingent_limit_meur']:,.0f} m")
    if report.precision is not None:
        from .precision import precision_message

        print(precision_message(report.precision))
    _print_run(report, started)
    return 0


def cmd_calibrate(args) -> int:
    """``fundmodel calibrate prices|countries``: see :mod:`fundmodel.calibration`."""
    from .calibration.commands import cmd_calibrate as run

    return run(args)  # the reports are written under OUT's lock (fundmodel.calibration.report)


def cmd_generate_pipeline(args) -> int:
    """``fundmodel generate-pipeline``: see :mod:`fundmodel.synthetic`."""
    from .synthetic import generate_pipeline

    started = time.perf_counter()
    ids = generate_pipeline(args.assumptions, args.out, args.projects, seed=args.seed)
    print(f"{len(ids)} synthetic projects from {args.assumptions} (seed {args.seed}) -> {args.out} "
          f"(valid; {time.perf_counter() - started:.1f} s)")
    return 0


def _command() -> str:
    return "fundmodel " + " ".join(shlex.quote(x) for x in sys.argv[1:])


COMMANDS = {"validate": cmd_validate, "simulate": cmd_simulate, "optimize": cmd_optimize, "memo": cmd_memo,
            "run": cmd_run, "calibrate": cmd_calibrate, "generate-pipeline": cmd_generate_pipeline}


class Terminated(BaseException):
    """``SIGTERM`` received: unwinds like Ctrl-C (staging removed, workers stopped), exit code 143."""


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise Terminated()


#: ``OSError`` numbers that are the user's to fix (space, permissions, file limits): exit 2.
_USER_OS_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG,
                   errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EMFILE}


def _user_os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    hint = {errno.ENOSPC: "the disk is full; free space or choose another --out",
            errno.EDQUOT: "the disk quota is exhausted; free space or choose another --out",
            errno.EFBIG: "a file exceeds the size this system allows; lower --scenarios or choose another --out",
            errno.EROFS: "the file system is read-only; choose another --out"}.get(exc.errno, "check the path "
                                                                                      "and its permissions")
    return f"error: {where}{exc.strerror or exc} ({hint}); previous results left untouched"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fundmodel`` console script; returns the exit code."""
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM unwinds like Ctrl-C
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            build_parser().print_help()
            return 2
        return COMMANDS[args.command](args)
    except FundmodelError as exc:
        print(f"error: {exc}" if not hasattr(exc, "report") else exc.report(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; previous results left untouched", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated (SIGTERM); previous results left untouched", file=sys.stderr)
        return 143
    except OSError as exc:
        if exc.errno not in _USER_OS_ERRORS:
            return _internal_error(exc)
        if os.environ.get("FUNDMODEL_DEBUG"):
            traceback.print_exc()
        print(_user_os_error(exc), file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence: exit 1, not a traceback
        code = exit_code_for(exc)
        if code is None:
            return _internal_error(exc)
        print(f"error: {exc}", file=sys.stderr)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def exit_code_for(exc: BaseException) -> int | None:
    """Exit code of an error a user can cause or act on; None for an internal error (exit 1 with its type).

    :class:`~fundmodel.errors.FundmodelError` carries its code (2: bad input or usage); the
    optimiser's plain exceptions are mapped here: an infeasible or unbounded problem is the
    user's limits (2), a solver failure is not (1).

    Examples
    --------
    >>> from fundmodel.portfolio import InfeasibleProblem, SolverFailure
    >>> exit_code_for(InfeasibleProblem("x", {}, {})), exit_code_for(SolverFailure("y")), exit_code_for(KeyError())
    (2, 1, None)
    """
    if isinstance(exc, FundmodelError):
        return exc.exit_code
    from .portfolio.errors import OptimizationError, SolverFailure  # here: the optimiser loads only when needed

    if isinstance(exc, OptimizationError):
        return 2
    if isinstance(exc, SolverFailure):
        return 1
    return None


def _internal_error(exc: BaseException) -> int:
    if os.environ.get("FUNDMODEL_DEBUG"):
        traceback.print_exc()
    print(f"internal error: {type(exc).__name__}: {exc} (set FUNDMODEL_DEBUG=1 for the traceback)",
          file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
