"""Data loading and validation: one test per rule, each checking file, line and problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA, TINY_CORPUS, TINY_QRELS, TINY_QUERIES, write_beir

from hardneg import cli
from hardneg.core.errors import DataError, HardnegError
from hardneg.data import download
from hardneg.data.beir import load_beir
from hardneg.data.load import load_data, resolve_data
from hardneg.data.tables import text_id


def _corpus_lines(tiny: Path, lines: list[str]) -> Path:
    (tiny / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    return tiny / "corpus.jsonl"


def _good_lines() -> list[str]:
    return [json.dumps(d) for d in TINY_CORPUS]


def _raises(root: Path, split: str = "test") -> DataError:
    with pytest.raises(DataError) as e:
        load_beir(root, split)
    return e.value


# ----------------------------------------------------------------------------- BEIR rules


def test_malformed_json_names_file_and_line(tiny_beir):
    lines = _good_lines()
    lines[2] = '{"_id": "d3", "text": "broken'
    path = _corpus_lines(tiny_beir, lines)
    err = _raises(tiny_beir)
    assert (err.path, err.line) == (path, 3)
    assert f"{path}:3: malformed JSON" in str(err) and "one complete JSON object" in str(err)


def test_missing_id_and_missing_text(tiny_beir):
    lines = _good_lines()
    lines[1] = json.dumps({"title": "x", "text": "y"})
    _corpus_lines(tiny_beir, lines)
    err = _raises(tiny_beir)
    assert err.line == 2 and "missing '_id'" in err.problem and err.fix
    lines[1] = json.dumps({"_id": "d2", "title": "x"})
    _corpus_lines(tiny_beir, lines)
    err = _raises(tiny_beir)
    assert err.line == 2 and "'d2' has no 'text'" in err.problem


def test_missing_query_text(tiny_beir):
    (tiny_beir / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q2"}\n')
    err = _raises(tiny_beir)
    assert err.path == tiny_beir / "queries.jsonl" and err.line == 2 and "has no 'text'" in err.problem


def test_duplicate_id_with_different_text_names_first_line(tiny_beir):
    lines = _good_lines()
    lines.insert(0, "")  # blank lines count: line numbers are file lines, not row numbers
    lines.append(json.dumps({"_id": "d2", "title": "Dogs", "text": "Something else."}))
    _corpus_lines(tiny_beir, lines)
    err = _raises(tiny_beir)
    assert err.line == 8 and "duplicate _id 'd2'" in err.problem and "first at line 3" in err.problem


def test_duplicate_query_id_with_different_text(tiny_beir):
    qs = [json.dumps(q) for q in TINY_QUERIES] + [json.dumps({"_id": "q1", "text": "other"})]
    (tiny_beir / "queries.jsonl").write_text("\n".join(qs) + "\n")
    err = _raises(tiny_beir)
    assert err.line == 4 and "first at line 1" in err.problem


def test_exact_duplicates_are_a_counted_warning(tiny_beir, caplog):
    lines = _good_lines() + [_good_lines()[0], _good_lines()[1]]
    _corpus_lines(tiny_beir, lines)
    data = load_beir(tiny_beir, "test")
    assert len(data.corpus) == len(TINY_CORPUS)
    assert len(data.warnings) == 1 and "2 exact duplicate documents" in data.warnings[0]
    assert sum("1 data warning(s)" in r.message for r in caplog.records) == 1


def test_qrels_unknown_query_and_doc_name_qrels_line(tiny_beir):
    rows = TINY_QRELS["test"] + [("q1", "d404", 1)]
    write_beir(tiny_beir, qrels={"test": rows})
    err = _raises(tiny_beir)
    assert err.path == tiny_beir / "qrels" / "test.tsv" and err.line == 7
    assert "corpus id 'd404'" in err.problem and err.fix
    write_beir(tiny_beir, qrels={"test": [("q1", "d1", 1), ("q9", "d1", 1)]})
    err = _raises(tiny_beir)
    assert err.line == 3 and "query id 'q9'" in err.problem


def test_empty_document_and_empty_query(tiny_beir):
    lines = _good_lines()
    lines[4] = json.dumps({"_id": "d5", "title": "", "text": "  "})
    _corpus_lines(tiny_beir, lines)
    err = _raises(tiny_beir)
    assert err.line == 5 and "empty title and text" in err.problem
    write_beir(tiny_beir)
    (tiny_beir / "queries.jsonl").write_text('{"_id": "q1", "text": ""}\n')
    err = _raises(tiny_beir)
    assert err.path.name == "queries.jsonl" and err.line == 1 and "empty text" in err.problem


def test_missing_qrels_header(tiny_beir):
    (tiny_beir / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    err = _raises(tiny_beir)
    assert err.line == 1 and "missing header" in err.problem and "query-id<TAB>corpus-id" in err.fix


def test_non_numeric_score(tiny_beir):
    (tiny_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\thigh\n")
    err = _raises(tiny_beir)
    assert err.line == 3 and "score 'high' is not a number" in err.problem


def test_repeated_qrels_row_is_a_warning(tiny_beir):
    write_beir(tiny_beir, qrels={"test": [("q1", "d1", 1), ("q1", "d1", 2)]})
    data = load_beir(tiny_beir, "test")
    assert data.qrels == {"q1": {"d1": 2}} and "1 repeated" in data.warnings[0]


def test_cli_data_error_is_one_line_not_a_traceback(tiny_beir, capsys):
    (tiny_beir / "qrels" / "test.tsv").write_text("q1\td1\t1\n")
    assert cli.main(["data", "info", str(tiny_beir), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tiny_beir / 'qrels' / 'test.tsv'}:1: missing header")
    assert "Traceback" not in err and err.count("\n") == 1


def test_cli_info_counts(tiny_beir, capsys):
    assert cli.main(["data", "info", str(tiny_beir), "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert "documents                         6" in out
    assert "qrels rows                        5" in out
    assert "judged not relevant (grade 0)     1" in out
    assert "positives per query mean          1.33" in out and "positives per query max           2" in out


def test_summary_counts(tiny_beir):
    s = load_beir(tiny_beir, "test").summary()
    assert (s["documents"], s["qrels rows"], s["judged not relevant (grade 0)"]) == (6, 5, 1)
    assert s["positives per query mean"] == pytest.approx(4 / 3) and s["positives per query max"] == 2
    assert list(s)[:2] == ["source", "split"] and s["split"] == "test"


# ----------------------------------------------------------------------------- pairs JSONL


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_pairs_jsonl_ids_negatives_and_shared_texts(tmp_path):
    path = _write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "what is a cat", "pos": ["A cat is a feline."], "neg": ["A dog is a canine.", "Moon."]},
        {"query": "what is a dog", "pos": ["A dog is a canine."], "neg": ["A cat is a feline."]},
    ])
    data = load_data(path, split="dev")
    q1, q2 = text_id("q", "what is a cat"), text_id("q", "what is a dog")
    cat, dog, moon = (text_id("p", t) for t in ("A cat is a feline.", "A dog is a canine.", "Moon."))
    assert q1 == "q-65d47a55fbbc" and cat.startswith("p-") and len(cat) == 14
    assert data.split == "dev" and data.queries == {q1: "what is a cat", q2: "what is a dog"}
    assert data.corpus.ids == [cat, dog, moon]  # identical texts share one id, first-seen order
    assert data.qrels == {q1: {cat: 1}, q2: {dog: 1}}
    assert data.given_negatives == {q1: [dog, moon], q2: [cat]}
    assert load_data(path).fingerprint() == data.fingerprint()  # stable across loads


def test_pairs_repeated_query_merges_and_negative_that_is_positive_is_dropped(tmp_path):
    path = _write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "q", "pos": ["a"], "neg": ["b", "c"]},
        {"query": "q", "pos": ["b"]},
    ])
    data = load_data(path)
    qid = text_id("q", "q")
    assert data.relevant(qid) == [text_id("p", "a"), text_id("p", "b")]
    assert data.given_negatives == {qid: [text_id("p", "c")]}
    assert len(data.warnings) == 2 and "1 given negatives are also positives" in data.warnings[1]


def test_pairs_pos_as_string_is_an_error_naming_line(tmp_path):
    path = _write_jsonl(tmp_path / "pairs.jsonl", [
        {"query": "a", "pos": ["x"]},
        {"query": "b", "pos": "y"},
    ])
    with pytest.raises(DataError) as e:
        load_data(path)
    assert e.value.line == 2 and "'pos' is a string" in e.value.problem and '["..."]' in e.value.fix


@pytest.mark.parametrize("row,problem", [
    ('{"query": "a", "pos": ["x"]', "malformed JSON"),
    ({"pos": ["x"]}, "missing 'query'"),
    ({"query": "", "pos": ["x"]}, "'query' must be non-empty"),
    ({"query": "a", "pos": []}, "non-empty list"),
    ({"query": "a", "pos": ["x"], "neg": [""]}, "empty or non-string"),
])
def test_pairs_bad_rows(tmp_path, row, problem):
    path = _write_jsonl(tmp_path / "p.jsonl", [{"query": "ok", "pos": ["fine"]}, row])
    with pytest.raises(DataError) as e:
        load_data(path)
    assert e.value.line == 2 and problem in e.value.problem and str(path) in str(e.value)


# ----------------------------------------------------------------------------- tables


def test_parquet_with_anchor_positive_columns(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"anchor": ["q one", "q two"], "positive": ["p one", "p two"]}), path)
    data = load_data(path, split="train")
    assert data.qrels == {text_id("q", "q one"): {text_id("p", "p one"): 1},
                          text_id("q", "q two"): {text_id("p", "p two"): 1}}
    assert data.corpus.texts == ["p one", "p two"] and data.given_negatives == {}


def test_parquet_unknown_columns_lists_them(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a"], "label": [1]}), path)
    with pytest.raises(DataError) as e:
        load_data(path)
    assert "columns found: ['text', 'label']" in e.value.problem and "anchor" in e.value.fix


def test_hf_datasets_folder_with_list_positives(tmp_path):
    import datasets

    ds = datasets.Dataset.from_dict({"question": ["q one"], "positives": [["p one", "p two"]],
                                     "negatives": [["n one"]]})
    ds.save_to_disk(str(tmp_path / "hf"))
    data = load_data(tmp_path / "hf", split="test")
    qid = text_id("q", "q one")
    assert data.split == "test" and data.relevant(qid) == [text_id("p", "p one"), text_id("p", "p two")]
    assert data.given_negatives == {qid: [text_id("p", "n one")]}


# ----------------------------------------------------------------------------- resolve_data


def test_resolve_existing_path_and_unknown_name(tiny_beir):
    assert resolve_data(tiny_beir) == tiny_beir
    with pytest.raises(HardnegError) as e:
        resolve_data("no-such-set")
    assert "known names:" in str(e.value) and "scifact" in str(e.value)


def test_resolve_order(tmp_path, monkeypatch):
    env, cwd, cache = tmp_path / "env", tmp_path / "work" / "cwd", tmp_path / "cache"
    cwd.mkdir(parents=True)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HARDNEG_CACHE", str(cache))
    monkeypatch.delenv("HARDNEG_DATA_DIR", raising=False)
    monkeypatch.setattr(download, "download_beir", lambda name: pytest.fail("must not download"))
    places = [cache / "datasets" / "scifact", tmp_path / "work" / "shared" / "data" / "scifact",
              cwd / "shared" / "data" / "scifact", env / "scifact"]
    for i, place in enumerate(places):  # add places from last to first: each new one must win
        write_beir(place)
        if place.parent == env:
            monkeypatch.setenv("HARDNEG_DATA_DIR", str(env))
        assert resolve_data("scifact").resolve() == place.resolve(), i


def test_resolve_downloads_when_absent(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARDNEG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("HARDNEG_DATA_DIR", raising=False)
    calls = []
    monkeypatch.setattr(download, "download_beir", lambda name: calls.append(name) or write_beir(tmp_path / name))
    assert resolve_data("fiqa") == tmp_path / "fiqa" and calls == ["fiqa"]


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "scifact").is_dir(), reason="../shared/data/scifact not present")
def test_real_scifact_counts():
    data = load_data(SHARED_DATA / "scifact", "test")
    assert (len(data.corpus), len(data.query_ids()), sum(map(len, data.qrels.values()))) == (5183, 300, 339)
    assert data.warnings == []
