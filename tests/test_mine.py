"""mine(): rows, positives, anchor-only, graded qrels, shortfall handling, stats, output, errors, CLI."""

import json

import numpy as np
import pytest
from fakes import TableTeacher

from hardneg.cli.main import main
from hardneg.core.errors import DataError, HardnegError
from hardneg.data.negatives import read_negatives, write_negatives
from hardneg.data.types import Corpus, RetrievalData
from hardneg.mining.candidates import Candidates
from hardneg.mining.config import MineConfig
from hardneg.mining.mine import mine

IDS = [f"d{i}" for i in range(10)]


def make_data(qrels=None):
    corpus = Corpus(list(IDS), [""] * 10, [f"passage {i}" for i in range(10)])
    qrels = qrels or {"qa": {"d0": 1, "d1": 2, "d9": 0}, "qb": {"d5": 1}}
    return RetrievalData(corpus, {"qa": "a", "qb": "b", "qc": "c"}, qrels, "train")


# qa: positives d0 (0.9), d1 (0.7); qb: positive d5 (0.5)
TABLE = [[0.9, 0.7, 0.95, 0.68, 0.66, 0.2, 0.1, 0.05, 0.0, 0.67],
         [0.1, 0.2, 0.3, 0.45, 0.6, 0.5, 0.44, 0.43, 0.42, 0.9]]


def teacher():
    return TableTeacher(["qa", "qb"], TABLE)


def test_rows_per_query_positive_with_min_threshold_and_graded_zero():
    res = mine(make_data(), [teacher()], MineConfig(num_negatives=3))
    assert [(r.qid, r.pos_id) for r in res.rows] == [("qa", "d0"), ("qa", "d1"), ("qb", "d5")]
    # qa: threshold min(0.9, 0.7) * 0.95 = 0.665; d9 (grade 0) is an ordinary candidate
    assert res.rows[0].neg_ids == ["d4", "d5", "d6"]
    assert res.rows[0].neg_ids == res.rows[1].neg_ids
    assert res.rows[0].pos_score == pytest.approx(0.9) and res.rows[1].pos_score == pytest.approx(0.7)
    # qb: threshold 0.475 -> 0.45, 0.44, 0.43
    assert res.rows[2].neg_ids == ["d3", "d6", "d7"]
    assert res.rows[2].neg_scores == pytest.approx([0.45, 0.44, 0.43])


def test_positive_score_max_and_naive():
    res = mine(make_data(), [teacher()], MineConfig(num_negatives=2, positive_score="max"))
    assert res.rows[0].neg_ids == ["d3", "d9"]  # threshold 0.855
    res = mine(make_data(), [teacher()], MineConfig(num_negatives=2, method="naive"))
    assert res.rows[0].neg_ids == ["d2", "d3"] and res.rows[2].neg_ids == ["d9", "d4"]


def test_anchor_only_lets_other_positives_be_mined():
    res = mine(make_data(), [teacher()], MineConfig(num_negatives=3, anchor_only=True))
    assert [(r.qid, r.pos_id) for r in res.rows] == [("qa", "d0"), ("qb", "d5")]
    assert res.rows[0].neg_ids == ["d1", "d3", "d9"]  # threshold 0.855; d1 is a held-out positive


def test_shortfall_keep_drop_deepen():
    data = make_data()
    cfg = dict(num_negatives=3, method="shifted", shift=2, depth=4)
    kept = mine(data, [teacher()], MineConfig(on_shortfall="keep", **cfg))
    # qa top-4 = d2 d0 d1 d3: non-positives d2, d3 both shifted away -> 0 negatives
    assert [len(r.neg_ids) for r in kept.rows] == [0, 0, 1]
    assert kept.stats["shortfall"]["rows_short_in_output"] == 3
    assert kept.stats["negatives_per_row"] == {"0": 2, "1": 1}
    dropped = mine(data, [teacher()], MineConfig(on_shortfall="drop", **cfg))
    assert dropped.rows == [] and dropped.stats["shortfall"]["dropped"] == 3
    t = teacher()
    deep = mine(data, [t], MineConfig(on_shortfall="deepen", **cfg))
    assert t.depths == [4, 8]  # depth 8 is enough for every query
    assert [len(r.neg_ids) for r in deep.rows] == [3, 3, 3]
    assert deep.rows[0].neg_ids == ["d9", "d4", "d5"]
    assert deep.stats["shortfall"]["resolved_by_deepen"] == 3


