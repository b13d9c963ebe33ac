"""Bad inputs: a missing file, a folder, random bytes, a header with no rows, a broken BIDS dataset.

Every command that reads a cohort must stop with exit 2, name the file in stderr, show no traceback
and leave no output behind. The probes of each group run concurrently (one module fixture), each test
checks one of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.probes import DATASET, EXPERIMENT, LEAN_CONFIG, TARGET, Probe, first_patient, random_bytes, run_probes

# a, b, c and h of the fault list; the extra random-bytes variants only where they are cheap
FAULTS = ("missing", "folder", "random", "header_only")
EXTRA = ("random_text", "random_parquet")
PLAIN = {"validate": FAULTS + EXTRA, "features": FAULTS + EXTRA, "train": FAULTS}
WITH_MODEL = {"score": FAULTS, "explain": FAULTS}


def bad_cohort(fault: str, folder: Path, good: Path) -> Path:
    """The faulty cohort 'file' for *fault*, created in *folder*."""
    if fault == "missing":
        return folder / "no_such_cohort.csv"
    if fault == "folder":
        (folder / "cohort_folder.csv").mkdir()
        return folder / "cohort_folder.csv"
    if fault == "random":
        return random_bytes(folder / "random_bytes.csv")
    if fault == "random_text":
        return random_bytes(folder / "random_text.csv", nul=False)
    if fault == "random_parquet":
        return random_bytes(folder / "random_bytes.parquet")
    header = good.read_text().splitlines()[0]
    (folder / "header_only.csv").write_text(header + "\n")
    return folder / "header_only.csv"


def cohort_args(command: str, cohort: Path, out: Path, model=None, patient: str = "") -> list[object]:
    """Arguments of *command* reading *cohort* and writing (if it writes) into the folder *out*."""
    return {
        "validate": lambda: ["validate", cohort, "--problems", out / "problems.csv"],
        "features": lambda: ["features", cohort, "--target", TARGET, "--out", out / "features.csv"],
        "train": lambda: ["train", cohort, "--target", TARGET, "--config", LEAN_CONFIG, "--permutations", 0,
                          "--experiment", f"{EXPERIMENT}-probes"],
        "score": lambda: ["score", cohort, "--out", out / "scores.csv", "--model", model.uri],
        "explain": lambda: ["explain", cohort, "--model", model.uri, "--patient", patient, "--out", out / "waterfall.png"],
    }[command]()


def cohort_probes(table: dict[str, tuple[str, ...]], tmp: Path, good: Path, model=None) -> dict[str, Probe]:
    probes = {}
    for command, faults in table.items():
        for fault in faults:
            folder = tmp / f"{command}-{fault}"
            (folder / "out").mkdir(parents=True)
            path = bad_cohort(fault, folder, good)
            args = cohort_args(command, path, folder / "out", model, first_patient(good))
            probes[f"{command}-{fault}"] = Probe(args, (path.name,), folder=folder / "out")
    return probes


@pytest.fixture(scope="module")
def plain(cohort, tmp_path_factory) -> dict[str, Probe]:
    return run_probes(cohort_probes(PLAIN, tmp_path_factory.mktemp("inputs"), cohort))


@pytest.fixture(scope="module")
def scoring(cohort, model, tmp_path_factory) -> dict[str, Probe]:
    return run_probes(cohort_probes(WITH_MODEL, tmp_path_factory.mktemp("inputs-scoring"), cohort, model))


@pytest.mark.parametrize("case", [f"{c}-{f}" for c, faults in PLAIN.items() for f in faults])
def test_bad_cohort_is_exit_2_naming_it(plain, case):
    plain[case].check()


@pytest.mark.parametrize("case", [f"{c}-{f}" for c, faults in WITH_MODEL.items() for f in faults])
def test_bad_cohort_is_exit_2_naming_it_when_scoring(scoring, model, case):
    scoring[case].check()


# -- ingest bids: the input is a folder of TSV tables -----------------------------------------------

BIDS_FAULTS = ("missing_folder", "file_not_folder", "participants_folder", "participants_random",
               "participants_header_only", "phenotype_random", "phenotype_header_only")


def bad_dataset(fault: str, root: Path, tmp: Path) -> tuple[Path, str]:
    """(the dataset folder to pass, the name stderr must give) for *fault*, made from the copy at *root*."""
    participants, phenotype = root / "participants.tsv", root / "phenotype" / "phenotype.tsv"
    if fault == "missing_folder":
        return tmp / "no_such_dataset", "no_such_dataset"
    if fault == "file_not_folder":
        return random_bytes(tmp / "dataset_file"), "dataset_file"
    if fault == "participants_folder":
        participants.unlink()
        participants.mkdir()
        return root, "participants.tsv"
    if fault.endswith("_random"):
        random_bytes(participants if fault.startswith("participants") else phenotype)
    else:
        table = participants if fault.startswith("participants") else phenotype
        table.write_text(table.read_text().splitlines()[0] + "\n")
    return root, f"{fault.split('_')[0]}.tsv"


@pytest.fixture(scope="module")
def bids(tmp_path_factory) -> dict[str, Probe]:
    probes = {}
    for fault in BIDS_FAULTS:
        tmp = tmp_path_factory.mktemp(f"bids-{fault}")
        root = Path(shutil.copytree(DATASET, tmp / "ds005917"))
        (tmp / "out").mkdir()
        given, named = bad_dataset(fault, root, tmp)
        probes[fault] = Probe(["ingest", "bids", given, "--out", tmp / "out" / "cohort.csv"], (named,), folder=tmp / "out")
    return run_probes(probes)


@pytest.mark.parametrize("fault", BIDS_FAULTS)
def test_bad_bids_dataset_is_exit_2_naming_it(bids, fault):
    bids[fault].check()
