"""hardneg.evaluate and ``hardneg evaluate``: orchestration with known answers, and the CLI end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import TINY_CORPUS, TINY_QRELS, TINY_QUERIES, write_beir

from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.data.beir import load_beir
from hardneg.evaluation.metrics import DEFAULT_METRICS
from hardneg.evaluation.run import EvalResult, evaluate, run_from_topk

L2 = math.log2


class TableEncoder:
    """Encoder whose vectors are looked up by text: passages are one-hot rows, so a query's vector
    is literally its score for each corpus row."""

    name = "table"

    def __init__(self, query_vecs: dict[str, list[float]], passage_texts: list[str]):
        self.q = query_vecs
        self.p = {t: np.eye(len(passage_texts), dtype=np.float32)[i] for i, t in enumerate(passage_texts)}
        self.fingerprint = f"table-{abs(hash(json.dumps(query_vecs, sort_keys=True)))}"

    def encode_queries(self, texts):
        return np.asarray([self.q[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)

    def encode_passages(self, texts):
        return np.asarray([self.p[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)


# scores per corpus row d1..d6 (test qrels: q1 d1=2 d4=1 d3=0; q2 d2=1; q3 d5=1)
Q_SCORES = {
    "what is a cat": [0.2, 0.1, 0.9, 0.8, 0.0, 0.0],            # ranking d3 d4 d1 d2 d5 d6
    "where do dogs come from": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],  # d2 first
    "what orbits the earth": [0.0, 0.0, 0.0, 0.0, 0.4, 0.5],    # d6 d5 ...
}


def test_run_from_topk_keeps_rank_order_and_skips_padding():
    idx = np.array([[2, 0, -1], [1, -1, -1]])
    scores = np.array([[0.5, 0.25, -np.inf], [0.75, -np.inf, -np.inf]], dtype=np.float32)
    run = run_from_topk(["qa", "qb"], idx, scores, ["x", "y", "z"])
    assert run == {"qa": {"z": 0.5, "x": 0.25}, "qb": {"y": 0.75}}
    assert list(run["qa"]) == ["z", "x"]
    with pytest.raises(ValueError, match="shape mismatch"):
        run_from_topk(["qa"], idx, scores, ["x", "y", "z"])


def test_evaluate_known_answer(tiny_beir, tmp_path):
    data = load_beir(tiny_beir, "test")
    enc = TableEncoder(Q_SCORES, data.corpus.passage_texts())
    res = evaluate(enc, data, cache_dir=tmp_path / "cache", progress=False)
    assert isinstance(res, EvalResult) and res.n_queries == 3
    assert list(res.metrics) == list(DEFAULT_METRICS)
    # q1: d3 (grade 0) rank 1, d4 (1) rank 2, d1 (2) rank 3
    #     DCG = 1/log2(3) + 2/log2(4) ; IDCG = 2 + 1/log2(3)            -> 0.6199
    #     AP = (1/2 + 2/3) / 2 = 0.5833 ; RR = 1/2 ; P@10 = 2/10
    # q2: d2 rank 1 -> 1 everywhere, P@10 = 0.1
    # q3: d5 rank 2 -> NDCG 1/log2(3) = 0.6309, AP 1/2, RR 1/2, P@10 = 0.1
    ndcg_q1 = (1 / L2(3) + 2 / L2(4)) / (2 + 1 / L2(3))
    assert res.per_query["ndcg@10"] == pytest.approx({"q1": ndcg_q1, "q2": 1.0, "q3": 1 / L2(3)})
    assert res.metrics["ndcg@10"] == pytest.approx((ndcg_q1 + 1 + 1 / L2(3)) / 3)  # 0.7503
    assert res.metrics["map@100"] == pytest.approx(((1 / 2 + 2 / 3) / 2 + 1 + 1 / 2) / 3)  # 0.6944
    assert res.metrics["mrr@10"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert res.metrics["p@10"] == pytest.approx((0.2 + 0.1 + 0.1) / 3)
    assert res.metrics["recall@10"] == pytest.approx(1.0)
    assert {"encode_s", "search_s", "metrics_s"} <= set(res.timings)
    again = evaluate(enc, data, cache_dir=tmp_path / "cache", progress=False)  # served from the cache
    assert again.per_query == res.per_query


def test_evaluate_drops_doc_with_the_query_id(tmp_path):
    corpus = TINY_CORPUS + [{"_id": "q1", "title": "", "text": "a document that shares the id of q1"}]
    root = write_beir(tmp_path / "ids", corpus=corpus, queries=TINY_QUERIES, qrels=TINY_QRELS)
    data = load_beir(root, "test")
    scores = {t: v + [0.0] for t, v in Q_SCORES.items()}
    scores["what is a cat"][6] = 0.99  # doc "q1" would be the top hit of query q1
    enc = TableEncoder(scores, data.corpus.passage_texts())
    dropped = evaluate(enc, data, cache_dir=tmp_path / "c", progress=False)
    kept = evaluate(enc, data, cache_dir=tmp_path / "c", progress=False, ignore_identical_ids=False)
    ndcg_q1 = (1 / L2(3) + 2 / L2(4)) / (2 + 1 / L2(3))
    assert dropped.per_query["ndcg@10"]["q1"] == pytest.approx(ndcg_q1)
    # kept: "q1" rank 1, d3 rank 2, d4 rank 3, d1 rank 4 -> DCG = 1/log2(4) + 2/log2(5)
    assert kept.per_query["ndcg@10"]["q1"] == pytest.approx((1 / L2(4) + 2 / L2(5)) / (2 + 1 / L2(3)))
    assert kept.per_query["mrr@10"]["q1"] == pytest.approx(1 / 3)


def test_evaluate_rejects_depth_below_cutoff(tiny_beir, tmp_path):
    data = load_beir(tiny_beir, "test")
    enc = TableEncoder(Q_SCORES, data.corpus.passage_texts())
    with pytest.raises(HardnegError, match="k=10 is below"):
        evaluate(enc, data, k=10, cache_dir=tmp_path, progress=False)


def test_cli_evaluate_end_to_end(tiny_beir, tiny_model, tmp_path, capsys):
    out = tmp_path / "res" / "results.json"
    argv = ["evaluate", "--model", str(tiny_model), "--data", str(tiny_beir), "--split", "test",
            "--output", str(out), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = [ln.split() for ln in printed.splitlines() if ln.split() and ln.split()[0] in DEFAULT_METRICS]
    assert [row[0] for row in table][0] == "ndcg@10" and len(table) == 7
    res = json.loads(out.read_text())
    assert list(res) == ["ndcg@10", "ndcg@100", "map@100", "recall@10", "recall@100", "mrr@10", "p@10"]
    assert all(0.0 <= v <= 1.0 for v in res.values())
    assert float(table[0][1]) == pytest.approx(res["ndcg@10"], abs=5e-5)
    meta = json.loads((tmp_path / "res" / "results.json.meta.json").read_text())
    assert meta["hardneg_version"] and meta["model_fingerprint"] and meta["data_fingerprint"]
    assert meta["split"] == "test" and meta["backend"] == "torch" and meta["n_queries"] == 3
    assert {"encode_s", "search_s", "metrics_s"} <= set(meta["timings"])
    assert meta["data_fingerprint"] == load_beir(tiny_beir, "test").fingerprint()
    assert meta["config"] == {"model": str(tiny_model), "data": str(tiny_beir), "split": "test", "backend": "torch",
                              "batch_size": 32, "max_length": None, "query_prompt": "", "passage_prompt": "",
                              "cache_dir": str(tmp_path / "cache"), "k": 100, "keep_identical_ids": False}
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left no temporaries
    assert main(argv) == 0  # second run (cached embeddings) gives the same numbers
    assert json.loads(out.read_text()) == res


def test_cli_evaluate_bad_data_is_one_clear_error(tiny_beir, tiny_model, tmp_path, capsys):
    rc = main(["evaluate", "--model", str(tiny_model), "--data", str(tmp_path / "nope"), "--no-progress"])
    assert rc == 2 and "error:" in capsys.readouterr().err
    rc = main(["evaluate", "--model", str(tiny_model), "--data", str(tiny_beir), "--split", "dev", "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "dev" in err and "train" in err  # names the split and the available ones


def test_cli_evaluate_help_lists_metrics(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--backend" in text and "ndcg@10" in text and "--output" in text
