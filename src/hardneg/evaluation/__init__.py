"""Evaluation: pure metrics as MTEB computes them (``metrics``) and the orchestration
encode -> search -> metrics (``run.evaluate``)."""

from hardneg.evaluation.metrics import DEFAULT_METRICS, MetricScores, score_run
from hardneg.evaluation.run import EvalResult, evaluate

__all__ = ["DEFAULT_METRICS", "EvalResult", "MetricScores", "evaluate", "score_run"]
