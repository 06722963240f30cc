"""Length-bucketed batches that keep the no-duplicates rule: less padding, the same examples per epoch.

sentence-transformers pads every column of a batch to its longest text, so a batch that mixes a
20-token passage with a 128-token one computes 108 pad tokens for the short one. ``bucketed_batches``
is a pure function of (each row's texts, each row's length in tokens, batch size, seed):

1. shuffle the rows (the seed fixes the order, a new draw per epoch);
2. cut the shuffled order into *mega-chunks* of ``batch_size * chunk_batches`` rows, and sort each
   chunk by length (longest first), so a batch holds rows of similar length while the chunk keeps
   the epoch's randomness (the scheme of transformers' ``group_by_length``);
3. fill batches from each chunk with sentence-transformers' no-duplicates rule: a row joins the batch
   only if none of its texts is already in it; rows that clash wait for the next batch (carried into
   the next chunk at its end, so batches stay full);
4. shuffle the order of the batches, so long and short batches alternate at random through the epoch.

Every row appears exactly once per epoch (as with ``NoDuplicatesBatchSampler``), and no batch holds a
text twice. What changes is which rows share a batch — so results are not bit-identical to unbucketed
training, only statistically equivalent; ``benchmarks/cell_time.py`` measures the speed and the
ablation compares the students.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

CHUNK_BATCHES = 16  # batches per mega-chunk: larger = less padding, less randomness within a chunk


def bucketed_batches(values: Sequence[frozenset], lengths: Sequence[int], batch_size: int, seed: int, *,
                     chunk_batches: int = CHUNK_BATCHES, drop_last: bool = False) -> list[list[int]]:
    """Batches of row indices: every row once, no repeated text in a batch, similar lengths together.

    ``values[i]``: the texts of row i (no two rows sharing a text go in one batch); ``lengths[i]``: its
    padded cost (e.g. the sum over its columns of each text's truncated token count).

    >>> vals = [frozenset({f"t{i}"}) for i in range(8)]
    >>> bucketed_batches(vals, [1, 9, 2, 8, 3, 7, 4, 6], 2, seed=0, chunk_batches=4)
    [[5, 7], [6, 4], [1, 3], [2, 0]]
    >>> bucketed_batches([frozenset({"a"}), frozenset({"a"}), frozenset({"b"})], [1, 1, 1], 2, seed=0)
    [[1], [2, 0]]
    """
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    n = len(values)
    if len(lengths) != n:
        raise ValueError(f"{len(lengths)} lengths for {n} rows")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    keys = np.asarray(lengths)
    chunk = batch_size * max(1, chunk_batches)
    batches: list[list[int]] = []
    waiting: list[int] = []  # rows not placed yet (clashes, the last partial batch), carried forward
    for start in range(0, n, chunk):
        part = order[start:start + chunk]
        pool = waiting + sorted(part.tolist(), key=lambda i: -keys[i])  # stable: ties keep shuffled order
        full, waiting = _fill(pool, values, batch_size)
        batches.extend(full)
    while waiting:  # the end of the epoch: what is left forms the last (possibly partial) batches
        full, rest = _fill(waiting, values, batch_size, partial=True)
        batches.extend(full)
        waiting = rest
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches = [b for b in batches if len(b) == batch_size]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


def _fill(pool: list[int], values: Sequence[frozenset], batch_size: int, partial: bool = False
          ) -> tuple[list[list[int]], list[int]]:
    """Greedy no-duplicates batches from ``pool`` in order; returns (full batches, rows left over).
    With ``partial``, the first batch is returned even when it cannot be filled."""
    out: list[list[int]] = []
    rest = list(pool)
    while rest:
        batch, seen, left = [], set(), []
        for i in rest:
            if len(batch) < batch_size and seen.isdisjoint(values[i]):
                batch.append(i)
                seen |= values[i]
            else:
                left.append(i)
        if len(batch) < batch_size and not partial:
            return out, rest  # not enough distinct rows yet: wait for the next chunk
        out.append(batch)
        rest = left
        if partial:
            return out, rest
    return out, rest


def row_lengths(dataset, tokenizer, max_lengths: dict[str, int | None]) -> np.ndarray:
    """Sum over the text columns of each text's token count, truncated at its column's max length
    (what a batch of these rows costs to pad). One tokenizer pass over the run's texts."""
    total = np.zeros(len(dataset), dtype=np.int64)
    for col, limit in max_lengths.items():
        enc = tokenizer(list(dataset[col]), add_special_tokens=True, truncation=limit is not None,
                        max_length=limit)["input_ids"]
        total += np.fromiter((len(x) for x in enc), dtype=np.int64, count=len(enc))
    return total


class BucketedNoDuplicatesBatchSampler(DefaultBatchSampler):
    """sentence-transformers' batch-sampler interface over ``bucketed_batches``. Pass as
    ``SentenceTransformerTrainingArguments(batch_sampler=functools.partial(cls, lengths=..., text_columns=...))``
    (a module-level class, so the training arguments pickle into checkpoints)."""

    def __init__(self, dataset, batch_size: int, drop_last: bool, valid_label_columns=None, generator=None,
                 seed: int = 0, *, lengths: Sequence[int], text_columns: Sequence[str],
                 chunk_batches: int = CHUNK_BATCHES):
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        cols = [dataset[c] for c in text_columns]
        self.values = [frozenset(row) for row in zip(*cols)]
        self.lengths = np.asarray(lengths)
        if len(self.lengths) != len(dataset):
            raise ValueError(f"{len(self.lengths)} lengths for {len(dataset)} rows")
        self.chunk_batches = chunk_batches
        self.epoch = getattr(self, "epoch", 0)
        self._count: tuple[int, int] | None = None

    def _plan(self) -> list[list[int]]:
        return bucketed_batches(self.values, self.lengths, self.batch_size, self.seed + self.epoch,
                                chunk_batches=self.chunk_batches, drop_last=self.drop_last)

    def __iter__(self):
        yield from self._plan()

    def __len__(self) -> int:
        if self._count is None or self._count[0] != self.epoch:
            self._count = (self.epoch, len(self._plan()))
        return self._count[1]
