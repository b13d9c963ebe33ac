"""The console script, run as a user runs it: a subprocess on tmp_path files."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.limits import HANG_S
from tests.pipelines.conftest import LEAN_CONFIG

CLI = [sys.executable, "-m", "ketamine_response.pipelines.cli"]
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=HANG_S)


def test_help_does_not_import_heavy_libraries():
    code = ("import sys; from ketamine_response.pipelines.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('pandas', 'sklearn', 'mlflow', 'shap', 'lightgbm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for args in (["--help"], ["validate", "--help"], ["synth", "--help"]):
        result = run(*args)
        assert result.returncode == 0 and "usage: ketamine-response" in result.stdout


def _commands(parser) -> dict:
    """Every command's parser by its name, with the ingest sources as ``ingest SOURCE``."""
    import argparse

    found = {}
    for action in parser._actions:  # argparse has no public accessor for subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                found[f"{parser.prog.removeprefix('ketamine-response').strip()} {name}".strip()] = command
                found |= _commands(command)
    return found


def test_every_command_has_help_and_verbose_goes_anywhere():
    from ketamine_response.pipelines.cli import build_parser

    parser = build_parser()
    top = parser.format_help()
    commands = _commands(parser)
    assert {"explain", "ingest", "ingest bids", "runs", "train"} <= set(commands)
    for name, command in commands.items():
        assert command.description, f"{name} has no description"
        text = command.format_help()
        assert "%%" not in text and "-v, --verbose" in text, name
        if " " not in name:
            assert f"    {name} " in top or f"    {name}\n" in top, f"{name} has no line in --help"
    assert "AUROC with its 95% CI" in commands["runs"].format_help()
    for argv in (["-v", "runs"], ["runs", "-v"], ["runs", "--verbose"], ["ingest", "bids", "d", "--out", "c.csv", "-v"]):
        assert parser.parse_args(argv).verbose is True, argv
    assert parser.parse_args(["runs"]).verbose is False


def test_version_is_the_installed_one():
    from importlib.metadata import version

    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"ketamine-response {version('ketamine-response')}"


def test_synth_then_validate_clean(tmp_path):
    cohort, oracle = tmp_path / "c.parquet", tmp_path / "o.csv"
    result = run("synth", "--n", 120, "--seed", 3, "--out", cohort, "--oracle", oracle)
    assert result.returncode == 0, result.stderr
    assert "wrote 120 courses" in result.stdout
    assert "p_response_24h" in oracle.read_text().splitlines()[0]
    result = run("validate", cohort)
    assert result.returncode == 0, result.stderr
    assert "rows 120  valid 120" in result.stdout and "no problems" in result.stdout


