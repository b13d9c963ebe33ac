import dataclasses

import pytest

from ketamine_response.pipelines.config import DEFAULT_CONFIG, ConfigError, load_config


def test_default_config_loads_and_flattens():
    config = load_config()
    assert config.cv.design == "kfold" and config.evaluation.permutations >= 19
    flat = config.flat()
    assert flat["cv.outer_folds"] == str(config.cv.outer_folds)
    assert flat["families"] == ",".join(config.families)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("text, message", [
    ("sed: 1", r"unknown key 'sed'; allowed keys: seed"),
    ("cv: {folds: 3}", r"unknown key 'cv\.folds'"),
    ("cv: {outer_folds: 1}", r"cv\.outer_folds must be a whole number >= 2"),
    ("families: [prevalence, forest]", r"families must be a non-empty list"),
    ("evaluation: {threshold: 1.5}", r"threshold must be 'prevalence' or a probability"),
    ("search: {selection_metric: accuracy}", r"selection_metric must be log_loss, brier or auroc"),
    ("cv: 5", r"'cv' must be a mapping"),
    ("seed: [", r"not valid YAML"),
    ("benefit: {learners: [x_learner]}", r"benefit\.learners must be a non-empty list of distinct names from s_learner"),
    ("benefit: {learners: []}", r"benefit\.learners must be a non-empty list"),
    ("benefit: {learners: [s_learner, s_learner]}", r"benefit\.learners must be a non-empty list of distinct"),
    ("benefit: {fdr: 2.0}", r"benefit\.fdr must be between 0 and 1"),
    ("benefit: {propensity: guess}", r"benefit\.propensity must be allocation or estimated"),
    ("benefit: {enabled: 'yes'}", r"benefit\.enabled must be true or false"),
    ("benefit: {alpha: 0.1}", r"unknown key 'benefit\.alpha'"),
])
def test_bad_configs_are_refused(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.yaml")
    assert DEFAULT_CONFIG.is_file()


@pytest.mark.parametrize("n_jobs", [-1, 64])
def test_n_jobs_is_fitted_to_the_machine(tmp_path, n_jobs):
    import os

    path = tmp_path / "c.yaml"
    path.write_text(f"n_jobs: {n_jobs}")
    assert load_config(path).n_jobs == min(64, os.cpu_count() or 1)


def test_n_jobs_zero_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("n_jobs: 0")
    with pytest.raises(ConfigError, match="n_jobs must be 1-64 parallel workers, or -1"):
        load_config(path)
