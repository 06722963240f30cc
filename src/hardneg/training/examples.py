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
from hardneg.data.negatives import check_ids, read_negatives, require_rows
from hardneg.data.relabel import known_positives, with_relabeled_rows
from hardneg.training.config import Source, TrainConfig

log = logging.getLogger(__name__)


@dataclass
class Codes:
    """Integer codes of queries and passages across a data mix, and each query's known positives."""

    known: dict[int, list[int]] = field(default_factory=dict)  # query code -> positive codes
    query_offset: int = 0
    doc_offset: int = 0


def build_examples(source: Source, num_negatives: int, short_rows: str = "drop", seed: int = 42, *,
                   codes: Codes | None = None, relabeled_rows: bool = True
                   ) -> tuple[dict[str, list], dict[str, Any]]:
    """Negatives rows -> training columns of texts (and the ``label`` codes when ``codes`` is given;
    ``codes.known`` is filled and its offsets advanced past this source).

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
    cols, short_rows_at = ntuple_columns(rows, data, num_negatives)
    if short_rows_at and short_rows == "error":
        i = short_rows_at[0]
        raise DataError(source.negatives, i, f"{len(rows[i - 1].neg_ids)} negatives < --num-negatives "
                        f"{num_negatives}", "lower --num-negatives or mine more (short_rows='drop' skips)")
    short = len(short_rows_at)
    if codes is not None:
        cols["label"] = _label_codes(rows, set(short_rows_at), known, data, num_negatives, codes)
    kept = len(cols["anchor"])
    if short:
        log.warning("%s: dropped %d of %d rows with fewer than %d negatives", source.negatives, short,
                    len(rows), num_negatives)
    if source.max_examples and kept > source.max_examples:
        take = np.sort(np.random.default_rng(seed).permutation(kept)[: source.max_examples])
        cols = {k: [v[t] for t in take] for k, v in cols.items()}
    if not cols["anchor"]:
        raise DataError(source.negatives, None, "no usable training rows", "check --num-negatives and the file")
    stats = {"rows": n_read, "relabeled_rows_added": added, "short_rows_dropped": short,
             **({"mined_negatives_ignored": ignored} if ignored else {}),  # the warning, in the model meta
             "examples": len(cols["anchor"]), "queries_with_several_positives": sum(len(p) > 1 for p in known.values()),
             "data_fingerprint": data.fingerprint(), "negatives_sha256": sha256_file(source.negatives)}
    return cols, stats


def _label_codes(rows, short: set[int], known: dict[str, list[str]], data, n: int, codes: Codes) -> list[list[int]]:
    """``[query, positive, negative_1..n]`` codes of every kept row; fills ``codes.known``."""
    index = data.corpus.index
    qcode = {q: codes.query_offset + i for i, q in enumerate(known)}
    for q, pos in known.items():
        codes.known[qcode[q]] = [codes.doc_offset + index[d] for d in pos]
    out = [[qcode[r.qid], *(codes.doc_offset + index[d] for d in [r.pos_id, *r.neg_ids[:n]])]
           for i, r in enumerate(rows, 1) if i not in short]
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
                                  relabeled_rows=config.relabeled_rows)
        for k, v in cols.items():
            merged.setdefault(k, []).extend(v)
        stats.append({"source": src, **st})
    return Dataset.from_dict(merged), stats, codes
