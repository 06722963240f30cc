"""Hugging Face datasets both ways, and teacher scores in every export format.

In: a ``datasets.Dataset`` / ``DatasetDict`` / ``save_to_disk`` folder / hub-style folder -> ids from
the texts. Out: ``--format hf-dataset`` (save_to_disk folder, or one parquet file) with
sentence-transformers' columns, and ``--scores`` as ``mine_hard_negatives(output_scores=True)``
lays them out. Known answers: the hand-written negatives file of ``test_export`` and the tiny corpus.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import TINY_CORPUS, TINY_QUERIES
from fakes import TableTeacher
from test_export import ROWS, read_jsonl, write_rows

from hardneg.cli.main import main
from hardneg.core.errors import DataError, HardnegError
from hardneg.core.provenance import read_meta
from hardneg.data.beir import load_beir
from hardneg.data.export import export_negatives
from hardneg.data.load import load_data
from hardneg.data.tables import text_id

README = Path(__file__).resolve().parents[1] / "README.md"
DOC = {d["_id"]: f"{d['title']} {d['text']}".strip() for d in TINY_CORPUS}  # the MTEB join
QUERY = {q["_id"]: q["text"] for q in TINY_QUERIES}


def _ds():
    import datasets

    return datasets


def _export(beir, neg, out, *extra) -> int:
    return main(["export", str(neg), "--data", str(beir), "--output", str(out), *extra])


@pytest.fixture
def neg(tmp_path):
    return write_rows(tmp_path / "neg.jsonl")


# ----------------------------------------------------------------------------------- out: hf-dataset
def test_hf_dataset_folder_has_st_columns_and_exact_rows(tiny_beir, neg, tmp_path, capsys):
    out = tmp_path / "st-data"
    assert _export(tiny_beir, neg, out, "--format", "hf-dataset") == 0
    assert "wrote 3 hf-dataset rows to" in capsys.readouterr().out
    ds = _ds().load_from_disk(str(out))
    assert isinstance(ds, _ds().Dataset)  # not a DatasetDict: what SentenceTransformerTrainer takes
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2"]  # default: no scores column
    assert ds.to_list() == [  # q2's row has one negative: it cannot fill negative_2 (dropped, counted)
        {"anchor": QUERY["q1"], "positive": DOC["d1"], "negative_1": DOC["d3"], "negative_2": DOC["d2"]},
        {"anchor": QUERY["q1"], "positive": DOC["d4"], "negative_1": DOC["d2"], "negative_2": DOC["d6"]},
        {"anchor": QUERY["q3"], "positive": DOC["d5"], "negative_1": DOC["d3"], "negative_2": DOC["d1"]}]
    meta = read_meta(out)  # verifies the commit record
    assert meta["config"]["format"] == "hf-dataset" and meta["config"]["scores"] is False
    assert meta["stats"] == {"rows_in": 4, "relabeled_rows_added": 0, "rows_written": 3, "rows_dropped": 1}
    assert sorted(meta["committed"]) == sorted(f"st-data/{p.name}" for p in out.iterdir())
    assert {"st-data/state.json", "st-data/dataset_info.json"} <= set(meta["committed"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_hf_dataset_folder_whose_file_changed_reads_as_incomplete(tiny_beir, neg, tmp_path):
    out = tmp_path / "st-data"
    _export(tiny_beir, neg, out, "--format", "hf-dataset")
    (out / "state.json").write_text((out / "state.json").read_text() + " ")
    with pytest.raises(HardnegError, match="not completely written .*state.json"):
        read_meta(out)


def test_hf_dataset_scores_are_the_negatives_files_in_the_peers_layout(tiny_beir, neg, tmp_path):
    out = tmp_path / "st-data"
    assert _export(tiny_beir, neg, out, "--format", "hf-dataset", "--scores") == 0
    ds = _ds().load_from_disk(str(out))
    assert ds.column_names == ["anchor", "positive", "negative_1", "negative_2", "scores"]
    full = [r for r in ROWS if len(r["neg_ids"]) == 2]
    assert ds["scores"] == [[r["pos_score"], *r["neg_scores"]] for r in full]
    assert ds["scores"] == [[0.9, 0.5, 0.4], [0.8, 0.4, 0.3], [0.6, 0.1, 0.0]]

    trip = tmp_path / "trip"
    assert _export(tiny_beir, neg, trip, "--format", "hf-dataset", "--st-format", "triplet", "--scores") == 0
    t = _ds().load_from_disk(str(trip))
    assert t.column_names == ["anchor", "positive", "negative", "scores"]
    assert t["scores"] == [[r["pos_score"], s] for r in ROWS for s in r["neg_scores"]]
    assert t["negative"] == [DOC[d] for r in ROWS for d in r["neg_ids"]]


def test_hf_dataset_parquet_output_is_the_same_table(tiny_beir, neg, tmp_path):
    import pyarrow.parquet as pq

    _export(tiny_beir, neg, tmp_path / "st-data", "--format", "hf-dataset", "--scores", "--num-negatives", "1")
    _export(tiny_beir, neg, tmp_path / "st.parquet", "--format", "hf-dataset", "--scores", "--num-negatives", "1")
    folder = _ds().load_from_disk(str(tmp_path / "st-data")).to_list()
    assert pq.read_table(tmp_path / "st.parquet").to_pylist() == folder
    assert len(folder) == 4 and folder[2]["scores"] == [0.7, 0.2]  # n = 1: q2's row fits now
    assert read_meta(tmp_path / "st.parquet")["committed"]["st.parquet"]["bytes"] > 0


def test_sentence_transformers_format_scores_column(tiny_beir, neg, tmp_path):
    out = tmp_path / "st.jsonl"
    assert _export(tiny_beir, neg, out, "--format", "sentence-transformers", "--scores") == 0
    got = read_jsonl(out)
    assert list(got[0]) == ["anchor", "positive", "negative_1", "negative_2", "scores"]
    assert [g["scores"] for g in got] == [[0.9, 0.5, 0.4], [0.8, 0.4, 0.3], [0.6, 0.1, 0.0]]
    _export(tiny_beir, neg, out, "--format", "sentence-transformers")  # default: off, as output_scores=False
    assert "scores" not in read_jsonl(out)[0]


def test_our_scores_layout_is_the_peers(tiny_model, tmp_path):
    """Same columns, order and feature types as sentence-transformers' own mine_hard_negatives(output_scores=True)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.util import mine_hard_negatives

    texts = [(q["text"], DOC[d]) for q, d in zip(TINY_QUERIES, ("d1", "d2", "d5"))]
    pairs = _ds().Dataset.from_dict({"anchor": [a for a, _ in texts], "positive": [p for _, p in texts]})
    corpus = list(DOC.values())
    model = SentenceTransformer(str(tiny_model), device="cpu")
    neg = tmp_path / "neg.jsonl"
    qid = {t: text_id("q", t) for t, _ in texts}
    pid = {t: text_id("p", t) for t in corpus}
    # the peer searches every tiny passage: ours gets them into its corpus as given negatives of row 1
    data = load_data(_ds().Dataset.from_dict({"anchor": [a for a, _ in texts], "positive": [p for _, p in texts],
                                              "negatives": [corpus, [], []]}))
    rows = [{"qid": qid[a], "pos_id": pid[p], "pos_score": 0.5, "neg_ids": [pid[c] for c in corpus if c != p][:2],
             "neg_scores": [0.25, 0.125], "neg_teachers": ["t", "t"]} for a, p in texts]
    write_rows(neg, rows)
    for fmt in ("n-tuple", "triplet"):
        peer = mine_hard_negatives(pairs, model, corpus=corpus, num_negatives=2, output_format=fmt,
                                   output_scores=True, verbose=False)
        out = tmp_path / f"ours-{fmt}"
        export_negatives(neg, data, "hf-dataset", out, st_format=fmt, scores=True)
        ours = _ds().load_from_disk(str(out))
        assert ours.column_names == peer.column_names, fmt
        assert ours.features == peer.features, fmt
        assert ours[0]["scores"] == ([0.5, 0.25, 0.125] if fmt == "n-tuple" else [0.5, 0.25])
        assert len(peer[0]["scores"]) == len(ours[0]["scores"])


