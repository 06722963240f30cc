"""Length-bucketed no-duplicates batches: the same rows per epoch, no repeated text, less padding, seeded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hardneg.training.batching import bucketed_batches

from test_train import _weights, write_negatives


def _rows(n: int, seed: int = 0, dup_every: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(5, 130, size=n).tolist()
    values = []
    for i in range(n):
        anchor = f"q{i // dup_every}" if dup_every else f"q{i}"  # several rows of one query share the anchor
        values.append(frozenset({anchor, f"p{i}", f"n{(i * 7) % n}"}))
    return values, lengths


def _padded(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("n,bs,dup", [(100, 8, 0), (257, 16, 3), (33, 32, 0), (40, 4, 5)])
def test_every_row_once_and_no_text_twice_in_a_batch(n, bs, dup):
    values, lengths = _rows(n, dup_every=dup)
    batches = bucketed_batches(values, lengths, bs, seed=3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))  # the same examples as an unbucketed epoch: each row exactly once
    for b in batches:
        assert len(b) <= bs
        texts = [t for i in b for t in values[i]]
        assert len(texts) == len(set(texts)), b
    assert sum(len(b) < bs for b in batches) <= 1 + (dup > 0)  # batches stay full


def test_seed_fixes_the_order_and_epochs_differ():
    values, lengths = _rows(200)
    a, b = bucketed_batches(values, lengths, 8, seed=1), bucketed_batches(values, lengths, 8, seed=1)
    assert a == b
    assert bucketed_batches(values, lengths, 8, seed=2) != a


def test_bucketing_cuts_padding_against_random_batches():
    values, lengths = _rows(512)
    bucketed = bucketed_batches(values, lengths, 16, seed=0)
    order = np.random.default_rng(0).permutation(512).tolist()
    random = [order[i:i + 16] for i in range(0, 512, 16)]
    real = sum(lengths)
    assert _padded(bucketed, lengths) - real < 0.25 * (_padded(random, lengths) - real)


def test_drop_last_drops_only_the_partial_batch():
    values, lengths = _rows(37)
    batches = bucketed_batches(values, lengths, 8, seed=0, drop_last=True)
    assert len(batches) == 4 and all(len(b) == 8 for b in batches)


def test_bad_arguments():
    with pytest.raises(ValueError, match="lengths"):
        bucketed_batches([frozenset({"a"})], [1, 2], 2, seed=0)
    with pytest.raises(ValueError, match="batch_size"):
        bucketed_batches([frozenset({"a"})], [1], 0, seed=0)


def test_train_with_bucketed_batches_is_seeded_and_records_it(tiny_model, tiny_beir, tmp_path):
    from hardneg.training.config import Source, TrainConfig
    from hardneg.training.trainer import train

    rows = [(f"q{1 + i % 3}", f"d{1 + i % 6}", [f"d{1 + (i + 2) % 6}"]) for i in range(12)]
    negs = write_negatives(tmp_path / "neg.jsonl", rows)

    def cfg(out):
        return TrainConfig(str(tiny_model), (Source(str(tiny_beir), str(negs)),), str(out), num_negatives=1,
                           batch_size=3, epochs=1, lr=1e-3, warmup=0, save_steps=100, bucket_batches=True)

    a, b = train(cfg(tmp_path / "a")), train(cfg(tmp_path / "b"))
    wa, wb = _weights(a), _weights(b)
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)
    meta = json.loads((Path(a) / "hardneg_train.meta.json").read_text())
    assert meta["config"]["bucket_batches"] is True and meta["steps"] >= 4
