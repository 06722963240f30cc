"""The judge step inside mine(): flags applied as remove / keep / drop-query, audit, held-out quality."""

import numpy as np
import pytest

from hardneg.core.errors import HardnegError
from hardneg.data.negatives import audit_path, read_audit, read_negatives, write_negatives
from hardneg.data.types import Corpus, RetrievalData
from hardneg.mining.candidates import Candidates
from hardneg.mining.config import MineConfig
from hardneg.mining.mine import mine


def data():
    ids = [f"d{i}" for i in range(8)]
    corpus = Corpus(ids, [""] * 8, [f"text {i}" for i in range(8)])
    # q1: d0 known, d3 relevant but hidden from an anchor-only miner
    return RetrievalData(corpus, {"q1": "one", "q2": "two"}, {"q1": {"d0": 1, "d3": 1}, "q2": {"d4": 1}}, "train")


def pools():
    # teacher a (cosine-like), teacher b (BM25-like); rows: q1, q2; columns ranked by score
    a = Candidates("a", "fa", ["q1", "q2"], np.array([[3, 1, 2, 5], [1, 2, 5, 6]]),
                   np.array([[0.85, 0.6, 0.5, 0.4], [0.7, 0.65, 0.3, 0.2]], np.float32),
                   {"q1": {"d0": 0.9, "d3": 0.85}, "q2": {"d4": 0.8}})
    b = Candidates("b", "fb", ["q1", "q2"], np.array([[3, 5, 2, 1], [2, 6, 1, 5]]),
                   np.array([[9.5, 4.0, 3.0, 1.0], [9.0, 2.0, 1.5, 1.0]], np.float32),
                   {"q1": {"d0": 10.0, "d3": 9.5}, "q2": {"d4": 8.0}})
    return [a, b]


def cfg(**kw):
    return MineConfig(**{"method": "naive", "num_negatives": 2, "judge": "agreement", "judge_min_votes": 2,
                         "judge_frac": 0.9, "anchor_only": True, **kw})


def test_remove_keeps_flagged_passages_out_of_the_negatives():
    # thresholds at 0.9: a: q1 0.81 (only d3 reaches), q2 0.72 (none); b: q1 9.0 (d3), q2 7.2 (d2)
    res = mine(data(), pools(), cfg())
    rows = {r.qid: r for r in res.rows}
    assert "d3" not in rows["q1"].neg_ids and rows["q1"].neg_ids == ["d1", "d5"]  # d3: both teachers agree
    assert rows["q2"].neg_ids[:1] == ["d1"]  # d2 has only teacher b's vote: not flagged
    assert res.stats["judge"]["flagged"] == 2 and res.stats["removed"]["judge"] == 2  # d3 in each pool
    assert [(e["qid"], e["doc_id"], e["teacher"], e["decision"]) for e in res.audit] == [
        ("q1", "d3", "a", "removed"), ("q1", "d3", "b", "removed")]
    q = res.stats["judge"]["held_out"]
    assert q["precision"] == 1.0 and q["recall"] == 1.0 and q["flagged_held_out"] == 1


def test_keep_flags_only_and_drop_query_leaves_the_query_out():
    kept = mine(data(), pools(), cfg(false_negatives="keep"))
    assert "d3" in {r.qid: r for r in kept.rows}["q1"].neg_ids
    assert {e["decision"] for e in kept.audit} == {"kept"}
    dropped = mine(data(), pools(), cfg(false_negatives="drop-query", drop_query_over=0))
    assert [r.qid for r in dropped.rows] == ["q2"] and dropped.stats["judge"]["queries_dropped"] == 1
    assert {e["decision"] for e in dropped.audit} == {"query-dropped"}


def test_without_a_judge_nothing_changes():
    plain = mine(data(), pools(), cfg(judge="none"))
    assert plain.audit is None and "judge" not in plain.stats and "judge" not in plain.stats["removed"]


def test_audit_file_round_trips(tmp_path):
    config = cfg()
    res = mine(data(), pools(), config)
    out = write_negatives(tmp_path / "neg.jsonl", res, config)
    assert audit_path(out).name == "neg.audit.jsonl" and read_audit(out) == res.audit
    assert len(read_negatives(out)) == 2


def test_agreement_needs_enough_teachers():
    with pytest.raises(HardnegError, match="at least --judge-min-votes"):
        mine(data(), pools()[:1], cfg(judge_min_votes=2))
    with pytest.raises(HardnegError, match="choose one of"):
        MineConfig(judge="oracle")


class FakeCrossEncoder:
    """Scores a (query, passage) pair by a table keyed on the passage text; counts calls."""

    def __init__(self, table):
        self.table, self.calls = table, 0

    def predict(self, pairs, batch_size=32, convert_to_numpy=True, show_progress_bar=False):
        self.calls += 1
        return np.array([self.table.get(p, -5.0) for _, p in pairs], dtype=np.float32)


