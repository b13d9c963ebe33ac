"""docs/architecture.md's "Where to add X" rows hold: each test adds a throwaway entry, in a copy of the
project, in exactly the files its row names, then runs the tests that must pass for it and shows they ran.

A row's files are the backticked paths from the repository root in its "touch" cell (with a ``/``, or a
file at the root); one ending in ``/`` is a folder: a file created or edited in it. A test fails when it
edits a file its row does not name, when the row names a path it does not edit, or when the row's "test"
cell does not name it. The copy is imported through PYTHONPATH, which comes before the editable install's
finder, so the throwaway entries are what the tests see.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.limits import HANG_S

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
COPIED = ("features", "models", "pipelines", "ketamine_response", "tests", "data", "README.md", "pyproject.toml")
TIMEOUT = HANG_S  # catches a hang, not a busy machine (tests/limits.py)


class Project:
    """A copy of the project that records which of its files a test creates or edits."""

    def __init__(self, root: Path):
        self.root, self.touched = root, set[str]()
        for name in COPIED:
            source, target = ROOT / name, root / name
            if source.is_dir():  # ketamine_response/ holds links to the three package folders: copied as links
                shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "mlruns"))
            else:
                shutil.copy(source, target)

    def replace(self, path: str, old: str, new: str) -> None:
        """Replace the one occurrence of *old* in *path* (an anchor found twice or never fails the test)."""
        text = (self.root / path).read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{path}: {old!r} occurs {text.count(old)} times"
        (self.root / path).write_text(text.replace(old, new), encoding="utf-8")
        self.touched.add(path)

    def add_entry(self, path: str, table: str, entry: str) -> None:
        """Add *entry* (whole, indented lines) as the last item of the tuple opened by the line *table* in *path*."""
        text = (self.root / path).read_text(encoding="utf-8")
        assert text.count(f"\n{table}\n") == 1, f"{path}: no one line {table!r}"
        start = text.index(f"\n{table}\n")
        body = text[start:text.index("\n)\n", start)]
        self.replace(path, f"{body}\n)\n", f"{body}\n{entry.rstrip()}\n)\n")

    def append_to_list(self, path: str, key: str, name: str) -> None:
        """Add *name* to the YAML flow list ``key: [...]`` in *path*."""
        line = re.search(rf"^ *{re.escape(key)}: \[[^\]\n]*\]", (self.root / path).read_text(encoding="utf-8"), re.M)
        assert line is not None, f"{path}: no '{key}: [...]' list"
        self.replace(path, line[0], f"{line[0][:-1]}, {name}]")

    def append(self, path: str, text: str) -> None:
        with (self.root / path).open("a", encoding="utf-8") as file:
            file.write(text)
        self.touched.add(path)

    def create(self, path: str, text: str) -> None:
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_text(text, encoding="utf-8")
        self.touched.add(path)

    def run(self, *args: str) -> str:
        """Run python with *args* in the copy; it must succeed. Returns its output."""
        env = {**os.environ, "PYTHONPATH": str(self.root), "OMP_WAIT_POLICY": "PASSIVE", "PYTHONDONTWRITEBYTECODE": "1"}
        done = subprocess.run([sys.executable, *args], cwd=self.root, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-6000:]
        return output

    def pytest(self, *args: str, passed: tuple[str, ...]) -> None:
        """Run pytest in the copy: every test passes and each of *passed* (``function[id]``) ran."""
        output = self.run("-m", "pytest", "-v", "-p", "no:cacheprovider", *args)
        missing = [t for t in passed if not re.search(rf"::{re.escape(t)} PASSED", output)]
        assert not missing, f"did not run and pass: {missing}\n{output[-3000:]}"

    def check(self, statement: str) -> None:
        """Run *statement* with the copy's package imported as ``kr``, after checking it is the copy's."""
        prelude = f"import ketamine_response as kr; assert kr.__file__.startswith({str(self.root)!r}), kr.__file__"
        self.run("-c", f"{prelude}\n{statement}")


def row(name: str) -> tuple[set[str], str]:
    """The paths the row *name* ("a model family") names in its touch cell, and its test cell."""
    section = ARCHITECTURE.read_text(encoding="utf-8").split("## Where to add X", 1)[1].split("\n#", 1)[0]
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].split(" (")[0] == name:
            paths = {p for p in re.findall(r"`([^`]+)`", cells[1]) if "/" in p or (ROOT / p).is_file()}
            return paths, cells[2]
    raise AssertionError(f"docs/architecture.md has no 'Where to add X' row for {name!r}")


def check_row(project: Project, test: str) -> None:
    """The row this test proves names exactly the files the test touched, and names the test."""
    named, proof = row(test.removeprefix("test_").replace("_", " "))

    def covers(name: str, path: str) -> bool:
        return path == name or (name.endswith("/") and path.startswith(name))

    assert {p for p in project.touched if not any(covers(n, p) for n in named)} == set(), "touched, not named"
    assert {n for n in named if not any(covers(n, p) for p in project.touched)} == set(), "named, not touched"
    assert f"`tests/test_where_to_add.py::{test}`" in proof, proof


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "project")


def _example_family() -> tuple[str, str, str]:
    """architecture.md's "Example: adding a model family": (its name, the builder function, the entry)."""
    example = ARCHITECTURE.read_text(encoding="utf-8").split("### Example: adding a model family", 1)[1]
    code = example.split("```python\n", 1)[1].split("```", 1)[0]
    builder, entries = code.split("_ENTRIES = (\n", 1)
    entry = entries.split("    ...,\n", 1)[1].rsplit(")", 1)[0]
    name = re.search(r'Family\("(\w+)"', entry)
    assert name is not None, entry
    return name[1], builder.strip(), entry


