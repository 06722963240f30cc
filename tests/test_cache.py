"""Embedding cache: hits skip the model, crashes resume at the first missing chunk, bad files heal."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import SHARED_DATA

from hardneg.core import fingerprint as fingerprint_mod
from hardneg.core import paths as paths_mod
from hardneg.encode import cache as cache_mod
from hardneg.encode.base import BatchEncoder
from hardneg.encode.cache import encode_cached
from hardneg.encode.load import load_encoder


class CountingEncoder(BatchEncoder):
    """Deterministic fake: vector = (len(text), number of 'a's, 1); counts texts it encoded."""

    def __init__(self, fingerprint: str = "fake-v1", fail_on_call: int | None = None):
        self.name, self.fingerprint, self.dim, self.batch_size = "fake", fingerprint, 3, 2
        self.calls, self.texts_seen, self.fail_on_call = 0, 0, fail_on_call

    def _encode(self, texts, prompt, kind="query"):
        self.calls += 1
        if self.fail_on_call == self.calls:
            raise RuntimeError("simulated crash")
        self.texts_seen += len(texts)
        return super()._encode(texts, prompt, kind)

    def embed_batch(self, texts, prompt, kind="query"):
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


TEXTS = [f"text {'a' * i} number {i}" for i in range(10)]


def test_cache_hit_returns_identical_array_without_calling_model(tmp_path):
    enc = CountingEncoder()
    first = encode_cached(enc, TEXTS, kind="passage", cache_dir=tmp_path, progress=False)
    assert enc.calls == 1 and first.dtype == np.float32 and first.shape == (10, 3)
    again = encode_cached(enc, TEXTS, kind="passage", cache_dir=tmp_path, progress=False)
    assert enc.calls == 1
    np.testing.assert_array_equal(first, again)
    assert first[3].tolist() == [len(TEXTS[3]), 3, 1]  # original order, not length order


@pytest.mark.parametrize("change", ["kind", "fingerprint", "texts"])
def test_any_input_change_is_a_miss(tmp_path, change):
    enc = CountingEncoder()
    encode_cached(enc, TEXTS, kind="passage", cache_dir=tmp_path, progress=False)
    kind, texts = "passage", TEXTS
    if change == "kind":
        kind = "query"
    elif change == "fingerprint":
        enc.fingerprint = "fake-v2"  # e.g. a fine-tuned checkpoint of the same model
    else:
        texts = TEXTS[:-1] + ["changed"]
    encode_cached(enc, texts, kind=kind, cache_dir=tmp_path, progress=False)
    assert enc.calls == 2


def test_interrupted_encode_resumes_at_first_missing_chunk(tmp_path):
    crashing = CountingEncoder(fail_on_call=2)  # chunk 0 is saved, chunk 1 crashes
    with pytest.raises(RuntimeError, match="simulated crash"):
        encode_cached(crashing, TEXTS, kind="passage", cache_dir=tmp_path / "c", progress=False, chunk_size=4)
    entry = cache_mod.entry_dir("fake-v1", "passage", TEXTS, tmp_path / "c")
    assert sorted(p.name for p in entry.glob("chunk*.npy")) == ["chunk4_00000.npy"]

    resumed = CountingEncoder()
    out = encode_cached(resumed, TEXTS, kind="passage", cache_dir=tmp_path / "c", progress=False, chunk_size=4)
    assert resumed.texts_seen == 6  # chunks 1 (4 texts) and 2 (2 texts) only
    fresh = encode_cached(CountingEncoder(), TEXTS, kind="passage", cache_dir=tmp_path / "f",
                          progress=False, chunk_size=4)
    np.testing.assert_array_equal(out, fresh)
    assert not list(entry.glob("chunk*.npy")) and (entry / "embeddings.npy").is_file()


def test_unreadable_chunk_is_encoded_again(tmp_path):
    entry = cache_mod.entry_dir("fake-v1", "passage", TEXTS, tmp_path)
    entry.mkdir(parents=True)
    (entry / "chunk4_00000.npy").write_bytes(b"not a numpy file")
    enc = CountingEncoder()
    out = encode_cached(enc, TEXTS, kind="passage", cache_dir=tmp_path, progress=False, chunk_size=4)
    assert enc.texts_seen == 10 and out[0, 0] == len(TEXTS[0])


def test_final_array_with_wrong_rows_is_ignored(tmp_path):
    entry = cache_mod.entry_dir("fake-v1", "passage", TEXTS, tmp_path)
    entry.mkdir(parents=True)
    np.save(entry / "embeddings.npy", np.zeros((3, 3), dtype=np.float32))
    out = encode_cached(CountingEncoder(), TEXTS, kind="passage", cache_dir=tmp_path, progress=False)
    assert out.shape == (10, 3) and out[0, 2] == 1


def test_empty_texts_and_bad_kind(tmp_path):
    assert encode_cached(CountingEncoder(), [], kind="query", cache_dir=tmp_path).shape == (0, 3)
    with pytest.raises(ValueError, match="kind"):
        encode_cached(CountingEncoder(), TEXTS, kind="doc", cache_dir=tmp_path)


def test_cache_root_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "env"))
    assert paths_mod.cache_root() == tmp_path / "env"
    assert paths_mod.cache_root(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("HARDNEG_CACHE")
    assert paths_mod.cache_root().parts[-2:] == (".cache", "hardneg")


def test_file_hashes_are_memoised(tmp_path, monkeypatch):
    f = tmp_path / "m" / "model.safetensors"
    f.parent.mkdir()
    f.write_bytes(b"weights")
    calls = []
    real = fingerprint_mod.sha256_file
    monkeypatch.setattr(fingerprint_mod, "sha256_file", lambda p: calls.append(p) or real(p))
    h1 = fingerprint_mod.hash_files([f], f.parent, tmp_path / "c")
    h2 = fingerprint_mod.hash_files([f], f.parent, tmp_path / "c")
    assert h1 == h2 and len(calls) == 1
    f.write_bytes(b"weightz")  # same size, new mtime -> hashed again, new fingerprint
    assert fingerprint_mod.hash_files([f], f.parent, tmp_path / "c") != h1 and len(calls) == 2


@pytest.mark.slow
def test_scifact_second_encode_is_fast(tmp_path):
    """Real data: a repeated encode of the SciFact corpus reads the cache in well under a second."""
    root = SHARED_DATA / "scifact"
    if not root.is_dir():
        pytest.skip(f"real data not found at {root}")
    from hardneg.data.beir import load_beir

    texts = load_beir(root, "test").corpus.passage_texts()
    enc = load_encoder("minilm")
    encode_cached(enc, texts, kind="passage")  # uses $HARDNEG_CACHE: minutes the first time only
    t = time.perf_counter()
    out = encode_cached(enc, texts, kind="passage")
    assert time.perf_counter() - t < 1.0 and out.shape == (5183, 384)
