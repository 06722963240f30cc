"""Issue 13, "every silent case becomes a clear error or a counted warning": one test per case that
used to give a wrong result with exit 0 (or a traceback). Tiny fixtures only, offline."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import write_beir
from fakes import TableTeacher

from hardneg.cli.main import main
from hardneg.core.errors import DataError, HardnegError
from hardneg.data.beir import load_beir
from hardneg.data.export import export_negatives
from hardneg.mining.config import MineConfig
from hardneg.mining.filters import zero_threshold
from hardneg.mining.mine import mine
from hardneg.mining.stats import warning_messages
from hardneg.mining.teachers.load import TeacherSettings, load_teacher, unused_settings
from hardneg.training.config import Source
from hardneg.training.examples import build_examples

ROW = {"qid": "q1", "pos_id": "d1", "pos_score": 0.9, "neg_ids": ["d3", "d2"], "neg_scores": [0.5, 0.4],
       "neg_teachers": ["t", "t"]}


def _error_line(capsys) -> str:
    """The CLI's stderr: exactly one line starting 'error: ', no traceback."""
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _qrels(root: Path, text: bytes, split: str = "train") -> Path:
    (root / "qrels" / f"{split}.tsv").write_bytes(text)
    return root / "qrels" / f"{split}.tsv"


def _rows_file(path: Path, rows=(ROW,)) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------- 1. data files

HEADER = b"query-id\tcorpus-id\tscore\n"


@pytest.mark.parametrize("grade", ["-1", "0.5", "inf", "nan", "-inf", "1e400"])
def test_qrels_grade_that_is_not_a_whole_number_ge_0_names_the_line(tiny_beir, grade):
    path = _qrels(tiny_beir, HEADER + b"q1\td1\t1\nq2\td2\t" + grade.encode() + b"\n")
    with pytest.raises(DataError) as e:  # was: -1 and 0.5 read as 0 (not relevant), inf an OverflowError
        load_beir(tiny_beir, "train")
    assert (e.value.path, e.value.line) == (path, 3) and repr(grade) in e.value.problem
    assert "whole number" in str(e.value)


def test_qrels_integral_float_grade_still_reads(tiny_beir):
    _qrels(tiny_beir, HEADER + b"q1\td1\t2.0\nq2\td2\t1\r\n")  # CRLF too (NFCorpus's qrels)
    assert load_beir(tiny_beir, "train").qrels == {"q1": {"d1": 2}, "q2": {"d2": 1}}


def test_qrels_extra_columns_are_an_error(tiny_beir):
    path = _qrels(tiny_beir, HEADER + b"q1\td1\t1\nq2\td2\t1\textra\n")
    with pytest.raises(DataError) as e:  # was: the 4th column silently ignored
        load_beir(tiny_beir, "train")
    assert (e.value.path, e.value.line) == (path, 3) and "expected 3 tab-separated columns" in e.value.problem
    _qrels(tiny_beir, b"query-id\tcorpus-id\tscore\tnote\nq1\td1\t1\tx\n")
    with pytest.raises(DataError, match=r"train.tsv:1: header has 4 columns"):
        load_beir(tiny_beir, "train")
    _qrels(tiny_beir, HEADER + b"q1\td1\t1\t\n")  # a trailing tab is not a column
    assert load_beir(tiny_beir, "train").qrels == {"q1": {"d1": 1}}


def test_trec_four_column_qrels_are_read_and_other_shapes_refused(tiny_beir):
    _qrels(tiny_beir, b"q1 0 d1 1\nq1\tQ0\td4\t2\n\nq2 0 d2 0\n")  # was: "missing header"
    assert load_beir(tiny_beir, "train").qrels == {"q1": {"d1": 1, "d4": 2}, "q2": {"d2": 0}}
    path = _qrels(tiny_beir, b"q1 0 d1 1\nq2 0 d2 1 extra\n")
    with pytest.raises(DataError) as e:
        load_beir(tiny_beir, "train")
    assert (e.value.path, e.value.line) == (path, 2) and "expected 4" in e.value.problem
    _qrels(tiny_beir, b"q1 0 d1 0.5\n")
    with pytest.raises(DataError, match=r"train.tsv:1: score '0.5'"):
        load_beir(tiny_beir, "train")
    _qrels(tiny_beir, b"q1\td1\t1\n")  # three columns and no header: neither format
    with pytest.raises(DataError, match="missing header") as e:
        load_beir(tiny_beir, "train")
    assert "TREC" in e.value.fix


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl"])
@pytest.mark.parametrize("value", [None, True, 1.5, "", ["d1"]])
def test_id_that_is_not_a_string_or_integer_names_the_line(tiny_beir, name, value):
    path = tiny_beir / name
    lines = path.read_text().splitlines()
    lines.insert(1, json.dumps({"_id": value, "title": "t", "text": "some text"}))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:  # was: null became the id "None", true "True"
        load_beir(tiny_beir, "train")
    assert (e.value.path, e.value.line) == (path, 2) and "'_id' must be a non-empty string" in e.value.problem


