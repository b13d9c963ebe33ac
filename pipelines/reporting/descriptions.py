"""Words that go into the MLflow UI and the terminal about one training: the run's and each family's
markdown description, the registry version's description and tags, why the selected procedure was
selected, and whether the version earned an alias. Aggregates only."""

from __future__ import annotations

from collections import Counter

from ketamine_response.features.tasks import parse_target
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.reporting.content import headline_sentence, test_sentence
from ketamine_response.pipelines.reporting.wording import first_question
from ketamine_response.pipelines.result import TrainingResult

# The inner loop's criteria (training/nested.py CRITERIA) in words
CRITERION_WORDS = {"log_loss": "log-loss", "brier": "Brier score", "auroc": "AUROC", "mse": "MSE (mean squared error)",
                   "partial_likelihood": "Cox partial likelihood"}


def selection_criterion(result: TrainingResult) -> str:
    """What the inner loop chose families by, in words: the task's own loss (MSE for a percentage change, the
    partial likelihood for a time to relapse), else the config's ``search.selection_metric``."""
    metric = result.data.task.selection_metric or result.config.search.selection_metric
    return CRITERION_WORDS.get(metric, metric)


def selection_reason(result: TrainingResult) -> str:
    """Why the 'selected' row is not simply the family with the best row in the table."""
    counts = Counter(f.selected for f in result.folds)
    chosen = ", ".join(f"{name} {n}" for name, n in counts.most_common())
    metric = selection_criterion(result)
    return (f"'selected' is the whole procedure: inside each of the {len(result.folds)} outer folds the inner CV "
            f"chose a family by {metric} (chosen: {chosen}); its row is judged on those choices. A family whose "
            f"own row scores higher could not have been known to be best without the test folds. The final model "
            f"refit on all courses is {result.selected}.")


def _headline_table(result: TrainingResult) -> str:
    table = result.table()
    h = result.evaluations[SELECTED].headline
    s = result.permutation.statistic
    cols = [c for c in (f"{h}_active", h, "brier", f"{s}_p", f"{s}_p_adjusted") if c in table]
    head = "| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols)
    rows = []
    for r in table.to_dict("records"):
        cells = [f"{r[c]:.3f}" + (f" ({r[c + '_ci_low']:.3f}–{r[c + '_ci_high']:.3f})" if c + "_ci_low" in r else "")
                 for c in cols]
        rows.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def run_description(result: TrainingResult, alias_reason: str = "") -> str:
    """The parent run's markdown: warnings first, the headline with its CI, the table, the selection reason."""
    ev = result.evaluations[SELECTED]
    warnings = [f"**{n}**" for n in result.warnings]
    version = (f"Registered as version {result.version}" + (f" with no alias: {alias_reason}." if alias_reason else ".")
               if result.version else "")
    question = first_question(ev.task, parse_target(result.target))
    return "\n\n".join([*warnings, f"Target `{result.target}`, {result.config.cv.design} CV; it answers: {question} Selected procedure: "
                        f"{headline_sentence(ev)}; {test_sentence(result, SELECTED)}.", _headline_table(result), selection_reason(result), version])


def family_description(result: TrainingResult, family: str) -> str:
    """A child run's markdown: this family's out-of-fold figures, and that it is one candidate of the parent."""
    ev = result.evaluations[family]
    return (f"Family `{family}` of the training of `{result.target}` (parent run): {headline_sentence(ev)}; "
            f"{test_sentence(result, family)}. Chosen by the inner loop in "
            f"{sum(f.selected == family for f in result.folds)} of {len(result.folds)} outer folds.")


def version_tags(result: TrainingResult, digest: str, experiment: str, run_id: str) -> dict[str, str]:
    """Registry version tags: what a reader needs to tell two versions apart."""
    ev = result.evaluations[SELECTED]
    tags = {"target": result.target, "cv_design": result.config.cv.design, "data_digest": digest,
            "experiment": experiment, "run_id": run_id, "selected_family": result.selected,
            f"{result.permutation.statistic}_p": f"{result.permutation.p['selected']:.3f}",
            "n_courses": str(len(result.data.y))}
    for name in ("auroc_active", ev.headline):
        if name in ev.ci:
            low, high = ev.ci[name]
            tags[name] = f"{ev.metrics[name]:.3f} (95% CI {low:.3f} to {high:.3f})"
    return tags


def version_description(result: TrainingResult, digest: str, experiment: str, alias_reason: str) -> str:
    """The registry version's description (markdown)."""
    ev = result.evaluations[SELECTED]
    return (f"`{result.target}` from experiment `{experiment}`, {result.config.cv.design} CV, data SHA-256 `{digest}`. "
            f"{headline_sentence(ev)}; {test_sentence(result, SELECTED)}."
            + (f" No alias: {alias_reason}." if alias_reason else ""))
