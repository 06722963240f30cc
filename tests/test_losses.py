"""InfoNCE on hand-made batches equals the formula: L = -log(exp(s+/τ) / Σ exp(s/τ))."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hardneg.training.losses import OwnNegativesRankingLoss, build_loss, own_negatives_logits, own_negatives_loss


def _cos(a, b):
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def _hand_loss(q, cands_per_row, tau):
    """Mean over rows of -log softmax at the positive (candidate 0), computed with math only."""
    total = 0.0
    for qi, cands in zip(q, cands_per_row):
        logits = [_cos(qi, c) / tau for c in cands]
        total += -(logits[0] - math.log(sum(math.exp(x) for x in logits)))
    return total / len(q)


Q = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
POS = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.7]])
NEG1 = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, -0.2]])
NEG2 = np.array([[0.2, 0.0, 1.0], [1.0, 0.3, 0.0]])


def t(x):
    return torch.tensor(x, dtype=torch.float32)


def test_own_negatives_loss_matches_hand_computation():
    tau = 0.05
    expected = _hand_loss(Q, [[POS[i], NEG1[i], NEG2[i]] for i in range(2)], tau)
    got = own_negatives_loss(t(Q), [t(POS), t(NEG1), t(NEG2)], scale=1 / tau).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_own_negatives_logits_layout():
    logits = own_negatives_logits(t(Q), [t(POS), t(NEG1)], scale=10.0)
    assert logits.shape == (2, 2)
    assert logits[1, 1].item() == pytest.approx(10 * _cos(Q[1], NEG1[1]), rel=1e-5)


def test_in_batch_loss_is_mnrl_and_matches_formula_with_all_batch_documents():
    tau = 0.1
    loss = build_loss(model=None, temperature=tau, in_batch_negatives=True)
    assert type(loss).__name__ == "MultipleNegativesRankingLoss" and loss.scale == pytest.approx(10.0)
    # candidates of row i: its own positive first, then every other document of the batch
    all_docs = [POS[0], POS[1], NEG1[0], NEG1[1], NEG2[0], NEG2[1]]
    cands = [[POS[i]] + [d for j, d in enumerate(all_docs) if j != i] for i in range(2)]
    expected = _hand_loss(Q, cands, tau)
    got = loss.compute_loss_from_embeddings([t(Q), t(POS), t(NEG1), t(NEG2)], None).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # and the in-batch-off loss is smaller here (fewer negatives in the denominator)
    off = OwnNegativesRankingLoss(model=None, scale=10.0).compute_loss_from_embeddings([t(Q), t(POS), t(NEG1), t(NEG2)])
    assert off.item() < got


def test_build_loss_variants_and_validation():
    assert type(build_loss(None, in_batch_negatives=False, num_negatives=2)).__name__ == "OwnNegativesRankingLoss"
    with pytest.raises(ValueError):
        build_loss(None, in_batch_negatives=False, num_negatives=0)
    with pytest.raises(ValueError):
        build_loss(None, temperature=0)
    with pytest.raises(ValueError):
        OwnNegativesRankingLoss(None).compute_loss_from_embeddings([t(Q), t(POS)])


def test_cached_losses_equal_uncached_on_a_model(tiny_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model))
    model.eval()
    cols = [["what is a cat", "where do dogs come from", "what orbits the earth"],
            ["Cats are small", "Dogs are loyal", "The moon orbits the earth."],
            ["Wolves live and hunt in packs.", "A kitten is a juvenile cat.", "The sun is a star"]]
    feats = lambda: [model.preprocess(c) for c in cols]  # noqa: E731
    for in_batch in (True, False):
        plain = build_loss(model, in_batch_negatives=in_batch, num_negatives=1)
        cached = build_loss(model, in_batch_negatives=in_batch, num_negatives=1, mini_batch_size=1)
        assert "Cached" in type(cached).__name__
        with torch.no_grad():
            a, b = plain(feats(), None).item(), cached(feats(), None).item()
        assert a == pytest.approx(b, rel=1e-5)


# --------------------------------------------------------------- the id mask of known positives
def _masked(tiny_model, known, positives="one"):
    from hardneg.training.losses import _masked_class

    return _masked_class()(tiny_model_st(tiny_model), known, scale=20.0, positives=positives)


def tiny_model_st(path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu")


def test_masked_loss_equals_mnrl_when_no_sibling_is_in_the_batch(tiny_model):
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    emb = [t(Q), t(POS), t(NEG1)]
    loss = _masked(tiny_model, {0: [10], 1: [11]})
    labels = torch.tensor([[0, 10, 20], [1, 11, 21]])  # query, positive, negative codes
    plain = MultipleNegativesRankingLoss(loss.model, scale=20.0).compute_loss_from_embeddings(emb, None)
    assert loss.compute_loss_from_embeddings(emb, labels).item() == pytest.approx(plain.item(), rel=1e-6)
    assert loss.mask_stats == {"batches": 1, "rows": 2, "rows_masked": 0, "cells_masked": 0}


def test_a_sibling_positive_in_the_batch_is_never_a_negative(tiny_model):
    # row 1's hard negative (code 10) is row 0's positive; 11 (row 1's positive) is also a positive of query 0
    emb = [t(Q), t(POS), t(NEG1)]
    labels = torch.tensor([[0, 10, 20], [1, 11, 10]])
    loss = _masked(tiny_model, {0: [10, 11], 1: [11]})
    got = loss.compute_loss_from_embeddings(emb, labels).item()
    cands = [POS[0], POS[1], NEG1[0], NEG1[1]]
    row0 = [_cos(Q[0], c) * 20 for c in cands]
    row1 = [_cos(Q[1], c) * 20 for c in cands]
    # row 0: candidate 1 (code 11) and candidate 3 (code 10 = its own positive's id, another copy) are masked
    l0 = -(row0[0] - math.log(math.exp(row0[0]) + math.exp(row0[2])))
    l1 = -(row1[1] - math.log(sum(math.exp(x) for x in row1)))  # query 1 knows only 11: nothing to mask
    assert got == pytest.approx((l0 + l1) / 2, rel=1e-4)
    assert loss.mask_stats["rows_masked"] == 1 and loss.mask_stats["cells_masked"] == 2
    every = _masked(tiny_model, {0: [10, 11], 1: [11]}, positives="all").compute_loss_from_embeddings(emb, labels).item()
    a0 = -(math.log(math.exp(row0[0]) + math.exp(row0[1]) + math.exp(row0[3])) - math.log(sum(math.exp(x) for x in row0)))
    assert every == pytest.approx((a0 + l1) / 2, rel=1e-4)


def test_masked_loss_needs_the_codes_column(tiny_model):
    with pytest.raises(ValueError, match="label"):
        _masked(tiny_model, {}).compute_loss_from_embeddings([t(Q), t(POS)], None)
    from hardneg.core.errors import HardnegError
    from hardneg.training.config import Source, TrainConfig

    with pytest.raises(HardnegError, match="--positives all needs"):
        TrainConfig("m", (Source("d", "n"),), "o", positives="all", mask_positives=False)


def test_padded_slots_drop_out_of_every_row_as_if_the_row_were_truncated(tiny_model):
    """short_rows="pad": a padded slot (code -1) is no candidate of any row; the loss equals the loss of the
    batch without that column, for both ways of counting several positives."""
    emb = [t(Q), t(POS), t(NEG1)]
    labels = torch.tensor([[0, 10, 20], [1, 11, -1]])  # row 1 had no negative: its slot is padded
    for positives in ("one", "all"):
        loss = _masked(tiny_model, {0: [10], 1: [11]}, positives=positives)
        got = loss.compute_loss_from_embeddings(emb, labels).item()
        cands = [POS[0], POS[1], NEG1[0]]  # the padded candidate (NEG1[1]) is gone
        rows = [[_cos(Q[i], c) * 20 for c in cands] for i in range(2)]
        want = sum(-(rows[i][i] - math.log(sum(math.exp(x) for x in rows[i]))) for i in range(2)) / 2
        assert got == pytest.approx(want, rel=1e-4), positives
        assert loss.mask_stats["padded_slots"] == 1 and loss.mask_stats["cells_masked"] == 0