def test_folder_output_reruns_replace_it_and_other_folders_are_refused(tiny_beir, neg, tmp_path, capsys):
    out = tmp_path / "st-data"
    _export(tiny_beir, neg, out, "--format", "hf-dataset")
    first = read_meta(out)["committed"]
    stale = tmp_path / ".st-data.abcd1234.tmp"  # a killed run's temporary folder
    stale.mkdir()
    (stale / "state.json").write_text("{}")
    assert _export(tiny_beir, neg, out, "--format", "hf-dataset", "--scores") == 0
    assert _ds().load_from_disk(str(out)).column_names[-1] == "scores"
    assert read_meta(out)["committed"] != first and not stale.exists()

    mine = tmp_path / "my-folder"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    assert _export(tiny_beir, neg, mine, "--format", "hf-dataset") == 2
    assert "holds other files, not an earlier 'hardneg export --format hf-dataset'" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep me"

    (tmp_path / "a-file").write_text("x")
    assert _export(tiny_beir, neg, tmp_path / "a-file", "--format", "hf-dataset") == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert _export(tiny_beir, neg, tmp_path / "x.csv", "--format", "hf-dataset") == 2
    assert "--format hf-dataset writes a datasets folder" in capsys.readouterr().err


def test_hf_dataset_output_onto_its_input_is_refused(tmp_path, capsys):
    folder = tmp_path / "pairs"
    _ds().Dataset.from_dict({"anchor": ["a q"], "positive": ["a p"]}).save_to_disk(str(folder))
    neg = write_rows(tmp_path / "neg.jsonl", [{"qid": text_id("q", "a q"), "pos_id": text_id("p", "a p"),
                                               "pos_score": 1.0, "neg_ids": [], "neg_scores": [], "neg_teachers": []}])
    assert _export(folder, neg, folder, "--format", "hf-dataset") == 2
    assert "is an input of this run" in capsys.readouterr().err


