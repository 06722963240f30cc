"""``hardneg compare`` and ``analysis.compare``: known answers on hand-made per-query values, the
three input kinds, mismatched queries, the CLI end to end, and evaluate's per-query sibling file."""

from __future__ import annotations

import json

import pytest

import hardneg as hn
from hardneg.analysis.compare import compare, pick_metrics, shared_queries
from hardneg.cli.compare import load_run
from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.data.beir import load_beir
from hardneg.evaluation.run import EvalConfig, EvalResult, per_query_path, write_eval

QIDS = [f"q{i}" for i in range(20)]
A = {"ndcg@10": {q: i / 20 for i, q in enumerate(QIDS)}, "mrr@10": {q: 0.5 for q in QIDS}}
# B beats A on every query by 0.05..0.07 in ndcg@10; mrr@10 identical
B = {"ndcg@10": {q: i / 20 + 0.05 + 0.01 * (i % 3) for i, q in enumerate(QIDS)}, "mrr@10": dict(A["mrr@10"])}


def write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def means(per_query):
    return {m: sum(v.values()) / len(v) for m, v in per_query.items()}


# --- pure logic -------------------------------------------------------------------------------

def test_better_on_every_query_excludes_zero():
    rows = compare({"A": A, "B": B}, n_resamples=500, seed=1)
    assert [(r.metric, r.baseline, r.other) for r in rows] == [("ndcg@10", "A", "B"), ("mrr@10", "A", "B")]
    nd = rows[0]
    diffs = [0.05 + 0.01 * (i % 3) for i in range(20)]
    assert nd.delta.mean == pytest.approx(sum(diffs) / 20)  # 0.0595
    assert nd.other_mean - nd.baseline_mean == pytest.approx(nd.delta.mean)
    assert nd.baseline_mean == pytest.approx(means(A)["ndcg@10"])
    assert 0.05 <= nd.delta.lo <= nd.delta.mean <= nd.delta.hi <= 0.07  # every resample mean lies in [min, max]
    assert nd.significant and nd.delta.n == 20
    mrr = rows[1]
    assert (mrr.delta.mean, mrr.delta.lo, mrr.delta.hi, mrr.significant) == (0.0, 0.0, 0.0, False)


def test_identical_runs_differ_by_zero():
    rows = compare({"A": A, "A again": json.loads(json.dumps(A))})
    assert all(r.delta.mean == 0 and r.delta.lo == 0 and r.delta.hi == 0 and not r.significant for r in rows)


def test_same_seed_same_interval_and_row_json():
    r1, r2 = compare({"A": A, "B": B}, seed=3)[0], compare({"A": A, "B": B}, seed=3)[0]
    assert r1 == r2
    d = r1.to_dict()
    assert d["difference"] == r1.delta.mean and d["significant"] is True and d["n_queries"] == 20


def test_metrics_default_and_asked_for():
    runs = {"A": {"mrr@10": {}, "p@10": {}, "ndcg@10": {}}, "B": {"ndcg@10": {}, "mrr@10": {}}}
    assert pick_metrics(runs) == ["ndcg@10", "mrr@10"]  # ndcg@10 first, then shared in A's order
    assert pick_metrics(runs, ["MRR@10", "mrr@10"]) == ["mrr@10"]
    with pytest.raises(HardnegError, match="B has no metric 'p@10'"):
        pick_metrics(runs, ["p@10"])


def test_mismatched_queries_error_names_the_counts():
    b = {m: {q: v for q, v in vals.items() if q not in ("q0", "q1")} | {"extra": 1.0} for m, vals in B.items()}
    with pytest.raises(HardnegError, match=r"2 only in A, 1 only in B, 18 in both.*--intersect"):
        compare({"A": A, "B": b})
    rows = compare({"A": A, "B": b}, intersect=True)
    assert all(r.delta.n == 18 for r in rows)
    assert rows[0].baseline_mean == pytest.approx(sum(i / 20 for i in range(2, 20)) / 18)  # over the shared ones
    assert shared_queries({"a": 1, "b": 2}, {"b": 0, "a": 0}) == ["a", "b"]
    with pytest.raises(HardnegError, match="share no query"):
        shared_queries({"a": 1}, {"b": 1}, intersect=True)


def test_compare_needs_two_runs_and_is_public():
    with pytest.raises(HardnegError, match="at least one other run"):
        compare({"A": A})
    assert hn.compare is compare


# --- inputs -----------------------------------------------------------------------------------

def eval_result(per_query) -> EvalResult:
    return EvalResult(metrics=means(per_query), per_query=per_query, timings={"encode_s": 0.0}, n_queries=20)


