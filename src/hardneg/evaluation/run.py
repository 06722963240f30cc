"""Evaluation, orchestration only: encode (cached) -> exact top-k -> metrics.

The scoring rules (which queries count, ties, identical ids) live in ``hardneg.evaluation.metrics``; this
module only wires ``encode.encode_cached``, ``search.topk`` and ``metrics.score_run`` together.
``EvalConfig`` is one evaluation run's settings (the ``evaluate`` command's flags); ``write_eval``
writes the metric means, the per-query values beside them (``per_query_path``) and their meta file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hardneg.core.errors import HardnegError
from hardneg.core.options import opt
from hardneg.encode.base import ENCODER_BACKENDS
from hardneg.evaluation.metrics import DEFAULT_METRICS, judged_queries, parse_metric, score_run

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """What ``evaluate`` returns; ``metrics`` keys are the metric names in the order asked for."""

    metrics: dict[str, float]                       # metric -> mean over queries
    per_query: dict[str, dict[str, float]]          # metric -> {qid: value}
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase
    n_queries: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """What an evaluation run needs to be repeated; saved as the ``config`` of its meta file."""

    model: str = opt(help="local model path, hub id (offline when cached) or alias 'minilm'")
    data: str = opt(help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) or a dataset name")
    split: str = opt("test", "qrels split to evaluate (test: the held-out split; mine, train, export, inspect, "
                     "tune and data info default to train)")
    backend: str = opt("torch", "inference runtime", choices=ENCODER_BACKENDS)
    batch_size: int = opt(32, "encoding batch size")
    max_length: int | None = opt(None, "max tokens per text, queries and passages alike (train splits it: "
                                 "--query-max-length / --passage-max-length)", default_help="the model's")
    query_prompt: str = opt("", "text put before every query, e.g. 'query: ' (as mine's and train's --query-prompt)",
                            metavar="TEXT")
    passage_prompt: str = opt("", "text put before every passage, e.g. 'passage: '", metavar="TEXT")
    cache_dir: str | None = opt(None, "embedding cache", default_help="$HARDNEG_CACHE or ~/.cache/hardneg")
    k: int = opt(100, "retrieval depth per query")
    keep_identical_ids: bool = opt(False, "do not drop a retrieved document whose id equals the query id")

    def __post_init__(self) -> None:
        if self.batch_size < 1 or (self.max_length is not None and self.max_length < 1) or self.k < 1:
            raise HardnegError("--batch-size, --max-length and --k must be positive integers")
        if self.backend not in ENCODER_BACKENDS:
            raise HardnegError(f"unknown backend {self.backend!r}: choose one of {', '.join(ENCODER_BACKENDS)}")

    def encoder_kwargs(self) -> dict:
        """Keywords of ``hardneg.encode.load_encoder`` (``cache_dir`` only when set)."""
        kw = dict(backend=self.backend, max_length=self.max_length, batch_size=self.batch_size,
                  query_prompt=self.query_prompt, passage_prompt=self.passage_prompt)
        return {**kw, "cache_dir": self.cache_dir} if self.cache_dir else kw


PER_QUERY_SUFFIX = ".per_query.json"


def per_query_path(output: str | Path) -> Path:
    """Where ``write_eval`` puts the per-query values of ``output`` (a sibling file).

    >>> per_query_path("runs/results.json").as_posix(), per_query_path("res").as_posix()
    ('runs/results.per_query.json', 'res.per_query.json')
    """
    output = Path(output)
    stem = output.name[:-len(".json")] if output.name.endswith(".json") else output.name
    return output.with_name(stem + PER_QUERY_SUFFIX)


def write_eval(output: str | Path, result: EvalResult, config: EvalConfig, *, data,
               model_fingerprint: str | None = None) -> Path:
    """Write ``result.metrics`` (means, flat JSON ``{metric: value}``) to ``output``, ``result.per_query``
    (``{metric: {qid: value}}``) to ``per_query_path(output)`` and the meta file; returns ``output``."""
    from hardneg.core.files import write_json
    from hardneg.core.provenance import write_meta

    per_query = per_query_path(output)
    write_json(per_query, result.per_query)  # first: a means file never lacks its per-query values
    write_json(output, result.metrics)
    write_meta(output, config, with_files=[per_query], model_fingerprint=model_fingerprint,
               data_fingerprint=data.fingerprint(), data_source=data.source, split=config.split,
               backend=config.backend, timings=result.timings,
               n_queries=result.n_queries, n_passages=len(data.corpus), per_query=per_query.name)
    return Path(output)


def run_from_topk(qids: Sequence[str], idx: np.ndarray, scores: np.ndarray,
                  corpus_ids: Sequence[str]) -> dict[str, dict[str, float]]:
    """Turn ``search.topk`` output into a run ``{qid: {doc_id: score}}`` in rank order.

    Padding (index -1) is skipped; scores become Python floats (float32 values, exactly).

    >>> run_from_topk(["q1"], np.array([[1, 0, -1]]), np.array([[0.9, 0.5, -np.inf]]), ["d1", "d2"])
    {'q1': {'d2': 0.8999999761581421, 'd1': 0.5}}
    """
    idx = np.asarray(idx)
    scores = np.asarray(scores, dtype=np.float32)
    if idx.shape != scores.shape or idx.shape[0] != len(qids):
        raise ValueError(f"shape mismatch: {len(qids)} qids, idx {idx.shape}, scores {scores.shape}")
    run: dict[str, dict[str, float]] = {}
    for q, row_i, row_s in zip(qids, idx.tolist(), scores.tolist()):
        run[q] = {corpus_ids[i]: s for i, s in zip(row_i, row_s) if i >= 0}
    return run


def evaluate(encoder, data, *, k: int = 100, cache_dir=None, progress: bool = True,
             metrics: Sequence[str] = DEFAULT_METRICS, ignore_identical_ids: bool = True) -> EvalResult:
    """Evaluate ``encoder`` (an ``encode.Encoder``) on ``data`` (a ``data.RetrievalData``).

    Queries: every query of the split with judged rows (MTEB's rule, see ``metrics``); passages:
    the whole corpus. ``k`` is the retrieval depth and must cover the largest metric cut-off.
    Query ids equal to a corpus id are excluded in the search itself when ``ignore_identical_ids``
    (same top-``k`` as MTEB dropping them from its deeper top-1000). One known difference: a group of
    exactly tied scores straddling rank ``k`` is cut by our rank rule (id ascending) where MTEB's
    deeper run lets pytrec_eval order it (id descending); only metrics at cut-off ``k`` can notice.
    """
    from hardneg.encode.cache import encode_cached
    from hardneg.search.exact import topk
    from hardneg.search.rank import id_order

    deepest = max(parse_metric(m)[1] for m in metrics)
    if k < deepest:
        raise HardnegError(f"retrieval depth k={k} is below the deepest metric cut-off {deepest}; use k >= {deepest}")
    qids = judged_queries(data.qrels)
    if not qids:
        raise HardnegError(f"split {data.split!r} of {data.source or 'the data'} has no judged queries")
    corpus = data.corpus
    timings: dict[str, float] = {}

    t = time.perf_counter()
    q_emb = encode_cached(encoder, [data.queries[q] for q in qids], kind="query",
                          cache_dir=cache_dir, progress=progress)
    timings["encode_queries_s"] = time.perf_counter() - t
    t = time.perf_counter()
    p_emb = encode_cached(encoder, corpus.passage_texts(), kind="passage", cache_dir=cache_dir, progress=progress)
    timings["encode_passages_s"] = time.perf_counter() - t

    t = time.perf_counter()
    exclude = None
    if ignore_identical_ids:
        pos = corpus.index
        exclude = [{pos[q]} if q in pos else set() for q in qids]
    scores, idx = topk(q_emb, p_emb, k, key=id_order(corpus.ids), exclude=exclude, progress=progress)
    run = run_from_topk(qids, idx, scores, corpus.ids)
    timings["search_s"] = time.perf_counter() - t

    t = time.perf_counter()
    qrels = {q: data.qrels[q] for q in qids}
    s = score_run(qrels, run, metrics, ignore_identical_ids=ignore_identical_ids)
    timings["metrics_s"] = time.perf_counter() - t
    timings["encode_s"] = timings["encode_queries_s"] + timings["encode_passages_s"]
    log.info("evaluated %d queries against %d passages: %s", len(qids), len(corpus),
             ", ".join(f"{m}={v:.4f}" for m, v in s.means.items()))
    return EvalResult(metrics=s.means, per_query=s.per_query, timings=timings, n_queries=s.n_queries)