# ------------------------------------------------------------------------------ scores: the JSONL formats
def test_flagembedding_scores_on_by_default_and_no_scores(tiny_beir, neg, tmp_path):
    out = tmp_path / "fe.jsonl"
    _export(tiny_beir, neg, out, "--format", "flagembedding")
    got = read_jsonl(out)
    assert [(g["pos_scores"], g["neg_scores"]) for g in got] == [([r["pos_score"]], r["neg_scores"]) for r in ROWS]
    _export(tiny_beir, neg, out, "--format", "flagembedding", "--no-scores")
    assert [sorted(g) for g in read_jsonl(out)] == [["neg", "pos", "query"]] * 4


def test_tevatron_score_in_every_passage(tiny_beir, neg, tmp_path):
    out = tmp_path / "tev.jsonl"
    _export(tiny_beir, neg, out, "--format", "tevatron")
    got = read_jsonl(out)
    assert [[p["score"] for p in g["positive_passages"]] for g in got] == [[r["pos_score"]] for r in ROWS]
    assert [[p["score"] for p in g["negative_passages"]] for g in got] == [r["neg_scores"] for r in ROWS]
    assert list(got[0]["negative_passages"][0]) == ["docid", "title", "text", "score"]
    _export(tiny_beir, neg, out, "--format", "tevatron", "--group-by-query")
    q1 = read_jsonl(out)[0]
    assert [(p["docid"], p["score"]) for p in q1["positive_passages"]] == [("d1", 0.9), ("d4", 0.8)]
    assert [(p["docid"], p["score"]) for p in q1["negative_passages"]] == [("d3", 0.5), ("d2", 0.4), ("d6", 0.3)]
    _export(tiny_beir, neg, out, "--format", "tevatron", "--no-scores")
    assert all("score" not in p for g in read_jsonl(out) for p in g["positive_passages"] + g["negative_passages"])


