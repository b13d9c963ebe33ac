"""``ingest bids`` as a user runs it: a pristine OpenNeuro download, an unknown dataset, a broken mapping."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.pipelines.test_cli import run

DS = Path(__file__).parents[3] / "data" / "public" / "openneuro-ds005917"


def test_pristine_download_is_recognised_and_ingested(tmp_path):
    pristine = tmp_path / "ds005917"
    shutil.copytree(DS, pristine)
    assert not (pristine / "bids_mapping.yaml").exists()  # as OpenNeuro serves it
    result = run("ingest", "bids", pristine, "--out", tmp_path / "c.csv")
    assert result.returncode == 0, result.stderr
    cohort = pd.read_csv(tmp_path / "c.csv")
    assert len(cohort) == 60 and cohort["patient_id"].nunique() == 33


def test_unknown_dataset_without_mapping_gets_a_template(tmp_path):
    unknown = tmp_path / "other"
    shutil.copytree(DS, unknown)
    (unknown / "dataset_description.json").write_text('{"Name": "Another study", "BIDSVersion": "1.9.0"}')
    result = run("ingest", "bids", unknown, "--out", tmp_path / "c.csv")
    assert result.returncode == 2
    assert "unknown BIDS dataset" in result.stderr and "baseline_session:" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "c.csv").exists()


def test_malformed_mapping_exits_2_naming_it(tmp_path):
    mapping = tmp_path / "m.yaml"
    mapping.write_text("site: [unclosed\n")
    result = run("ingest", "bids", DS, "--out", tmp_path / "c.csv", "--mapping", mapping)
    assert result.returncode == 2 and str(mapping) in result.stderr and "not valid YAML" in result.stderr


def test_invalid_description_is_reported_at_its_line_not_as_an_unknown_dataset(tmp_path):
    copy = Path(shutil.copytree(DS, tmp_path / "ds"))
    description = copy / "dataset_description.json"
    description.write_text('{\n  "Name": "NIMH Ketamine",\n  "DatasetDOI": "doi:10.18112/openneuro.ds005917",\n}\n')
    result = run("ingest", "bids", copy, "--out", tmp_path / "c.csv")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert f"{description}: the dataset description is not valid JSON" in result.stderr
    assert "line 4, column 1" in result.stderr and "unknown" not in result.stderr
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("looping", ["--out", "--mapping"])
def test_a_looping_out_or_mapping_is_refused_before_anything_is_read(tmp_path, looping):
    from ketamine_response.features.errors import CohortFileError
    from ketamine_response.pipelines.flows.ingest import run_ingest

    loop = tmp_path / ("loop.csv" if looping == "--out" else "loop.yaml")
    loop.symlink_to(loop.name)
    out, mapping = (loop, None) if looping == "--out" else (tmp_path / "c.csv", loop)
    with pytest.raises(CohortFileError, match=f"{loop}: the .* symlink loop"):
        run_ingest("bids", DS, out, mapping)
    assert not (tmp_path / "c.csv").exists()