def test_cross_encoder_judge_flags_what_scores_like_the_positive():
    from hardneg.mining.teachers.judge import CrossEncoderJudge, load_judge

    ce = FakeCrossEncoder({"text 0": 3.0, "text 3": 2.9, "text 5": 1.0, "text 4": 2.0, "text 6": 2.5})
    res = mine(data(), pools(), cfg(judge="cross-encoder"), judge=CrossEncoderJudge(ce, margin=0.2))
    # q1: positive d0 scores 3.0 -> d3 (2.9) flagged, d5 (1.0) not; q2: positive d4 2.0 -> d6 (2.5) flagged
    assert ce.calls == 1  # one batched call for every pair of every query
    assert {(e["qid"], e["doc_id"]) for e in res.audit} == {("q1", "d3"), ("q2", "d6")}
    assert all("d3" not in r.neg_ids for r in res.rows if r.qid == "q1")
    assert res.audit[0]["judge_scores"]["cross_encoder_positive"] == 3.0
    with pytest.raises(HardnegError, match="needs --judge-model"):
        load_judge(cfg(judge="cross-encoder"), 2)
    with pytest.raises(HardnegError, match="needs a model"):
        mine(data(), pools(), cfg(judge="cross-encoder"))


def test_cli_mine_with_two_teachers_and_the_agreement_judge(tiny_beir, tiny_model, tmp_path, capsys):
    from hardneg.cli.main import main

    out = tmp_path / "neg.jsonl"
    rc = main(["mine", "--teacher", str(tiny_model), "--teacher", "bm25", "--data", str(tiny_beir),
               "--output", str(out), "--method", "naive", "--num-negatives", "2", "--judge", "agreement",
               "--judge-min-votes", "2", "--judge-frac", "0.5", "--anchor-only", "--cache-dir", str(tmp_path / "c")])
    text = capsys.readouterr().out
    assert rc == 0 and "judge agreement:" in text and audit_path(out).is_file()
    flagged = {(e["qid"], e["doc_id"]) for e in read_audit(out)}
    assert all((r.qid, d) not in flagged for r in read_negatives(out) for d in r.neg_ids)
    assert flagged  # the tiny fixture has candidates both teachers rank near the positive
    assert main(["inspect", str(out), "--data", str(tiny_beir), "--audit-sample", "2"]) == 0
    shown = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  [removed")]
    assert len(shown) == min(2, len(flagged))
    assert main(["mine", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(tmp_path / "x.jsonl"),
                 "--judge", "cross-encoder"]) == 2
    assert "--judge-model" in capsys.readouterr().err


def test_relabel_turns_flagged_passages_into_extra_positives(tmp_path):
    res = mine(data(), pools(), cfg(false_negatives="relabel"))
    rows = {r.qid: r for r in res.rows}
    assert rows["q1"].relabeled == ["d3"] and "d3" not in rows["q1"].neg_ids and rows["q2"].relabeled == []
    assert rows["q1"].neg_ids == mine(data(), pools(), cfg()).rows[0].neg_ids  # negatives as with remove
    assert {e["decision"] for e in res.audit} == {"relabeled"} and res.stats["judge"]["relabeled"] == 1
    out = write_negatives(tmp_path / "neg.jsonl", res, cfg(false_negatives="relabel"))
    back = {r.qid: r for r in read_negatives(out)}
    assert back["q1"].relabeled == ["d3"] and back["q2"].relabeled == []
    assert '"relabeled"' not in out.read_text().splitlines()[1]  # only written when non-empty


def test_voters_judge_but_never_supply_negatives():
    a, b = pools()
    res = mine(data(), [a], cfg(), voters=[b])
    assert res.stats["judge"]["voters"] == ["b"] and all(t == "a" for r in res.rows for t in r.neg_teachers)
    assert "d3" not in {r.qid: r for r in res.rows}["q1"].neg_ids  # a and b agree on d3
    assert {e["teacher"] for e in res.audit} == {"a"}  # the audit lists the selection pools only
    with pytest.raises(HardnegError, match="voters"):
        mine(data(), [a], cfg(judge="none"), voters=[b])


def test_bad_relabeled_field_names_file_and_line(tmp_path):
    from hardneg.core.errors import DataError

    p = tmp_path / "neg.jsonl"
    p.write_text('{"qid": "q1", "pos_id": "d0", "pos_score": 1.0, "neg_ids": ["d1"], "neg_scores": [0.5], '
                 '"neg_teachers": ["a"], "relabeled": ["d1"]}\n')
    with pytest.raises(DataError, match=r"neg.jsonl:1: relabeled positive .d1. is also listed as a negative"):
        read_negatives(p)
    p.write_text('{"qid": "q1", "pos_id": "d0", "pos_score": 1.0, "neg_ids": [], "neg_scores": [], '
                 '"neg_teachers": [], "relabeled": "d3"}\n')
    with pytest.raises(DataError, match="neg.jsonl:1: .relabeled. must be a list of document ids"):
        read_negatives(p)


def test_a_judge_model_that_does_not_load_fails_before_any_work():
    from hardneg.mining.teachers.judge import load_judge

    with pytest.raises(HardnegError, match="could not load model '/nonexistent/ce'"):
        load_judge(cfg(judge="cross-encoder", judge_model="/nonexistent/ce"), 2)
    with pytest.raises(HardnegError, match="judge_frac must be in"):
        cfg(judge_frac=0.0)
