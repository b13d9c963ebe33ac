"""Hostile YAML (a billion-laughs bomb, a repeated key, random bytes, a missing file or a folder) wherever a
YAML file is read; model URIs that are not models; out-of-range ports. All exit 2 naming what is wrong,
quickly (each probe has 60 s), without a traceback and without leaving an output.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.probes import DATASET, EXPERIMENT, LEAN_CONFIG, TARGET, Probe, cli, first_patient, random_bytes, run_probes
from tests.limits import HANG_S

# nine levels of nine aliases: 9**9 (387 million) strings once expanded, 1 kB on disk
BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{b}: &{b} [{','.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi"))
REPEATED = {  # a key given twice, in each file's own vocabulary
    "config": "seed: 1\ncv: {design: kfold}\nseed: 2\n",
    "mapping": "columns:\n  crp: crp_mg_l\ncolumns:\n  il6: il6_pg_ml\n",
    "bids": "site: first\nsite: second\n",
}
KINDS = ("bomb", "repeated", "random", "missing", "folder")
HOSTILE = ("bomb", "repeated")
# (command, which YAML it reads) -> what is tried: everything where it is cheap or a reader of its own,
# the hostile two elsewhere (the same mapping reader as validate's)
PLAIN = {"train-config": KINDS, "validate-mapping": KINDS, "features-mapping": KINDS, "ingest-mapping": KINDS,
         "train-mapping": HOSTILE}
WITH_MODEL = {"score-mapping": HOSTILE, "explain-mapping": HOSTILE}


def bad_yaml(kind: str, role: str, folder: Path) -> Path:
    path = folder / f"{kind}.yaml"
    if kind == "bomb":
        path.write_text(BOMB)
    elif kind == "repeated":
        path.write_text(REPEATED[role])
    elif kind == "random":
        random_bytes(path, nul=False)
    elif kind == "folder":
        path.mkdir()
    return path


def yaml_args(case: str, yaml: Path, cohort: Path, out: Path, model=None) -> list[object]:
    if case == "ingest-mapping":
        return ["ingest", "bids", DATASET, "--out", out / "cohort.csv", "--mapping", yaml]
    train = ["train", cohort, "--target", TARGET, "--permutations", 0, "--experiment", f"{EXPERIMENT}-probes"]
    return {
        "train-config": lambda: [*train, "--config", yaml],
        "train-mapping": lambda: [*train, "--config", LEAN_CONFIG, "--mapping", yaml],
        "validate-mapping": lambda: ["validate", cohort, "--problems", out / "problems.csv", "--mapping", yaml],
        "features-mapping": lambda: ["features", cohort, "--target", TARGET, "--out", out / "f.csv", "--mapping", yaml],
        "score-mapping": lambda: ["score", cohort, "--out", out / "scores.csv", "--model", model.uri, "--mapping", yaml],
        "explain-mapping": lambda: ["explain", cohort, "--model", model.uri, "--patient", first_patient(cohort),
                                    "--out", out / "waterfall.png", "--mapping", yaml],
    }[case]()


def yaml_probes(cases: dict[str, tuple[str, ...]], tmp: Path, cohort: Path, model=None) -> dict[str, Probe]:
    probes = {}
    for case, kinds in cases.items():
        role = {"train-config": "config", "ingest-mapping": "bids"}.get(case, "mapping")
        for kind in kinds:
            folder = tmp / f"{case}-{kind}"
            (folder / "out").mkdir(parents=True)
            yaml = bad_yaml(kind, role, folder)
            probes[f"{case}-{kind}"] = Probe(yaml_args(case, yaml, cohort, folder / "out", model), (yaml.name,),
                                             folder=folder / "out")
    return probes


def uri_probes(tmp: Path, cohort: Path) -> dict[str, Probe]:
    """Model URIs that are not a registered model of this store: a plain folder, HTTP, S3, unknown names."""
    (tmp / "not_a_model").mkdir()
    (tmp / "not_a_model" / "MLmodel.txt").write_text("nothing here\n")
    uris = {"folder": tmp / "not_a_model", "http": "http://127.0.0.1:9/x", "s3": "s3://bucket/x",
            "unknown_name": "models:/no-such-model/1", "unknown_alias": "models:/no-such-model@champion"}
    probes = {}
    for label, uri in uris.items():
        for command in ("score", "explain") if label == "folder" else ("score",):
            out = tmp / f"{command}-{label}"
            out.mkdir()
            args = (["score", cohort, "--out", out / "scores.csv", "--model", uri] if command == "score" else
                    ["explain", cohort, "--model", uri, "--patient", first_patient(cohort), "--out", out / "w.png"])
            probes[f"{command}-{label}"] = Probe(args, (uri,), folder=out)
    (tmp / "report").mkdir()
    probes["report-unknown_run"] = Probe(["report", "0123456789abcdef0123456789abcdef", "--out", tmp / "report" / "r"],
                                         ("0123456789abcdef0123456789abcdef",), folder=tmp / "report")
    return probes


@pytest.fixture(scope="module")
def plain(cohort, tmp_path_factory) -> dict[str, Probe]:
    probes = yaml_probes(PLAIN, tmp_path_factory.mktemp("yaml"), cohort)
    return run_probes(probes | uri_probes(tmp_path_factory.mktemp("uris"), cohort))


@pytest.fixture(scope="module")
def scoring(cohort, model, tmp_path_factory) -> dict[str, Probe]:
    return run_probes(yaml_probes(WITH_MODEL, tmp_path_factory.mktemp("yaml-scoring"), cohort, model))


@pytest.mark.parametrize("case", [f"{c}-{k}" for c, kinds in PLAIN.items() for k in kinds])
def test_hostile_yaml(plain, case):
    plain[case].check()


@pytest.mark.parametrize("case", [f"{c}-{k}" for c, kinds in WITH_MODEL.items() for k in kinds])
def test_hostile_yaml_when_scoring(scoring, case):
    scoring[case].check()


@pytest.mark.parametrize("case", ["score-folder", "score-http", "score-s3", "score-unknown_name", "score-unknown_alias",
                                  "explain-folder", "report-unknown_run"])
def test_not_a_model(plain, case):
    plain[case].check()


@pytest.mark.parametrize("port", ["-1", "0", "70000", "abc"])
def test_ui_port_out_of_range(store, port):
    result = cli("ui", "--port", port, timeout=HANG_S)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "--port" in result.stderr and port in result.stderr, result.stderr