def test_write_eval_writes_the_per_query_sibling(tiny_beir, tmp_path):
    data = load_beir(tiny_beir, "test")
    out = tmp_path / "res" / "base.json"
    assert write_eval(out, eval_result(A), EvalConfig(model="m", data=str(tiny_beir)), data=data) == out
    assert json.loads(out.read_text()) == means(A)  # flat {metric: mean}, unchanged
    sibling = tmp_path / "res" / "base.per_query.json"
    assert per_query_path(out) == sibling and json.loads(sibling.read_text()) == A
    meta = json.loads((tmp_path / "res" / "base.json.meta.json").read_text())
    assert meta["per_query"] == "base.per_query.json" and meta["n_queries"] == 20
    assert not list(out.parent.glob(".*.tmp"))


def test_three_input_kinds(tiny_beir, tmp_path):
    data = load_beir(tiny_beir, "test")
    ev = tmp_path / "ev.json"
    write_eval(ev, eval_result(A), EvalConfig(model="m", data=str(tiny_beir)), data=data)
    assert load_run(ev) == A                                       # evaluate output -> its sibling
    assert load_run(per_query_path(ev)) == A                       # the .per_query.json itself
    cell = write(tmp_path / "runs" / "x" / "cells" / "abc.json",
                 {"id": "abc", "kind": "method", "metrics": means(B), "per_query": B})
    assert load_run(cell) == B                                     # an ablation cell


def test_bad_inputs_are_clear_errors(tmp_path):
    means_only = write(tmp_path / "old.json", means(A))
    with pytest.raises(HardnegError, match=r"old\.per_query\.json is missing"):
        load_run(means_only)
    probe = write(tmp_path / "cells" / "p.json", {"id": "p", "kind": "fn_probe", "fn": {}})
    with pytest.raises(HardnegError, match="fn_probe"):
        load_run(probe)
    with pytest.raises(HardnegError, match="no such file"):
        load_run(tmp_path / "nope.json")
    with pytest.raises(HardnegError, match="results file"):
        load_run(write(tmp_path / "results.json", {"config": {}, "cells": []}))
    with pytest.raises(HardnegError, match="not a .qid: number. object"):
        load_run(write(tmp_path / "bad.per_query.json", {"ndcg@10": {"q1": "high"}}))


# --- command line -----------------------------------------------------------------------------

def test_cli_compare_end_to_end(tmp_path, capsys):
    a = write(tmp_path / "a.per_query.json", A)
    b = write(tmp_path / "cells" / "b.json", {"id": "b", "kind": "method", "metrics": means(B), "per_query": B})
    c = write(tmp_path / "c.per_query.json", A)
    out = tmp_path / "cmp" / "cmp.json"
    assert main(["compare", str(a), str(b), str(c), "--resamples", "300", "--seed", "2", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{b} vs baseline {a}: 20 queries" in printed and f"{c} vs baseline {a}" in printed
    lines = [ln.split() for ln in printed.splitlines() if ln.split() and ln.split()[0] in ("ndcg@10", "mrr@10")]
    assert [ln[0] for ln in lines] == ["ndcg@10", "mrr@10", "ndcg@10", "mrr@10"]
    assert lines[0][-1] == "*" and all(ln[-1] != "*" for ln in lines[1:])  # only B's ndcg@10 is significant
    assert float(lines[0][1]) == pytest.approx(means(A)["ndcg@10"], abs=5e-5)
    saved = json.loads(out.read_text())
    assert saved["baseline"] == str(a) and saved["resamples"] == 300 and saved["seed"] == 2
    assert [(r["other"], r["metric"], r["significant"]) for r in saved["rows"]] == [
        (str(b), "ndcg@10", True), (str(b), "mrr@10", False), (str(c), "ndcg@10", False), (str(c), "mrr@10", False)]
    assert (tmp_path / "cmp" / "cmp.json.meta.json").is_file()
    assert main(["compare", str(a), str(b), "--metric", "mrr@10,ndcg@10", "--metric", "mrr@10"]) == 0
    lines = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.startswith(("ndcg", "mrr"))]
    assert lines == ["mrr@10", "ndcg@10"]


def test_cli_compare_mismatch_and_intersect(tmp_path, capsys):
    a = write(tmp_path / "a.per_query.json", A)
    b = write(tmp_path / "b.per_query.json", {m: {q: v for q, v in vals.items() if q != "q0"} for m, vals in B.items()})
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "1 only in" in err and "19 in both" in err and "--intersect" in err
    assert main(["compare", str(a), str(b), "--intersect"]) == 0
    assert "19 queries" in capsys.readouterr().out
    assert main(["compare", str(a)]) == 2
    assert main(["compare", str(a), str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def test_cli_compare_help_states_defaults(capsys):
    with pytest.raises(SystemExit) as e:
        main(["compare", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 2000)" in text and "(default: 0)" in text and "default: ndcg@10" in text
    assert "--intersect" in text and "--json" in text and ".per_query.json" in text


def test_cli_evaluate_help_mentions_per_query(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    assert "X.per_query.json" in capsys.readouterr().out