def test_integer_ids_still_read_as_strings(tmp_path):
    root = write_beir(tmp_path / "ints", corpus=[{"_id": 7, "text": "seven"}, {"_id": 8, "text": "eight"}],
                      queries=[{"_id": 1, "text": "which"}], qrels={"train": [("1", "7", 1)]})
    data = load_beir(root, "train")
    assert data.corpus.ids == ["7", "8"] and data.qrels == {"1": {"7": 1}}


def test_utf8_bom_is_accepted_everywhere(tiny_beir):
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv"):
        path = tiny_beir / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())  # was: "malformed JSON" / "missing header"
    data = load_beir(tiny_beir, "train")
    assert data.corpus.ids[0] == "d1" and "q1" in data.queries and data.qrels["q1"] == {"d1": 1, "d4": 1}


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv"])
def test_non_utf8_bytes_are_a_data_error_with_file_and_line(tiny_beir, name, capsys):
    path = tiny_beir / name
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1][:1] + b"\xff" + lines[1][1:]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as e:  # was: UnicodeDecodeError, no file or line
        load_beir(tiny_beir, "train")
    assert (e.value.path, e.value.line) == (path, 2) and "not UTF-8" in e.value.problem
    assert main(["data", "info", str(tiny_beir), "--split", "train"]) == 2
    assert f"{path}:2: not UTF-8" in _error_line(capsys)


def test_non_utf8_pairs_jsonl_names_the_line(tmp_path):
    from hardneg.data.load import load_data

    path = tmp_path / "pairs.jsonl"
    path.write_bytes(b'{"query": "a", "pos": ["b"]}\n{"query": "\xe9", "pos": ["c"]}\n')
    with pytest.raises(DataError, match=r"pairs.jsonl:2: not UTF-8"):
        load_data(str(path))


# ----------------------------------------------------------------------------- 2. depth < num_negatives


def test_depth_below_num_negatives_is_a_config_error(tiny_beir, tmp_path, capsys):
    with pytest.raises(HardnegError, match=r"depth \(2\) is below num_negatives \(4\)"):
        MineConfig(depth=2, num_negatives=4)  # was: accepted, every row short
    MineConfig(depth=4, num_negatives=4)
    MineConfig(depth=2, num_negatives=4, on_shortfall="deepen")  # deepen re-searches the short rows deeper
    rc = main(["mine", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(tmp_path / "n.jsonl"),
               "--depth", "2", "--num-negatives", "4"])
    assert rc == 2 and "--depth" in _error_line(capsys)
    assert not (tmp_path / "n.jsonl").exists()


# ----------------------------------------------------------------------------- 3. BM25 + percpos yields nothing


# qa's positives d0 (score 4.0) and d1 (0.0: no term overlap); qb's positive d2 (3.0)
ZERO_TABLE = [[4.0, 0.0, 2.0, 1.5, 1.0, 0.5], [2.5, 2.0, 3.0, 1.0, 0.8, 0.0]]


def _zero_data(tmp_path):
    corpus = [{"_id": f"d{i}", "text": f"passage {i}"} for i in range(6)]
    queries = [{"_id": "qa", "text": "a"}, {"_id": "qb", "text": "b"}]
    root = write_beir(tmp_path / "z", corpus, queries, {"train": [("qa", "d0", 1), ("qa", "d1", 1), ("qb", "d2", 1)]})
    return load_beir(root, "train")


def test_zero_threshold_is_pure_and_only_for_positive_relative_methods():
    p = np.array([0.0, 2.0, -1.0])
    assert zero_threshold(p, "percpos").tolist() == [True, False, False]
    assert zero_threshold(p, "marginpos").tolist() == [True, False, False]
    assert not zero_threshold(p, "abs").any() and not zero_threshold(p, "shifted").any()


