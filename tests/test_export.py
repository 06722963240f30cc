"""Export: every format round-trips to the ids of a hand-written negatives file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.cli.main import main
from hardneg.data.beir import load_beir
from hardneg.data.export import FORMATS, export_negatives

ROWS = [
    {"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d3", "d2"], "neg_scores": [0.5, 0.4],
     "neg_teachers": ["t", "t"]},
    {"qid": "q1", "pos_id": "d4", "pos_score": 0.8, "neg_ids": ["d2", "d6"], "neg_scores": [0.4, 0.3],
     "neg_teachers": ["t", "t"]},
    {"qid": "q2", "pos_id": "d2", "pos_score": 0.7, "neg_ids": ["d6"], "neg_scores": [0.2], "neg_teachers": ["t"]},
    {"qid": "q3", "pos_id": "d5", "pos_score": 0.6, "neg_ids": ["d3", "d1"], "neg_scores": [0.1, 0.0],
     "neg_teachers": ["t", "t"]},
]


def write_rows(path: Path, rows=ROWS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@pytest.fixture
def setup(tiny_beir, tmp_path):
    data = load_beir(tiny_beir, "train")
    text2id = {t: d for d, t in zip(data.corpus.ids, data.corpus.passage_texts())}
    return tiny_beir, write_rows(tmp_path / "neg.jsonl"), data, text2id


def test_flagembedding_round_trip(setup, tmp_path):
    beir, neg, data, text2id = setup
    out = tmp_path / "fe.jsonl"
    assert main(["export", str(neg), "--data", str(beir), "--format", "flagembedding", "--output", str(out)]) == 0
    got = read_jsonl(out)
    assert len(got) == len(ROWS)
    for g, r in zip(got, ROWS):
        assert g["query"] == data.queries[r["qid"]]
        assert [text2id[t] for t in g["pos"]] == [r["pos_id"]]
        assert [text2id[t] for t in g["neg"]] == r["neg_ids"]
        assert g["pos_scores"] == [r["pos_score"]] and g["neg_scores"] == r["neg_scores"]
    meta = json.loads((tmp_path / "fe.jsonl.meta.json").read_text())
    assert meta["stats"] == {"rows_in": 4, "relabeled_rows_added": 0, "rows_written": 4, "rows_dropped": 0}
    assert meta["data_fingerprint"] == data.fingerprint()


def test_flagembedding_grouped(setup, tmp_path):
    beir, neg, data, text2id = setup
    out = tmp_path / "fe.jsonl"
    main(["export", str(neg), "--data", str(beir), "--format", "flagembedding", "--group-by-query",
          "--output", str(out)])
    g = read_jsonl(out)[0]
    assert [text2id[t] for t in g["pos"]] == ["d1", "d4"]
    assert [text2id[t] for t in g["neg"]] == ["d3", "d2", "d6"]  # deduped in order
    assert len(read_jsonl(out)) == 3


def test_tevatron_round_trip(setup, tmp_path):
    beir, neg, data, _ = setup
    out = tmp_path / "tev.jsonl"
    main(["export", str(neg), "--data", str(beir), "--format", "tevatron", "--output", str(out)])
    got = read_jsonl(out)
    for g, r in zip(got, ROWS):
        assert g["query_id"] == r["qid"] and g["query"] == data.queries[r["qid"]]
        assert [p["docid"] for p in g["positive_passages"]] == [r["pos_id"]]
        assert [p["docid"] for p in g["negative_passages"]] == r["neg_ids"]
        p = g["negative_passages"][0]
        i = data.corpus.index[p["docid"]]
        assert (p["title"], p["text"]) == (data.corpus.titles[i], data.corpus.texts[i])


def test_sentence_transformers_ntuple_parquet_and_triplet(setup, tmp_path, capsys):
    import pyarrow.parquet as pq

    beir, neg, data, text2id = setup
    out = tmp_path / "st.parquet"
    main(["export", str(neg), "--data", str(beir), "--format", "sentence-transformers", "--output", str(out)])
    t = pq.read_table(out).to_pylist()
    assert list(t[0]) == ["anchor", "positive", "negative_1", "negative_2"]
    assert len(t) == 3  # q2's row has one negative: cannot fill negative_2, dropped and reported
    assert "dropped 1 rows" in capsys.readouterr().out
    kept = [r for r in ROWS if len(r["neg_ids"]) == 2]
    for g, r in zip(t, kept):
        assert g["anchor"] == data.queries[r["qid"]] and text2id[g["positive"]] == r["pos_id"]
        assert [text2id[g["negative_1"]], text2id[g["negative_2"]]] == r["neg_ids"]
    out = tmp_path / "trip.jsonl"
    main(["export", str(neg), "--data", str(beir), "--format", "sentence-transformers", "--st-format", "triplet",
          "--output", str(out)])
    trip = read_jsonl(out)
    assert [text2id[x["negative"]] for x in trip] == [d for r in ROWS for d in r["neg_ids"]]


def test_export_unknown_id_is_a_clear_error(setup, tmp_path, capsys):
    beir, _, _, _ = setup
    bad = write_rows(tmp_path / "bad.jsonl", ROWS[:1] + [dict(ROWS[1], neg_ids=["d2", "nope"])])
    rc = main(["export", str(bad), "--data", str(beir), "--format", "tevatron", "--output", str(tmp_path / "o.jsonl")])
    err = capsys.readouterr().err
    assert rc == 2 and "bad.jsonl:2" in err and "'nope'" in err
    assert not (tmp_path / "o.jsonl").exists()


def test_relabelled_positives_become_rows_in_every_format(tiny_beir, tmp_path):
    from hardneg.data.load import load_data
    from hardneg.data.negatives import read_negatives

    path = tmp_path / "neg.jsonl"
    path.write_text('{"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d2"], "neg_scores": [0.5], '
                    '"neg_teachers": ["t"], "relabeled": ["d4"]}\n')
    data = load_data(str(tiny_beir), "train")
    assert read_negatives(path)[0].relabeled == ["d4"]
    for fmt in FORMATS:
        out = tmp_path / f"out-{fmt}.jsonl"
        stats = export_negatives(path, data, fmt, out)
        assert stats["rows_in"] == 1 and stats["relabeled_rows_added"] == 1 and stats["rows_written"] == 2, fmt
