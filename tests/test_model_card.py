"""The model card `hardneg train` writes (training/card.py), `evaluate --card`, and `train --push-to-hub`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hardneg.cli.main import main
from hardneg.core.errors import HardnegError
from hardneg.training.card import (BEGIN, END, NOT_EVALUATED, card_evaluations, evaluation_block, mining_rows,
                                   render_card, set_evaluation)

ST_CARD = """---
tags:
- sentence-transformers
- generated_from_trainer
pipeline_tag: sentence-similarity
---

# SentenceTransformer based on tiny

## Model Details

## Training Details

### Training Hyperparameters
"""

META = {  # a negatives meta as `hardneg mine --teacher bm25 --judge agreement --judge-teacher random` writes it
    "config": {"method": "percpos", "perc": 0.95, "shift": 10, "max_score": 0.7, "margin": 0.05,
               "min_score": None, "positive_score": "min", "num_negatives": 2, "select": "top", "depth": 100,
               "ensemble": "intra-nodedup", "seed": 42, "judge": "agreement", "judge_min_votes": 1,
               "judge_frac": 0.95, "false_negatives": "remove", "judge_model": None},
    "teachers": [{"name": "bm25", "fingerprint": "bm25s:k1=0.9:b=0.4:lucene:english-stem-stop"}],
    "seed": 42,
    "stats": {"queries": 3, "rows": 4, "candidates_seen": 18,
              "removed": {"padding": 0, "positive": 4, "percpos": 1, "judge": 2},
              "shortfall": {"handling": "keep", "rows_short_initially": 0, "dropped": 0},
              "judge": {"judge": "agreement", "action": "remove", "flagged": 2, "voters": ["random"],
                        "relabeled": 0, "removed": 2, "queries_dropped": 0,
                        "held_out": {"flagged": 2, "flagged_held_out": 1, "held_out_candidates": 4,
                                     "precision": 0.5, "recall": 0.25}}},
    "judge_teachers": ["random"],
}

# hand-written: what the card must say about META
EXPECTED_SOURCE = r"""### How the negatives were mined: source 1

| | |
|---|---|
| data | `scifact`, split train |
| negatives file | `neg.jsonl` (sha256 `c92878b66c646892`) |
| teachers | `bm25` (fingerprint `bm25s:k1=0.9:b=0.4:lucene:english-stem-stop`) |
| method | percpos: keep s < p - \|p\|(1 - 0.95) (p = the query's positive score, min over its positives) |
| selection | top, 2 per row, from the top 100 candidates |
| false-negative judge | agreement (min votes 1, frac 0.95), voters `random`; flagged 2 probable false negatives, action remove (removed 2, relabelled 0, queries dropped 0); against held-out positives: precision 0.5, recall 0.25 (1 of 4 held-out positives among the candidates flagged) |
| counts | 3 queries, 4 rows, 18 candidates seen; removed: padding 0, positive 4, percpos 1, judge 2; rows short of negatives: 0 (keep: 0 dropped) |
| seed | 42 |
| used in training | 4 examples from 4 rows (0 short rows dropped, 0 relabelled rows added) |
"""

USED = {"rows": 4, "examples": 4, "short_rows_dropped": 0, "relabeled_rows_added": 0,
        "negatives_sha256": "c92878b66c6468928bff4eea052706533fa276b87493b0ab38aece3721c1d119"}
CONFIG = {"model": "minilm", "sources": [{"data": "scifact"}], "output": "runs/ft", "num_negatives": 2,
          "temperature": 0.05, "lr": 2e-05}
RUN = {"steps": 10, "examples": 4, "loss": "MaskedRankingLoss", "final_loss": 0.25, "train_s": 3.5}


def _card(meta=META, evaluations=()):
    return render_card(ST_CARD, [{"data": "scifact", "negatives": "/x/neg.jsonl", "split": "train",
                                  "meta": meta, "used": USED}], CONFIG, RUN, evaluations)


def test_render_card_says_how_the_negatives_were_mined():
    card = _card()
    assert EXPECTED_SOURCE in card
    assert "| num_negatives | `2` |" in card and "| temperature | `0.05` |" in card and "| lr | `2e-05` |" in card
    assert "| output |" not in card and "| sources |" not in card  # shown per source, not as JSON
    assert "| final_loss | 0.25 |" in card and "| loss | MaskedRankingLoss |" in card
    assert NOT_EVALUATED in card  # no evaluation known: said so, no number invented
    # placed inside ST's card: after its model details, before its training details; tagged
    assert card.index("## Model Details") < card.index(BEGIN) < card.index(END) < card.index("## Training Details")
    assert card.startswith("---\ntags:\n- hardneg\n- sentence-transformers\n")
    assert render_card(card, [{"data": "scifact", "negatives": "/x/neg.jsonl", "split": "train", "meta": META,
                               "used": USED}], CONFIG, RUN) == card  # re-rendering replaces, never duplicates


def test_card_without_meta_or_judge_says_not_recorded():
    assert mining_rows(None) == [("mining", "not recorded: the negatives file has no meta file "
                                            "(it was not written by `hardneg mine`)")]
    rows = dict(mining_rows({"config": {"method": "naive", "judge": "none", "num_negatives": 1}}))
    assert rows["method"] == "naive: no filter: the top non-positives"
    assert rows["false-negative judge"] == "none (false negatives not measured)"
    assert rows["teachers"] == "not recorded" and rows["selection"].endswith("from the top not recorded candidates")
    no_held = {**META, "stats": {**META["stats"], "judge": {**META["stats"]["judge"], "held_out": None}}}
    assert "false-negative rate not measured (no held-out positives)" in dict(mining_rows(no_held))["false-negative judge"]
    card = render_card("# plain card\n", [{"data": "d", "negatives": "n.jsonl", "meta": None}], {"model": "m"}, {})
    assert card.startswith("# plain card\n\n" + BEGIN) and card.endswith(END + "\n")


def test_set_evaluation_fills_and_replaces_rows():
    card = _card()
    a = {"data": "scifact", "split": "test", "n_queries": 300, "metrics": {"ndcg@10": 0.64512, "mrr@10": 0.6,
                                                                          "recall@100": 0.9}}
    card = set_evaluation(card, a)
    assert NOT_EVALUATED not in card and "| `scifact` | test | 300 | 0.6451 | 0.6000 | 0.9000 |" in card
    card = set_evaluation(card, {**a, "metrics": {"ndcg@10": 0.7}})  # same data + split: replaced
    card = set_evaluation(card, {**a, "data": "nf--corpus"})  # another data: added ("--" kept out of the comment)
    assert [e["metrics"].get("ndcg@10") for e in card_evaluations(card)] == [0.7, 0.64512]
    assert card_evaluations(card)[1]["data"] == "nf--corpus" and "nf--corpus -->" not in card
    assert card.count("| `scifact` | test |") == 1 and "| `scifact` | test | 300 | 0.7000 | - | - |" in card
    assert EXPECTED_SOURCE in card  # the rest of the section is untouched
    with pytest.raises(HardnegError, match="no hardneg evaluation block"):
        set_evaluation(ST_CARD, a)
    assert card_evaluations(evaluation_block()) == []


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records the calls (the hub is unreachable here)."""

    calls: list = []
    fail: bool = False

    def __init__(self, token=None):
        self.calls.append(("init", {"token": token}))

    def create_repo(self, repo_id, **kw):
        if self.fail:
            raise OSError("401 Unauthorized")
        self.calls.append(("create_repo", {"repo_id": repo_id, **kw}))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw))
        assert Path(kw["folder_path"], "README.md").is_file()  # the card is there when the upload starts

        class Info:
            commit_url = f"https://hub/{kw['repo_id']}/commit/1"
        return Info()