def test_a_relabelled_positive_has_no_score_and_is_counted(tiny_beir, tmp_path, capsys):
    neg = write_rows(tmp_path / "neg.jsonl", [dict(ROWS[0], relabeled=["d4"])])
    out = tmp_path / "tev.jsonl"
    assert _export(tiny_beir, neg, out, "--format", "tevatron") == 0
    assert "warning: 1 rows have a positive without a teacher score" in capsys.readouterr().out
    second = read_jsonl(out)[1]  # the relabelled d4: its own row, no score for it, its negatives' scores kept
    assert second["positive_passages"][0]["docid"] == "d4" and "score" not in second["positive_passages"][0]
    assert [p["score"] for p in second["negative_passages"]] == [0.5, 0.4]
    st = tmp_path / "st-data"
    stats = export_negatives(neg, load_beir(tiny_beir, "train"), "hf-dataset", st, scores=True)
    assert stats["scores_missing"] == 1 and _ds().load_from_disk(str(st))["scores"] == [[0.9, 0.5, 0.4],
                                                                                        [None, 0.5, 0.4]]
    assert read_meta(st)["scores"] == {"written": True, "rows_without_positive_score": 1}


# ----------------------------------------------------------------------------------------- in: datasets
def test_dataset_object_ids_from_texts_identical_texts_one_id():
    ds = _ds().Dataset.from_dict({"anchor": ["what is a cat", "what is a cat", "a dog?"],
                                  "positive": ["Cats purr.", "Kittens are cats.", "Cats purr."]})
    data = load_data(ds, "train")
    q, p = text_id("q", "what is a cat"), text_id("p", "Cats purr.")
    assert data.qrels == {q: {p: 1, text_id("p", "Kittens are cats."): 1}, text_id("q", "a dog?"): {p: 1}}
    assert data.corpus.ids == [p, text_id("p", "Kittens are cats.")]  # 'Cats purr.' once
    assert data.split == "train" and "1 rows repeat an earlier query" in data.warnings[0]


def test_dataset_dict_picks_the_split_and_lists_the_others():
    d = _ds().DatasetDict({"train": _ds().Dataset.from_dict({"query": ["a"], "pos": ["b"]}),
                           "dev": _ds().Dataset.from_dict({"query": ["c"], "pos": ["d"]})})
    assert list(load_data(d, "dev").queries.values()) == ["c"]
    with pytest.raises(DataError) as e:
        load_data(d, "test")
    assert "split 'test' not found" in str(e.value) and "['dev', 'train']" in str(e.value)


def test_columns_by_name_first_two_or_named():
    ds = _ds().Dataset
    first_two = load_data(ds.from_dict({"question_text": ["q"], "passage_text": ["p"], "id": ["7"]}))
    assert first_two.qrels == {text_id("q", "q"): {text_id("p", "p"): 1}}  # no known names: the first two, as ST
    by_name = load_data(ds.from_dict({"id": ["7"], "anchor": ["q"], "positive": ["p"]}))
    assert by_name.qrels == first_two.qrels  # known names win over order
    named = load_data(ds.from_dict({"title": ["t"], "body": ["b"], "q": ["q"]}), anchor_column="q",
                      positive_column="body")
    assert named.qrels == {text_id("q", "q"): {text_id("p", "b"): 1}}
    with_negs = load_data(ds.from_dict({"anchor": ["q"], "positive": ["p"], "negative_2": ["n2"], "negative_1": ["n1"]}))
    assert with_negs.given_negatives == {text_id("q", "q"): [text_id("p", "n1"), text_id("p", "n2")]}


