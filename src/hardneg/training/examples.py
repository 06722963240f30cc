"""Negatives file rows (ids) -> training columns of texts: ``anchor, positive, negative_1 .. negative_n``,
plus, when the positives mask is on, a ``label`` column of integer codes the loss masks by
(``[query code, positive code, negative codes...]``) and the table of every query's known positives.

A query's known positives are what the negatives file declares: the ``pos_id`` of each of its rows
and the judge's ``relabeled`` passages (never the qrels on disk: with sparse labels the trainer must
not see more than the miner did). Codes are global over the data mix (source offsets), so two
sources never share a code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hardneg.core.errors import DataError, HardnegError
from hardneg.core.files import sha256_file
from hardneg.data.export import ntuple_columns
from hardneg.data.load import load_data
from hardneg.core.provenance import read_meta
from hardneg.data.negatives import check_ids, read_audit, read_negatives, require_rows
from hardneg.data.relabel import known_positives, with_relabeled_rows
from hardneg.training.config import DISTILL_SCORE_UNIT, Source, TrainConfig

log = logging.getLogger(__name__)


PAD_CODE = -1  # the code of a padded negative slot (short_rows="pad"): masked out of every row's candidates


@dataclass
class Codes:
    """Integer codes of queries and passages across a data mix, and each query's known positives."""

    known: dict[int, list[int]] = field(default_factory=dict)  # query code -> positive codes
    query_offset: int = 0
    doc_offset: int = 0


def build_examples(source: Source, num_negatives: int, short_rows: str = "drop", seed: int = 42, *,
                   codes: Codes | None = None, relabeled_rows: bool = True,
                   distill: DistillSettings | None = None) -> tuple[dict[str, list], dict[str, Any]]:
    """Negatives rows -> training columns of texts (and the ``label`` codes when ``codes`` is given;
    ``codes.known`` is filled and its offsets advanced past this source). With ``distill``, each
    row's teacher logits and their mask follow the codes in ``label`` (:func:`teacher_labels`).

    >>> cols, stats = build_examples(Source("tiny", "neg.jsonl"), 1)    # doctest: +SKIP
    >>> list(cols)    # doctest: +SKIP
    ['anchor', 'positive', 'negative_1']
    """
    data = load_data(source.data, source.split)
    rows = require_rows(read_negatives(source.negatives), source.negatives)
    check_ids(rows, data, source.negatives)
    n_read = len(rows)
    ignored = sum(len(r.neg_ids) for r in rows) if num_negatives == 0 else 0
    if ignored:
        log.warning("%s: --num-negatives 0 ignores its %d mined negatives (%d rows): training contrasts with "
                    "in-batch negatives only; pass --num-negatives N to use them", source.negatives, ignored,
                    sum(bool(r.neg_ids) for r in rows))
    known = known_positives(rows)
    relabeled = sum(len(getattr(r, "relabeled", [])) for r in rows)
    if relabeled and codes is None and not relabeled_rows:
        raise HardnegError(f"{source.negatives} has {relabeled} judge-relabelled positives (mined with "
                           "--false-negatives relabel) but nothing in this run would use them: train with the "
                           "positives mask and/or relabelled rows (drop --no-mask-positives / --no-relabeled-rows), "
                           "or mine with --false-negatives remove")
    added = 0
    if relabeled_rows:
        rows, added = with_relabeled_rows(rows)
    pad = short_rows == "pad"
    if pad and codes is None:
        raise HardnegError("short_rows='pad' needs the positives mask (its codes mark the padded slots): drop "
                           "--no-mask-positives, or use --short-rows drop")
    cols, short_rows_at = ntuple_columns(rows, data, num_negatives, pad=pad)
    padded = len(short_rows_at) if pad else 0
    if pad:  # kept: their empty slots carry PAD_CODE (codes) and no teacher score (distillation)
        short_rows_at = []
    if short_rows_at and short_rows == "error":
        i = short_rows_at[0]
        raise DataError(source.negatives, i, f"{len(rows[i - 1].neg_ids)} negatives < --num-negatives "
                        f"{num_negatives}", "lower --num-negatives or mine more (short_rows='drop' skips)")
    short = len(short_rows_at)
    if codes is not None:
        cols["label"] = _label_codes(rows, set(short_rows_at), known, data, num_negatives, codes)
    distill_stats = None
    if distill is not None:
        tl, distill_stats = teacher_labels(rows, set(short_rows_at), num_negatives, distill, source.negatives)
        cols["label"] = [c + t for c, t in zip(cols["label"], tl)] if "label" in cols else tl
    kept = len(cols["anchor"])
    if short:
        log.warning("%s: dropped %d of %d rows with fewer than %d negatives", source.negatives, short,
                    len(rows), num_negatives)
    if source.max_examples and kept > source.max_examples:
        take = np.sort(np.random.default_rng(seed).permutation(kept)[: source.max_examples])
        cols = {k: [v[t] for t in take] for k, v in cols.items()}
    if not cols["anchor"]:
        raise DataError(source.negatives, None, "no usable training rows", "check --num-negatives and the file")
    if padded:
        log.info("%s: kept %d of %d rows with fewer than %d negatives, their empty slots masked out of the loss",
                 source.negatives, padded, len(rows), num_negatives)
    stats = {"rows": n_read, "relabeled_rows_added": added, "short_rows_dropped": short,
             **({"short_rows_padded": padded} if pad else {}),
             **({"mined_negatives_ignored": ignored} if ignored else {}),  # the warning, in the model meta
             **({"distill": distill_stats} if distill_stats else {}),
             "examples": len(cols["anchor"]), "queries_with_several_positives": sum(len(p) > 1 for p in known.values()),
             "data_fingerprint": data.fingerprint(), "negatives_sha256": sha256_file(source.negatives)}
    return cols, stats


