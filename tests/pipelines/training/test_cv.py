import numpy as np
import pytest

from ketamine_response.features.tasks import TASKS, TaskKind
from ketamine_response.pipelines.training.cv import TrainingDataError, check_cv_feasible, outer_splits, permute_labels


def _design(n_patients=60, seed=0):
    rng = np.random.default_rng(seed)
    patients = np.repeat([f"P{i}" for i in range(n_patients)], 2)[: n_patients * 2 - 30]
    sites = np.array([f"s{int(p[1:]) % 3}" for p in patients])
    treatments = np.where(np.arange(len(patients)) % 2, "placebo", "ketamine_iv")
    y = (rng.random(len(patients)) < 0.4).astype(float)
    return y, patients, sites, treatments


def test_outer_splits_never_share_a_patient():
    y, patients, sites, _ = _design()
    for split in outer_splits(y, patients, sites, "kfold", 5, 2, 1):
        assert not set(patients[split.train]) & set(patients[split.test])
    site_splits = outer_splits(y, patients, sites, "site", 5, 2, 1)
    assert len(site_splits) == 3
    for split in site_splits:
        assert len(set(sites[split.test])) == 1 and not set(sites[split.test]) & set(sites[split.train])


def test_permutation_moves_whole_patients_within_site():
    y, patients, sites, treatments = _design()
    for seed in range(5):
        permuted = permute_labels(y, patients, sites, treatments, np.random.default_rng(seed))
        for site in np.unique(sites):
            m = sites == site
            assert sorted(permuted[m]) == sorted(y[m])  # labels stay in their site
        pairs_before = sorted(tuple(y[patients == p]) for p in np.unique(patients) if (patients == p).sum() == 2)
        pairs_after = sorted(tuple(permuted[patients == p]) for p in np.unique(patients) if (patients == p).sum() == 2)
        assert pairs_before == pairs_after  # crossover courses keep their pairing
    assert not np.array_equal(permute_labels(y, patients, sites, treatments, np.random.default_rng(1)), y)


def test_infeasible_designs_are_refused():
    y, patients, sites, _ = _design()
    with pytest.raises(TrainingDataError, match="same class"):
        check_cv_feasible(np.zeros_like(y), patients, sites, "kfold", 5, 3, "c.csv")
    few = np.zeros_like(y)
    few[:4] = 1
    with pytest.raises(TrainingDataError, match=r"only 4 courses in the smaller outcome class.*needs at least 15"):
        check_cv_feasible(few, patients, sites, "kfold", 5, 3, "c.csv")
    with pytest.raises(TrainingDataError, match="needs at least 2 sites"):
        check_cv_feasible(y, patients, np.array(["one"] * len(y)), "site", 5, 3, "c.csv")


def test_an_outcome_that_is_not_the_tasks_label_is_refused():
    y, patients, sites, _ = _design()
    continuous = np.linspace(-80, 20, len(y))
    with pytest.raises(TrainingDataError, match="not a 0/1 event per course"):
        check_cv_feasible(continuous, patients, sites, "kfold", 5, 3, "c.csv")  # the binary task by default
    change = TASKS[TaskKind.CONTINUOUS]
    check_cv_feasible(continuous, patients, sites, "kfold", 5, 3, "c.csv", change)
    with pytest.raises(TrainingDataError, match="not a percentage change per course"):
        check_cv_feasible(np.where(np.arange(len(y)) == 0, np.inf, continuous), patients, sites, "kfold", 5, 3, "c.csv", change)


def test_group_folds_are_scikit_learns_folds():
    """The vectorised greedy step places every patient where scikit-learn's StratifiedGroupKFold does."""
    from sklearn.model_selection import StratifiedGroupKFold

    from ketamine_response.pipelines.training.cv import GroupFolds

    rng = np.random.default_rng(0)
    compared = 0
    for trial in range(120):
        n, k = int(rng.integers(30, 600)), int(rng.integers(2, 6))
        groups = rng.integers(0, max(k, n // int(rng.integers(1, 3))), n)  # singletons and pairs, as crossover cohorts
        y = rng.integers(0, int(rng.integers(2, 6)), n)
        if np.unique(y, return_counts=True)[1].min() < k or len(np.unique(groups)) < k:
            continue
        ours = [t.tolist() for _, t in GroupFolds(k, shuffle=True, random_state=trial).split(y, y, groups)]
        theirs = [t.tolist() for _, t in StratifiedGroupKFold(k, shuffle=True, random_state=trial).split(y, y, groups)]
        assert ours == theirs, trial
        compared += 1
    assert compared > 80
