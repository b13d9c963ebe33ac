"""The ``ketamine-response`` command line: parse, call a flow, print, map errors to exit codes.

Exit codes (documented in the README; each error class in :mod:`ketamine_response.features.errors` carries its own):

* 0: success (``validate``: no problems)
* 1: row-level problems in the cohort (listed, nothing crashed)
* 2: file-level problems or bad usage (a one-paragraph message says how to fix it)
* 3: ``score --strict`` rejected at least one row
* 70: an internal error (a bug: please report it with the message)

Heavy libraries are imported inside the command functions so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence

from ketamine_response.features.errors import EXIT_INTERNAL, EXIT_OK, EXIT_ROWS, EXIT_STRICT, KetamineResponseError, Terminated, UsageError
from ketamine_response.pipelines.tracking import DEFAULT_EXPERIMENT

log = logging.getLogger("ketamine_response")


def _cmd_validate(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.validate import render_summary, run_validate

    cohort, summary = run_validate(args.cohort, args.mapping, args.problems)
    print(render_summary(summary, cohort))
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
    for note in built.notes:
        print(f"  note: {note}")
    return EXIT_OK


def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import run_train
    from ketamine_response.pipelines.reporting.terminal import render_benefit, render_table
    from ketamine_response.pipelines.tracking import registered_name

    _target_or_usage(args.target)
    config = load_config(args.config)
    if args.cv:  # argparse has checked the choice
        config = dataclasses.replace(config, cv=dataclasses.replace(config.cv, design=args.cv))
    if args.backend:  # argparse has checked the choice
        config = dataclasses.replace(config, backend=args.backend)
    if config.backend == "spark":  # no pyspark, joblibspark or Java: exit 2 before a run is opened
        from ketamine_response.pipelines.training.backend import spark_session

        spark_session()
    if args.permutations is not None:
        if not 0 <= args.permutations <= 9999:
            raise UsageError(f"--permutations must be 0-9999, got {args.permutations}")
        config = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation,
                                                                            permutations=args.permutations))
    from ketamine_response.pipelines.reporting.descriptions import selection_reason
    from ketamine_response.pipelines.reporting.terminal import TerminalProgress

    result = run_train(args.cohort, args.target, config, args.experiment, args.mapping, args.drop_invalid,
                       progress=TerminalProgress())
    for note in result.notes:
        print(f"note: {note}")
    print(render_table(result.table()))
    print(selection_reason(result))
    if result.benefit is not None and result.benefit.summaries:
        print(render_benefit(result.benefit))
    alias = f" @{result.alias}" if result.alias else f" (no alias: {result.alias_reason}; promote it by hand if you must)"
    print(f"MLflow run: {result.run_id}  registered: {registered_name(result.target)} version {result.version}{alias}")
    print(f"report artifacts: {result.artifact_uri}")
    return EXIT_OK


def _cmd_runs(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines import tracking
    from ketamine_response.pipelines.reporting.terminal import render_runs

    tracking.open_experiment(args.experiment, create=False)
    runs = tracking.list_runs(args.experiment)
    if runs.empty:
        print(f"no runs in experiment '{args.experiment}' at {tracking.store_uri()}")
    elif args.csv:
        print(runs.to_csv(index=False), end="")
    else:
        print(render_runs(runs, wide=args.wide))
    return EXIT_OK


def _cmd_promote(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines import registry, tracking

    tracking.open_store()
    previous = registry.promote(args.name, args.version)
    moved = f"from version {previous}" if previous else "(no version had it before)"
    print(f"champion of {args.name}: version {args.version}, moved {moved}. Scoring with "
          f"models:/{args.name}@champion now uses version {args.version}.")
    return EXIT_OK


def _cmd_ui(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines import tracking
    from ketamine_response.pipelines.flows.ui import check_port, run_ui

    check_port(args.host, args.port)
    uri = tracking.store_uri()
    print(f"MLflow UI on http://{args.host}:{args.port} (store {uri}); Ctrl-C to stop", flush=True)
    return run_ui(uri, args.host, args.port)


def _cmd_server(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.ui import check_database_uri, redact, run_team_server, team_server_command

    database = args.database or os.environ.get("MLFLOW_BACKEND_STORE_URI", "")
    if not database:
        raise UsageError("server needs the PostgreSQL database: --database URI or MLFLOW_BACKEND_STORE_URI")
    check_database_uri(database)
    command = " ".join(team_server_command(args.artifacts, args.host, args.port, args.workers)[1:])
    print(f"team tracking server on http://{args.host}:{args.port} (database {redact(database)}, artifacts "
          f"{args.artifacts}); members set MLFLOW_TRACKING_URI=http://{args.host}:{args.port}\n"
          f"runs: MLFLOW_BACKEND_STORE_URI=... MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false python {command}", flush=True)
    return run_team_server(database, args.artifacts, args.host, args.port, args.workers)


def _cmd_explain(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.explain import explain_patient

    for line in explain_patient(args.model, args.cohort, args.patient, args.out, args.mapping):
        print(line)
    return EXIT_OK


def _cmd_score(args: argparse.Namespace) -> int:
    if args.chunk_rows < 1 or args.explain < 0:
        raise UsageError("--chunk-rows must be >= 1 and --explain >= 0")
    if args.engine == "spark":
        from ketamine_response.pipelines.flows.score_spark import run_score_spark  # imports pyspark only when Spark is asked for

        s = run_score_spark(args.cohort, args.out, args.model, args.explain, args.mapping, args.spark_master)
    else:
        from ketamine_response.pipelines.flows.score import run_score

        if args.spark_master is not None:
            raise UsageError("--spark-master applies to --engine spark only")
        s = run_score(args.cohort, args.out, args.model, args.explain, args.chunk_rows, args.mapping)
    print(f"read {s.read}, scored {s.scored}, rejected {s.rejected} (model {s.model} version {s.version or '-'})")
    print(f"scores: {s.out}\nrejected rows: {s.rejected_path}")
    return EXIT_STRICT if args.strict and s.rejected else EXIT_OK


def _cmd_ingest_bids(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.ingest import run_ingest_bids

    cohort = run_ingest_bids(args.dir, args.out, args.mapping, args.include_controls)
    arms = cohort["treatment"].value_counts().to_dict()
    print(f"wrote {len(cohort)} courses of {cohort['patient_id'].nunique()} patients ({arms}) to {args.out}")
    return EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    from ketamine_response.pipelines.flows.report import run_report

    index = run_report(args.run_id, args.out)
    print(f"report written to {index} (open it in a browser; it needs no server)")
    return EXIT_OK


def _target_or_usage(target: str) -> None:
    from ketamine_response.features.cohort.targets import parse_target

    try:
        parse_target(target)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from ketamine_response.features.synthetic.scenarios import SCENARIOS  # light: no numpy or pandas
    from ketamine_response.pipelines.config import shipped_configs

    parser = argparse.ArgumentParser(
        prog="ketamine-response",
        description="Predict who with treatment-resistant depression responds to ketamine or esketamine, "
        "with validation you can trust.",
        epilog="Exit codes: 0 ok, 1 row problems in the cohort, 2 file or usage problem, "
        "3 rows rejected by score --strict, 70 internal error.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    v = sub.add_parser("validate", help="check a cohort file and summarise it",
                       description="Check a cohort file (CSV or Parquet) and list every problem by row and column.")
    v.add_argument("cohort", help="cohort file (.csv or .parquet)")
    v.add_argument("--mapping", help="YAML file mapping your column names and units to the canonical ones")
    v.add_argument("--problems", metavar="FILE", help="write every problem to this CSV")
    v.set_defaults(func=_cmd_validate)

    s = sub.add_parser("synth", help="write a synthetic TRD cohort with known ground truth",
                       description="Write a synthetic cohort calibrated to published ketamine/esketamine trials.")
    s.add_argument("--n", type=int, default=300, help="number of treatment courses (default 300; crossover patients have two)")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    s.add_argument("--scenario", default="literature", choices=list(SCENARIOS),
                   help="planted truth: %(choices)s (default %(default)s)")
    s.add_argument("--out", metavar="FILE", help="cohort file to write (.csv or .parquet)")
    s.add_argument("--oracle", metavar="FILE", help="also write each course's true response probabilities")
    s.add_argument("--describe", action="store_true", help="print the planted effects of every scenario")
    s.set_defaults(func=_cmd_synth)

    f = sub.add_parser("features", help="build the candidate-biomarker table for a target",
                       description="Derive the per-course feature table (no fitting, no leakage) for one target.")
    f.add_argument("cohort", nargs="?", help="cohort file (.csv or .parquet)")
    f.add_argument("--target", help="response_<tp>, remission_<tp> (0/1) or pct_change_<tp> (continuous), e.g. response_24h")
    f.add_argument("--out", metavar="FILE", help="feature table to write (.csv or .parquet)")
    f.add_argument("--mapping", help="YAML column mapping")
    f.add_argument("--drop-invalid", action="store_true", help="leave out rows with problems instead of stopping")
    f.add_argument("--list", action="store_true", help="print the feature dictionary and exit")
    f.set_defaults(func=_cmd_features)

    t = sub.add_parser("train", help="nested-CV training of response classifiers, tracked in MLflow",
                       description="Fit and honestly validate response classifiers for one target; log to MLflow.")
    t.add_argument("cohort", help="cohort file (.csv or .parquet)")
    t.add_argument("--target", required=True, help="response_<tp>, remission_<tp> (0/1) or pct_change_<tp> (continuous), e.g. response_24h")
    t.add_argument("--config", help="training config: a YAML file, or a shipped one by name "
                   f"({', '.join(shipped_configs())}; default train)")
    t.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name")
    t.add_argument("--cv", choices=["kfold", "site"], help="outer loop: repeated k-fold or leave-one-site-out")
    t.add_argument("--backend", choices=["local", "spark"], help="where the outer folds and permutations run: "
                   "local worker processes (n_jobs) or Spark tasks on $SPARK_MASTER (default local[2]; needs the "
                   "spark extra and Java); identical results (default: the config's backend, local)")
    t.add_argument("--permutations", type=int, metavar="B", help="at most B re-runs of the whole procedure on "
                   "permuted labels (config default 19: smallest p 0.05; 99 resolves 0.01 at about 5x the cost)")
    t.add_argument("--mapping", help="YAML column mapping")
    t.add_argument("--drop-invalid", action="store_true", help="leave out rows with problems instead of stopping")
    t.set_defaults(func=_cmd_train)

    r = sub.add_parser("runs", help="compare training runs in the MLflow store",
                       description="List an experiment's training runs, newest first: target, CV design, selected "
                       "family, AUROC with its 95%% CI, permutation p and courses. Compare them in the UI with 'ui'.")
    r.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name (default %(default)s)")
    r.add_argument("--wide", action="store_true", help="every column, full run ids (wider than 100 characters)")
    r.add_argument("--csv", action="store_true", help="every column as CSV, for a spreadsheet or a script")
    r.set_defaults(func=_cmd_runs)

    p = sub.add_parser("promote", help="move the champion alias of a registered model to a version",
                       description="Make VERSION the champion of NAME (what 'score' uses by default) and say which "
                       "version it replaced. Versions without an alias (no evidence against permuted labels, or "
                       "below the minimum sample size) can be promoted only this way.")
    p.add_argument("name", help="registered model, e.g. ketamine-response-response_24h")
    p.add_argument("version", type=int, help="version number (see the MLflow UI's Models tab, or train's output)")
    p.set_defaults(func=_cmd_promote)

    e = sub.add_parser("explain", help="SHAP waterfall of one patient's courses under a logged model")
    e.add_argument("cohort", help="cohort file (.csv or .parquet)")
    e.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/ketamine-response-response_24h@champion")
    e.add_argument("--patient", required=True, help="patient_id to explain (all of their courses)")
    e.add_argument("--out", default=None, help="waterfall PNG to write (default explain-<patient>.png)")
    e.add_argument("--mapping", help="YAML column mapping")
    e.set_defaults(func=_cmd_explain)

    sc = sub.add_parser("score", help="score a cohort file with a registered model; invalid rows are quarantined",
                        description="Stream a cohort file through a logged model. Every row is either scored "
                        "(--out) or rejected with its problems (<out stem>.rejected.csv).")
    sc.add_argument("cohort", help="cohort file (.csv or .parquet); outcome columns are not needed")
    sc.add_argument("--out", required=True, help="scores to write (.csv or .parquet)")
    sc.add_argument("--model", help="MLflow model URI (default: champion of the only registered model)")
    sc.add_argument("--explain", type=int, default=0, metavar="K", help="add the K features that pushed each prediction most")
    sc.add_argument("--strict", action="store_true", help="exit 3 when any row is rejected")
    sc.add_argument("--chunk-rows", type=int, default=100_000, metavar="N",
                    help="rows per chunk of the local engine (default 100000)")
    sc.add_argument("--mapping", help="YAML column mapping")
    sc.add_argument("--engine", choices=("local", "spark"), default="local",
                    help="local: stream the file on this machine (default); spark: validate and score as Spark tasks "
                    "(pip install 'ketamine-response[spark]', Java 17+), same outputs")
    sc.add_argument("--spark-master", metavar="URL", help="Spark master for --engine spark (default $SPARK_MASTER or local[2])")
    sc.set_defaults(func=_cmd_score)

    ing = sub.add_parser("ingest", help="convert a public dataset into a cohort file")
    ingest_sub = ing.add_subparsers(dest="source", required=True, metavar="SOURCE")
    bids = ingest_sub.add_parser("bids", help="a BIDS dataset's participants.tsv and phenotype/*.tsv",
                                 description="One row per treatment course from a BIDS dataset's tables.")
    bids.add_argument("dir", help="BIDS dataset folder")
    bids.add_argument("--out", required=True, help="cohort file to write (.csv or .parquet)")
    bids.add_argument("--mapping", help="session/column mapping YAML (default: DIR/bids_mapping.yaml, else the "
                      "shipped mapping of a known dataset such as OpenNeuro ds005917)")
    bids.add_argument("--include-controls", action="store_true", help="keep healthy controls (not patients)")
    bids.set_defaults(func=_cmd_ingest_bids)

    rp = sub.add_parser("report", help="write a training run's HTML report (and SHAP tables) to a folder",
                        description="Copy a training run's self-contained HTML report (DIR/report/index.html, opens "
                        "without a server), its SHAP tables and benefit tables out of the tracking store.")
    rp.add_argument("run_id", help="MLflow run id printed by train")
    rp.add_argument("--out", required=True, help="folder to write report/index.html and shap/ into")
    rp.set_defaults(func=_cmd_report)

    u = sub.add_parser("ui", help="start the MLflow UI on the project's store (127.0.0.1)",
                       description="Serve the MLflow UI on the project's tracking store until Ctrl-C or SIGTERM "
                       "(which stop the server too). It binds 127.0.0.1, so only this machine can reach it, "
                       "unless --host says otherwise.")
    u.add_argument("--port", type=int, default=5000, help="TCP port 1-65535 (default %(default)s)")
    u.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only; "
                   "0.0.0.0 exposes the store to the network)")
    u.set_defaults(func=_cmd_ui)

    sv = sub.add_parser("server", help="start a team tracking server on PostgreSQL (several users, concurrent runs)",
                        description="Serve an MLflow tracking server with a PostgreSQL backend store and artifacts "
                        "served through it. Members point MLFLOW_TRACKING_URI at it. The database URI is read from "
                        "--database or MLFLOW_BACKEND_STORE_URI and passed to MLflow through the environment, so "
                        "its password never shows in the process list or the output.")
    sv.add_argument("--database", help="postgresql://USER:PASSWORD@HOST:PORT/DB (default: $MLFLOW_BACKEND_STORE_URI)")
    sv.add_argument("--artifacts", required=True, help="where artifacts are stored (a folder, or s3://...)")
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s; 0.0.0.0 for the network)")
    sv.add_argument("--port", type=int, default=5000, help="TCP port 1-65535 (default %(default)s)")
    sv.add_argument("--workers", type=int, default=2, help="server worker processes (default %(default)s)")
    sv.set_defaults(func=_cmd_server)
    return parser


def _run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return func(args)
    except KetamineResponseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader closed the pipe (``synth --describe | head``): it has what it wanted. Point stdout
        # at devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the CLI never shows a traceback; KETAMINE_RESPONSE_DEBUG=1 does
        if os.environ.get("KETAMINE_RESPONSE_DEBUG"):
            raise
        print(f"internal error ({type(exc).__name__}: {exc}). This is a bug; please report it "
              "(rerun with KETAMINE_RESPONSE_DEBUG=1 for the traceback).", file=sys.stderr)
        return EXIT_INTERNAL


def _terminate(signum: int, _frame: object) -> None:
    # an exception, so every cleanup on the way out runs (partial outputs removed, the run marked FAILED)
    raise Terminated(f"stopped by signal {signal.Signals(signum).name}; partial outputs were removed")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ketamine-response`` console script."""
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # MLflow warns about its own type hints when it is imported; it says nothing about the user's run
    warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return _run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
