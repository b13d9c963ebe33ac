"""The typed outcome of a training run, shared by the train flow, reporting and tracking."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ketamine_response.features.build import FeatureTable
from ketamine_response.models.families import SELECTED
from ketamine_response.models.wrapper import CohortModel
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.benefit import BenefitResult
from ketamine_response.pipelines.evaluation.evaluate import Evaluation
from ketamine_response.pipelines.evaluation.explanation import ShapSummary
from ketamine_response.pipelines.evaluation.sample_size import SampleSize
from ketamine_response.pipelines.folds import Data, FoldResult
from ketamine_response.pipelines.training.permutation import PermutationResult


@dataclass
class TrainingResult:
    """What a training run found; nothing here is patient-level except ``data`` (never logged).

    ``selected`` is the family refit on all courses (the logged model); ``evaluations`` and
    ``permutation`` are keyed by family name and ``"selected"`` (the whole procedure).
    """

    target: str
    config: TrainConfig
    data: Data
    features: FeatureTable
    folds: list[FoldResult]
    selected: str
    evaluations: dict[str, Evaluation]
    permutation: PermutationResult
    sample_size: SampleSize
    model: CohortModel
    shap: ShapSummary
    notes: list[str] = field(default_factory=list)
    benefit: BenefitResult | None = None
    # the notes a reader must see first (also in ``notes``), flagged where they are made, never read back from text
    warnings: list[str] = field(default_factory=list)
    run_id: str = ""
    artifact_uri: str = ""
    version: int = 0
    alias: str = ""  # the alias the version was given ("" when none, with the reason in alias_reason)
    alias_reason: str = ""

    def table(self) -> pd.DataFrame:
        """The comparison table: one row per family, then the selected procedure."""
        perm = self.permutation
        rows = [self.evaluations[f].row(f, perm.metrics(f)) for f in self.config.families]
        rows.append(self.evaluations[SELECTED].row(f"selected ({self.selected})", perm.metrics(SELECTED)))
        return pd.DataFrame(rows)