@pytest.mark.parametrize("cols, kwargs, problem", [
    ({"anchor": ["q"], "positive": ["p"]}, {"anchor_column": "question"},
     "no column 'question' (--anchor-column); columns found: ['anchor', 'positive']"),
    ({"text": ["a"], "label": [1]}, {}, "no query/positive columns; columns found: ['text', 'label']"),
    ({"anchor": ["q", "r"], "positive": ["p", None]}, {}, "row 2: 'positive' must be non-empty text, got NoneType None"),
    ({"anchor": [4, 5], "positive": ["p", "p2"]}, {}, "row 1: 'anchor' must be non-empty text, got int 4"),
    ({"anchor": ["q", " "], "positive": ["p", "p2"]}, {}, "row 2: 'anchor' must be non-empty text, got empty text"),
])
def test_bad_dataset_inputs_are_clear_errors(cols, kwargs, problem):
    with pytest.raises(DataError) as e:
        load_data(_ds().Dataset.from_dict(cols), **kwargs)
    assert problem in str(e.value) and str(e.value).startswith(f"datasets.Dataset({len(next(iter(cols.values())))} rows")


def test_empty_table_and_bad_cell_name_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.table({"anchor": pa.array([], pa.string()), "positive": pa.array([], pa.string())}),
                   folder / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(DataError, match=re.escape(f"{folder}: no rows found (split 'train')")):
        load_data(folder)
    bad = folder / "data" / "train-00001-of-00002.parquet"
    pq.write_table(pa.table({"anchor": ["q", "r"], "positive": [["p"], ["p2", None]]}), bad)
    with pytest.raises(DataError) as e:
        load_data(folder)
    assert str(e.value).startswith(f"{bad}: row 2: 'positive' holds an empty or non-string passage None")


