"""The ``ketamine-response`` command line: parse, call a flow, print, map errors to exit codes.

The parser (every option, help text and default) is :mod:`ketamine_response.pipelines.arguments`. Exit
codes are in the README and the parser's epilog; each error class in :mod:`ketamine_response.features.errors`
carries its own, and :func:`_run` is the one place they become the process's. Heavy libraries are imported
inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ketamine_response.features.errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_ROWS,
    EXIT_STRICT,
    KetamineResponseError,
    Terminated,
    UsageError,
    termination_in,
)
from ketamine_response.pipelines import arguments


def _cmd_validate(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.validate import render_summary, run_validate

    cohort, summary = run_validate(args.cohort, args.mapping, args.problems)
    print(render_summary(summary, cohort, problems_file=args.problems))
    if args.problems:
        print(f"problems written to {args.problems}")
    return EXIT_ROWS if summary.problems else EXIT_OK


def _cmd_synth(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.synth import describe_scenarios, write_synthetic

    if args.describe:
        print(describe_scenarios())
        return EXIT_OK
    if args.out is None:
        raise UsageError("synth needs --out FILE (or --describe)")
    if args.n < 2:
        raise UsageError(f"--n must be at least 2 courses, got {args.n}")
    counts = write_synthetic(args.n, args.seed, args.scenario, args.out, args.oracle)
    print(f"wrote {counts['rows']} courses ({counts['patients']} patients, scenario {args.scenario}) to {args.out}")
    if args.oracle:
        print(f"wrote true response probabilities to {args.oracle}")
    return EXIT_OK


def _cmd_features(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.features import full_dictionary, run_features

    if args.list:
        for row in full_dictionary().itertuples():
            print(f"{row.feature:30s} {row.domain:24s} {row.unit:10s} from {str(row.inputs).replace(';', ', ')}")
            print(f"    {row.rationale}")
        return EXIT_OK
    if args.cohort is None or args.target is None or args.out is None:
        raise UsageError("features needs COHORT, --target T and --out FILE (or --list)")
    _target_or_usage(args.target)
    built, dropped = run_features(args.cohort, args.target, args.out, args.mapping, args.drop_invalid)
    print(f"wrote {len(built.frame)} courses x {len(built.features)} features for {built.target} to {args.out}"
          + (f" ({dropped} invalid rows left out)" if dropped else ""))
    _print_notes(built.notes, ())
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    from ketamine_response.features.cohort.reader import check_cohort_file
    from ketamine_response.pipelines.config import load_config, with_overrides

    _target_or_usage(args.target)
    config = load_config(args.config)
    config = with_overrides(config, args.cv, args.backend, args.permutations)
    if config.backend == "spark":  # no pyspark, joblibspark or Java: exit 2 before a run is opened
        from ketamine_response.pipelines.training.backend import spark_session

        spark_session()
    check_cohort_file(args.cohort)  # a missing or unreadable file is refused before the seconds of imports below
    from ketamine_response.pipelines.flows.train import run_train
    from ketamine_response.pipelines.reporting.content import roles_exploratory
    from ketamine_response.pipelines.reporting.descriptions import selection_reason
    from ketamine_response.pipelines.reporting.terminal import TerminalProgress, render_benefit, render_table
    from ketamine_response.pipelines.tracking import registered_name

    result = run_train(args.cohort, args.target, config, args.experiment, args.mapping, args.drop_invalid,
                       progress=TerminalProgress())
    _print_notes(result.notes, result.warnings)
    caveats = getattr(result.model, "caveats", ())  # what score repeats on every row of this version's scores
    if caveats:
        print(f"warning: the registered version carries these caveats, repeated on every score: {'; '.join(caveats)}",
              file=sys.stderr)
    print(render_table(result.table(), result.data.task, result.permutation.statistic, result.target, wide=args.wide))
    print(selection_reason(result))
    if result.benefit is not None and result.benefit.summaries:
        print(render_benefit(result.benefit, roles_exploratory(result)))
    alias = f" @{result.alias}" if result.alias else f" (no alias: {result.alias_reason}; 'promote --reason TEXT' if you must)"
    print(f"MLflow run: {result.run_id}  registered: {registered_name(args.experiment, result.target)} version {result.version}{alias}")
    print(f"report artifacts: {result.artifact_uri}")
    return EXIT_OK


def _cmd_runs(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines import listing, store
    from ketamine_response.pipelines.reporting.terminal import render_runs

    store.open_experiment(args.experiment, create=False)
    runs = listing.list_runs(args.experiment)
    if runs.empty:
        print(f"no runs in experiment '{args.experiment}' at {store.store_uri()}")
    elif args.csv:
        print(runs.to_csv(index=False), end="")
    else:
        print(render_runs(runs, wide=args.wide))
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.compare import run_compare
    from ketamine_response.pipelines.reporting.comparison import render_comparison

    if args.out is not None and not args.out.endswith(".html"):  # before the store is opened
        raise UsageError(f"--out {args.out}: the comparison page is HTML; name a .html file")
    comparison = run_compare(args.run_ids)
    print(render_comparison(comparison.runs, comparison.sections))
    if args.out is not None:
        from ketamine_response.pipelines.flows.compare import write_page

        print(f"comparison page written to {write_page(comparison, args.out)} (self-contained; opens without a server)")
    return EXIT_OK


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ketamine_response.features.tasks import parse_target, task_of
    from ketamine_response.pipelines.flows.external import run_evaluate
    from ketamine_response.pipelines.reporting.comparison import render_evaluation
    from ketamine_response.pipelines.reporting.wording import first_question

    r = run_evaluate(args.cohort, args.model, args.experiment, args.mapping, args.drop_invalid, args.bootstrap)
    header = (f"external validation of {r.model} version {r.version or '-'} (trained in run {r.training_run[:8] or '-'}) "
              f"on {args.cohort}: {r.data_origin}, SHA-256 {r.digest[:12]}")
    print(render_evaluation(header, first_question(task_of(r.target), parse_target(r.target)), r.metrics, r.curve, r.notes))
    print(f"MLflow evaluation run: {r.run_id} (experiment {r.experiment}); see 'runs' and 'compare'")
    return EXIT_OK


def _cmd_promote(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines import store
    from ketamine_response.pipelines.flows.promote import run_promote

    store.open_store()
    done = run_promote(args.name, args.version, args.reason)
    if done.caveats:
        print(f"warning: {args.name} version {args.version} promoted although {'; '.join(done.caveats)}; "
              f"reason recorded on the version: {done.reason}", file=sys.stderr)
    previous = done.previous
    moved = ("kept (it already had it)" if previous == str(args.version) else
             f"moved from version {previous}" if previous else "moved (no version had it before)")
    print(f"champion of {args.name}: version {args.version}, {moved}. Scoring with "
          f"models:/{args.name}@champion now uses version {args.version}.")
    return EXIT_OK


def _cmd_ui(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines import store
    from ketamine_response.pipelines.flows.ui import check_port, landing_url, run_ui

    check_port(args.host, args.port)
    uri = store.open_store(create=True)  # a new store made finished here, not migrated in place by MLflow's server
    url, note = landing_url(args.host, args.port, args.experiment)
    if note:
        print(f"note: {note}")
    print(f"MLflow UI on {url} (store {store.redact(uri)}); Ctrl-C to stop", flush=True)
    return run_ui(uri, args.host, args.port)


def _cmd_server(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.ui import redact, serve, team_database, team_server

    database = team_database(args.database, args.database_file)
    command, env = team_server(database, args.artifacts, args.host, args.port, args.workers)  # every check first
    print(f"team tracking server on http://{args.host}:{args.port} (database {redact(database)}, artifacts "
          f"{args.artifacts}); members set MLFLOW_TRACKING_URI=http://{args.host}:{args.port}\n"
          f"runs: MLFLOW_BACKEND_STORE_URI=... MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false python {' '.join(command[1:])}",
          flush=True)
    return serve(command, env)


def _cmd_explain(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.explain import explain_patient

    for line in explain_patient(args.model, args.cohort, args.patient, args.out, args.mapping):
        print(line)
    return EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.score_sidecar import sidecar_path

    if args.chunk_rows < 1 or args.explain < 0:
        raise UsageError("--chunk-rows must be >= 1 and --explain >= 0")
    models = args.model or []  # --model may be repeated
    if args.engine == "spark":
        if len(models) > 1:  # before pyspark is imported: the Spark engine scores with one model
            raise UsageError("--engine spark scores with one --model; use --engine local to write several models' "
                             "predictions in one file, or run score once per model.")
        from ketamine_response.pipelines.flows.score_spark import run_score_spark  # imports pyspark only when Spark is asked for

        s = run_score_spark(args.cohort, args.out, models[0] if models else None, args.explain, args.mapping,
                            args.spark_master, args.threshold)
    else:
        from ketamine_response.pipelines.flows.score import run_score

        if args.spark_master is not None:
            raise UsageError("--spark-master applies to --engine spark only")
        s = run_score(args.cohort, args.out, models or None, args.explain, args.chunk_rows, args.mapping, args.threshold)
    pairs = s.models or ((s.model, s.version),)
    named = ", ".join(f"{name} version {version or '-'}" for name, version in pairs)
    blank = f" ({s.blank} with a blank prediction: the warnings column says why)" if s.blank else ""
    print(f"read {s.read}, scored {s.scored}{blank}, rejected {s.rejected} (model{'s' if len(pairs) > 1 else ''} {named})")
    print(f"scores: {s.out}\nrejected rows: {s.rejected_path}\nwhat the scores mean, the model's caveats and threshold: "
          f"{sidecar_path(s.out)}")
    for caveat in s.caveats:  # also in every row's warnings and in the sidecar
        print(f"warning: {caveat}", file=sys.stderr)
    return EXIT_STRICT if args.strict and s.rejected else EXIT_OK


def _cmd_ingest(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.ingest import run_ingest

    cohort = run_ingest(args.source, args.dir, args.out, args.mapping, vars(args))  # the source picks its options
    arms = ", ".join(f"{arm} {n}" for arm, n in cohort["treatment"].value_counts().items())
    print(f"wrote {len(cohort)} courses of {cohort['patient_id'].nunique()} patients ({arms}) to {args.out}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.report import run_report

    index = run_report(args.run_id, args.out)
    print(f"report written to {index} (open it in a browser; it needs no server)")
    return EXIT_OK


def _cmd_view(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.view import run_view

    shown = run_view(args.scores, args.out, tuple(args.patient))
    print(f"view of {shown} courses written to {args.out} (local only: it holds patient-level rows)")
    return EXIT_OK


def _print_notes(notes: Sequence[str], warnings: Sequence[str]) -> None:
    """Notes on stdout, in the order they were made; those that are *warnings* (what should change how the
    results are read: below the minimum sample size, no evidence against permuted labels) as ``warning:``
    on stderr, where a pipe or a log keeps them apart from the results."""
    for note in notes:
        if note in warnings:
            print(f"warning: {note.removeprefix('WARNING: ')}", file=sys.stderr)
        else:
            print(f"note: {note}")
    for warning in (w for w in warnings if w not in notes):
        print(f"warning: {warning.removeprefix('WARNING: ')}", file=sys.stderr)


def _target_or_usage(target: str) -> None:
    from ketamine_response.features.tasks import parse_target

    try:
        parse_target(target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of :mod:`.arguments`, each command's ``func`` its function here."""
    return arguments.build_parser({
        "validate": _cmd_validate, "synth": _cmd_synth, "features": _cmd_features, "train": _cmd_train,
        "runs": _cmd_runs, "compare": _cmd_compare, "evaluate": _cmd_evaluate, "promote": _cmd_promote,
        "explain": _cmd_explain, "score": _cmd_score,
        "ingest": _cmd_ingest, "report": _cmd_report, "view": _cmd_view, "ui": _cmd_ui, "server": _cmd_server})


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except Terminated as exc:  # a KeyboardInterrupt, so that no library swallows it: before Ctrl-C's clause
        return _failed(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader closed the pipe (``synth --describe | head``): it has what it wanted. Point stdout
        # at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        return _failed(exc)


def _failed(exc: Exception | Terminated) -> int:
    """The message and exit code of a command that raised *exc*: after a SIGTERM, a stop (143) whatever a library
    or a cleanup made of it; a user's error with its own code; anything else an internal error (70), never a
    traceback (KETAMINE_RESPONSE_DEBUG=1 shows it)."""
    if _SIGNALLED and not isinstance(exc, Terminated):
        said = (str(exc).strip().splitlines() or [""])[0][:200]  # a library's error may run to many lines
        exc = termination_in(exc) or Terminated(
            f"stopped by signal {_SIGNALLED[0]}; while stopping, {type(exc).__name__}: {said}. Partial outputs may remain.")
    if isinstance(exc, KetamineResponseError | Terminated):
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    if os.environ.get("KETAMINE_RESPONSE_DEBUG"):
        raise exc
    print(f"internal error ({type(exc).__name__}: {exc}). This is a bug; please report it "
          "(rerun with KETAMINE_RESPONSE_DEBUG=1 for the traceback).", file=sys.stderr)
    return EXIT_INTERNAL


class _Lines(logging.Formatter):
    """Our own warnings as every other ``warning:`` line on stderr; progress (-v) and other libraries' records
    keep their level and logger's name, which say where they come from."""

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno == logging.WARNING and record.name.startswith("ketamine_response."):
            return f"warning: {record.getMessage()}"
        return super().format(record)


_SIGNALLED: list[str] = []  # the stop signals this process received: a failure after one is the stop's


def _terminate(signum: int, _frame: object) -> None:
    # an exception, so every cleanup on the way out runs (partial outputs removed, the run marked FAILED)
    name = signal.Signals(signum).name
    _SIGNALLED.append(name)
    raise Terminated(f"stopped by signal {name}; partial outputs were removed")


_RESENT: list[Any] = []  # the timers sending a lost stop again: cancelled once the command has finished


def _send_again() -> None:
    import threading

    again = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGTERM))
    again.daemon = True
    _RESENT.append(again)
    again.start()