def test_train_writes_card_evaluate_fills_it_and_push_uploads(tiny_model, tiny_beir, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from hardneg.core.fingerprint import model_fingerprint

    RecordingApi.calls, RecordingApi.fail = [], False
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    neg, out = tmp_path / "neg.jsonl", tmp_path / "ft"
    assert main(["mine", "--teacher", "bm25", "--data", str(tiny_beir), "--output", str(neg),
                 "--num-negatives", "2"]) == 0
    assert main(["train", "--model", str(tiny_model), "--data", str(tiny_beir), "--negatives", str(neg),
                 "--output", str(out), "--num-negatives", "2", "--batch-size", "2", "--max-steps", "2",
                 "--push-to-hub", "me/tiny-hn", "--hub-private"]) == 0
    card = (out / "README.md").read_text()
    meta = json.loads(Path(str(neg) + ".meta.json").read_text())
    assert "generated_from_trainer" in card and "## Training Details" in card  # sentence-transformers' card ...
    assert f"`bm25` (fingerprint `{meta['teachers'][0]['fingerprint']}`)" in card  # ... with our section
    assert f"| counts | {meta['stats']['queries']} queries, {meta['stats']['rows']} rows," in card
    assert "| steps | 2 |" in card and NOT_EVALUATED in card
    # the push: the real HfApi calls, in order, with the folder and without checkpoints
    assert [c[0] for c in RecordingApi.calls] == ["init", "create_repo", "upload_folder"]
    assert RecordingApi.calls[1][1] == {"repo_id": "me/tiny-hn", "repo_type": "model", "private": True,
                                        "exist_ok": True}
    up = RecordingApi.calls[2][1]
    assert up["repo_id"] == "me/tiny-hn" and Path(up["folder_path"]) == out and "checkpoints/*" in up["ignore_patterns"]
    assert "uploaded to me/tiny-hn: https://hub/me/tiny-hn/commit/1" in capsys.readouterr().out

    fp = model_fingerprint(out)
    res = tmp_path / "res.json"
    assert main(["evaluate", "--model", str(out), "--data", str(tiny_beir), "--output", str(res),
                 "--card", "--no-progress"]) == 0
    ndcg = json.loads(res.read_text())["ndcg@10"]
    card = (out / "README.md").read_text()
    assert NOT_EVALUATED not in card and f"| `{tiny_beir}` | test | 3 | {ndcg:.4f} |" in card
    assert card_evaluations(card)[0]["metrics"]["ndcg@10"] == ndcg
    assert model_fingerprint(out) == fp  # the card is not part of the model's fingerprint


def test_card_and_push_refusals(tiny_model, tiny_beir, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from hardneg.training.card import push_to_hub

    # --card on a model hardneg did not train: refused before any work
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(tiny_beir), "--card", "--no-progress"]) == 2
    assert "not a model card written by `hardneg train`" in capsys.readouterr().err
    RecordingApi.calls, RecordingApi.fail = [], True
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    with pytest.raises(HardnegError, match=r"me/x failed \(OSError: 401 Unauthorized\); the trained model is in"):
        push_to_hub(tiny_model, "me/x")
    with pytest.raises(HardnegError, match="no finished model"):
        push_to_hub(tmp_path, "me/x")