def test_hub_folder_splits_by_file_name(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    for split, shards in (("train", 2), ("test", 1)):
        for k in range(shards):
            pq.write_table(pa.table({"anchor": [f"{split} q{k}"], "positive": [f"{split} p{k}"]}),
                           folder / "data" / f"{split}-{k:05d}-of-{shards:05d}.parquet")
    (folder / "README.md").write_text("---\nlicense: mit\n---\n")
    train = load_data(folder, "train")
    assert list(train.queries.values()) == ["train q0", "train q1"] and train.source == str(folder)
    assert list(load_data(folder, "test").queries.values()) == ["test q0"]
    with pytest.raises(DataError) as e:
        load_data(folder, "dev")
    assert "split 'dev' not found" in str(e.value) and "test (1 files), train (2 files)" in str(e.value)

    jsonl = tmp_path / "hub2"
    jsonl.mkdir()
    (jsonl / "train.jsonl").write_text(json.dumps({"question": "jq", "answer": "ja"}) + "\n")
    assert list(load_data(jsonl).queries.values()) == ["jq"]
    with pytest.raises(DataError) as e:
        load_data(jsonl, anchor_column="query")
    assert str(e.value).startswith(f"{jsonl / 'train.jsonl'}: no column 'query' (--anchor-column)")


def test_beir_folder_refuses_column_flags(tiny_beir):
    with pytest.raises(DataError, match="--anchor-column name table columns; a BEIR folder has none"):
        load_data(tiny_beir, anchor_column="text")


# ------------------------------------------------------------------------------------------ round trips
def test_round_trip_dataset_mine_export_load_from_disk(tmp_path):
    """Dataset -> load_data -> mine (a hand-made score table) -> write_negatives -> export -> load_from_disk."""
    from hardneg.data.negatives import write_negatives
    from hardneg.mining.config import MineConfig
    from hardneg.mining.mine import mine

    anchors = ["what is a cat", "where do dogs come from", "what orbits the earth", "what is a kitten"]
    positives = ["Cats are small mammals.", "Dogs descend from wolves.", "The moon orbits the earth.",
                 "A kitten is a juvenile cat."]
    ds = _ds().Dataset.from_dict({"anchor": anchors, "positive": positives})
    data = load_data(ds)
    score = {(a, p): 1.0 if i == j else round(0.5 - 0.1 * ((i + j) % 4), 2)
             for i, a in enumerate(anchors) for j, p in enumerate(positives)}
    table = [[score[(data.queries[q], t)] for t in data.corpus.texts] for q in data.query_ids()]
    config = MineConfig(method="naive", num_negatives=2)
    neg = tmp_path / "neg.jsonl"
    write_negatives(neg, mine(data, [TableTeacher(data.query_ids(), table)], config), config)
    out = tmp_path / "st-data"
    export_negatives(neg, data, "hf-dataset", out, scores=True)
    got = _ds().load_from_disk(str(out)).to_list()
    expect = []
    for i, (a, p) in enumerate(zip(anchors, positives)):
        others = sorted((j for j in range(4) if j != i), key=lambda j: (-score[(a, positives[j])],
                                                                         text_id("p", positives[j])))[:2]
        expect.append({"anchor": a, "positive": p, "negative_1": positives[others[0]],
                       "negative_2": positives[others[1]],
                       "scores": [1.0, score[(a, positives[others[0]])], score[(a, positives[others[1]])]]})
    assert got == expect
    assert load_data(_ds().load_from_disk(str(out))).given_negatives  # our output reads back as a table


def test_cli_mine_a_save_to_disk_folder_with_named_columns_then_export(tmp_path, capsys):
    folder = tmp_path / "pairs"
    _ds().Dataset.from_dict({"id": ["1", "2", "3"], "question": [QUERY["q1"], QUERY["q2"], QUERY["q3"]],
                             "doc": [DOC["d1"], DOC["d2"], DOC["d5"]]}).save_to_disk(str(folder))
    neg = tmp_path / "neg.jsonl"
    cols = ["--anchor-column", "question", "--positive-column", "doc"]
    assert main(["mine", "--teacher", "bm25", "--data", str(folder), *cols, "--method", "naive",
                 "--num-negatives", "1", "--output", str(neg)]) == 0
    out = tmp_path / "st-data"
    assert main(["export", str(neg), "--data", str(folder), *cols, "--format", "hf-dataset", "--scores",
                 "--output", str(out)]) == 0
    got = _ds().load_from_disk(str(out)).to_list()
    pairs = {(QUERY["q1"], DOC["d1"]), (QUERY["q2"], DOC["d2"]), (QUERY["q3"], DOC["d5"])}
    assert {(g["anchor"], g["positive"]) for g in got} == pairs
    assert all(g["negative_1"] in {DOC["d1"], DOC["d2"], DOC["d5"]} - {g["positive"]} for g in got)
    rows = [json.loads(x) for x in neg.read_text().splitlines()]
    assert [g["scores"] for g in got] == [[r["pos_score"], *r["neg_scores"]] for r in rows]
    assert main(["mine", "--teacher", "bm25", "--data", str(folder), "--anchor-column", "nope",
                 "--output", str(tmp_path / "n2.jsonl")]) == 2
    assert "no column 'nope' (--anchor-column); columns found: ['id', 'question', 'doc']" in capsys.readouterr().err


# ------------------------------------------------------------------------ the README's trainer example
def _readme_trainer_block() -> str:
    text = README.read_text()
    section = text[text.index("## Export (`hardneg export`)"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("scores", [False, True])
def test_readme_sentence_transformers_trainer_runs_on_our_output(tiny_beir, neg, tiny_model, tmp_path, scores):
    """The README block, only its first settings line changed: plain SentenceTransformerTrainer + MNRL, 2 steps."""
    import torch
    from sentence_transformers import SentenceTransformer

    data = tmp_path / "st-data"
    assert _export(tiny_beir, neg, data, "--format", "hf-dataset", *(["--scores"] if scores else [])) == 0
    code = _readme_trainer_block()
    settings = re.compile(r"^DATA, MODEL, OUT, BATCH = .*$", re.M)
    assert settings.search(code), "the README block must start its settings with DATA, MODEL, OUT, BATCH"
    out = tmp_path / "st-mnrl"
    code = settings.sub(f"DATA, MODEL, OUT, BATCH = {str(data)!r}, {str(tiny_model)!r}, {str(out)!r}, 2", code)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)
    assert ns["trainer"].state.global_step == 2  # 3 rows, batches of 2
    before = SentenceTransformer(str(tiny_model), device="cpu").encode(["what is a cat"])
    after = SentenceTransformer(str(out / "final"), device="cpu").encode(["what is a cat"])
    assert not torch.allclose(torch.tensor(before), torch.tensor(after))  # it trained