def test_a_model_family(project, request):
    name, builder, entry = _example_family()
    project.replace("models/families.py", "\n_ENTRIES = (\n", f"\n{builder}\n\n\n_ENTRIES = (\n")
    project.add_entry("models/families.py", "_ENTRIES = (", entry)
    for config in ("pipelines/configs/train.yaml", "pipelines/configs/train_small.yaml"):
        project.append_to_list(config, "families", name)
    check_row(project, request.node.name)
    project.check("from ketamine_response.pipelines.config import load_config, shipped_configs\n"
                  f"assert all({name!r} in load_config(c).families for c in shipped_configs())")
    contract = ("test_entry_is_complete", "test_fits_and_predicts_probabilities", "test_explains_with_additive_shap",
                "test_is_deterministic_for_a_seed", "test_round_trips_through_the_logged_model")
    project.pytest("tests/models/test_families.py", "-k", f"{name} or registry_is_the_one_list",
                   passed=tuple(f"{t}[{name}]" for t in contract))


TSV_WRITER = '''class _TsvWriter(_CsvWriter):
    def write(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.path, sep="\\t", mode="a" if self.started else "w", header=not self.started, index=False,
                     lineterminator="\\n")
        self.started = True


'''


def test_a_cohort_file_format(project, request):
    path = "features/cohort/formats.py"
    project.replace(path, "# -- the table --", f"{TSV_WRITER}# -- the table --")
    project.add_entry(path, "FORMATS: tuple[Format, ...] = (",
                      '    Format("tsv", "TSV (.tsv, UTF-8)", (".tsv",), text.read_text, _csv_header, text.text_chunks,\n'
                      '           _TsvWriter, spreadsheet=True, spark=SparkRead("text", _csv_lines)),')
    check_row(project, request.node.name)
    contract = ("test_round_trip", "test_writing_is_byte_identical", "test_header_is_read_without_rows",
                "test_chunked_read_equals_whole_read[tsv-2]", "test_a_malformed_file_is_a_file_error_naming_it[tsv-whole]",
                "test_missing_and_header_only_files", "test_suffixes_find_the_entry_in_any_case",
                "test_spark_lines_read_as_the_local_reader_reads")
    project.pytest("tests/features/cohort/test_formats.py",
                   passed=(*(t if "[" in t else f"{t}[tsv]" for t in contract), "test_suffixes_are_claimed_once"))


def test_a_measured_biomarker(project, request):
    column, feature = "throwaway_pg_ml", "log_throwaway"
    project.replace("features/cohort/schema.py", '    _num("sbp_change_mmhg"',
                    f'    _num("{column}", 0, None, "pg/mL"),\n    _num("sbp_change_mmhg"')
    project.append("features/derivations/inflammatory.py", f'\n\ndef {feature}(df: pd.DataFrame) -> pd.DataFrame:\n'
                   f'    """ln of a throwaway marker (pg/mL), floored at 0.01."""\n'
                   f'    return _log(df, "{column}", "{feature}")\n')
    project.replace("features/registry.py", '    _raw("bdnf_serum_ng_ml"',
                    f'    Feature("{feature}", inf.{feature}, ("{column}",), ("{feature}",), "ln pg/mL", "inflammatory",\n'
                    f'            "a throwaway marker: proves the row for a measured biomarker"),\n    _raw("bdnf_serum_ng_ml"')
    project.replace("features/synthetic/covariates.py", '        "glx_acc_mmol":',
                    f'        "{column}": _lab(3.0 * site_assay, rng, 0.5),\n        "glx_acc_mmol":')
    project.replace("README.md", "| `glx_acc_mmol` | ≥ 0 | | |\n", f"| `glx_acc_mmol` | ≥ 0 | `{column}` | ≥ 0 |\n")
    check_row(project, request.node.name)
    # its derivation's contract runs only if the synthetic cohort has the column; the README lists every column
    project.pytest("tests/features/test_registry.py", "tests/features/cohort/test_schema.py", "tests/test_readme.py",
                   passed=(f"test_derivation_contract[{feature}]", "test_registry_entries_are_complete_and_unique",
                           "test_every_canonical_column_is_documented"))


