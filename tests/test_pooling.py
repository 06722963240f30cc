"""Instruction prefixes are masked out of the mean pool, and the setting is saved with the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hardneg.training.prompts import configure_prefixes, pooled_tokens, set_max_lengths

PREFIX = "moon star "  # words of the tiny vocabulary: two prefix tokens


@pytest.fixture
def model(tiny_model):
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(tiny_model))
    m.eval()
    return m


def _manual_embedding(model, text, skip):
    """Mean of the last layer over tokens [skip:], L2-normalised (what the pool must compute)."""
    feats = model.preprocess([text])
    with torch.no_grad():
        tok = model[0](dict(feats))["token_embeddings"][0]
    mask = feats["attention_mask"][0].bool().clone()
    mask[:skip] = False
    v = tok[mask].mean(0).numpy()
    return v / np.linalg.norm(v)


def test_prefix_tokens_are_excluded_from_pooling(model):
    configure_prefixes(model, query_prefix=PREFIX)
    toks = pooled_tokens(model, "what is a cat", kind="query")
    assert [t for t, _ in toks][:3] == ["[CLS]", "moon", "star"]
    assert [p for _, p in toks] == [False, False, False, True, True, True, True, True]
    got = model.encode_query(["what is a cat"], normalize_embeddings=True)[0]
    np.testing.assert_allclose(got, _manual_embedding(model, PREFIX + "what is a cat", skip=3), atol=1e-5)
    # control: pooling over the prefix gives a different vector, so the check above can fail
    assert not np.allclose(got, _manual_embedding(model, PREFIX + "what is a cat", skip=0), atol=1e-4)


def test_include_prefix_pools_everything(model):
    configure_prefixes(model, query_prefix=PREFIX, exclude_prefix=False)
    got = model.encode_query(["what is a cat"], normalize_embeddings=True)[0]
    np.testing.assert_allclose(got, _manual_embedding(model, PREFIX + "what is a cat", skip=0), atol=1e-5)


def test_passages_without_prefix_keep_every_token(model):
    configure_prefixes(model, query_prefix=PREFIX)
    assert all(p for _, p in pooled_tokens(model, "cats are small", kind="document"))


def test_saved_model_applies_same_prefix_masking_and_lengths(model, tmp_path):
    from sentence_transformers import SentenceTransformer

    configure_prefixes(model, query_prefix=PREFIX, passage_prefix="")
    set_max_lengths(model, query_max_length=5, passage_max_length=9)
    before_q = model.encode_query(["what is a cat"])
    model.save(str(tmp_path / "m"))
    loaded = SentenceTransformer(str(tmp_path / "m"))
    assert loaded.prompts["query"] == PREFIX
    assert loaded[1].include_prompt is False
    assert (loaded[0].query_length, loaded[0].document_length) == (5, 9)
    np.testing.assert_allclose(loaded.encode_query(["what is a cat"]), before_q, atol=1e-6)
    assert loaded.preprocess(["a b c d e f g h i j k l"], task="query")["input_ids"].shape[1] == 5
    assert loaded.preprocess(["a b c d e f g h i j k l"], task="document")["input_ids"].shape[1] == 9


def test_prefix_exclusion_needs_a_poolable_mode(model):
    model[1].pooling_mode = "cls"
    with pytest.raises(ValueError, match="cannot exclude"):
        configure_prefixes(model, query_prefix=PREFIX)
