"""The ``ketamine-response`` argument parser: every command, its options, help texts and defaults.

Options that several commands take are declared once, as parent parsers (argparse ``parents=``). A
command lists its parents in the order ``--help`` shows them, so its own options that come before a
shared one sit in a parent of their own. The ``ingest`` subcommands come from the source registry.
Only light modules are imported here, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace

from ketamine_response.features.tasks import TARGET_HELP as TARGETS

# every target form, by task (the registry is light: no numpy or pandas at import)
TARGET_HELP = TARGETS + ", e.g. response_24h, sbp_change_mmhg_ge40 or time_to_relapse"
COHORT_HELP = "cohort file (.csv or .parquet)"
COHORT_OUT_HELP = "cohort file to write (.csv or .parquet)"
VERBOSE_HELP = "log progress to stderr (before or after the command)"
EXIT_CODES = ("Exit codes: 0 ok, 1 row problems in the cohort, 2 file or usage problem, "
              "3 rows rejected by score --strict, 70 internal error, 130 interrupted, 143 stopped by SIGTERM.")

Sub = argparse._SubParsersAction  # what add_subparsers returns; argparse has no public name for it

# MLflow takes experiment names up to 500 characters, but the name also becomes part of the registered model's,
# ketamine-response.<experiment>.<target>, which the registry stores in 256 characters: 200 leaves room for
# the prefix and any target's name.
MAX_EXPERIMENT_NAME = 200


def experiment_name(text: str) -> str:
    """``--experiment``: a name MLflow and the model registry accept, checked as the command line is read (exit
    2), so a bad name is not reported later as a tracking store that cannot be opened."""
    import unicodedata

    allowed = (f"experiment names are 1 to {MAX_EXPERIMENT_NAME} characters, not all spaces, without control "
               "characters (newlines, tabs), e.g. --experiment site-a-2026")
    if not text.strip():
        raise argparse.ArgumentTypeError(f"the experiment name is empty; {allowed}")
    if len(text) > MAX_EXPERIMENT_NAME:
        raise argparse.ArgumentTypeError(f"the experiment name is {len(text)} characters long; {allowed}")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise argparse.ArgumentTypeError(f"the experiment name {text!r} holds a control character; {allowed}")
    return text


def _bare() -> argparse.ArgumentParser:
    """A parent parser: options only (the command adds its own -h)."""
    return argparse.ArgumentParser(add_help=False)


def _shared() -> SimpleNamespace:
    """The options that several commands take, each declared once."""
    shared = SimpleNamespace(cohort=_bare(), mapping=_bare(), drop_invalid=_bare(), port=_bare())
    shared.cohort.add_argument("cohort", help=COHORT_HELP)
    shared.mapping.add_argument("--mapping", help="YAML column mapping")
    shared.drop_invalid.add_argument("--drop-invalid", action="store_true",
                                     help="leave out rows with problems instead of stopping")
    shared.port.add_argument("--port", type=int, default=5000, help="TCP port 1-65535 (default %(default)s)")
    return shared


def build_parser(handlers: Mapping[str, Callable[[argparse.Namespace], int]]) -> argparse.ArgumentParser:
    """The argument parser with every subcommand; ``args.func`` is the command's handler, by its name."""
    parser = argparse.ArgumentParser(
        prog="ketamine-response",
        description="Predict who with treatment-resistant depression responds to ketamine or esketamine, "
        "with validation you can trust.",
        epilog=EXIT_CODES,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    shared = _shared()
    _cohort_commands(sub, shared)
    _train(sub, shared)
    _model_commands(sub, shared)
    _score(sub, shared)
    _ingest(sub)
    _report(sub)
    _view(sub)
    _servers(sub, shared)
    for name, command in sub.choices.items():
        command.set_defaults(func=handlers[name])
    _verbose_everywhere(sub)
    return parser


def _version() -> str:
    """The installed distribution's version (importlib.metadata: light, no heavy imports)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ketamine-response")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _verbose_everywhere(sub: Sub) -> None:
    """``-v`` after the command too (``train ... -v``), on every command and ``ingest`` source, and each
    command's own parser as ``command_parser``, so a mistyped option is shown with that command's usage.

    SUPPRESS as the default: a command's parser then sets ``verbose`` only when ``-v`` is given after
    it, and never overwrites a ``-v`` given before the command with False.
    """
    for command in sub.choices.values():
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        command.set_defaults(command_parser=command)  # a nested source's default wins over its command's
        for action in command._actions:  # argparse has no public accessor for a parser's subparsers
            if isinstance(action, Sub):
                _verbose_everywhere(action)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """*argv* parsed; an unknown option is refused (exit 2) by the command's own parser, whose usage lists
    the options it does take, not by the top-level one."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        getattr(args, "command_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def _cohort_commands(sub: Sub, shared: SimpleNamespace) -> None:
    """validate, synth, features: cohort files in, cohort or feature files out."""
    from ketamine_response.features.synthetic.scenarios import SCENARIOS  # light: no numpy or pandas

    v = sub.add_parser("validate", parents=[shared.cohort], help="check a cohort file and summarise it",
                       description="Check a cohort file (CSV or Parquet) and list every problem by row and column.")
    v.add_argument("--mapping", help="YAML file mapping your column names and units to the canonical ones")
    v.add_argument("--problems", metavar="FILE", help="write every problem to this CSV")

    s = sub.add_parser("synth", help="write a synthetic TRD cohort with known ground truth",
                       description="Write a synthetic cohort calibrated to published ketamine/esketamine trials.")
    s.add_argument("--n", type=int, default=300, help="number of treatment courses (default 300; crossover patients have two)")
    s.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    s.add_argument("--scenario", default="literature", choices=list(SCENARIOS),
                   help="planted truth: %(choices)s (default %(default)s)")
    s.add_argument("--out", metavar="FILE", help=COHORT_OUT_HELP)
    s.add_argument("--oracle", metavar="FILE", help="also write each course's true response probabilities")
    s.add_argument("--describe", action="store_true", help="print the planted effects of every scenario")

    own = _bare()
    own.add_argument("cohort", nargs="?", help=COHORT_HELP)
    own.add_argument("--target", help=TARGET_HELP)
    own.add_argument("--out", metavar="FILE", help="feature table to write (.csv or .parquet)")
    f = sub.add_parser("features", parents=[own, shared.mapping, shared.drop_invalid],
                       help="build the candidate-biomarker table for a target",
                       description="Derive the per-course feature table (no fitting, no leakage) for one target.")
    f.add_argument("--list", action="store_true", help="print the feature dictionary and exit")


def _train(sub: Sub, shared: SimpleNamespace) -> None:
    from ketamine_response.pipelines.config import shipped_configs
    from ketamine_response.pipelines.tracking import DEFAULT_EXPERIMENT

    own = _bare()
    own.add_argument("--target", required=True, help=TARGET_HELP)
    own.add_argument("--config", help="training config: a YAML file, or a shipped one by name "
                     f"({', '.join(shipped_configs())}; default train)")
    own.add_argument("--experiment", type=experiment_name, default=DEFAULT_EXPERIMENT, help="MLflow experiment name")
    own.add_argument("--cv", choices=["kfold", "site"], help="outer loop: repeated k-fold or leave-one-site-out")
    own.add_argument("--backend", choices=["local", "spark"], help="where the outer folds and permutations run: "
                     "local worker processes (n_jobs) or Spark tasks on $SPARK_MASTER (default local[2]; needs the "
                     "spark extra and Java); identical results (default: the config's backend, local)")
    own.add_argument("--permutations", type=int, metavar="B", help="at most B re-runs of the whole procedure on "
                     "permuted labels (config default 19: smallest p 0.05; 99 resolves 0.01 at about 5x the cost)")
    own.add_argument("--wide", action="store_true", help="the full result table (wider than 100 characters)")
    sub.add_parser("train", parents=[shared.cohort, own, shared.mapping, shared.drop_invalid],
                   help="nested-CV training of response classifiers, tracked in MLflow",
                   description="Fit and honestly validate response classifiers for one target; log to MLflow.")


def _model_commands(sub: Sub, shared: SimpleNamespace) -> None:
    """runs, promote, explain: what training left in the tracking store and registry."""
    from ketamine_response.pipelines.tracking import DEFAULT_EXPERIMENT

    r = sub.add_parser("runs", help="list training and evaluation runs in the MLflow store",
                       description="List an experiment's training and evaluation runs, newest first, within 100 "
                       "columns: kind, status, target, the drug-arm AUROC with its 95% CI (for other targets the "
                       "drug-arm C or R2), gain over the arm, c-for-benefit, data origin with a short digest, and the registered "
                       "version with its alias (or why it has none). Put runs side by side with 'compare'.")
    r.add_argument("--experiment", type=experiment_name, default=DEFAULT_EXPERIMENT, help="MLflow experiment name (default %(default)s)")
    r.add_argument("--wide", action="store_true", help="every column, full run ids (wider than 100 characters)")
    r.add_argument("--csv", action="store_true", help="every column as CSV, for a spreadsheet or a script")

    _compare_commands(sub, shared)
    p = sub.add_parser("promote", help="move the champion alias of a registered model to a version",
                       description="Make VERSION the champion of NAME (what 'score' uses by default) and say which "
                       "version it replaced. Versions without an alias (no evidence against permuted labels, or "
                       "below the minimum sample size) can be promoted only this way, and only with --reason.")
    p.add_argument("name", help="registered model, e.g. ketamine-response.response_24h (train prints it)")
    p.add_argument("version", type=int, help="version number (see the MLflow UI's Models tab, or train's output)")
    p.add_argument("--reason", metavar="TEXT", help="why a version trained below the minimum sample size, or "
                   "whose permutation p is above alpha, should be champion anyway (refused without it); recorded as "
                   "version tags with your user name and the UTC date")

    own = _bare()
    own.add_argument("--model", required=True, help="MLflow model URI, e.g. models:/ketamine-response.response_24h@champion")
    own.add_argument("--patient", required=True, help="patient_id to explain (all of their courses)")
    own.add_argument("--out", default=None, help="waterfall PNG to write (default explain-<patient>.png)")
    sub.add_parser("explain", parents=[shared.cohort, own, shared.mapping],
                   help="SHAP waterfall of one patient's courses under a logged model",
                   description="Explain one patient's predictions under a logged model: each course's SHAP "
                   "contributions (what pushed its prediction up or down from the average), printed and drawn "
                   "as a waterfall PNG.")


def _compare_commands(sub: Sub, shared: SimpleNamespace) -> None:
    """compare (runs side by side) and evaluate (a registered model on a new labelled cohort)."""
    c = sub.add_parser("compare", help="put two or more runs side by side (terminal, or HTML with --out)",
                       description="Compare training and evaluation runs side by side: headline metrics with their "
                       "95% CIs and counts, calibration, biomarker roles, data origin and digest, and the config "
                       "keys that differ.")
    c.add_argument("run_ids", nargs="+", metavar="RUN", help="run ids or unique prefixes of them (see 'runs')")
    c.add_argument("--out", metavar="FILE.html", help="also write the comparison as a self-contained HTML page")

    own = _bare()
    own.add_argument("--model", required=True, metavar="URI",
                     help="registered model, e.g. models:/ketamine-response.response_24h@champion or .../3")
    own.add_argument("--experiment", type=experiment_name, help="MLflow experiment of the evaluation run (default: the training run's)")
    own.add_argument("--bootstrap", type=int, default=500, metavar="N",
                     help="patient-bootstrap resamples for the 95%% CIs (default %(default)s)")
    sub.add_parser("evaluate", parents=[shared.cohort, own, shared.mapping, shared.drop_invalid],
                   help="external validation: score a new labelled cohort and measure the model on it",
                   description="Score a new cohort that has the outcome with a registered model and report, within "
                   "the drug arm(s), AUROC and calibration slope and intercept with patient-bootstrap 95% CIs, a "
                   "loess calibration curve, and c-for-benefit where the model has a benefit model and the cohort "
                   "a placebo arm. Logs an evaluation run (metrics only) linked to the model version; 'runs' and "
                   "'compare' show it.")


def _report(sub: Sub) -> None:
    rp = sub.add_parser("report", help="write a training run's HTML report (and SHAP tables) to a folder",
                        description="Copy a training run's self-contained HTML report (DIR/index.html, opens "
                        "without a server), its SHAP tables and benefit tables out of the tracking store.")
    rp.add_argument("run_id", help="MLflow run id printed by train")
    rp.add_argument("--out", required=True, help="folder to write index.html and shap/ into")


def _view(sub: Sub) -> None:
    vp = sub.add_parser("view", help="a scores file as a per-patient benefit-and-harm page (HTML, local only)",
                        description="Render a file written by 'score' (one or more --model: response, benefit, "
                        "durability, harms) as one card per course, every number under the question it answers. "
                        "The page holds patient-level rows: it is written locally and never logged.")
    vp.add_argument("scores", help="scores CSV written by 'ketamine-response score'")
    vp.add_argument("--out", required=True, help="the HTML page to write (.html)")
    vp.add_argument("--patient", action="append", default=[], metavar="ID",
                    help="show only this patient's courses (repeatable); needed above 500 courses")


def _score(sub: Sub, shared: SimpleNamespace) -> None:
    own = _bare()
    own.add_argument("cohort", help="cohort file (.csv or .parquet); outcome columns are not needed")
    own.add_argument("--out", required=True, help="scores to write (.csv or .parquet)")
    own.add_argument("--model", action="append", metavar="URI",
                     help="MLflow model URI (default: champion of the only registered model). Repeat it to write "
                     "several models' predictions in one file, one row per course: model_name and model_version "
                     "become model_name_<target> and model_version_<target>, warnings are led by their target, and "
                     "models writing the same column (two of the same task) are refused; not with --explain or "
                     "--engine spark")
    own.add_argument("--explain", type=int, default=0, metavar="K",
                     help="add the K features that pushed each prediction most, in percentage points (one --model "
                     "only; without a treatment column: every arm's reasons and the drug-minus-placebo difference's)")
    own.add_argument("--threshold", type=float, default=None, metavar="P",
                     help="write the class label (predicted_responder) as probability >= P, 0 < P < 1 (one --model "
                     "only); without it the label is written only for a model with an explicit operating point")
    own.add_argument("--strict", action="store_true", help="exit 3 when any row is rejected")
    own.add_argument("--chunk-rows", type=int, default=100_000, metavar="N",
                     help="rows per chunk of the local engine (default 100000)")
    sc = sub.add_parser("score", parents=[own, shared.mapping],
                        help="score a cohort file with a registered model; invalid rows are quarantined",
                        description="Stream a cohort file through a logged model. Every row is either scored "
                        "(--out) or rejected with its problems (<out stem>.rejected.csv); <out>.model.md says what "
                        "the scores mean, the model's caveats (also in every row's warnings) and the threshold.")
    sc.add_argument("--engine", choices=("local", "spark"), default="local",
                    help="local: stream the file on this machine (default); spark: validate and score as Spark tasks "
                    "(pip install 'ketamine-response[spark]', Java 17+), same outputs; one --model only")
    sc.add_argument("--spark-master", metavar="URL", help="Spark master for --engine spark (default $SPARK_MASTER or local[2])")


def _ingest(sub: Sub) -> None:
    """``ingest SOURCE``: one subcommand per entry of the source registry."""
    from ketamine_response.features.sources.registry import SOURCES  # light: sources load their modules on use

    ingest = sub.add_parser("ingest", help="convert a public dataset into a cohort file",
                            description="Convert a public dataset (one SOURCE below) into a cohort file, one row "
                            "per treatment course, that every other command reads. 'ingest SOURCE --help' says "
                            "what each source needs.")
    sources = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for source in SOURCES.values():
        s = sources.add_parser(source.name, help=source.help, description=source.description)
        s.add_argument("dir", help=source.path_help)
        s.add_argument("--out", required=True, help=COHORT_OUT_HELP)
        s.add_argument("--mapping", help=source.mapping_help)
        for dest, text in source.options.items():
            s.add_argument(f"--{dest.replace('_', '-')}", action="store_true", help=text)


def _servers(sub: Sub, shared: SimpleNamespace) -> None:
    """ui (this machine's store) and server (a team's, on PostgreSQL)."""
    from ketamine_response.pipelines.tracking import DEFAULT_EXPERIMENT

    u = sub.add_parser("ui", parents=[shared.port], help="start the MLflow UI on the project's store (127.0.0.1)",
                       description="Serve the MLflow UI on the project's tracking store until Ctrl-C or SIGTERM "
                       "(which stop the server too), and print the URL that opens the experiment's training runs "
                       "with their headline metric columns. It binds 127.0.0.1, so only this machine can reach it, "
                       "unless --host says otherwise.")
    u.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s: this machine only; "
                   "0.0.0.0 exposes the store to the network)")
    u.add_argument("--experiment", type=experiment_name, default=DEFAULT_EXPERIMENT, help="the experiment whose training runs the printed "
                   "URL opens, with the headline metric columns shown (default %(default)s)")

    own = _bare()
    own.add_argument("--database-file", metavar="FILE", help="a file only you can read (chmod 600) holding one line, "
                     "the database URI postgresql://USER:PASSWORD@HOST:PORT/DB (@ : / # ? %% in the password "
                     "percent-encoded); default: $MLFLOW_BACKEND_STORE_URI")
    own.add_argument("--database", metavar="URI", help="a database URI WITHOUT a password (peer authentication, "
                     "~/.pgpass or PGPASSWORD); one with a password is refused, as it would show in the process list")
    own.add_argument("--artifacts", required=True, help="where artifacts are stored (a folder, or s3://...)")
    own.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s; 0.0.0.0 for the network)")
    sv = sub.add_parser("server", parents=[own, shared.port],
                        help="start a team tracking server on PostgreSQL (several users, concurrent runs)",
                        description="Serve an MLflow tracking server with a PostgreSQL backend store and artifacts "
                        "served through it. Members point MLFLOW_TRACKING_URI at it. The database URI is read from "
                        "--database-file or MLFLOW_BACKEND_STORE_URI (or --database, for a URI without a password) "
                        "and passed to MLflow through the environment, so its password never shows in the process "
                        "list or the output. The port, the driver and a connection to the database are checked "
                        "before the server starts; Ctrl-C (exit 130) and SIGTERM (exit 143) stop it.")
    sv.add_argument("--workers", type=int, default=2, help="server worker processes (default %(default)s)")