POINTS_TASK = '''    Task(TaskKind.POINTS_CHANGE, "change in MADRS points from baseline to a timepoint (a throwaway task)",
         ("points_change",), ((rf"points_change_{_TP}", "points_change_<tp>", "points_change_24h"),), _timepoint_target,
         "change in points per course",
         lambda table, target, threshold: (table[target.outcome_column].astype("float64")
                                           - table["madrs_baseline"].astype("float64")).rename(target.name).to_frame(),
         _y_float, lambda target, threshold: f"change in MADRS points from baseline to {target.timepoint}",
         lambda target: f"the change in MADRS points at {target.timepoint}",
         lambda target: ("larger predicted change", "smaller predicted change"), _labels_finite,
         _strata_quintiles, probabilities=False, benefit=False, family_kind=TaskKind.POINTS_CHANGE,
         selection_metric="mse", headline="r2_points_change",
         headline_wording="R2 of the change in points", headline_bounds=(float("-inf"), 1.0),
         table_metrics=("rmse_points_change", "mae_points_change"), families_key="points_change_families",
         size_unit="courses", r2_wording="R2", score_columns=("predicted_points_change",),
         outcome_heading="Outcome distribution", explain_unit="points"),
'''
POINTS_SUITE = '''def _points_change(*args: Any) -> tuple[Any, ...]:
    metrics, ci, curve, groups = _continuous(*args)  # the continuous suite, its metrics named for points

    def named(values: dict[str, Any]) -> dict[str, Any]:
        return {k.replace("pct_change", "points_change"): v for k, v in values.items()}

    return named(metrics), named(ci), curve, groups


'''


