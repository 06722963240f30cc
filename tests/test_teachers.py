"""Teachers: ranking + tie-break, positive scores, deepen reuse, pool cache, BM25, random, rescoring."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from hardneg.core.errors import HardnegError
from hardneg.data.beir import load_beir
from hardneg.data.types import Corpus, RetrievalData
from hardneg.mining.candidates import Teacher
from hardneg.mining.teachers.bm25 import BM25Teacher
from hardneg.mining.teachers.dense import DenseTeacher
from hardneg.mining.teachers.load import load_teacher
from hardneg.mining.teachers.pool_cache import PoolCache
from hardneg.mining.teachers.rescored import RescoredTeacher
from hardneg.mining.teachers.uniform import RandomTeacher
from hardneg.search.rank import id_order


class CountingEncoder:
    """Wraps an encoder and counts how many texts it encoded."""

    def __init__(self, inner):
        self.inner, self.name, self.fingerprint = inner, inner.name, inner.fingerprint
        self.calls = {"query": 0, "passage": 0}

    def encode_queries(self, texts):
        self.calls["query"] += 1
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts):
        self.calls["passage"] += 1
        return self.inner.encode_passages(texts)


@pytest.fixture
def data(tiny_beir):
    return load_beir(tiny_beir, "train")


@pytest.fixture(scope="module")
def encoder(tiny_model):
    from hardneg.encode.load import load_encoder

    return load_encoder(str(tiny_model))


def _check_ranked(cand, corpus_ids):
    key = id_order(corpus_ids)
    for r in range(len(cand.qids)):
        s, i = cand.scores[r], cand.doc_idx[r]
        for a in range(len(s) - 1):
            if i[a + 1] < 0:
                continue
            assert s[a] > s[a + 1] or (s[a] == s[a + 1] and key[i[a]] < key[i[a + 1]])


def test_dense_teacher_ranks_exactly_and_scores_positives(data, encoder, tmp_path):
    enc = CountingEncoder(encoder)
    t = DenseTeacher(enc, cache=False, cache_dir=tmp_path)  # fresh embedding cache
    assert isinstance(t, Teacher)
    qids = data.query_ids()
    c = t.candidates(data, qids, 6)
    q = encoder.encode_queries([data.queries[x] for x in qids])
    p = encoder.encode_passages(data.corpus.passage_texts())
    full = q @ p.T  # (Q, N)
    for r, qid in enumerate(qids):
        np.testing.assert_allclose(c.scores[r], full[r, c.doc_idx[r]], rtol=1e-5, atol=1e-6)
        assert sorted(c.doc_idx[r].tolist()) == list(range(6))  # depth = corpus: everything
        for d, s in c.pos_scores[qid].items():
            assert s == pytest.approx(float(full[r, data.corpus.index[d]]), abs=1e-5)
        assert set(c.pos_scores[qid]) == set(data.relevant(qid))
    _check_ranked(c, data.corpus.ids)
    # deepen: a second, deeper call re-uses the corpus and query embeddings
    t.candidates(data, qids[:1], 2)
    t.candidates(data, qids[:1], 5)
    assert enc.calls == {"query": 1, "passage": 1}


def test_tie_break_by_id(tmp_path):
    corpus = Corpus(["b", "a", "c"], ["", "", ""], ["same text", "same text", "other words"])
    d = RetrievalData(corpus, {"q": "same text"}, {"q": {"c": 1}}, "train")

    class Const:
        name, fingerprint = "const", "const"

        def encode_queries(self, texts):
            return np.ones((len(texts), 2), np.float32)

        def encode_passages(self, texts):
            return np.array([[1, 0], [1, 0], [0, 0]], np.float32)[: len(texts)]

    c = DenseTeacher(Const(), cache=False, cache_dir=tmp_path).candidates(d, ["q"], 3)
    assert c.doc_idx.tolist() == [[1, 0, 2]]  # "a" before "b" on the tie, then "c"


def test_pool_cache_reuse_by_slicing(data, encoder, tmp_path):
    enc = CountingEncoder(encoder)
    qids = data.query_ids()
    deep = DenseTeacher(enc, cache_dir=tmp_path).candidates(data, qids, 5)
    assert len(list((tmp_path / "pools").glob("*.npz"))) == 1
    enc2 = CountingEncoder(encoder)
    t2 = DenseTeacher(enc2, cache_dir=tmp_path)
    shallow = t2.candidates(data, qids[::-1][:2], 3)
    assert enc2.calls == {"query": 0, "passage": 0}  # served from the cache
    sub = deep.subset(qids[::-1][:2])
    assert shallow.doc_idx.tolist() == sub.doc_idx[:, :3].tolist()
    np.testing.assert_array_equal(shallow.scores, sub.scores[:, :3])
    assert shallow.pos_scores == sub.pos_scores
    assert t2.candidates(data, qids, 6).depth == 6  # deeper than cached: computed and stored
    assert len(list((tmp_path / "pools").glob("*.npz"))) == 2
    # another data set (different fingerprint) never hits
    other = RetrievalData(data.corpus, data.queries, {"q1": {"d4": 1}}, "train")
    assert PoolCache(tmp_path).get(t2.fingerprint, other.fingerprint(), ["q1"], 3) is None


def bm25_data():
    corpus = Corpus(["d0", "d1", "d2", "d3"], ["", "", "", ""],
                    ["apple", "cherry pie", "banana bread banana", "banana"])
    return RetrievalData(corpus, {"q": "bananas"}, {"q": {"d1": 1}}, "train")


def test_bm25_known_ranking_and_scores():
    d = bm25_data()
    c = BM25Teacher(cache=False).candidates(d, ["q"], 4)
    assert c.doc_idx.tolist() == [[2, 3, 0, 1]]  # tf 2 beats tf 1; zero scores tie -> by id
    idf = math.log(1 + (4 - 2 + 0.5) / (2 + 0.5))  # Lucene idf, df("banana") = 2
    avgdl = (1 + 2 + 3 + 1) / 4
    def term(tf, dl):
        return idf * tf / (tf + 0.9 * (1 - 0.4 + 0.4 * dl / avgdl))  # Lucene: no (k1 + 1) factor
    np.testing.assert_allclose(c.scores[0], [term(2, 3), term(1, 1), 0, 0], rtol=1e-5)
    assert c.pos_scores == {"q": {"d1": 0.0}}


def test_random_teacher_deterministic_per_seed(data):
    qids = data.query_ids()
    a = RandomTeacher(3).candidates(data, qids, 4)
    b = RandomTeacher(3).candidates(data, qids, 4)
    c = RandomTeacher(4).candidates(data, qids, 4)
    assert a.doc_idx.tolist() == b.doc_idx.tolist()
    assert a.doc_idx.tolist() != c.doc_idx.tolist()
    deeper = RandomTeacher(3).candidates(data, qids, 6)
    assert deeper.doc_idx[:, :4].tolist() == a.doc_idx.tolist()  # deeper extends shallower
    assert RandomTeacher(3).candidates(data, qids[1:], 4).doc_idx.tolist() == a.doc_idx[1:].tolist()
    for r, qid in enumerate(qids):
        rel = {data.corpus.index[x] for x in data.relevant(qid)}
        got = [i for i in deeper.doc_idx[r] if i >= 0]
        assert not rel & set(got) and len(got) == 6 - len(rel)  # all non-positives, no positive
        assert all(s == 1.0 for s in deeper.pos_scores[qid].values())
        assert np.all(np.diff(deeper.scores[r][: len(got)]) < 0) and deeper.scores[r][0] < 1


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory, tiny_model) -> Path:
    """A randomly initialised 2-layer BertForSequenceClassification (num_labels=1)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(1)
    raw = Path(tiny_model).parent / "raw"
    tok = AutoTokenizer.from_pretrained(raw)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=1)
    out = tmp_path_factory.mktemp("tiny_ce")
    BertForSequenceClassification(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_rescored_teacher(data, tiny_cross_encoder, tmp_path):
    from sentence_transformers import CrossEncoder

    qids = data.query_ids()
    base = BM25Teacher(cache=False)
    t = load_teacher("bm25", rescore_with=str(tiny_cross_encoder), cache_dir=tmp_path)
    assert isinstance(t, RescoredTeacher) and t.fingerprint.startswith("rescored:")
    c = t.candidates(data, qids, 5)
    b = base.candidates(data, qids, 5)
    ce = CrossEncoder(str(tiny_cross_encoder))
    texts = data.corpus.passage_texts()
    for r, qid in enumerate(qids):
        assert set(c.doc_idx[r].tolist()) == set(b.doc_idx[r].tolist())  # same pool, re-ranked
        want = ce.predict([(data.queries[qid], texts[i]) for i in c.doc_idx[r]])
        np.testing.assert_allclose(c.scores[r], want, rtol=1e-4, atol=1e-5)
        pos = ce.predict([(data.queries[qid], texts[data.corpus.index[d]]) for d in data.relevant(qid)])
        np.testing.assert_allclose(list(c.pos_scores[qid].values()), pos, rtol=1e-4, atol=1e-5)
    _check_ranked(c, data.corpus.ids)
    # cached pools of another depth are not sliced for a rescored teacher
    assert PoolCache(tmp_path).get(t.fingerprint, data.fingerprint(), qids, 4, sliceable=False) is None


def test_load_teacher_specs(tiny_model, data, tmp_path):
    assert isinstance(load_teacher("bm25"), BM25Teacher)
    assert isinstance(load_teacher("random", seed=7), RandomTeacher)
    t = load_teacher(str(tiny_model), cache_dir=tmp_path)
    assert isinstance(t, DenseTeacher) and t._encoder is None  # lazy: loads on a cache miss only
    t.candidates(data, ["q1"], 2)
    assert t._encoder is not None
    t2 = load_teacher(str(tiny_model), cache_dir=tmp_path)
    t2.candidates(data, ["q1"], 1)
    assert t2._encoder is None and t2.fingerprint == t.fingerprint
    assert load_teacher(str(tiny_model), query_prompt="q: ").fingerprint != t.fingerprint
    with pytest.raises(HardnegError, match="no-such-model"):
        load_teacher(str(tmp_path / "no-such-model"))
    with pytest.raises(HardnegError, match="unknown query ids"):
        load_teacher("random").candidates(data, ["nope"], 2)


@pytest.mark.slow
def test_bm25_teacher_scifact_matches_beir_setting(tmp_path):
    """resources.md: bm25s (k1 0.9, b 0.4, stemmer + stopwords) scores NDCG@10 0.6762 on SciFact test."""
    from conftest import SHARED_DATA

    from hardneg.evaluation.metrics import score_run

    if not (SHARED_DATA / "scifact").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA / 'scifact'}")
    d = load_beir(SHARED_DATA / "scifact", "test")
    qids = d.query_ids()
    c = BM25Teacher(cache_dir=tmp_path).candidates(d, qids, 100)
    run = {q: {d.corpus.ids[i]: float(s) for i, s in zip(c.doc_idx[r], c.scores[r]) if i >= 0}
           for r, q in enumerate(qids)}
    assert score_run(d.qrels, run).means["ndcg@10"] == pytest.approx(0.6762, abs=5e-4)