def test_messy_file_lists_every_problem(tmp_path):
    messy = tmp_path / "messy.csv"
    messy.write_text(
        "patient_id,site,treatment,madrs_baseline,crp_mg_l,sex,notes\n"
        "P1,A,ketamine_iv,30,1.2,F,ok\n"
        "P2,A,ketamine,30,-4,F,\n"          # row 2: unknown arm, negative CRP
        "P3,B,placebo,seventy,,X,\n"        # row 3: not a number, unknown sex
        ",B,placebo,35,,,\n"                # row 4: missing id
        "P1,A,ketamine_iv,31,,M,\n"         # row 5: duplicate key with row 1
    )
    problems = tmp_path / "problems.csv"
    result = run("validate", messy, "--problems", problems)
    assert result.returncode == 1
    assert "column 'crp_mg_l', row 2: value -4 is below 0; expected ≥ 0" in result.stdout
    table = pd.read_csv(problems, keep_default_na=False)
    assert list(table.columns) == ["row", "patient_id", "column", "value", "problem"]
    assert set(zip(table["row"], table["column"])) == {
        (1, "patient_id, treatment"), (2, "treatment"), (2, "crp_mg_l"), (3, "madrs_baseline"),
        (3, "sex"), (4, "patient_id"), (5, "patient_id, treatment")}
    assert "unknown columns kept, not used: notes" in result.stdout


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (bytes(range(256)) * 4, "binary, not CSV"),
    (b"patient_id,site,treatment,madrs_baseline\n", "header but no data rows"),
    (b"just_one_column\n1\n2\n", "required column 'patient_id' is absent"),
])
def test_garbage_exits_2_without_traceback(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = run("validate", path)
    assert result.returncode == 2
    assert message in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bom_and_semicolon_files_validate(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfpatient_id;site;treatment;madrs_baseline\nP1;A;placebo;30\n")
    result = run("validate", path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_usage_and_path_errors_exit_2(tmp_path):
    assert run("validate", tmp_path / "none.csv").returncode == 2
    assert run("validate", tmp_path / "x.xlsx").returncode == 2
    assert run("validate", tmp_path / "c.csv", "--mapping", tmp_path / "m.yaml").returncode == 2
    assert run("synth", "--n", 10).returncode == 2
    result = run("synth", "--n", 10, "--scenario", "weak", "--out", tmp_path / "c.csv")
    assert result.returncode == 2 and "invalid choice: 'weak'" in result.stderr
    assert run("synth", "--n", 1, "--out", tmp_path / "c.csv").returncode == 2
    assert run("frobnicate").returncode == 2
    # checked before the cohort is read or a store opened
    result = run("train", tmp_path / "none.csv", "--target", "response_24h", "--permutations", 10000)
    assert result.returncode == 2 and "--permutations must be 0-9999, got 10000" in result.stderr


def test_synth_describe_prints_the_table():
    result = run("synth", "--describe")
    assert result.returncode == 0
    assert "literature:" in result.stdout and "null features" in result.stdout


def test_features_command(tmp_path):
    cohort, out = tmp_path / "c.csv", tmp_path / "f.parquet"
    assert run("synth", "--n", 80, "--seed", 1, "--out", cohort).returncode == 0
    result = run("features", cohort, "--target", "response_day7", "--out", out)
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(out)
    assert len(table) == 80 and table.columns[-1] == "response_day7"
    assert "madrs_pct_change_4h" in table.columns and "madrs_pct_change_day7" not in table.columns
    assert "madrs_day7" not in table.columns


def test_features_refuses_invalid_rows_unless_told(tmp_path):
    messy = Path(__file__).parents[2] / "data" / "examples" / "messy_cohort.csv"
    out = tmp_path / "f.csv"
    refused = run("features", messy, "--target", "response_24h", "--out", out)
    assert refused.returncode == 1 and "--drop-invalid" in refused.stderr and not out.exists()
    dropped = run("features", messy, "--target", "response_24h", "--out", out, "--drop-invalid")
    assert dropped.returncode == 0 and "10 invalid rows left out" in dropped.stdout
    assert len(pd.read_csv(out)) == 2


def test_features_bad_target_and_list(tmp_path):
    cohort = tmp_path / "c.csv"
    run("synth", "--n", 20, "--out", cohort)
    assert run("features", cohort, "--target", "response_week2", "--out", tmp_path / "f.csv").returncode == 2
    missing = run("features", cohort, "--target", "response_day10", "--out", tmp_path / "f.csv")
    assert missing.returncode == 2 and "needs column 'madrs_day10'" in missing.stderr and "response_day7" in missing.stderr
    listing = run("features", "--list")
    assert listing.returncode == 0 and "kyn_trp_ratio" in listing.stdout and "madrs_pct_change_<tp>" in listing.stdout


LEAN = LEAN_CONFIG  # no benefit model: these tests check commands, not that model


def _train_env(tmp_path: Path) -> dict:
    return {**ENV, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"}


def run_in(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, env=env, timeout=HANG_S)


def test_train_runs_and_compare(tmp_path):
    (tmp_path / "store").mkdir()
    env = _train_env(tmp_path)
    cohort = tmp_path / "c.csv"
    assert run("synth", "--n", 240, "--seed", 2, "--scenario", "strong", "--out", cohort).returncode == 0
    # -v after the command; 4 permutations: the p columns and their footer, without the test's cost
    result = run_in(env, "train", cohort, "--target", "response_24h", "--config", LEAN, "--permutations", 4, "-v")
    assert result.returncode == 0, result.stderr
    assert "selected (" in result.stdout and "AUROC drug arm" in result.stdout and "p adj" in result.stdout
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model "))
    footer = next(i for i, line in enumerate(lines) if line.startswith("Estimates: mean over CV repeats"))
    assert max(map(len, lines[header:footer])) <= 100  # the result table fits; --wide shows every column
    # the sample-size check speaks first, as a warning on stderr; the small cohort's version gets no alias
    assert "warning: too few patients" in result.stderr and "Riley" in result.stderr
    assert "WARNING" not in result.stdout and result.stdout.startswith("note: ")
    assert "INFO " in result.stderr and "outer fold repeat 1 fold 1: selected" in result.stderr  # -v took effect
    assert "(no alias: below the minimum sample size" in result.stdout
    assert "smallest possible p = 1/(B+1)" in result.stdout
    assert "registered: ketamine-response.response_24h version 1" in result.stdout
    assert "... nested cross-validation" in result.stderr  # progress goes to stderr
    assert "'selected' is the whole procedure" in result.stdout  # the reason, under the table
    listing = run_in(env, "runs")
    assert listing.returncode == 0 and "response_24h" in listing.stdout and "AUROC" in listing.stdout
    assert max(map(len, listing.stdout.splitlines())) <= 100 and ".000 " not in listing.stdout
    run_line = listing.stdout.splitlines()[1]  # kind, status, data origin with digest, version and why no alias
    assert " train FINISHED " in run_line and "SYN strong " in run_line and "v1 no alias" in run_line
    assert "no alias:" in listing.stdout and "below the minimum sample size" in listing.stdout
    assert "auroc_ci_low" in run_in(env, "runs", "--csv").stdout.splitlines()[0]
    typo = run_in(env, "runs", "--experiment", "ketamine-typo")
    assert typo.returncode == 2 and "ketamine-response)" in typo.stderr
    # below the minimum sample size: refused without a reason, then promoted with one, recorded and warned about
    refused = run_in(env, "promote", "ketamine-response.response_24h", "1")
    assert refused.returncode == 2 and "below the minimum sample size" in refused.stderr and "--reason" in refused.stderr
    promoted = run_in(env, "promote", "ketamine-response.response_24h", "1", "--reason", "demo only")
    assert promoted.returncode == 0 and "no version had it before" in promoted.stdout
    assert promoted.stderr.startswith("warning: ") and "demo only" in promoted.stderr
    _assert_promotion_recorded(env)
    missing = run_in(env, "promote", "ketamine-response.response_24h", "7", "--reason", "x")
    assert missing.returncode == 2 and "cannot promote" in missing.stderr


def _assert_promotion_recorded(env: dict) -> None:
    """The reason, user and date on the version; the run's alias tag and the version's alias_reason follow."""
    import getpass
    from datetime import UTC, datetime

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    version = client.get_model_version("ketamine-response.response_24h", "1")
    tags = version.tags
    assert version.aliases == ["champion"] and tags["promoted_reason"] == "demo only"
    assert tags["promoted_by"] == getpass.getuser() and tags["promoted_on"].startswith(datetime.now(UTC).strftime("%Y-%m-%d"))
    assert tags["alias_reason"].startswith(f"champion: promoted by {getpass.getuser()}") and "demo only" in tags["alias_reason"]
    assert re.fullmatch(r"synthetic:strong \(\d+ courses\)", tags["trained_on"]) and tags["below_minimum_sample"] == "true"
    assert client.get_run(version.run_id).data.tags["alias"] == "champion"


def test_train_bad_inputs_exit_2_and_register_nothing(tmp_path):
    (tmp_path / "store").mkdir()
    env = _train_env(tmp_path)
    cohort = tmp_path / "c.csv"
    run("synth", "--n", 120, "--seed", 2, "--out", cohort)
    absent = run_in(env, "train", cohort, "--target", "response_day10", "--config", LEAN)
    assert absent.returncode == 2 and "Targets this cohort supports: response_40min" in absent.stderr
    table = pd.read_csv(cohort)
    table["madrs_24h"] = table["madrs_baseline"]  # nobody responds
    one_class = tmp_path / "one.csv"
    table.to_csv(one_class, index=False)
    flat = run_in(env, "train", one_class, "--target", "response_24h", "--config", LEAN)
    assert flat.returncode == 2 and "same class" in flat.stderr
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("cv: {outer_folds: 5, folds: 2}\n")
    refused = run_in(env, "train", cohort, "--target", "response_24h", "--config", bad_config)
    assert refused.returncode == 2 and "unknown key 'cv.folds'" in refused.stderr
    no_store = {**ENV, "MLFLOW_TRACKING_URI": "sqlite:////proc/no-such-dir/mlflow.db"}
    unopened = run_in(no_store, "train", cohort, "--target", "response_24h", "--config", LEAN)
    assert unopened.returncode == 2 and "cannot be opened" in unopened.stderr
    for result in (absent, flat, refused, unopened):
        assert "Traceback" not in result.stderr
    # the store and experiment open only once the input has validated: these failures created nothing
    assert not (tmp_path / "store" / "mlflow.db").exists()


def test_output_cut_short_by_the_reader_is_not_an_error():
    # `true` exits without reading, so the CLI's write always meets a closed pipe
    for reader in ("head -1", "head -3", "true"):
        shell = f"set -o pipefail; {' '.join(CLI)} synth --describe | {reader}"
        result = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=ENV, timeout=HANG_S)
        assert result.returncode == 0, (reader, result.stderr)
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("port", ["-1", "0", "70000"])
def test_ui_port_out_of_range_is_a_usage_error(port):
    result = run("ui", "--port", port)
    assert result.returncode == 2 and "--port must be 1-65535" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_cohort_is_named_before_any_model_loads(tmp_path):
    """train names a missing cohort file before it imports MLflow, LightGBM or shap (seconds); score and explain
    before they look up their model (here one that does not exist, which would be the message otherwise)."""
    missing = tmp_path / "none.csv"
    code = ("import sys; from ketamine_response.pipelines.cli import main; "
            f"code = main(['train', {str(missing)!r}, '--target', 'response_24h']); "
            "print(code, sorted(m for m in ('mlflow', 'lightgbm', 'shap') if m in sys.modules))")
    train = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=HANG_S)
    assert train.stdout.split() == ["2", "[]"] and f"{missing}: the file does not exist" in train.stderr
    for args in (["score", missing, "--out", tmp_path / "s.csv"], ["explain", missing, "--patient", "P1"]):
        result = run(*args, "--model", "models:/no-such-model/1")
        assert result.returncode == 2 and f"{missing}: the file does not exist" in result.stderr, result.stderr
        assert "no-such-model" not in result.stderr


def test_commands_without_a_store_say_where_to_look_and_create_nothing(tmp_path):
    env = {k: v for k, v in ENV.items() if k != "MLFLOW_TRACKING_URI"}
    cohort = tmp_path / "c.csv"
    run("synth", "--n", 20, "--out", cohort)
    for args in (["runs"], ["score", str(cohort), "--out", str(tmp_path / "s.csv")], ["report", "0" * 32, "--out",
                 str(tmp_path / "r")], ["promote", "m", "1"]):
        result = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=HANG_S, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert "Train a model first" in result.stderr and "MLFLOW_TRACKING_URI" in result.stderr
    assert not (tmp_path / "mlruns").exists()


def test_durability_target_without_follow_up_exits_2_naming_the_columns(tmp_path):
    cohort = tmp_path / "cohort.csv"
    assert run("synth", "--n", 60, "--seed", 1, "--out", cohort).returncode == 0  # literature: no follow-up
    result = run("train", cohort, "--target", "time_to_relapse", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "days_to_relapse" in result.stderr and "relapse_observed" in result.stderr and "Traceback" not in result.stderr
    harm = run("train", cohort, "--target", "madrs_24h_ge20", cwd=tmp_path)
    assert harm.returncode == 2 and "not a harm target" in harm.stderr


# A training whose store is a tracking server, stopped (SIGTERM) while it waits on a request. MLflow's REST
# client re-raises any Exception that interrupts a request as its own MlflowException (the stop is a
# KeyboardInterrupt, which it lets through; features.errors.termination_in unwraps a wrapper that does not); the
# server here accepts the connection and never answers, and the signal is sent once the connection is accepted,
# so it always lands inside that request.
STOPPED_IN_A_REQUEST = """
import os, signal, socket, sys, threading
from mlflow import MlflowClient
from ketamine_response.pipelines import cli, store, tracking
silent = socket.create_server(("127.0.0.1", 0))
signal.signal(signal.SIGTERM, cli._terminate)
held = []
def stop_once_connected():
    held.append(silent.accept())  # held open: a dropped connection resets the request before the signal lands
    os.kill(os.getpid(), signal.SIGTERM)
def train(_args):
    with tracking.training_run(store.open_experiment("stopped"), "stopped", {}, {"target": "t"}) as run_id:
        print(run_id, flush=True)
        threading.Thread(target=stop_once_connected, daemon=True).start()
        MlflowClient(f"http://127.0.0.1:{silent.getsockname()[1]}").get_experiment("1")
sys.exit(cli._run(train, None))
"""


def test_sigterm_inside_a_tracking_request_is_a_clean_stop(tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**ENV, "MLFLOW_TRACKING_URI": uri, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    result = subprocess.run([sys.executable, "-c", STOPPED_IN_A_REQUEST], capture_output=True, text=True, env=env,
                            timeout=HANG_S)
    assert result.returncode == 143, result.stderr
    assert result.stderr == "error: stopped by signal SIGTERM; partial outputs were removed\n"
    run = MlflowClient(uri).get_run(result.stdout.strip())
    assert run.info.status == "FAILED" and run.data.tags["progress"] == "failed (Terminated)"
    assert run.data.tags["mlflow.note.content"].startswith("**Training failed**: Terminated: stopped by signal SIGTERM")


STOPPED_IN_A_BROAD_EXCEPT = """
import os, signal, sys, time
from ketamine_response.pipelines import cli, store, tracking
signal.signal(signal.SIGTERM, cli._terminate)
def train(_args):
    with tracking.training_run(store.open_experiment("swallowed"), "swallowed", {}, {"target": "t"}) as run_id:
        print(run_id, flush=True)
        try:  # as MLflow's model logging guards its serving-input check
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs as os.kill returns; at the latest, here
        except Exception:
            pass
    return 0
sys.exit(cli._run(train, None))
"""


def test_sigterm_inside_a_librarys_broad_except_still_stops(tmp_path):
    """A library that catches every Exception around its own work cannot swallow the stop: exit 143, the run FAILED."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = subprocess.run([sys.executable, "-c", STOPPED_IN_A_BROAD_EXCEPT], capture_output=True, text=True,
                            env={**ENV, "MLFLOW_TRACKING_URI": uri}, timeout=HANG_S)
    assert result.returncode == 143, result.stderr
    assert result.stderr == "error: stopped by signal SIGTERM; partial outputs were removed\n"
    assert MlflowClient(uri).get_run(result.stdout.strip()).info.status == "FAILED"


# A stop raised where Python cannot raise: the handler runs inside a weakref callback (as in SQLAlchemy's clean-up
# of pooled connections during garbage collection), where an exception is printed as "Exception ignored" and lost.
STOPPED_IN_A_WEAKREF_CALLBACK = """
import os, signal, sys, time, weakref
from ketamine_response.pipelines import cli
from ketamine_response.pipelines.flows import validate

class Pooled:
    pass

def collected(_ref):
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(10_000):  # the handler runs here, inside the callback
        pass

real = validate.run_validate
def run_validate(*args):
    pooled = Pooled()
    ref = weakref.ref(pooled, collected)
    del pooled  # the callback runs now
    time.sleep(3)  # the command's work goes on (train's: minutes): the stop must land in it
    return real(*args)
validate.run_validate = run_validate
code = cli.main(sys.argv[1:])
print(f"handled {len(cli._SIGNALLED)} times", file=sys.stderr)
sys.exit(code)
"""


def test_a_stop_lost_in_a_weakref_callback_is_sent_again(write_csv):
    cohort = write_csv("patient_id,site,treatment,madrs_baseline\nP1,A,ketamine_iv,30\n")
    result = subprocess.run([sys.executable, "-c", STOPPED_IN_A_WEAKREF_CALLBACK, "validate", str(cohort)],
                            capture_output=True, text=True, env=ENV, timeout=HANG_S)
    assert result.returncode == 143, result.stderr
    assert result.stderr == ("error: stopped by signal SIGTERM; partial outputs were removed\n"
                             "handled 2 times\n")  # lost once inside the callback, then sent again


def test_a_librarys_logged_copy_of_a_stop_is_not_printed():
    """SQLAlchemy's pool logs an exception with its traceback before re-raising it; for a stop, the CLI's one
    line is the message, so main()'s log handler drops that record and keeps every other error."""
    import logging

    from ketamine_response.features.errors import Terminated
    from ketamine_response.pipelines import cli

    def logged(exc: BaseException) -> bool:
        try:
            raise exc
        except BaseException:
            record = logging.getLogger("sqlalchemy.pool").makeRecord(
                "sqlalchemy.pool", logging.ERROR, __file__, 1, "Exception during reset or similar", (), sys.exc_info())
        return cli._not_a_stop(record)

    assert not logged(Terminated("stopped by signal SIGTERM; partial outputs were removed"))
    assert logged(ValueError("a real error")) and logged(KeyboardInterrupt())


def test_a_stop_after_the_command_ends_the_process_without_a_traceback(tmp_path):
    """The work is done and reported; a stop while the interpreter shuts down (joining threads) ends it as SIGTERM
    does by default, not with a traceback from inside the shutdown."""
    script = ("import os, signal, sys, time\nfrom ketamine_response.pipelines import cli\n"
              "code = cli.main(['synth', '--describe'])\nos.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(5)\n"
              "print('went on after the stop')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=ENV, timeout=HANG_S)
    assert result.returncode == -signal.SIGTERM and "went on" not in result.stdout
    assert result.stderr == ""


def test_a_failure_after_sigterm_is_the_stop_and_names_what_failed(monkeypatch, capsys):
    """After a SIGTERM every failure exits 143: MLflow's wrapper of the stop says it was a clean stop; a cleanup that
    failed while stopping is named, and the message does not claim the outputs were removed."""
    from ketamine_response.features.errors import Terminated, TrackingError
    from ketamine_response.pipelines import cli

    def stopped(_args):
        raise Terminated("stopped by signal SIGTERM; partial outputs were removed")

    def wrapped(args):
        try:
            stopped(args)
        except Terminated as exc:
            raise RuntimeError(f"API request to http://x/api failed with exception {exc}")  # noqa: B904 (as MLflow does)

    def cleanup_failed(args):
        try:
            stopped(args)
        except Terminated:
            raise OSError("cannot remove scores.csv.partial")  # noqa: B904 (raised while the stop is handled)

    def store_refused(args):
        try:
            wrapped(args)
        except RuntimeError as exc:
            raise TrackingError(f"tracking store cannot be opened ({exc})") from None

    monkeypatch.setattr(cli, "_SIGNALLED", ["SIGTERM"])
    for func, message in ((stopped, "stopped by signal SIGTERM; partial outputs were removed"),
                          (wrapped, "stopped by signal SIGTERM; partial outputs were removed"),
                          (store_refused, "stopped by signal SIGTERM; partial outputs were removed"),
                          (cleanup_failed, "stopped by signal SIGTERM; while stopping, OSError: cannot remove "
                                           "scores.csv.partial. Partial outputs may remain.")):
        assert cli._run(func, None) == 143, func.__name__
        assert capsys.readouterr().err == f"error: {message}\n", func.__name__
    monkeypatch.setattr(cli, "_SIGNALLED", [])  # no signal: a bug is an internal error, a user's error its own code
    assert cli._run(cleanup_failed, None) == 70 and "internal error (OSError" in capsys.readouterr().err
    assert cli._run(store_refused, None) == 2