def test_deepen_stops_at_corpus_size_and_keeps_rows():
    t = teacher()
    res = mine(make_data(), [t], MineConfig(num_negatives=8, on_shortfall="deepen", depth=5))
    assert t.depths[-1] == 10
    assert [len(r.neg_ids) for r in res.rows] == [5, 5, 7]  # every survivor of the whole corpus
    assert res.stats["shortfall"]["rows_short_in_output"] == 3


def test_deepen_with_precomputed_candidates_keeps_short_rows(caplog):
    cand = teacher().candidates(make_data(), ["qa", "qb"], 4)
    res = mine(make_data(), [cand], MineConfig(num_negatives=3, method="shifted", shift=2, on_shortfall="deepen"))
    assert [len(r.neg_ids) for r in res.rows] == [0, 0, 1]
    assert res.stats["shortfall"]["rows_short_in_output"] == 3
    assert "cannot be re-searched" in caplog.text


def test_neg_minus_pos_uses_each_negatives_own_teacher():
    other = TableTeacher(["qa", "qb"], [[10 * x for x in row] for row in TABLE], name="x10")
    res = mine(make_data(), [teacher(), other], MineConfig(num_negatives=2, ensemble="intra-nodedup"))
    # qa/d0: fake picks d4 (0.66 - 0.9), x10 picks d4 (6.6 - 9.0)
    assert res.rows[0].neg_teachers == ["fake", "x10"]
    assert res.values["neg_minus_pos"][:2] == pytest.approx([0.66 - 0.9, 6.6 - 9.0], abs=1e-5)


def test_stats_counts_and_summaries():
    res = mine(make_data(), [teacher()], MineConfig(num_negatives=3))
    st = res.stats
    assert st["candidates_seen"] == 20 and st["rows"] == 3 and st["queries"] == 2
    assert st["removed"] == {"padding": 0, "positive": 3, "percpos": 5}  # qa: d2 d3 d9; qb: d9 d4
    assert st["pos_score"]["count"] == 3 and st["neg_score"]["count"] == 9
    assert st["neg_minus_pos"]["max"] < 0
    assert set(st["neg_score"]) == {"count", "mean", "std", "min", "q05", "q25", "q50", "q75", "q95", "max"}
    assert len(res.values["neg_minus_pos"]) == 9
    assert res.values["neg_minus_pos"][0] == pytest.approx(0.66 - 0.9)


def test_output_roundtrip_and_byte_identical(tmp_path):
    cfg = MineConfig(num_negatives=3, select="sampled", sample_from=5, seed=7)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_negatives(a, mine(make_data(), [teacher()], cfg), cfg)
    write_negatives(b, mine(make_data(), [teacher()], cfg), cfg)
    assert a.read_bytes() == b.read_bytes()
    rows = read_negatives(a)
    assert len(rows) == 3 and all(len(r.neg_ids) == 3 for r in rows)
    first = json.loads(a.read_text().splitlines()[0])
    assert list(first) == ["qid", "pos_id", "pos_score", "neg_ids", "neg_scores", "neg_teachers"]
    meta = json.loads((tmp_path / "a.jsonl.meta.json").read_text())
    assert meta["config"]["seed"] == 7 and meta["teachers"][0]["fingerprint"] == "fake-fp"
    assert meta["stats"]["rows"] == 3 and "data_fingerprint" in meta and "timings" in meta