def test_percpos_with_a_zero_positive_is_a_counted_loud_warning(tmp_path, caplog):
    data = _zero_data(tmp_path)
    teacher = TableTeacher(["qa", "qb"], ZERO_TABLE, name="bm25")
    with caplog.at_level(logging.WARNING, logger="hardneg.mining.mine"):
        res = mine(data, [teacher], MineConfig(num_negatives=2))
    assert [len(r.neg_ids) for r in res.rows] == [0, 0, 2]  # qa: threshold 0 -> nothing (before: no word of it)
    w = res.stats["warnings"]
    assert w["zero_positive_threshold_queries"] == 1 and w["zero_positive_threshold_by_teacher"] == {"bm25": 1}
    assert w["short_rows"] == 2  # 2 of 3 rows short: more than half
    assert "1 of 2 queries yield no percpos negatives from bm25" in caplog.text
    assert "--positive-score mean or max" in caplog.text and "--min-score" in caplog.text
    assert "dense teacher" in caplog.text and "2 of 3 rows (67%) have fewer than 2 negatives" in caplog.text
    assert "raise --depth" in caplog.text and "lower --num-negatives" in caplog.text
    fixed = mine(data, [teacher], MineConfig(num_negatives=2, positive_score="max"))
    assert fixed.stats["warnings"] == {} and warning_messages(fixed.stats, MineConfig()) == []


def test_short_rows_warning_counts_dropped_rows_and_stays_quiet_at_half(tmp_path):
    data = _zero_data(tmp_path)
    teacher = TableTeacher(["qa", "qb"], ZERO_TABLE, name="t")
    dropped = mine(data, [teacher], MineConfig(num_negatives=2, method="abs", max_score=1.6, on_shortfall="drop"))
    # abs 1.6: qa keeps d3 d4 d5 (3 >= 2, full rows), qb keeps d3 d4 d5 too -> nothing short
    assert dropped.stats["warnings"] == {}
    dropped = mine(data, [teacher], MineConfig(num_negatives=2, method="abs", max_score=0.9, on_shortfall="drop"))
    # abs 0.9: qa keeps d5 only, qb d4 d5 -> qa's two rows dropped, 2 of 3 short
    assert dropped.stats["shortfall"]["dropped"] == 2 and dropped.stats["warnings"] == {"short_rows": 2}


