"""Inspect: known-answer false-negative rates, score summaries, plot written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hardneg.analysis.negatives import false_negatives, histograms, inspect_rows, score_values
from hardneg.cli.main import main
from hardneg.core.summary import summarize
from hardneg.data.negatives import read_negatives

# tiny_beir test qrels: q1 -> d1 (2), d4 (1), d3 (0); q2 -> d2; q3 -> d5
ROWS = [
    {"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d4", "d3", "d2"], "neg_scores": [0.85, 0.5, 0.4],
     "neg_teachers": ["t"] * 3},
    {"qid": "q2", "pos_id": "d2", "pos_score": 0.7, "neg_ids": ["d1", "d6"], "neg_scores": [0.6, 0.3],
     "neg_teachers": ["t"] * 2},
    {"qid": "q3", "pos_id": "d5", "pos_score": 0.8, "neg_ids": ["d6", "d4"], "neg_scores": [0.2, 0.1],
     "neg_teachers": ["t"] * 2},
]
QRELS = {"q1": {"d1": 2, "d4": 1, "d3": 0}, "q2": {"d2": 1}, "q3": {"d5": 1}}


@pytest.fixture
def neg_file(tmp_path):
    path = tmp_path / "neg.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_false_negative_rate_known_answer(neg_file):
    f = false_negatives(read_negatives(neg_file), QRELS)
    assert (f["negatives"], f["false_negatives"]) == (7, 1)
    assert f["rate"] == pytest.approx(1 / 7)
    assert f["rows_with_held_out"] == 1 and f["rate_with_held_out"] == pytest.approx(1 / 3)
    assert [(p["negatives"], p["false_negatives"]) for p in f["per_rank"]] == [(3, 1), (3, 0), (1, 0)]
    assert f["per_rank"][0]["rate"] == pytest.approx(1 / 3)
    assert f["judged_nonrelevant"] == 1 and f["rows_with_false_negative"] == 1
    # another query's positive (d1 for q2) is not a false negative of q2
    assert false_negatives(read_negatives(neg_file)[1:2], QRELS)["false_negatives"] == 0


def test_score_values_summaries_histograms(neg_file):
    v = score_values(read_negatives(neg_file))
    np.testing.assert_allclose(v["neg_minus_pos"], [-0.05, -0.4, -0.5, -0.1, -0.4, -0.6, -0.7], atol=1e-9)
    s = summarize(v["pos_score"])
    assert s["count"] == 3 and s["mean"] == pytest.approx(0.8) and s["q50"] == pytest.approx(0.8)
    assert summarize(np.array([]))["count"] == 0 and summarize(np.array([]))["mean"] is None
    h = histograms(v, bins=4)
    assert sum(h["scores"]["pos"]) == 3 and sum(h["scores"]["neg"]) == 7
    assert h["scores"]["edges"][0] == pytest.approx(0.1) and h["scores"]["edges"][-1] == pytest.approx(0.9)
    assert sum(h["neg_minus_pos"]["counts"]) == 7
    assert inspect_rows(read_negatives(neg_file), QRELS)["queries"] == 3


def test_inspect_cli_prints_and_plots(neg_file, tiny_beir, tmp_path, capsys):
    png, out = tmp_path / "neg.png", tmp_path / "report.json"
    rc = main(["inspect", str(neg_file), "--data", str(tiny_beir), "--split", "test", "--plot", str(png),
               "--output", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "1/7 = 14.29%" in printed and "held-out positives: 33.33%" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert json.loads(out.read_text())["false_negatives"]["false_negatives"] == 1
    meta = json.loads((tmp_path / "report.json.meta.json").read_text())
    assert meta["config"] == {"negatives": str(neg_file), "data": str(tiny_beir), "split": "test", "bins": 40,
                              "audit_sample": 5, "seed": 0}
    assert meta["data_source"] and len(meta["negatives_sha256"]) == 64
