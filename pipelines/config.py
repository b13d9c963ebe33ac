"""Training configuration: YAML loaded once at the entry point into frozen dataclasses.

The shipped configs live in ``pipelines/configs/`` (package data, so they are found after a
wheel install); a config is named by a path, or by the stem of a shipped one (``train_small``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ketamine_response.features.cohort.schema import REMISSION_THRESHOLD
from ketamine_response.features.errors import ConfigError, UsageError
from ketamine_response.features.tasks import TASKS, Task, TaskKind

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "train.yaml"


def _registered_families(task: TaskKind = TaskKind.BINARY) -> tuple[str, ...]:
    from ketamine_response.models.families import family_names  # imported on use: it loads scikit-learn

    return family_names(task)


@dataclass(frozen=True)
class CVConfig:
    design: str = "kfold"
    outer_folds: int = 5
    outer_repeats: int = 2
    inner_folds: int = 3
    # one outer repeat once the smaller outcome stratum (responders or non-responders; relapses) holds this many
    # courses: a second repeat only averages out one random split's noise, which fades as the folds grow
    single_repeat_from: int = 1000


@dataclass(frozen=True)
class SearchConfig:
    budget: int = 4
    selection_metric: str = "log_loss"


@dataclass(frozen=True)
class CalibrationConfig:
    method: str = "sigmoid"


@dataclass(frozen=True)
class EvaluationConfig:
    bootstrap: int = 500
    permutations: int = 19
    permutation_stop: int = 5
    # Riley et al.'s minimum sample size needs the performance anticipated before the data are seen (never
    # the cohort's own estimate: circular). 0.65 is the AUROC of careful ketamine prediction studies: the
    # project's literature figures (section 7 and its pitfalls) give a cross-validated AUROC ceiling of
    # ~0.60-0.72, external AUC 0.72 -> 0.65 (sMRI) and a mean balanced accuracy of 0.63 for adequate-quality
    # studies (Sajjadian 2021). Binary targets; converted to a Cox-Snell R2 at the cohort's event rate.
    anticipated_c_statistic: float = 0.65
    # continuous targets (percentage change in MADRS): a modest R2 of 0.10, below the 13-36% the Niciu clinical
    # model explained in sample (same file, section 7): an in-sample figure overstates out-of-sample R2
    anticipated_r2: float = 0.10
    # the roles table's power: the change in the drug's absolute benefit (risk difference) per SD of a
    # feature to detect with 80% power at two-sided alpha 0.05; 0.10 = 10 percentage points of benefit per SD,
    # a moderator worth acting on (halving it quadruples the patients needed)
    roles_interaction: float = 0.10
    threshold: str | float = "prevalence"
    min_events_per_predictor: float = 10.0
    remission_threshold: float = REMISSION_THRESHOLD

    # keys that were renamed: the old name's error message names the new ones
    RENAMED: ClassVar[dict[str, str]] = {
        "anticipated_r2_cs": "anticipated_c_statistic (binary targets, an AUROC) or anticipated_r2 (continuous targets); "
                             "'auto' is gone: the anticipated performance is prespecified, not taken from the cohort"}


def _registered_learners() -> tuple[str, ...]:
    from ketamine_response.models.benefit import LEARNERS

    return tuple(LEARNERS)


def _default_learners() -> tuple[str, ...]:
    from ketamine_response.models.benefit import DEFAULT_LEARNERS

    return DEFAULT_LEARNERS


@dataclass(frozen=True)
class BenefitConfig:
    """The benefit model, fitted when the cohort has placebo courses (binary targets)."""

    enabled: bool = True
    learners: tuple[str, ...] = field(default_factory=_default_learners)
    propensity: str = "allocation"  # allocation (randomised: the allocation ratio) or estimated (in-fold)
    fdr: float = 0.05               # false discovery rate of the roles table


@dataclass(frozen=True)
class IntervalsConfig:
    """Per-patient intervals: the final model (and the benefit model) refit on bootstrap resamples of patients."""

    replicates: int = 20          # refits of the response model (0: no intervals; their columns stay blank)
    # refits of each benefit model (0: no benefit intervals); fewer than the response model's: a T- or X-learner
    # refit tunes each arm's penalty by cross-validation (about 8 s at 1,000 courses on 2 cores): 20 made train on
    # 1,500 courses 65% slower, 8 keeps it within 30%
    benefit_replicates: int = 8
    level: float = 0.90           # nominal coverage of every interval


@dataclass(frozen=True)
class PolicyConfig:
    """What the evidence must show before the tool claims something: decided here, rendered by reporting."""

    alpha: float = 0.05               # the permutation p the selected procedure must reach (alias and SHAP veto)
    alias_needs_min_sample: bool = True  # no alias below Riley et al.'s minimum sample size
    shap_veto: bool = True            # no feature called consistently important unless the procedure beat permuted labels
    # an estimate from one arm (a subgroup row, a benefit group, a PATH quarter, the benefit figures) with fewer
    # responders or non-responders in that arm shows its counts only
    min_events_per_arm: int = 10
    min_courses_per_group: int = 10   # a subgroup row with fewer courses shows counts only

    def beats_permutations(self, p: float) -> bool:
        """Whether a permutation p is evidence of signal; NaN (no permutations run) is no evidence."""
        return p <= self.alpha

    def shap_shown(self, p: float) -> bool:
        """Whether features may be called consistently important; NaN (no permutations) does not veto."""
        return not self.shap_veto or not p > self.alpha

    def alias(self, p: float, courses: int, below_minimum: bool, minimum: int) -> tuple[bool, str]:
        """(whether a new version earns the alias, the reason when it does not)."""
        if self.alias_needs_min_sample and below_minimum:
            return False, f"below the minimum sample size ({courses} courses, Riley et al. minimum {minimum})"
        if not self.beats_permutations(p):
            return False, ("the permutation test was not run (0 permutations)" if p != p else
                           f"the procedure did not beat permuted labels (permutation p = {p:.3f} > {self.alpha})")
        return True, ""


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 20261129
    cv: CVConfig = field(default_factory=CVConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    families: tuple[str, ...] = field(default_factory=lambda: _registered_families())
    # used instead of families for a continuous target (pct_change_<tp>)
    regression_families: tuple[str, ...] = field(default_factory=lambda: _registered_families(TaskKind.CONTINUOUS))
    # used for a time to relapse (time_to_relapse)
    survival_families: tuple[str, ...] = field(default_factory=lambda: _registered_families(TaskKind.SURVIVAL))
    early_course: bool = False
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    benefit: BenefitConfig = field(default_factory=BenefitConfig)
    intervals: IntervalsConfig = field(default_factory=IntervalsConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    n_jobs: int = 2
    # where the outer folds (with their inner search) and permutations run: local (joblib processes on
    # this machine, n_jobs of them) or spark (Spark tasks through joblibspark, as many at once as the
    # cluster's default parallelism); the same results either way
    backend: str = "local"

    def families_for(self, task: Task) -> tuple[str, ...]:
        """The model families trained for a target of *task* (each task names its config key)."""
        return tuple(getattr(self, task.families_key))

    def flat(self) -> dict[str, str]:
        """Dotted key → value, for MLflow params."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if dataclasses.is_dataclass(value):
                for f in dataclasses.fields(value):
                    walk(f"{prefix}{f.name}.", getattr(value, f.name))
            else:
                out[prefix.rstrip(".")] = ",".join(value) if isinstance(value, tuple) else str(value)

        walk("", self)
        return out

    def as_yaml(self, task: Task | None = None) -> str:
        """The config as a file ``train --config`` reads back into an equal config (the run's config.yaml).

        Nested sections and typed values, as :func:`load_config` reads them (not :meth:`flat`'s dotted text,
        which is for MLflow params). *task*: the target's task when ``families`` was replaced by that task's
        list (``run_train`` does, for a continuous target or a time to relapse); ``families`` is then left
        out, as those names belong to ``<task>_families`` and the response families were not used.
        """
        import yaml

        def plain(value: Any) -> Any:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return list(value) if isinstance(value, tuple) else value

        raw = plain(self)
        if task is not None and task.families_key != "families":
            del raw["families"]
        return ("# the config of a training run: re-run it with `ketamine-response train COHORT --target T "
                "--config config.yaml`\n" + yaml.safe_dump(raw, sort_keys=False))