def test_a_task(project, request):
    project.replace("features/tasks.py", '    CONTINUOUS = "continuous"\n',
                    '    CONTINUOUS = "continuous"\n    POINTS_CHANGE = "points_change"\n')
    project.add_entry("features/tasks.py", "_ENTRIES = (", POINTS_TASK)
    project.replace("pipelines/evaluation/evaluate.py", "# Each task's metric suite", f"{POINTS_SUITE}# Each task's metric suite")
    project.replace("pipelines/evaluation/evaluate.py", "TaskKind.SURVIVAL: _survival}",
                    "TaskKind.SURVIVAL: _survival,\n    TaskKind.POINTS_CHANGE: _points_change}")
    project.replace("pipelines/evaluation/metrics.py", '"c_index": c_index}', '"c_index": c_index, "r2_points_change": r2}')
    project.add_entry("models/families.py", "_ENTRIES = (",
                      '    Family("points_mean", "predicts the training mean change for everyone (the floor)", {}, first_column,\n'
                      '           _mean, "constant", task=TaskKind.POINTS_CHANGE, calibrate=False),')
    field = "    regression_families: tuple[str, ...] = field(default_factory=lambda: _registered_families(TaskKind.CONTINUOUS))\n"
    project.replace("pipelines/config.py", field, f"{field}    points_change_families: tuple[str, ...] = field(\n"
                    "        default_factory=lambda: _registered_families(TaskKind.POINTS_CHANGE))\n")
    check_row(project, request.node.name)
    contract = ("test_entry_is_complete", "test_fits_and_predicts_probabilities", "test_explains_with_additive_shap",
                "test_is_deterministic_for_a_seed", "test_round_trips_through_the_logged_model")
    project.pytest("tests/features/test_tasks.py", "tests/pipelines/test_config.py", "tests/models/test_families.py",
                   # not the test that re-runs a logged config: it trains the 1,500-course shared run (minutes)
                   # for a check the new field's flattening test and the end-to-end run below already make
                   "-k", "(test_tasks or test_config or points_mean or registry_is_the_one_list) and not logged_config_reruns",
                   passed=("test_check_task[points_change]", "test_registry_is_the_one_list_of_families",
                           "test_default_config_loads_and_flattens", *(f"{t}[points_mean]" for t in contract)))
    # and the whole path takes it, with nothing else changed: synth -> train (terminal table, report, registry) -> score
    out = project.run("-c", END_TO_END)
    assert "R2 points change (95% CI)" in out and "points_mean" in out, out[-3000:]
    header = (project.root / "s.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert "predicted_points_change" in header and "probability" not in header


END_TO_END = """import os
os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///" + os.path.abspath("store.db")
open("small.yaml", "w").write("cv: {outer_folds: 3, outer_repeats: 1, inner_folds: 2}\\nsearch: {budget: 1}\\n"
                              "evaluation: {bootstrap: 50, permutations: 0}\\nintervals: {benefit_replicates: 0}\\nn_jobs: 1\\n")
from ketamine_response.pipelines.cli import main
for argv in (["synth", "--n", "150", "--seed", "3", "--out", "c.csv"],
             ["train", "c.csv", "--target", "points_change_24h", "--config", "small.yaml"],
             ["runs"], ["score", "c.csv", "--out", "s.csv", "--model", "models:/ketamine-response.points_change_24h/1"]):
    assert main(argv) == 0, argv
"""


def test_a_benefit_learner(project, request):
    name = "ridge_s_learner"
    project.add_entry("models/benefit.py", "_ENTRIES = (",
                      f'    Learner("{name}", "S-learner with a ridge penalty: every feature x drug term kept, shrunk", _fit_s,\n'
                      '            ({"C": 0.1, "l1_ratio": 0.0},)),')
    project.append_to_list("pipelines/configs/train.yaml", "learners", name)
    check_row(project, request.node.name)
    project.check("from ketamine_response.pipelines.config import load_config, shipped_configs\n"
                  f"assert all({name!r} in load_config(c).benefit.learners for c in shipped_configs())")
    project.pytest("tests/models/test_benefit.py", "-k", f"{name} or unknown_learner",
                   passed=(f"test_learner_contract[{name}]", "test_unknown_learner_is_named"))


VISITS_SOURCE = '''"""A table of visits (one row per patient, treatment and visit) reshaped into one row per course."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ketamine_response.features.cohort.reader import read_text_table


def inputs(root: Path) -> list[Path]:
    return [root / "visits.csv"] if (root / "visits.csv").is_file() else []


def ingest(root: Path, mapping_path: Path | None, known: Mapping[str, Path], options: Mapping[str, bool]) -> pd.DataFrame:
    visits = read_text_table(root / "visits.csv")
    if options["drop_placebo"]:
        visits = visits[visits["treatment"] != "placebo"]
    courses = visits.pivot(index=["patient_id", "treatment", "site"], columns="visit", values="madrs")
    return courses.rename(columns=lambda visit: f"madrs_{visit}").reset_index().rename_axis(columns=None)
'''
VISITS = """patient_id,treatment,site,visit,madrs
P1,ketamine_iv,A,baseline,32
P1,ketamine_iv,A,24h,12
P1,placebo,A,baseline,30
P1,placebo,A,24h,28
P2,esketamine_in,B,baseline,40
P2,esketamine_in,B,24h,22
"""
VISITS_ENTRY = '''    Source("visits", "a table of visits (one row per patient, treatment and visit)",
           "One row per treatment course from a table of visits.", "folder holding visits.csv",
           "not used: visits.csv has the canonical names", {}, "data/public/throwaway-visits",
           _lazy("ketamine_response.features.sources.visits", "inputs"),
           _lazy("ketamine_response.features.sources.visits", "ingest"), {"drop_placebo": "leave out placebo courses"}),
'''


def test_a_data_source(project, request):
    project.create("features/sources/visits.py", VISITS_SOURCE)
    project.create("data/public/throwaway-visits/visits.csv", VISITS)
    project.add_entry("features/sources/registry.py", "ENTRIES = (  # every source, in the order `ingest --help` lists them",
                      VISITS_ENTRY)
    check_row(project, request.node.name)
    contract = ("test_example_ingests_into_a_valid_cohort", "test_inputs_are_the_example_files",
                "test_known_datasets_ship_as_package_data", "test_every_source_is_an_ingest_subcommand")
    project.pytest("tests/features/sources/test_registry.py",
                   passed=(*(f"{t}[visits]" for t in contract), "test_names_are_unique_and_entries_complete"))