def test_cli_mine_prints_the_warnings(tmp_path, capsys):
    # a real (tiny) BM25 index: q3's second positive d6 shares no word with "what orbits the earth"
    root = write_beir(tmp_path / "tiny", qrels={"train": [("q1", "d1", 1), ("q2", "d2", 1), ("q3", "d5", 1),
                                                          ("q3", "d6", 1)]})
    out = tmp_path / "n.jsonl"
    assert main(["mine", "--teacher", "bm25", "--data", str(root), "--output", str(out), "--num-negatives", "2",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "warning: 1 of 3 queries yield no percpos negatives from bm25 (1)" in printed
    meta = json.loads((tmp_path / "n.jsonl.meta.json").read_text())
    assert meta["stats"]["warnings"]["zero_positive_threshold_queries"] == 1


# ----------------------------------------------------------------------------- 4. export / inspect


@pytest.fixture
def neg_file(tmp_path):
    return _rows_file(tmp_path / "neg.jsonl")


def test_export_that_would_write_no_row_is_an_error(tiny_beir, neg_file, tmp_path, capsys):
    out = tmp_path / "st.jsonl"
    rc = main(["export", str(neg_file), "--data", str(tiny_beir), "--format", "sentence-transformers",
               "--num-negatives", "100", "--output", str(out)])
    assert rc == 2 and "has 100 negatives (the most is 2)" in _error_line(capsys)  # was: 0 rows, exit 0
    assert not out.exists()
    empty = _rows_file(tmp_path / "noneg.jsonl", [{**ROW, "neg_ids": [], "neg_scores": [], "neg_teachers": []}])
    with pytest.raises(HardnegError, match="has a negative"):
        export_negatives(empty, load_beir(tiny_beir, "train"), "sentence-transformers", tmp_path / "t.jsonl",
                         st_format="triplet")


def test_export_num_negatives_only_for_ntuple(tiny_beir, neg_file, tmp_path, capsys):
    rc = main(["export", str(neg_file), "--data", str(tiny_beir), "--format", "flagembedding",
               "--num-negatives", "1", "--output", str(tmp_path / "fe.jsonl")])
    assert rc == 2 and "--num-negatives sets the n of the sentence-transformers n-tuple" in _error_line(capsys)


@pytest.mark.parametrize("fmt, name", [("flagembedding", "x.parquet"), ("tevatron", "x.parquet"),
                                       ("sentence-transformers", "x.csv")])
def test_export_to_a_table_suffix_it_does_not_write_is_an_error(tiny_beir, neg_file, tmp_path, capsys, fmt, name):
    rc = main(["export", str(neg_file), "--data", str(tiny_beir), "--format", fmt, "--output", str(tmp_path / name)])
    err = _error_line(capsys)  # was: JSONL written into x.parquet
    assert rc == 2 and "only --format sentence-transformers writes parquet" in err
    assert not (tmp_path / name).exists()


def test_inspect_plot_must_be_png(tiny_beir, neg_file, tmp_path, capsys):
    for name in ("x.txt", "x.pdf"):
        rc = main(["inspect", str(neg_file), "--data", str(tiny_beir), "--plot", str(tmp_path / name)])
        assert rc == 2 and "--plot writes a PNG image: name it x.png" in _error_line(capsys)  # was: PNG in x.txt
        assert not (tmp_path / name).exists()


def test_empty_negatives_file_is_no_rows_for_inspect_export_train(tiny_beir, tmp_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    commands = [["inspect", str(empty), "--data", str(tiny_beir), "--split", "train"],
                ["export", str(empty), "--data", str(tiny_beir), "--format", "flagembedding",
                 "--output", str(tmp_path / "fe.jsonl")],
                ["train", "--model", str(tmp_path / "no-model"), "--data", str(tiny_beir), "--negatives", str(empty),
                 "--output", str(tmp_path / "ft")]]
    for argv in commands:  # was: an empty report / empty export, exit 0
        assert main(argv) == 2, argv[0]
        assert f"error: {empty}: no rows" in _error_line(capsys)
    assert not (tmp_path / "fe.jsonl").exists()


# ----------------------------------------------------------------------------- 5. train --num-negatives 0


def test_train_num_negatives_0_warns_that_mined_negatives_are_ignored(tiny_beir, neg_file, caplog):
    with caplog.at_level(logging.WARNING, logger="hardneg.training.examples"):
        cols, stats = build_examples(Source(str(tiny_beir), str(neg_file)), num_negatives=0)
    assert list(cols) == ["anchor", "positive"]
    assert stats["mined_negatives_ignored"] == 2  # goes into the model meta ("data")
    assert "--num-negatives 0 ignores its 2 mined negatives" in caplog.text and "in-batch" in caplog.text
    caplog.clear()
    cols, stats = build_examples(Source(str(tiny_beir), str(neg_file)), num_negatives=1)
    assert "mined_negatives_ignored" not in stats and "ignores" not in caplog.text


# ----------------------------------------------------------------------------- 6. backends


def test_teacher_settings_validate_backends():
    with pytest.raises(HardnegError, match="unknown backend 'tensorrt'; choose one of: torch"):
        TeacherSettings(backend="tensorrt")  # was: accepted, and ignored for BM25
    with pytest.raises(HardnegError, match="unknown search_backend 'annoy'"):
        TeacherSettings(search_backend="annoy")
    with pytest.raises(HardnegError, match="unknown backend"):
        load_teacher("bm25", backend="tensorrt")


@pytest.mark.parametrize("argv", [["mine", "--teacher", "bm25", "--data", "d", "--output", "o.jsonl"],
                                  ["evaluate", "--model", "m", "--data", "d"],
                                  ["tune", "--teacher", "bm25", "--data", "d"]])
def test_cli_backend_is_a_choice(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--backend", "tensorrt"])
    assert e.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err


def test_dense_only_settings_with_only_bm25_are_a_printed_warning(tiny_beir, tmp_path, capsys):
    assert unused_settings(["bm25", "random"], TeacherSettings(backend="onnx", query_prompt="q: ")) == \
        ["--backend onnx", "--query-prompt q: "]
    assert main(["mine", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(tmp_path / "n.jsonl"),
                 "--backend", "onnx", "--num-negatives", "1", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "warning: --backend onnx apply to dense teachers only; bm25 ignore them" in capsys.readouterr().out