def _stop_again(report: Callable[[Any], object]) -> Callable[[Any], None]:
    """An unraisable-exception hook that sends a lost stop again, and gives any other error to *report*.

    The handler raises wherever the process is; where Python cannot raise (a weakref callback or ``__del__``,
    such as SQLAlchemy's clean-up of pooled connections during garbage collection) the stop was printed as
    "Exception ignored" and lost, and ``train`` went on to the end. Sent again from another thread a moment later
    (sent from here, the handler would run inside this hook, where it is lost again), it lands once the callback
    has returned.
    """
    def hook(unraisable: Any) -> None:
        try:
            if isinstance(unraisable.exc_value, Terminated):
                _send_again()
            else:
                report(unraisable)
        except Terminated:  # a stop landing in this hook: lost as well, unless sent again
            _send_again()
    return hook


def _not_a_stop(record: logging.LogRecord) -> bool:
    # a library that logs an exception before re-raising it (SQLAlchemy's pool) would print the stop as an error
    return not (record.exc_info and isinstance(record.exc_info[1], Terminated))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ketamine-response`` console script."""
    args = arguments.parse(build_parser(), argv)
    previous = signal.signal(signal.SIGTERM, _terminate), sys.unraisablehook
    sys.unraisablehook = _stop_again(sys.unraisablehook)
    try:
        # MLflow warns about its own type hints when it is imported; it says nothing about the user's run
        warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
        handler = logging.StreamHandler()
        handler.setFormatter(_Lines())
        handler.addFilter(_not_a_stop)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
        return _run(args.func, args)
    finally:
        # the command has finished or reported its failure: a stop from here on (the interpreter joining threads
        # at exit) is not raised into that shutdown as a traceback; it ends the process as SIGTERM does by default
        for again in _RESENT:
            again.cancel()
        if previous[0] is not None:  # None: a handler installed from C, which Python cannot put back
            signal.signal(signal.SIGTERM, previous[0])  # the console script's: the default
        sys.unraisablehook = previous[1]


if __name__ == "__main__":
    sys.exit(main())