def _label_codes(rows, short: set[int], known: dict[str, list[str]], data, n: int, codes: Codes) -> list[list[int]]:
    """``[query, positive, negative_1..n]`` codes of every kept row; fills ``codes.known``."""
    index = data.corpus.index
    qcode = {q: codes.query_offset + i for i, q in enumerate(known)}
    for q, pos in known.items():
        codes.known[qcode[q]] = [codes.doc_offset + index[d] for d in pos]
    out = [[qcode[r.qid], *(codes.doc_offset + index[d] for d in [r.pos_id, *r.neg_ids[:n]]),
            *[PAD_CODE] * (n - len(r.neg_ids[:n]))] for i, r in enumerate(rows, 1) if i not in short]
    codes.query_offset += len(known)
    codes.doc_offset += len(data.corpus)
    return out


def build_dataset(config: TrainConfig) -> tuple[Any, list[dict[str, Any]], Codes | None]:
    """All sources concatenated in order (the trainer shuffles with ``seed``), and the positives'
    codes when ``config.mask_positives`` (else None)."""
    from datasets import Dataset

    merged: dict[str, list] = {}
    stats = []
    codes = Codes() if config.mask_positives else None
    for src in config.sources:
        cols, st = build_examples(src, config.num_negatives, config.short_rows, config.seed, codes=codes,
                                  relabeled_rows=config.relabeled_rows, distill=DistillSettings.of(config))
        for k, v in cols.items():
            merged.setdefault(k, []).extend(v)
        stats.append({"source": src, **st})
    return Dataset.from_dict(merged), stats, codes


# --- teacher scores for --distill ---------------------------------------------------------------------

SCORE_UNIT = DISTILL_SCORE_UNIT
NORMALISED_TEACHERS = {"bm25": "bm25s:", "cross-encoder": "rescored:", "fused": "fuse:"}  # kind -> teacher fingerprint prefix


@dataclass(frozen=True)
class DistillSettings:
    """How a source's teacher scores become teacher logits (``TrainConfig.distill_*``)."""

    normalize: str = "auto"
    temperature: float | None = None  # None: the student's on raw scores, 1.0 on normalised ones
    student_temperature: float = 0.05

    @classmethod
    def of(cls, config: TrainConfig) -> DistillSettings | None:
        if config.distill is None:
            return None
        return cls(config.distill_normalize, config.distill_temperature, config.temperature)


