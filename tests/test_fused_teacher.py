"""The fused (hybrid) teacher: z-score fusion of several teachers' pools, known answers by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hardneg.core.errors import HardnegError
from hardneg.data.beir import load_beir
from hardneg.experiment.grid import peer_can_mine
from hardneg.mining.candidates import Candidates
from hardneg.mining.config import MineConfig
from hardneg.mining.mine import mine
from hardneg.mining.teachers.bm25 import BM25Teacher
from hardneg.mining.teachers.fused import FusedTeacher, fuse_pools, parse_fuse_spec
from hardneg.mining.teachers.load import load_teacher
from hardneg.search.rank import id_order


def _z(x, pool):
    pool = np.asarray(pool, dtype=np.float64)
    return (x - pool.mean()) / pool.std()


def _pools():
    # corpus rows 0..4; teacher a ranks 0, 1, 2; teacher b ranks 3, 0, 4 (on another scale)
    a = Candidates("a", "fa", ["q1", "q2"], np.array([[0, 1, 2], [4, 3, -1]]),
                   np.array([[0.9, 0.5, 0.4], [0.7, 0.2, -np.inf]], np.float32), {"q1": {"p": 0.6}, "q2": {"p": 0.1}})
    b = Candidates("b", "fb", ["q1", "q2"], np.array([[3, 0, 4], [1, 4, 0]]),
                   np.array([[12.0, 8.0, 1.0], [5.0, 4.0, 3.0]], np.float32), {"q1": {"p": 10.0}, "q2": {}})
    return a, b


def test_fusion_equals_hand_computed_z_scores():
    a, b = _pools()
    f = fuse_pools([a, b], [1.0, 1.0], 4, key=np.arange(5), name="fuse:a+b", fingerprint="fx")
    pa, pb = [0.9, 0.5, 0.4], [12.0, 8.0, 1.0]
    want = {0: (_z(0.9, pa) + _z(8.0, pb)) / 2,
            1: (_z(0.5, pa) + _z(1.0, pb)) / 2,   # missing from b's pool: b's lowest score (1.0)
            2: (_z(0.4, pa) + _z(1.0, pb)) / 2,
            3: (_z(0.4, pa) + _z(12.0, pb)) / 2,  # missing from a's pool: a's lowest (0.4)
            4: (_z(0.4, pa) + _z(1.0, pb)) / 2}
    top4 = sorted(want, key=lambda d: (-round(want[d], 6), d))[:4]
    assert f.doc_idx[0].tolist() == top4
    np.testing.assert_allclose(f.scores[0], [want[d] for d in top4], rtol=1e-5)
    assert f.pos_scores["q1"]["p"] == pytest.approx((_z(0.6, pa) + _z(10.0, pb)) / 2)
    # q2: a's pool has a padding slot (ignored in its statistics); b has no score for p -> b's lowest (3.0)
    qa, qb = [0.7, 0.2], [5.0, 4.0, 3.0]
    assert f.pos_scores["q2"]["p"] == pytest.approx((_z(0.1, qa) + _z(3.0, qb)) / 2)
    assert f.doc_idx[1].tolist() == [4, 1, 0, 3] and f.scores.dtype == np.float32  # 0 and 3 tie: by id


def test_weights_shift_the_ranking_towards_a_teacher():
    a, b = _pools()
    only_a = fuse_pools([a, b], [1000.0, 1e-6], 3, key=np.arange(5), name="f", fingerprint="f")
    only_b = fuse_pools([a, b], [1e-6, 1000.0], 3, key=np.arange(5), name="f", fingerprint="f")
    assert only_a.doc_idx[0].tolist()[0] == 0 and only_b.doc_idx[0].tolist()[0] == 3


def test_parse_spec_and_errors():
    assert parse_fuse_spec("fuse:minilm+bm25") == (["minilm", "bm25"], [1.0, 1.0])
    assert parse_fuse_spec("fuse:./my=model=3+bm25") == (["./my=model", "bm25"], [3.0, 1.0])
    for bad, msg in [("fuse:minilm", "two or more"), ("fuse:minilm=0+bm25", "weight > 0"),
                     ("fuse:minilm=x+bm25", "not a number"), ("fuse:+bm25", "TEACHER=WEIGHT"),
                     ("fuse:bm25+fuse:random", "another fused")]:
        with pytest.raises(HardnegError, match=msg):
            parse_fuse_spec(bad)
    assert not peer_can_mine("fuse:minilm+bm25") and peer_can_mine("minilm")


def test_fused_teacher_mines_and_keeps_positives_out(tiny_beir, tmp_path):
    data = load_beir(tiny_beir, "train")
    t = load_teacher("fuse:bm25+random", seed=3, cache_dir=tmp_path)
    assert isinstance(t, FusedTeacher) and t.name == "fuse:bm25+random" and t.fingerprint.startswith("fuse:z:")
    cand = t.candidates(data, data.query_ids(), 4)
    key = id_order(data.corpus.ids)
    for r in range(len(cand.qids)):  # ranked by fused score, ties by id
        s, i = cand.scores[r], cand.doc_idx[r]
        assert all(s[k] > s[k + 1] or (s[k] == s[k + 1] and key[i[k]] < key[i[k + 1]]) for k in range(len(s) - 1))
    again = load_teacher("fuse:bm25+random", seed=3, cache_dir=tmp_path).candidates(data, data.query_ids(), 4)
    assert again.doc_idx.tolist() == cand.doc_idx.tolist()  # from the pool cache, the same pool
    result = mine(data, [t], MineConfig(method="percpos", perc=0.95, num_negatives=2))
    for row in result.rows:
        assert not set(row.neg_ids) & set(data.relevant(row.qid))
        assert all(x == "fuse:bm25+random" for x in row.neg_teachers)
    with pytest.raises(HardnegError, match="two or more"):
        FusedTeacher([BM25Teacher(cache=False)])


def test_mine_command_takes_a_fused_teacher_and_distill_reads_it_as_normalised(tiny_beir, tmp_path):
    import json

    from hardneg.cli.main import main
    from hardneg.core.provenance import meta_path
    from hardneg.data.negatives import read_negatives
    from hardneg.training.examples import teacher_kind

    out = tmp_path / "neg.jsonl"
    assert main(["mine", "--teacher", "fuse:bm25+random", "--data", str(tiny_beir), "--output", str(out),
                 "--num-negatives", "2", "--method", "naive", "--cache-dir", str(tmp_path / "cache")]) == 0
    meta = json.loads(meta_path(out).read_text())
    assert [t["name"] for t in meta["teachers"]] == ["fuse:bm25+random"]
    assert meta["teachers"][0]["fingerprint"].startswith("fuse:z:")
    rows = read_negatives(out)
    assert rows and all(len(r.neg_ids) == 2 for r in rows)
    assert teacher_kind(out, rows) == ("fuse:bm25+random", "fused")  # --distill z-scores its scores per row
