import json

import numpy as np
import pytest
from fakes import RowEncoder

from hardneg.core.errors import HardnegError
from hardneg.scale.shards import ShardSet, encode_sharded, parse_bytes, shard_path, shard_rows_for_budget
from hardneg.search.blocks import search_blocks as search_shards
from hardneg.search.dispatch import search
from hardneg.search.exact import topk
from hardneg.search.rank import id_order

TEXTS = [str(i) for i in range(23)]


def test_encode_sharded_rows_in_order(tmp_path):
    enc = RowEncoder()
    ss = encode_sharded(enc, TEXTS, tmp_path / "s", shard_size=5, progress=False)
    assert ss.sizes == (5, 5, 5, 5, 3) and len(ss) == 23
    assert [off for off, _ in ss] == [0, 5, 10, 15, 20]
    np.testing.assert_array_equal(ss.load(), enc.table[:23])
    again = ShardSet.open(tmp_path / "s")
    assert again.sizes == ss.sizes and again.fingerprint == "rows:0"
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["shard_rows"] == [5, 5, 5, 5, 3] and manifest["dtype"] == "float32"


def test_resume_after_kill_encodes_only_missing_shards(tmp_path):
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        encode_sharded(RowEncoder(fail_after=2), TEXTS, out, shard_size=5, progress=False)
    assert shard_path(out, 1).is_file() and not shard_path(out, 2).exists()
    (out / ".shard-00002.npy.abc.tmp").write_bytes(b"half a shard")  # left by the kill
    shard_path(out, 3).write_bytes(b"garbage")  # a torn file is re-encoded too
    enc = RowEncoder()
    ss = encode_sharded(enc, TEXTS, out, shard_size=5, progress=False)
    assert [c[0] for c in enc.calls] == ["10", "15", "20"]  # shards 0 and 1 were not redone
    full = ss.load()
    assert full.shape == (23, 8)  # no duplicated or missing rows
    np.testing.assert_array_equal(full, enc.table[:23])
    assert encode_sharded(enc, TEXTS, out, shard_size=5, progress=False).sizes == ss.sizes
    assert len(enc.calls) == 3  # finished: nothing encoded again


def test_manifest_mismatch_is_refused(tmp_path):
    out = tmp_path / "s"
    encode_sharded(RowEncoder(), TEXTS, out, shard_size=5, progress=False)
    with pytest.raises(HardnegError, match="fingerprint"):
        encode_sharded(RowEncoder(seed=1), TEXTS, out, shard_size=5, progress=False)
    with pytest.raises(HardnegError, match="texts_sha256"):
        encode_sharded(RowEncoder(), TEXTS[:-1], out, shard_size=5, progress=False)
    with pytest.raises(HardnegError, match="dtype"):
        encode_sharded(RowEncoder(), TEXTS, out, shard_size=5, dtype="float16", progress=False)


def test_open_incomplete_folder_says_how_to_fix(tmp_path):
    out = tmp_path / "s"
    encode_sharded(RowEncoder(), TEXTS, out, shard_size=5, progress=False)
    shard_path(out, 4).unlink()
    with pytest.raises(HardnegError, match="missing"):
        ShardSet.open(out)
    with pytest.raises(HardnegError, match="manifest"):
        ShardSet.open(tmp_path / "nothing")


def test_float16_shards(tmp_path):
    enc = RowEncoder()
    ss = encode_sharded(enc, TEXTS, tmp_path / "s", shard_size=7, dtype="float16", progress=False)
    _, first = next(iter(ss))
    assert first.dtype == np.float16
    np.testing.assert_allclose(ss.load(), enc.table[:23], rtol=1e-3, atol=1e-3)


def test_budget_and_sizes():
    assert shard_rows_for_budget(384, "float32", 384 * 8 * 10) == 10
    assert shard_rows_for_budget(384, "float16", 1 << 20) == 455
    with pytest.raises(HardnegError, match="max-memory"):
        shard_rows_for_budget(384, "float32", 100)
    assert parse_bytes("2GB") == 2 << 30 and parse_bytes("1.5k") == 1536 and parse_bytes("512MiB") == 512 << 20
    with pytest.raises(HardnegError):
        parse_bytes("lots")


def _int_vectors(rng, n, d):
    """Small-integer vectors: every dot product is exact in float32, so ties are real ties."""
    return rng.integers(-2, 3, size=(n, d)).astype(np.float32)


def test_sharded_exact_search_equals_topk_over_whole_matrix(tmp_path):
    rng = np.random.default_rng(3)
    p = _int_vectors(rng, 41, 6)
    p[33] = p[2]  # ties across shards
    p[17] = p[2]
    q = _int_vectors(rng, 9, 6)
    ids = [f"doc{rng.integers(1000)}-{i}" for i in range(41)]
    key = id_order(ids)
    shards = [(s, p[s:s + 8]) for s in range(0, 41, 8)]
    exclude = [{2} if r % 2 else set() for r in range(9)]
    for k in (1, 5, 41, 50):
        want = topk(q, p, k, key=key, exclude=exclude)
        got = search_shards(q, shards, k, key=key, exclude=exclude)
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(got[0], want[0])


def test_search_dispatch_over_shardset(tmp_path):
    enc = RowEncoder()
    ss = encode_sharded(enc, TEXTS, tmp_path / "s", shard_size=4, progress=False)
    q = enc.table[100:105]
    want = topk(q, enc.table[:23], 6)
    got = search(q, ShardSet.open(tmp_path / "s"), 6)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    with pytest.raises(HardnegError, match="backend"):
        search(q, ss, 6, backend="annoy")
