"""Negatives file rows (ids) -> training columns of texts: ``anchor, positive, negative_1 .. negative_n``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from hardneg.core.errors import DataError
from hardneg.core.files import sha256_file
from hardneg.data.export import ntuple_columns
from hardneg.data.load import load_data
from hardneg.data.negatives import check_ids, read_negatives
from hardneg.training.config import Source, TrainConfig

log = logging.getLogger(__name__)


def build_examples(source: Source, num_negatives: int, short_rows: str = "drop",
                   seed: int = 42) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Negatives rows -> training columns of texts.

    >>> cols, stats = build_examples(Source("tiny", "neg.jsonl"), 1)    # doctest: +SKIP
    >>> list(cols)    # doctest: +SKIP
    ['anchor', 'positive', 'negative_1']
    """
    data = load_data(source.data, source.split)
    rows = read_negatives(source.negatives)
    check_ids(rows, data, source.negatives)
    cols, short_rows_at = ntuple_columns(rows, data, num_negatives)
    if short_rows_at and short_rows == "error":
        i = short_rows_at[0]
        raise DataError(source.negatives, i, f"{len(rows[i - 1].neg_ids)} negatives < --num-negatives "
                        f"{num_negatives}", "lower --num-negatives or mine more (short_rows='drop' skips)")
    short = len(short_rows_at)
    kept = len(cols["anchor"])
    if short:
        log.warning("%s: dropped %d of %d rows with fewer than %d negatives", source.negatives, short,
                    len(rows), num_negatives)
    if source.max_examples and kept > source.max_examples:
        take = np.sort(np.random.default_rng(seed).permutation(kept)[: source.max_examples])
        cols = {k: [v[t] for t in take] for k, v in cols.items()}
    if not cols["anchor"]:
        raise DataError(source.negatives, None, "no usable training rows", "check --num-negatives and the file")
    stats = {"rows": len(rows), "short_rows_dropped": short, "examples": len(cols["anchor"]),
             "data_fingerprint": data.fingerprint(), "negatives_sha256": sha256_file(source.negatives)}
    return cols, stats


def build_dataset(config: TrainConfig) -> tuple[Any, list[dict[str, Any]]]:
    """All sources concatenated in order (the trainer shuffles with ``seed``)."""
    from datasets import Dataset

    merged: dict[str, list[str]] = {}
    stats = []
    for src in config.sources:
        cols, st = build_examples(src, config.num_negatives, config.short_rows, config.seed)
        for k, v in cols.items():
            merged.setdefault(k, []).extend(v)
        stats.append({"source": src, **st})
    return Dataset.from_dict(merged), stats