def test_read_negatives_errors_name_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    good = {"qid": "q", "pos_id": "d0", "pos_score": 1.0, "neg_ids": ["d1"], "neg_scores": [0.5], "neg_teachers": ["t"]}
    p.write_text(json.dumps(good) + "\n" + json.dumps({**good, "neg_scores": []}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2: .*differ in length"):
        read_negatives(p)
    p.write_text(json.dumps({**good, "neg_ids": ["d0"]}) + "\n")
    with pytest.raises(DataError, match=r":1: positive 'd0'"):
        read_negatives(p)
    with pytest.raises(DataError, match="not found"):
        read_negatives(tmp_path / "missing.jsonl")


def test_bad_input_errors():
    with pytest.raises(HardnegError, match="smaller than the corpus"):
        mine(make_data(), [teacher()], MineConfig(num_negatives=10))
    with pytest.raises(HardnegError, match="not in the corpus"):
        mine(make_data({"qa": {"nope": 1}}), [teacher()], MineConfig())
    cand = teacher().candidates(make_data(), ["qa"], 5)
    with pytest.raises(HardnegError, match="no candidates for query 'qb'"):
        mine(make_data(), [cand], MineConfig())
    bad = Candidates("x", "x", ["qa", "qb"], np.array([[0, 42], [1, 2]]), np.zeros((2, 2), np.float32))
    with pytest.raises(HardnegError, match="outside"):
        mine(make_data(), [bad], MineConfig(method="naive"))
    noscore = Candidates("x", "x", ["qa", "qb"], np.array([[2, 3], [2, 3]]), np.zeros((2, 2), np.float32))
    with pytest.raises(HardnegError, match="no score for any positive"):
        mine(make_data(), [noscore], MineConfig())
    for bad_cfg in (dict(method="topk"), dict(perc=1.5), dict(num_negatives=0), dict(select="sampled", sample_from=2),
                    dict(sample_temperature=0), dict(on_shortfall="pad"), dict(ensemble="x")):
        with pytest.raises(HardnegError):
            MineConfig(**bad_cfg)


def test_cli_mine_end_to_end(tiny_beir, tiny_model, tmp_path, capsys):
    out = tmp_path / "neg.jsonl"
    args = ["mine", "--teacher", str(tiny_model), "--teacher", "bm25", "--data", str(tiny_beir),
            "--output", str(out), "--num-negatives", "2", "--method", "naive", "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 0
    assert "wrote" in capsys.readouterr().out
    rows = read_negatives(out)
    assert [(r.qid, r.pos_id) for r in rows] == [("q1", "d1"), ("q1", "d4"), ("q2", "d2"), ("q3", "d5")]
    for r in rows:
        assert len(r.neg_ids) == 2 and r.pos_id not in r.neg_ids
        assert not {"d1", "d4"} & set(r.neg_ids) if r.qid == "q1" else True
    assert {t for r in rows for t in r.neg_teachers} == {str(tiny_model), "bm25"}
    first = out.read_bytes()
    assert main(args) == 0 and out.read_bytes() == first


def test_cli_errors(tiny_beir, tmp_path, capsys):
    base = ["mine", "--data", str(tiny_beir), "--output", str(tmp_path / "n.jsonl")]
    assert main(base + ["--teacher", "bm25", "--num-negatives", "6"]) == 2
    assert "smaller than the corpus" in capsys.readouterr().err
    assert main(base + ["--teacher", str(tmp_path / "no-such-model")]) == 2
    assert main(base + ["--teacher", "bm25", "--perc", "2"]) == 2


@pytest.mark.slow
def test_scifact_train_bm25_real_data(tmp_path):
    import conftest

    root = conftest.SHARED_DATA / "scifact"
    if not root.is_dir():
        pytest.skip(f"shared data not found at {root}")
    from hardneg.data.beir import load_beir
    from hardneg.mining.teachers.load import load_teacher

    data = load_beir(root, "train")
    cfg = MineConfig()
    t = load_teacher("bm25", cache_dir=tmp_path / "cache")
    res = mine(data, [t], cfg)
    assert len(res.rows) == sum(len(data.relevant(q)) for q in data.query_ids()) == 919
    p_min: dict[str, float] = {}
    for r in res.rows:  # the threshold uses the query's lowest positive score
        p_min[r.qid] = min(p_min.get(r.qid, np.inf), r.pos_score)
    for r in res.rows:
        assert not set(data.relevant(r.qid)) & set(r.neg_ids)
        assert all(s < p_min[r.qid] - abs(p_min[r.qid]) * 0.05 + 1e-5 for s in r.neg_scores)
    # BM25 gives some positives a score of 0 (no shared term): percpos then keeps nothing, and says so
    assert res.stats["shortfall"]["rows_short_in_output"] == res.stats["negatives_per_row"].get("0", 0) + sum(
        c for k, c in res.stats["negatives_per_row"].items() if 0 < int(k) < 4)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_negatives(a, res, cfg)
    write_negatives(b, mine(data, [t], cfg), cfg)
    assert a.read_bytes() == b.read_bytes()


def test_simans_selection_mines_end_to_end(tiny_beir):
    from hardneg.data.load import load_data
    from hardneg.mining.config import MineConfig
    from hardneg.mining.mine import mine
    from hardneg.mining.teachers.bm25 import BM25Teacher

    data = load_data(tiny_beir, "train")
    cfg = MineConfig(method="naive", select="simans", num_negatives=2, seed=3)
    a, b = (mine(data, [BM25Teacher(cache=False)], cfg) for _ in range(2))
    assert [r.neg_ids for r in a.rows] == [r.neg_ids for r in b.rows]  # seeded
    known = {q: set(data.relevant(q)) for q in data.query_ids()}
    assert all(not set(r.neg_ids) & known[r.qid] for r in a.rows)
