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
