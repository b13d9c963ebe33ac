"""``score --engine spark`` writes what the local engine writes: same scores, rows, reject file and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.limits import HANG_S
from tests.pipelines.conftest import TARGET

MODEL = f"models:/ketamine-response.tests.{TARGET}@champion"


@pytest.fixture
def messy(strong_run, tmp_path) -> pd.DataFrame:
    """40 courses with the planted problems of test_score.py: out of range, unparseable, unknown category,
    missing key, and a duplicated key far from its twin."""
    _, cohort, _ = strong_run
    table = cohort.head(40).drop(columns=[c for c in cohort.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    table = table.astype("str").fillna("").replace({"<NA>": "", "nan": ""})
    table.loc[3, "madrs_baseline"] = "75"
    table.loc[8, "crp_mg_l"] = "abc"
    table.loc[12, "sex"] = "X"
    table.loc[15, "patient_id"] = ""
    table.loc[30] = table.loc[2]
    return table


def _same_outputs(local, spark, out_local: Path, out_spark: Path) -> None:
    assert (spark.read, spark.scored, spark.rejected, spark.blank) == (local.read, local.scored, local.rejected, local.blank)
    assert spark.rejected_path.read_bytes() == local.rejected_path.read_bytes()
    sidecar = out_spark.with_name(f"{out_spark.name}.model.md")  # the same caveats, threshold and columns
    assert sidecar.read_text() == out_local.with_name(f"{out_local.name}.model.md").read_text()
    if out_local.suffix == ".parquet":
        assert pq.read_schema(out_spark).equals(pq.read_schema(out_local), check_metadata=True)
        a, b = pd.read_parquet(out_local), pd.read_parquet(out_spark)
    else:
        a, b = pd.read_csv(out_local), pd.read_csv(out_spark)
    # text and integer columns exactly, probabilities to 1e-12 (the local engine's own chunk size moves the last bit)
    pd.testing.assert_frame_equal(b, a, check_exact=False, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("source", "out", "explain", "threshold"), [("csv", "csv", 2, 0.3), ("parquet", "parquet", 0, None)])
def test_spark_engine_writes_what_the_local_engine_writes(spark, messy, tmp_path, source, out, explain, threshold):
    from ketamine_response.pipelines.flows.score import run_score
    from ketamine_response.pipelines.flows.score_spark import run_score_spark

    path = tmp_path / f"messy.{source}"
    if source == "csv":
        path.write_bytes(b"\xef\xbb\xbf" + messy.to_csv(index=False).encode())  # with a BOM, as spreadsheets write
    else:
        messy.to_parquet(path, index=False)
    local = run_score(path, tmp_path / f"local.{out}", MODEL, explain, threshold=threshold)
    spark_run = run_score_spark(path, tmp_path / f"spark.{out}", MODEL, explain, threshold=threshold)
    _same_outputs(local, spark_run, tmp_path / f"local.{out}", tmp_path / f"spark.{out}")
    rejected = pd.read_csv(spark_run.rejected_path, dtype=str, keep_default_na=False)
    assert rejected["row"].astype(int).tolist() == [3, 4, 9, 13, 16, 31]  # both rows of the duplicated key
    assert list(tmp_path.glob(".*")) == []  # no partial file, no Spark parts folder


def test_spark_engine_blind_file_and_unit_mapping(spark, messy, tmp_path):
    """No treatment column (every arm scored); a mapping that renames and converts units, on Parquet (the
    model's pyfunc gets validated, converted cells, so it sees what the local engine's model sees)."""
    from ketamine_response.pipelines.flows.score import run_score
    from ketamine_response.pipelines.flows.score_spark import run_score_spark

    blind = tmp_path / "blind.csv"
    messy.drop(columns="treatment").to_csv(blind, index=False)
    mapped = messy.rename(columns={"patient_id": "PID", "crp_mg_l": "CRP"})
    mapped["CRP"] = pd.to_numeric(mapped["CRP"], errors="coerce") / 10
    mapped.to_parquet(tmp_path / "mapped.parquet", index=False)
    mapping = tmp_path / "map.yaml"
    mapping.write_text("columns:\n  PID: patient_id\n  CRP: crp_mg_l\nunits:\n  crp_mg_l: mg/dL\n")
    for path, out, mapping_path, k in ((blind, "b.csv", None, 2), (tmp_path / "mapped.parquet", "m.parquet", mapping, 0)):
        local = run_score(path, tmp_path / f"local-{out}", MODEL, k, mapping_path=mapping_path)
        spark_run = run_score_spark(path, tmp_path / f"spark-{out}", MODEL, k, mapping_path=mapping_path)
        _same_outputs(local, spark_run, tmp_path / f"local-{out}", tmp_path / f"spark-{out}")
    blind_scores = pd.read_csv(tmp_path / "spark-b.csv")
    assert "probability" not in blind_scores.columns and "reason_difference_ketamine_iv_1_points" in blind_scores.columns


def test_a_file_error_inside_a_spark_task_is_exit_2_and_leaves_nothing(spark, strong_run, tmp_path):
    from ketamine_response.features.errors import CohortFileError
    from ketamine_response.pipelines.flows.score_spark import run_score_spark

    _, cohort, _ = strong_run
    path = tmp_path / "broken.csv"
    rows = pd.concat([cohort] * 4, ignore_index=True)  # 6,000 rows, 1 MB: past what the driver's first look reads
    path.write_bytes(rows.to_csv(index=False).encode() + b"P9,site_01,placebo,1,caf\xe9\n")
    out = tmp_path / "scores.parquet"
    with pytest.raises(CohortFileError, match=r"not well-formed UTF-8 CSV \(row 6001"):
        run_score_spark(path, out, MODEL)
    assert not out.exists() and list(tmp_path.glob("*.rejected.csv")) == [] and list(tmp_path.glob(".*")) == []


def test_the_copy_given_to_spark_udf_is_checked(strong_run, tmp_path, monkeypatch):
    """registry.spark_udf builds the UDF from registry.verified_copy, the check load_model runs too."""
    from ketamine_response.features.errors import TrackingError
    from ketamine_response.pipelines import registry

    assert (Path(registry.verified_copy(MODEL, str(tmp_path / "ok"))) / "python_model.pkl").is_file()
    monkeypatch.setattr(registry, "_recorded_digest", lambda uri: ("0" * 64, "{}"))
    with pytest.raises(TrackingError, match="do not match the SHA-256"):
        registry.verified_copy(MODEL, str(tmp_path / "bad"))


def test_cli_engine_usage_errors_exit_2_without_spark(tmp_path):
    cli = [sys.executable, "-m", "ketamine_response.pipelines.cli", "score"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    missing = subprocess.run([*cli, str(tmp_path / "nope.parquet"), "--out", str(tmp_path / "s.csv"), "--engine", "spark"],
                             capture_output=True, text=True, env=env, timeout=HANG_S)
    assert missing.returncode == 2 and "nope.parquet: the file does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr and list(tmp_path.iterdir()) == []
    master = subprocess.run([*cli, str(tmp_path / "c.csv"), "--out", str(tmp_path / "s.csv"), "--spark-master", "local[1]"],
                            capture_output=True, text=True, env=env, timeout=HANG_S)
    assert master.returncode == 2 and "--spark-master applies to --engine spark only" in master.stderr


def test_help_does_not_import_spark():
    code = ("import sys\nfrom ketamine_response.pipelines.cli import main\n"
            "for argv in (['--help'], ['score', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('pyspark', 'mlflow', 'ketamine_response.pipelines.flows.score_spark') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert run.returncode == 0, run.stderr
    assert "--engine {local,spark}" in run.stdout and run.stdout.strip().endswith("[]")
