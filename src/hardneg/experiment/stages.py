"""The ablation's wiring to the pipeline stages: mine, train, evaluate, false-negative probe.

``Stages`` loads each dataset and teacher once per run and keeps nothing else in memory; every
heavy result (teacher pools, embeddings) goes through the shared on-disk caches
(``$HARDNEG_CACHE``), so re-mining with another method reuses the teacher's pool.
Tests replace or wrap it to count calls.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from hardneg.experiment.config import AblationConfig

log = logging.getLogger(__name__)


def subset_queries(data, n: int | None, seed: int = 0):
    """``data`` restricted to a seeded sample of ``n`` of its judged queries (in qrels order).

    The subset is the same for every training seed, so seeds vary only mining and training.
    """
    qids = data.query_ids()
    if n is None or n >= len(qids):
        return data
    keep = set(np.random.default_rng(seed).choice(len(qids), n, replace=False).tolist())
    chosen = [q for i, q in enumerate(qids) if i in keep]
    return dataclasses.replace(data, qrels={q: data.qrels[q] for q in chosen})


def sparse_labels(data) -> tuple[object, dict[str, dict[str, int]]]:
    """The sparse-label setting of real training sets: each query keeps only its anchor positive
    (the best-graded one; ties: qrels order), every other judgement is held out.

    Returns (data with anchor-only qrels, hidden judgements {qid: {doc_id: grade}}). Miner and
    trainer see only the first; the second measures false negatives among the mined negatives.

    >>> from hardneg.data.types import Corpus, RetrievalData
    >>> d = RetrievalData(Corpus(["a", "b", "c"], [""] * 3, ["x"] * 3), {"q": "?"}, {"q": {"a": 1, "b": 2, "c": 0}}, "train")
    >>> s, hidden = sparse_labels(d)
    >>> s.qrels, hidden
    ({'q': {'b': 2}}, {'q': {'a': 1, 'c': 0}})
    """
    qrels, hidden = {}, {}
    for q in data.query_ids():
        anchor, grade = sorted(data.qrels[q].items(), key=lambda kv: -kv[1])[0]
        qrels[q] = {anchor: grade}
        hidden[q] = {d: g for d, g in data.qrels[q].items() if d != anchor}
    return dataclasses.replace(data, qrels=qrels), hidden


def row_dict(row) -> dict:
    return row if isinstance(row, dict) else dataclasses.asdict(row)


class Stages:
    """Runs one cell's stages for ``run_ablation``; ``work_dir/<cell id>/`` holds its files."""

    def __init__(self, cfg: AblationConfig, out_dir: str | Path, *, progress: bool = True):
        self.cfg = cfg
        self.work = Path(out_dir) / "work"
        self.progress = progress
        self._teachers: dict[str, Any] = {}
        self.hidden: dict[str, dict[str, int]] = {}  # labels = "sparse": the held-out judgements of train_data

    # ------------------------------------------------------------------ data
    @cached_property
    def train_data(self):
        from hardneg.data.load import load_data

        data = subset_queries(load_data(self.cfg.data, self.cfg.train_split), self.cfg.max_train_queries)
        if self.cfg.labels == "sparse":
            data, self.hidden = sparse_labels(data)
        return data

    @cached_property
    def anchor_data(self):
        """labels = "sparse": the training subset with its FULL judgements, grade-first, for mining with
        ``anchor_only`` (the miner knows each query's best-graded positive, exactly the sparse qrels'
        anchor, and the judge can measure its precision / recall against the others)."""
        from hardneg.data.load import load_data

        data = subset_queries(load_data(self.cfg.data, self.cfg.train_split), self.cfg.max_train_queries)
        return dataclasses.replace(data, qrels={q: dict(sorted(g.items(), key=lambda kv: -kv[1]))
                                                for q, g in data.qrels.items()})

    @cached_property
    def eval_data(self):
        from hardneg.data.load import load_data

        return load_data(self.cfg.data, self.cfg.eval_split)

    @cached_property
    def probe_data(self):
        from hardneg.data.load import load_data

        return load_data(self.cfg.fn_probe_data, self.cfg.fn_probe_split) if self.cfg.fn_probe_data else None

    def data_fingerprint(self) -> str:
        if self.cfg.probe_only:
            return ""
        return f"{self.train_data.fingerprint()}:{self.eval_data.fingerprint()}"

    def probe_fingerprint(self) -> str:
        return self.probe_data.fingerprint() if self.probe_data is not None else ""

    # ------------------------------------------------------------------ stages
    def teacher(self, spec: str, seed: int = 0):
        """Loaded once per run; the random teacher draws per seed (its pools are not cached)."""
        from hardneg.mining.teachers.load import load_teacher

        key = (spec, seed if spec == "random" else 0)
        if key not in self._teachers:
            self._teachers[key] = load_teacher(spec, backend=self.cfg.teacher_backend, cache_dir=self.cfg.cache_dir,
                                               seed=key[1], max_length=self.cfg.teacher_max_length)
        return self._teachers[key]

    def mine_config(self, method: dict, seed: int, select: str | None = None, **extra):
        from hardneg.mining.config import MineConfig

        return MineConfig(**method, num_negatives=self.cfg.num_negatives, select=select or self.cfg.selection,
                          depth=self.cfg.depth, seed=seed, **extra)

    def mine(self, teacher: str, method: dict, seed: int, cell_id: str, judge: dict | None = None,
             select: str | None = None, on_shortfall: str | None = None) -> tuple[Path, list[dict], dict]:
        """Mine the training split; returns (negatives.jsonl path, rows as dicts, miner stats).
        ``on_shortfall``: a "+deepen" row's "deepen" (else MineConfig's default, "keep").

        ``judge``: ``{"judge", "false_negatives", "voters", "judge_min_votes", "judge_frac"}`` of a
        "+judge" / "+relabel" row (the voters' pools come from the same caches)."""
        from hardneg.data.negatives import write_negatives
        from hardneg.mining.mine import mine

        judge = dict(judge or {})
        voters = [self.teacher(v, seed) for v in judge.pop("voters", [])]
        data = self.train_data
        if self.cfg.labels == "sparse":  # same anchors as train_data's qrels; held-out judgements visible to the judge
            data, judge = self.anchor_data, {**judge, "anchor_only": True}
        if on_shortfall:
            judge["on_shortfall"] = on_shortfall
        config = self.mine_config(method, seed, select, **judge)
        result = mine(data, [self.teacher(teacher, seed)], config, voters=voters)
        path = write_negatives(self.work / cell_id / "negatives.jsonl", result, config)
        return path, [row_dict(r) for r in result.rows], result.stats

    def peer_mine(self, teacher: str, settings: dict) -> tuple[Path, list[dict], dict]:
        """The peer pipeline's negatives: sentence-transformers' ``mine_hard_negatives`` on the same
        (query, known positive) pairs and corpus (``relative_margin``, ``num_negatives``, top sampling,
        n-tuple output, its default ``range_max``), texts mapped back to ids. Deterministic, so it is
        mined once per teacher and reused by every seed (``work/peer-<hash>/``)."""
        from hardneg.core.files import read_json
        from hardneg.core.provenance import is_committed
        from hardneg.data.negatives import read_negatives
        from hardneg.experiment.peer import peer_negatives

        import hashlib
        import json

        key = hashlib.sha256(json.dumps([teacher, settings, self.data_fingerprint()], sort_keys=True).encode())
        path = self.work / f"peer-{key.hexdigest()[:12]}" / "negatives.jsonl"
        if not is_committed(path):  # data + matching meta: a run killed between the two mines again
            peer_negatives(self.train_data, teacher, path, **settings)
        stats = read_json(path.with_name(path.name + ".meta.json")).get("stats", {})
        return path, [row_dict(r) for r in read_negatives(path)], stats

    def probe(self, teacher: str, method: dict, judge: dict | None = None) -> tuple[list[dict], dict, dict]:
        """Mine the probe split knowing only each query's best-graded positive (ties: qrels order);
        return the rows, stats and the hidden judgements (every judged row except that positive).
        ``judge``: as in ``mine``."""
        from hardneg.mining.mine import mine

        judge = dict(judge or {})
        voters = [self.teacher(v) for v in judge.pop("voters", [])]

        data = self.probe_data  # qrels reordered grade-first, so anchor_only keeps the best positive
        data = dataclasses.replace(data, qrels={q: dict(sorted(g.items(), key=lambda kv: -kv[1]))
                                                for q, g in data.qrels.items()})
        result = mine(data, [self.teacher(teacher)], self.mine_config(method, 0, anchor_only=True, **judge),
                      voters=voters)
        anchors = {q: data.relevant(q)[0] for q in data.query_ids()}
        judged = {q: {d: g for d, g in data.qrels[q].items() if d != a} for q, a in anchors.items()}
        return [row_dict(r) for r in result.rows], result.stats, judged

    def pairs_only(self, cell_id: str) -> Path:
        """A negatives file with no negatives (one row per training pair): in-batch-only training."""
        from hardneg.core.files import atomic_open
        from hardneg.data.negatives import NegRow, row_json

        path = self.work / cell_id / "pairs.jsonl"
        data = self.train_data
        with atomic_open(path) as f:
            for q in data.query_ids():
                for d in data.relevant(q):
                    f.write(row_json(NegRow(q, d, None, [], [], [])) + "\n")
        return path

    def train(self, negatives: Path | None, seed: int, cell_id: str, mask: bool = True, **extra) -> Path:
        """Fine-tune the student on the training split with ``negatives`` (None: in-batch only);
        ``mask``: the id mask of known positives (off for the peer row: plain MNRL); ``extra``: a row's
        training variants (TrainConfig settings, e.g. ``distill="kl"``, ``bucket_batches=True``)."""
        from hardneg.training.config import Source, TrainConfig
        from hardneg.training.trainer import train

        t = self.cfg.train
        src = Source(data=self.cfg.data, negatives=str(negatives or self.pairs_only(cell_id)),
                     split=self.cfg.train_split)
        config = TrainConfig(model=self.cfg.student, sources=(src,), output=str(self.work / cell_id / "model"),
                             num_negatives=self.cfg.num_negatives if negatives else 0, epochs=t.epochs,
                             batch_size=t.batch_size, lr=t.lr, temperature=t.temperature,
                             query_max_length=t.query_max_length, passage_max_length=t.passage_max_length,
                             in_batch_negatives=t.in_batch_negatives if negatives else True,
                             warmup=t.warmup_ratio, seed=seed, save_total_limit=1, mask_positives=mask,
                             resume=(self.work / cell_id / "model").exists(),  # a killed cell continues
                             **{**({"precision": "bf16"} if t.precision == "bf16" else {}), **extra})
        if config.refresh_every:  # "+refresh": re-mine with the student between rounds, as the cell mined
            from hardneg.experiment.refresh import remine_from_negatives, train_with_refresh

            remine = remine_from_negatives(src)
            if self.cfg.labels == "sparse":  # the cell's own anchors (grade-first) and held-out judgements
                _ = self.train_data  # fills self.hidden
                remine = dataclasses.replace(remine, data=self.anchor_data, hidden=self.hidden)
            return Path(train_with_refresh(config, remine))
        return Path(train(config))

    @staticmethod
    def train_info(model: Path) -> dict:
        """Steps, examples, timings and losses from the trained model's meta file ({} if absent)."""
        from hardneg.core.files import read_json
        from hardneg.training.config import META_NAME

        path = Path(model) / f"{META_NAME}.meta.json"
        if not path.is_file():
            return {}
        meta = read_json(path)
        return {k: meta.get(k) for k in ("steps", "examples", "timings", "final_loss", "mean_train_loss",
                                      "positives_mask", "data", "distillation", "refresh")}

    def evaluate(self, model: str | Path):
        from hardneg.encode.load import load_encoder
        from hardneg.evaluation.run import evaluate

        enc = load_encoder(str(model), backend=self.cfg.eval_backend, max_length=self.cfg.eval_max_length)
        return evaluate(enc, self.eval_data, cache_dir=self.cfg.cache_dir, progress=self.progress)