def _build(cls: type, raw: Any, where: str, path: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: '{where.rstrip('.') or 'top level'}' must be a mapping of keys to values.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(map(str, set(raw) - set(fields)))
    if unknown:
        renamed = getattr(cls, "RENAMED", {}).get(unknown[0])
        raise ConfigError(f"{path}: unknown key '{where}{unknown[0]}'; " + (f"renamed: use {renamed}. " if renamed else "")
                          + f"allowed keys: {', '.join(fields)}.")
    values = {}
    for name, value in raw.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            values[name] = _build(type(default), value, f"{where}{name}.", path)
        elif isinstance(default, tuple):
            values[name] = tuple(value) if isinstance(value, list) else value
        else:
            values[name] = value
    return cls(**values)


def _typed(text: Any, default: Any) -> Any:
    """A value of a dotted config (MLflow params: all text) as the type of its field's default; text that
    does not convert stays text, for the checks to name."""
    if not isinstance(text, str):
        return text
    try:
        if isinstance(default, bool):
            return {"True": True, "False": False}.get(text, text)
        if isinstance(default, tuple):
            return tuple(text.split(",")) if text else ()
        if isinstance(default, (int, float)):
            return type(default)(text)
        return float(text) if default == "prevalence" and text != "prevalence" else text  # evaluation.threshold
    except ValueError:
        return text


def _nested(raw: dict, path: str) -> dict:
    """A config written with dotted keys (``cv.outer_folds: '5'``, as runs logged config.yaml before it was
    written nested) as the nested, typed mapping :func:`_build` reads."""
    out: dict = {}
    for key, text in raw.items():
        *sections, name = str(key).split(".")
        where, cls = out, TrainConfig  # type: dict, Any
        for section in sections:
            default = getattr(cls(), section, None)
            if not dataclasses.is_dataclass(default):
                raise ConfigError(f"{path}: unknown key '{key}'; allowed sections: "
                                  f"{', '.join(f.name for f in dataclasses.fields(TrainConfig))}.")
            where, cls = where.setdefault(section, {}), type(default)
        where[name] = _typed(text, getattr(cls(), name, None))
    if "families" in out and out["families"] in (out.get("regression_families"), out.get("survival_families")):
        del out["families"]  # run_train had copied another task's families there (see TrainConfig.as_yaml)
    return out


def _family_list_ok(c: TrainConfig, task: Task) -> tuple[bool, str]:
    known, value = _registered_families(task.family_kind), getattr(c, task.families_key)
    ok = (isinstance(value, tuple) and len(value) > 0 and all(isinstance(f, str) for f in value)
          and set(value) <= set(known) and len(set(value)) == len(value))
    return ok, f"{task.families_key} must be a non-empty list of distinct names from {', '.join(known)}"


def _policy_problems(p: PolicyConfig) -> list[tuple[bool, str]]:
    return [
        (isinstance(p.alpha, float) and 0 < p.alpha < 1, "policy.alpha must be between 0 and 1"),
        (isinstance(p.alias_needs_min_sample, bool), "policy.alias_needs_min_sample must be true or false"),
        (isinstance(p.shap_veto, bool), "policy.shap_veto must be true or false"),
        (isinstance(p.min_events_per_arm, int) and not isinstance(p.min_events_per_arm, bool) and p.min_events_per_arm >= 1,
         "policy.min_events_per_arm must be a whole number >= 1"),
        (isinstance(p.min_courses_per_group, int) and not isinstance(p.min_courses_per_group, bool)
         and p.min_courses_per_group >= 1, "policy.min_courses_per_group must be a whole number >= 1"),
    ]


def _interval_problems(i: IntervalsConfig) -> list[tuple[bool, str]]:
    def count(v: Any) -> bool:  # one replicate has no spread: 0 (none) or at least 2
        return isinstance(v, int) and not isinstance(v, bool) and (v == 0 or 2 <= v <= 1000)

    return [(count(i.replicates), "intervals.replicates must be 0 (no intervals) or a whole number from 2 to 1000"),
            (count(i.benefit_replicates),
             "intervals.benefit_replicates must be 0 (no benefit intervals) or a whole number from 2 to 1000"),
            (_number(i.level) and 0 < i.level < 1, "intervals.level must be a coverage between 0 and 1, e.g. 0.90")]


def _number(value: Any) -> bool:
    """A YAML number (true and false are not: bool is an int in Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Every count the run repeats work by, with the range it must fall in: the upper bounds keep a typo (an extra
# zero, 1e9) from running for days or exhausting memory; each is well above any value a study needs (a
# bootstrap of 10,000 resamples, 99 permutations for p = 0.01, 10 x 10-fold CV).
COUNTS: dict[str, tuple[int, int]] = {
    "cv.outer_folds": (2, 50),
    "cv.outer_repeats": (1, 100),
    "cv.inner_folds": (2, 20),
    "cv.single_repeat_from": (1, 10_000_000),  # a cohort size, not work: bounded only to be a sane number
    "search.budget": (1, 200),
    "evaluation.bootstrap": (50, 20_000),
    "evaluation.permutations": (0, 9999),
    "evaluation.permutation_stop": (1, 9999),
}


def _whole(value: Any) -> bool:
    """A YAML whole number (true and false are not; nor 1e9, which YAML reads as text, or 5.0)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _counts(c: TrainConfig) -> list[tuple[bool, str]]:
    """(within range, message) of each of :data:`COUNTS`, the message naming the range and the value given."""
    out = []
    for key, (low, high) in COUNTS.items():
        section, name = key.split(".")
        value = getattr(getattr(c, section), name)
        out.append((_whole(value) and low <= value <= high,
                    f"{key} must be a whole number from {low} to {high}, got {value!r}"))
    return out


def _problems(c: TrainConfig) -> list[str]:
    e, cv = c.evaluation, c.cv
    checks = [
        (_whole(c.seed) and 0 <= c.seed < 2**32,
         "seed must be a whole number from 0 to 4294967295"),
        (cv.design in ("kfold", "site"), f"cv.design must be kfold or site, got {cv.design!r}"),
        *_counts(c),
        (c.search.selection_metric in ("log_loss", "brier", "auroc"),
         "search.selection_metric must be log_loss, brier or auroc"),
        *dict.fromkeys(_family_list_ok(c, task) for task in TASKS.values()),
        (c.calibration.method in ("sigmoid", "isotonic"), "calibration.method must be sigmoid or isotonic"),
        (_number(e.anticipated_c_statistic) and 0.5 < e.anticipated_c_statistic < 1,
         "evaluation.anticipated_c_statistic must be a C statistic (AUROC) between 0.5 and 1, both excluded"),
        (_number(e.anticipated_r2) and 0 < e.anticipated_r2 < 1, "evaluation.anticipated_r2 must be an R2 between 0 and 1"),
        (_number(e.roles_interaction) and 0 < e.roles_interaction < 1,
         "evaluation.roles_interaction must be a risk difference per SD between 0 and 1"),
        (e.threshold == "prevalence" or (isinstance(e.threshold, (int, float)) and 0 < e.threshold < 1),
         "evaluation.threshold must be 'prevalence' or a probability between 0 and 1"),
        (isinstance(e.min_events_per_predictor, (int, float)) and e.min_events_per_predictor > 0,
         "evaluation.min_events_per_predictor must be > 0"),
        (isinstance(e.remission_threshold, (int, float)) and 0 <= e.remission_threshold <= 60,
         "evaluation.remission_threshold must be within 0-60"),
        (isinstance(c.n_jobs, int) and not isinstance(c.n_jobs, bool) and (c.n_jobs == -1 or 1 <= c.n_jobs <= 64),
         "n_jobs must be 1-64 parallel workers, or -1 for every core"),
        (c.backend in ("local", "spark"), f"backend must be local or spark, got {c.backend!r}"),
        (isinstance(c.early_course, bool), "early_course must be true or false"),
        (isinstance(c.benefit.enabled, bool), "benefit.enabled must be true or false"),
        (isinstance(c.benefit.learners, tuple) and len(c.benefit.learners) > 0
         and set(c.benefit.learners) <= set(_registered_learners()) and len(set(c.benefit.learners)) == len(c.benefit.learners),
         f"benefit.learners must be a non-empty list of distinct names from {', '.join(_registered_learners())}, "
         f"got {list(c.benefit.learners) if isinstance(c.benefit.learners, tuple) else c.benefit.learners!r}"),
        (c.benefit.propensity in ("allocation", "estimated"), "benefit.propensity must be allocation or estimated"),
        (isinstance(c.benefit.fdr, float) and 0 < c.benefit.fdr < 1, "benefit.fdr must be between 0 and 1"),
        *_policy_problems(c.policy),
        *_interval_problems(c.intervals),
    ]
    return [message for ok, message in checks if not ok]


def shipped_configs() -> list[str]:
    """Names of the configs shipped with the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config(name: str | Path | None) -> Path:
    """The config file for a path or a shipped config's name; None is the shipped default."""
    if name is None:
        return DEFAULT_CONFIG
    path = Path(name)
    try:
        found = path.is_file()
    except OSError:  # e.g. a name too long for the file system
        found = False
    if not found and str(name) in shipped_configs():
        return CONFIG_DIR / f"{name}.yaml"
    if not found:
        if str(name).strip() and path.exists():
            raise ConfigError(f"{path}: not a config file (a folder or a device). Give a path to a YAML file.")
        raise ConfigError(f"{path}: the config file does not exist. Give a path to a YAML file or the name "
                          f"of a shipped config ({', '.join(shipped_configs())}).")
    return path


def load_config(path: str | Path | None = None, **overrides: Any) -> TrainConfig:
    """Load a training config (default: the shipped ``train``); *overrides* replace top-level sections.

    Raises
    ------
    ConfigError
        If the file is missing or not YAML, has unknown keys, or impossible values.
    """
    from ketamine_response.features.yaml_file import read_yaml

    path = resolve_config(path)
    raw = read_yaml(path, "config file", ConfigError) or {}
    if isinstance(raw, dict) and any("." in str(key) for key in raw):
        raw = _nested(raw, str(path))
    config = _build(TrainConfig, raw, "", str(path))
    config = dataclasses.replace(config, **overrides)
    problems = _problems(config)
    if problems:
        raise ConfigError(f"{path}: impossible value: {problems[0]}" +
                          (f" (and {len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else "") + ".")
    return _fit_to_machine(config, str(path))


def _fit_to_machine(config: TrainConfig, path: str) -> TrainConfig:
    """n_jobs no larger than the machine's cores (-1: all of them): more workers only add memory."""
    import logging
    import os

    cores = os.cpu_count() or 1
    if config.n_jobs == -1 or config.n_jobs > cores:
        if config.n_jobs > cores:
            logging.getLogger(__name__).warning("%s: n_jobs %d is more than this machine's %d cores; using %d",
                                                path, config.n_jobs, cores, cores)
        return dataclasses.replace(config, n_jobs=cores)
    return config


def with_overrides(config: TrainConfig, cv: str | None = None, backend: str | None = None,
                   permutations: int | None = None) -> TrainConfig:
    """*config* with ``train``'s --cv, --backend and --permutations applied (None keeps the config's value).

    Raises
    ------
    UsageError
        For a number of permutations outside 0-9999 (argparse has checked the other two's choices).
    """
    if cv:
        config = dataclasses.replace(config, cv=dataclasses.replace(config.cv, design=cv))
    if backend:
        config = dataclasses.replace(config, backend=backend)
    if permutations is not None:
        if not 0 <= permutations <= 9999:
            raise UsageError(f"--permutations must be 0-9999, got {permutations}")
        config = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation,
                                                                            permutations=permutations))
    return config