def normalize_rows(scores: np.ndarray, mask: np.ndarray, how: str) -> np.ndarray:
    """Per-row normalisation of (R, m) scores over each row's marked cells (unmarked cells -> 0):
    ``zscore`` (mean 0, population std 1), ``minmax`` (0..1) or ``none``; a row whose marked cells are
    all equal becomes 0 (no preference).

    >>> s = np.array([[3.0, 1.0, 2.0, 99.0]]); m = np.array([[True, True, True, False]])
    >>> normalize_rows(s, m, "minmax").tolist(), normalize_rows(s, m, "zscore").round(4).tolist()
    ([[1.0, 0.0, 0.5, 0.0]], [[1.2247, -1.2247, 0.0, 0.0]])
    """
    x = np.where(mask, scores, 0.0).astype(np.float64)
    if how == "none":
        return x
    k = mask.sum(axis=1, keepdims=True)
    if how == "zscore":
        mean = x.sum(axis=1, keepdims=True) / np.maximum(k, 1)
        std = np.sqrt((np.where(mask, x - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / np.maximum(k, 1))
        out = np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)
    elif how == "minmax":
        lo = np.where(mask, x, np.inf).min(axis=1, keepdims=True)
        span = np.where(mask, x, -np.inf).max(axis=1, keepdims=True) - lo
        out = np.divide(x - lo, span, out=np.zeros_like(x), where=np.isfinite(span) & (span > 0))
    else:
        raise HardnegError(f"unknown teacher-score normalisation {how!r} (zscore, minmax or none)")
    return np.where(mask, out, 0.0)


def teacher_kind(path, rows) -> tuple[str, str]:
    """(teacher name, kind) of a negatives file: kind ``bm25`` / ``cross-encoder`` from its meta's
    teacher fingerprint (or the name ``bm25`` where there is no meta), ``dense``, else ``other``. A file whose
    scores come from several teachers (an ensemble: scores on different scales) is refused."""
    meta = read_meta(path) or {}
    teachers = [t for t in meta.get("teachers") or [] if isinstance(t, dict)]
    names = list(dict.fromkeys([str(t.get("name")) for t in teachers] + [t for r in rows for t in r.neg_teachers]))
    if len(names) > 1:
        raise HardnegError(f"{path}: --distill needs the scores of one teacher, but the file's negatives come from "
                           f"{len(names)} ({', '.join(names[:4])}), whose scores are on different scales; mine "
                           "with one teacher or train without --distill")
    name = names[0] if names else "unknown"
    fp = str(teachers[0].get("fingerprint", "")) if teachers else ""
    for kind, prefix in NORMALISED_TEACHERS.items():
        if fp.startswith(prefix) or (not fp and name == kind):
            return name, kind
    return name, "dense" if fp.startswith("dense:") else "other"


def teacher_labels(rows, short: set[int], n: int, settings: DistillSettings, path
                   ) -> tuple[list[list[int]], dict[str, Any]]:
    """Per kept row (1-based numbers in ``short`` are left out): ``[teacher logits of the positive and
    the first n negatives × SCORE_UNIT (ints)] + [mask flags]``, and what was done (for the meta).

    A row's positive score is its ``pos_score``; a row added for a judge-relabelled passage (no
    ``pos_score``) takes the teacher's score of that passage from the judge's audit file when it is
    there. A row without a positive score (or a negative without a finite score) is masked out of the
    distillation term only; it still trains with InfoNCE.
    """
    name, kind = teacher_kind(path, rows)
    audit = {(e.get("qid"), e.get("doc_id")): e.get("score") for e in read_audit(path)
             if e.get("decision") == "relabeled" and isinstance(e.get("score"), (int, float))}
    relabeled = {(r.qid, d) for r in rows for d in getattr(r, "relabeled", [])}
    kept = [r for i, r in enumerate(rows, 1) if i not in short]
    scores = np.zeros((len(kept), 1 + n))
    from_audit = 0
    for i, r in enumerate(kept):
        pos = r.pos_score
        if pos is None and (r.qid, r.pos_id) in relabeled and (r.qid, r.pos_id) in audit:
            pos, from_audit = audit[(r.qid, r.pos_id)], from_audit + 1
        negs = list(r.neg_scores[:n]) + [np.nan] * (n - len(r.neg_scores[:n]))
        scores[i] = [np.nan if pos is None else pos, *negs]
    mask = np.isfinite(scores)
    mask[~mask[:, 0]] = False  # no positive score: the row is out of the distillation term
    outside = bool((np.abs(scores[mask]) > 1.0 + 1e-6).any())
    how = settings.normalize
    if how == "auto":
        how = "zscore" if kind in NORMALISED_TEACHERS or outside else "none"
    elif how == "none" and kind == "bm25":
        raise HardnegError(f"{path}: the teacher is BM25 (unbounded scores): --distill-normalize none would "
                           "distil raw BM25 scores; use auto, zscore or minmax")
    tau = settings.temperature or (settings.student_temperature if how == "none" else 1.0)
    logits = normalize_rows(np.where(mask, scores, 0.0), mask, how) / tau
    labels = [[int(round(x * SCORE_UNIT)) for x in row] + [int(b) for b in m] for row, m in zip(logits, mask)]
    unscored = int((~mask[:, 0]).sum())
    stats = {"teacher": name, "teacher_kind": kind, "normalize": how, "teacher_temperature": tau,
             "rows": len(kept), "rows_without_positive_score": unscored, "relabeled_rows_scored_from_audit": from_audit,
             "negatives_without_score": int((~mask[:, 1:] & mask[:, :1]).sum())}
    if unscored:
        log.warning("%s: %d of %d rows have no teacher score for their positive (e.g. judge-relabelled passages "
                    "without an audit score): they train with InfoNCE only", path, unscored, len(kept))
    return labels, stats
