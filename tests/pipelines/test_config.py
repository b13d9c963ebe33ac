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
    ("cv: {outer_folds: 1}", r"cv\.outer_folds must be a whole number from 2 to 50, got 1"),
    ("evaluation: {bootstrap: 1e9}", r"evaluation\.bootstrap must be a whole number from 50 to 20000, got '1e9'"),
    ("evaluation: {bootstrap: 1.0e+9}", r"evaluation\.bootstrap must be a whole number from 50 to 20000, got 1000000000\.0"),
    ("evaluation: {bootstrap: 20001}", r"evaluation\.bootstrap must be a whole number from 50 to 20000"),
    ("cv: {outer_repeats: 1000000}", r"cv\.outer_repeats must be a whole number from 1 to 100, got 1000000"),
    ("cv: {inner_folds: 21}", r"cv\.inner_folds must be a whole number from 2 to 20"),
    ("search: {budget: 100000}", r"search\.budget must be a whole number from 1 to 200"),
    ("evaluation: {permutations: 10000}", r"evaluation\.permutations must be a whole number from 0 to 9999"),
    ("evaluation: {permutation_stop: true}", r"evaluation\.permutation_stop must be a whole number from 1 to 9999"),
    ("intervals: {replicates: 100000}", r"intervals\.replicates must be 0 \(no intervals\) or a whole number from 2 to 1000"),
    ("families: [prevalence, forest]", r"families must be a non-empty list"),
    ("evaluation: {threshold: 1.5}", r"threshold must be 'prevalence' or a probability"),
    ("search: {selection_metric: accuracy}", r"selection_metric must be log_loss, brier or auroc"),
    ("cv: 5", r"'cv' must be a mapping"),
    ("seed: [", r"not valid YAML"),
    ("benefit: {learners: [r_forest]}", r"benefit\.learners must be a non-empty list of distinct names from s_learner"),
    ("benefit: {learners: []}", r"benefit\.learners must be a non-empty list"),
    ("benefit: {learners: [s_learner, s_learner]}", r"benefit\.learners must be a non-empty list of distinct"),
    ("benefit: {fdr: 2.0}", r"benefit\.fdr must be between 0 and 1"),
    ("benefit: {propensity: guess}", r"benefit\.propensity must be allocation or estimated"),
    ("benefit: {enabled: 'yes'}", r"benefit\.enabled must be true or false"),
    ("benefit: {alpha: 0.1}", r"unknown key 'benefit\.alpha'"),
    ("policy: {alpha: 1.5}", r"policy\.alpha must be between 0 and 1"),
    ("policy: {shap_veto: 'no'}", r"policy\.shap_veto must be true or false"),
    ("policy: {min_events_per_arm: 0}", r"policy\.min_events_per_arm must be a whole number >= 1"),
    ("policy: {veto: true}", r"unknown key 'policy\.veto'"),
    ("intervals: {replicates: 1}", r"intervals\.replicates must be 0 \(no intervals\) or a whole number from 2"),
    ("intervals: {benefit_replicates: 2.5}", r"intervals\.benefit_replicates must be 0"),
    ("intervals: {level: 90}", r"intervals\.level must be a coverage between 0 and 1"),
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


def test_policy_decides_the_alias_and_the_shap_veto(tmp_path):
    policy = load_config().policy
    assert policy.alias(0.01, 900, False, 500) == (True, "")
    earned, why = policy.alias(0.2, 900, False, 500)
    assert not earned and "permutation p = 0.200 > 0.05" in why
    assert policy.alias(float("nan"), 900, False, 500) == (False, "the permutation test was not run (0 permutations)")
    assert "below the minimum sample size (300 courses" in policy.alias(0.01, 300, True, 500)[1]
    assert policy.shap_shown(0.01) and policy.shap_shown(float("nan")) and not policy.shap_shown(0.2)
    path = tmp_path / "lenient.yaml"  # the rules are the config's, not the code's
    path.write_text("policy: {alpha: 0.25, alias_needs_min_sample: false, shap_veto: false}")
    lenient = load_config(path).policy
    assert lenient.alias(0.2, 300, True, 500) == (True, "") and lenient.shap_shown(0.9)


@pytest.mark.parametrize("name", ["train", "train_small"])
def test_written_config_reads_back_equal(tmp_path, name):
    import yaml

    config = load_config(name)
    path = tmp_path / "config.yaml"
    path.write_text(config.as_yaml())
    assert load_config(path) == config
    # runs logged before: dotted keys with text values (MLflow params), read as the same config
    path.write_text(yaml.safe_dump(config.flat()))
    assert load_config(path) == config
    path.write_text("cv.outer_folds: '3'\nseed: '7'\nevaluation.threshold: '0.2'\nbenefit.enabled: 'False'\n")
    read = load_config(path)
    assert (read.cv.outer_folds, read.seed, read.evaluation.threshold, read.benefit.enabled) == (3, 7, 0.2, False)
    path.write_text("cv.folds: '3'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'cv\.folds'"):
        load_config(path)


def test_a_continuous_targets_config_leaves_out_the_response_families(tmp_path):
    import yaml

    from ketamine_response.features.tasks import parse_target, task_of

    task = task_of(parse_target("pct_change_day2"))
    config = load_config()
    ran = dataclasses.replace(config, families=config.families_for(task))  # what run_train trains with
    path = tmp_path / "config.yaml"
    path.write_text(ran.as_yaml(task))
    assert "\nfamilies:" not in path.read_text() and load_config(path).families_for(task) == ran.families_for(task)
    path.write_text(yaml.safe_dump(ran.flat()))  # logged before: dotted keys, families copied from the task's
    assert load_config(path).families_for(task) == ran.families_for(task)


def test_the_runs_logged_config_reruns_with_train_config(strong_run, tmp_path):
    import mlflow.artifacts

    result, _, _ = strong_run
    logged = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="config.yaml", dst_path=str(tmp_path))
    assert load_config(logged) == result.config
